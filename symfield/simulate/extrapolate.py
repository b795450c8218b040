"""Extrapolation of finite-width measurements to N -> infinity.

A one-loop quantity measured at width N behaves as y_N = y_∞ + b/N + O(1/N²).  Weighted least
squares of y_N on 1/N gives y_∞ and its standard error; with two widths N and 2N this is the
Richardson combination 2 y_2N - y_N.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Extrapolation:
    value: float      #: y_∞
    error: float      #: its standard error
    slope: float      #: b (coefficient of 1/N)


def extrapolate(widths, values, errors) -> Extrapolation:
    """Weighted fit y_N = y_∞ + b/N; ``errors`` are the standard errors of ``values``."""
    N = np.asarray(widths, dtype=float)
    y = np.asarray(values, dtype=float)
    e = np.asarray(errors, dtype=float)
    if not (N.shape == y.shape == e.shape) or N.ndim != 1 or len(N) < 2:
        raise ValueError("widths, values and errors must be 1-D of equal length >= 2")
    if np.any(e <= 0) or np.any(N <= 0):
        raise ValueError("widths and errors must be positive")
    A = np.stack([np.ones_like(N), 1 / N], axis=1) / e[:, None]
    cov = np.linalg.inv(A.T @ A)
    coef = cov @ A.T @ (y / e)
    return Extrapolation(float(coef[0]), float(np.sqrt(cov[0, 0])), float(coef[1]))

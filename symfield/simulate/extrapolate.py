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


def one_loop_measurements(spec, X, widths, samples, seed=0, progress=False, time_index=None):
    """N Var C(t,t) and N (<C(t,t)> - C̄(t,t)) of the auxiliary kernel, and N Var K̂(t,t) of the
    empirical kernel, at each width, with standard errors.

    Pattern 0, time ``time_index`` (default: the last).  Returns a dict of arrays over ``widths``.
    The error of N·Var uses the measured fourth central moment, Var(s²) ≈ (μ4 - σ⁴)/S.
    """
    from ..theory import mean_field
    from .projected import kernel_moments
    t = spec.T - 1 if time_index is None else time_index
    C_bar = mean_field(spec, X).block(t, t)[0, 0]
    out = {k: [] for k in ("N", "var", "var_err", "shift", "shift_err", "emp_var", "emp_var_err")}
    for k, N in enumerate(widths):
        km = kernel_moments(spec, X, int(N), int(samples), seed=(seed, k), progress=progress)
        v = km.var("aux")[t, t, 0, 0]
        out["N"].append(N)
        out["var"].append(N * v)
        out["var_err"].append(N * km.var_sem("aux")[t, t, 0, 0])
        out["shift"].append(N * (km.mean("aux")[t, t, 0, 0] - C_bar))
        out["shift_err"].append(N * np.sqrt(v / samples))
        ve = km.var("emp")[t, t, 0, 0]
        out["emp_var"].append(N * ve)
        out["emp_var_err"].append(N * km.var_sem("emp")[t, t, 0, 0])
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}

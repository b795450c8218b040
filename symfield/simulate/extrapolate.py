"""Extrapolation of finite-width measurements to N -> infinity.

A quantity with a regular loop expansion measured at width N behaves as

    y_N = y_∞ + b/N + c/N² + O(1/N³).

``order=1`` fits y_∞ + b/N (the O(1/N²) remainder is a bias of the intercept; with the two widths N, 2N
the fit is the Richardson combination 2 y_2N − y_N); ``order=2`` also fits c (at least three widths; with
N, 2N, 4N it is (8 y_4N − 6 y_2N + y_N)/3).  ``powers`` replaces the integer powers of 1/N by the
exponents p_k of a known non-analytic expansion y_∞ + Σ_k b_k N^(−p_k).  All fits are weighted least
squares with the given standard errors; the error of y_∞ is the propagated one (not rescaled by χ²).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import SpecError


@dataclass(frozen=True)
class Extrapolation:
    value: float      #: y_∞
    error: float      #: its standard error
    slope: float      #: b (coefficient of the first power, 1/N)
    coefficients: tuple = ()   #: (b_1, b_2, ...) of N^(−p_1), N^(−p_2), ...
    powers: tuple = (1.0,)     #: the exponents p_k fitted
    chi2: float = 0.0          #: χ² of the weighted fit
    dof: int = 0               #: widths minus fitted parameters


def extrapolate(widths, values, errors, order: int = 1, powers=None) -> Extrapolation:
    """Weighted fit y_N = y_∞ + Σ_{k=1..order} b_k/N^k (module docstring); ``errors`` are the standard
    errors of ``values``; ``powers``: exponents p_k of y_∞ + Σ b_k N^(−p_k) instead (overrides ``order``)."""
    N = np.asarray(widths, dtype=float)
    y = np.asarray(values, dtype=float)
    e = np.asarray(errors, dtype=float)
    if not (N.shape == y.shape == e.shape) or N.ndim != 1:
        raise SpecError("extrapolate: widths, values and errors must be 1-D of equal length")
    if np.any(~np.isfinite(y)) or np.any(~np.isfinite(e)) or np.any(e <= 0) or np.any(N <= 0):
        raise SpecError("extrapolate: widths and errors must be positive, values finite")
    if powers is None:
        if isinstance(order, bool) or order not in (1, 2):
            raise SpecError(f"extrapolate: order must be 1 or 2, got {order!r}")
        p = np.arange(1, int(order) + 1, dtype=float)
    else:
        p = np.asarray(powers, dtype=float)
        if p.ndim != 1 or p.size == 0 or np.any(p <= 0) or np.unique(p).size != p.size:
            raise SpecError(f"extrapolate: powers must be distinct positive exponents, got {powers!r}")
    if np.unique(N).size < p.size + 1:
        raise SpecError(f"extrapolate: fitting y_inf and {p.size} power(s) of 1/N needs at least {p.size + 1} "
                        f"distinct widths, got {np.unique(N).size}")
    A = np.column_stack([np.ones_like(N)] + [N ** -q for q in p]) / e[:, None]
    cov = np.linalg.inv(A.T @ A)
    coef = cov @ A.T @ (y / e)
    chi2 = float(np.sum((A @ coef - y / e) ** 2))
    return Extrapolation(float(coef[0]), float(np.sqrt(cov[0, 0])), float(coef[1]), tuple(map(float, coef[1:])),
                         tuple(map(float, p)), chi2, int(N.size - p.size - 1))

"""High-precision (mpmath) reference values of Gaussian expectations, for tests.

    expect1:  <f(z)>,        z ~ N(0, c)            = ∫ Dx f(√c x)
    expect2:  <f(u) g(v)>,   (u,v) ~ N(0, [[c11,c12],[c12,c22]])
              = ∫ Dx f(a x) ∫ Dy g(b(ρ x + √(1-ρ²) y)),   a=√c11, b=√c22, ρ=c12/(ab)

with Dx the standard normal measure.  Integrals use tanh-sinh quadrature (``mp.quad``) at
``dps`` digits, split at the zeros of the arguments (so kinks at 0, e.g. ReLU, are exact
breakpoints).  ρ = ±1 is integrated as the 1-D integral ∫ Dx f(a x) g(±b x).
These are slow (≈0.1–1 s per 2-D value) and meant only for checking the fast code.
"""
from __future__ import annotations

import mpmath as mp
import sympy as sp

from .registry import get_phi, x as _x

DPS = 30


def mp_function(phi, order: int = 0):
    """mpmath callable for the ``order``-th derivative of φ (name, Lambda or Nonlinearity)."""
    nl = get_phi(phi)
    return sp.lambdify(_x, nl.derivative(order) if order else nl.expr, modules="mpmath")


def _gauss_weight(t):
    return mp.exp(-t * t / 2) / mp.sqrt(2 * mp.pi)


def expect1(f, c, dps: int = DPS):
    """<f(z)> for z ~ N(0, c) (c ≥ 0), as an mpf."""
    with mp.workdps(dps):
        c = mp.mpf(c)
        if c < 0:
            raise ValueError(f"variance c={c} is negative")
        a = mp.sqrt(c)
        if a == 0:
            return mp.mpf(f(mp.mpf(0)))
        return mp.quad(lambda t: _gauss_weight(t) * f(a * t), [-mp.inf, 0, mp.inf])


def expect2(f, g, c11, c22, c12, dps: int = DPS):
    """<f(u) g(v)> for (u, v) ~ N(0, [[c11, c12], [c12, c22]]), as an mpf."""
    with mp.workdps(dps):
        c11, c22, c12 = mp.mpf(c11), mp.mpf(c22), mp.mpf(c12)
        if c11 < 0 or c22 < 0:
            raise ValueError(f"variances c11={c11}, c22={c22} must be non-negative")
        a, b = mp.sqrt(c11), mp.sqrt(c22)
        if a == 0 or b == 0:
            if c12 != 0:
                raise ValueError("c12 must vanish when a variance is zero")
            if a == 0:
                return f(mp.mpf(0)) * expect1(g, c22, dps)
            return g(mp.mpf(0)) * expect1(f, c11, dps)
        rho = c12 / (a * b)
        if abs(rho) > 1 + mp.mpf(10) ** (-dps + 5):
            raise ValueError(f"covariance is not positive semi-definite: rho={rho}")
        rho = max(-1, min(1, rho))
        s = mp.sqrt(1 - rho * rho)
        if s == 0:
            return mp.quad(lambda t: _gauss_weight(t) * f(a * t) * g(b * rho * t), [-mp.inf, 0, mp.inf])

        def inner(t):
            y0 = -rho * t / s  # g's argument crosses zero here
            return mp.quad(lambda y: _gauss_weight(y) * g(b * (rho * t + s * y)), [-mp.inf, y0, mp.inf])

        return mp.quad(lambda t: _gauss_weight(t) * f(a * t) * inner(t), [-mp.inf, 0, mp.inf])


def pair_reference(phi, c11, c22, c12, orders=(0, 0), dps: int = DPS) -> float:
    """<φ^(o1)(u) φ^(o2)(v)> from :func:`expect2`, as a float."""
    return float(expect2(mp_function(phi, orders[0]), mp_function(phi, orders[1]), c11, c22, c12, dps))

"""High-precision (mpmath) reference values of Gaussian expectations, for tests.

    expect1:  <f(z)>,        z ~ N(0, c)            = ∫ Dx f(√c x)
    expect2:  <f(u) g(v)>,   (u,v) ~ N(0, [[c11,c12],[c12,c22]])
              = ∫ Dx f(a x) ∫ Dy g(b(ρ x + √(1-ρ²) y)),   a=√c11, b=√c22, ρ=c12/(ab)

with Dx the standard normal measure.  Arithmetic is done at ``mp.dps = 30``; each integral
is a composite Gauss–Legendre rule (``NODES`` nodes on each of the panels ``PANELS`` of
[-12, 12], the Gaussian tail beyond is < 1e-32) whose panels are split at the zero of the
argument of f and g, so kinks at 0 (ReLU) are exact breakpoints.  ρ = ±1 is integrated
as the 1-D integral ∫ Dx f(a x) g(±b x).  Quadrature error is below 1e-14 for analytic φ
with variances up to ~10 (checked against adaptive ``mp.quad``); a 2-D value costs ~1 s,
so these are only for checking the fast code.
"""
from __future__ import annotations

from functools import lru_cache

import mpmath as mp
import sympy as sp

from .registry import get_phi, x as _x

DPS = 30
NODES = 20
PANELS = (-12, -9, -6.5, -4.5, -3, -1.5, 0, 1.5, 3, 4.5, 6.5, 9, 12)


def mp_function(phi, order: int = 0):
    """mpmath callable for the ``order``-th derivative of φ (name, Lambda or Nonlinearity)."""
    nl = get_phi(phi)
    return sp.lambdify(_x, nl.derivative(order) if order else nl.expr, modules="mpmath")


@lru_cache(maxsize=None)
def _legendre(m: int, dps: int):
    """Gauss–Legendre nodes and weights on [-1, 1] at ``dps`` digits (Newton-polished)."""
    with mp.workdps(dps + 10):
        nodes, weights = [], []
        for i in range(1, m + 1):
            r = mp.cos(mp.pi * (i - mp.mpf(1) / 4) / (m + mp.mpf(1) / 2))
            for _ in range(100):
                p = mp.legendre(m, r)
                dp = m * (r * p - mp.legendre(m - 1, r)) / (r * r - 1)
                step = p / dp
                r -= step
                if abs(step) < mp.mpf(10) ** (-dps - 8):
                    break
            dp = m * (r * mp.legendre(m, r) - mp.legendre(m - 1, r)) / (r * r - 1)
            nodes.append(r)
            weights.append(2 / ((1 - r * r) * dp * dp))
    return tuple(nodes), tuple(weights)


def _gauss_rule(split, dps):
    """Nodes t_j and weights W_j with Σ W_j h(t_j) ≈ ∫ Dt h(t), panels split at ``split``."""
    pts = [mp.mpf(p) for p in PANELS]
    if split is not None and pts[0] < split < pts[-1] and split not in pts:
        pts = sorted(pts + [split])
    gx, gw = _legendre(NODES, dps)
    norm = 1 / mp.sqrt(2 * mp.pi)
    nodes, weights = [], []
    for lo, hi in zip(pts[:-1], pts[1:]):
        c, d = (lo + hi) / 2, (hi - lo) / 2
        for xi, wi in zip(gx, gw):
            t = c + d * xi
            nodes.append(t)
            weights.append(d * wi * norm * mp.exp(-t * t / 2))
    return nodes, weights


@lru_cache(maxsize=4)
def _standard_rule(dps):
    with mp.workdps(dps):
        return _gauss_rule(None, dps)


def _integrate(h, split, dps):
    nodes, weights = _standard_rule(dps) if split is None or split == 0 else _gauss_rule(split, dps)
    return mp.fsum(w * h(t) for t, w in zip(nodes, weights))


def expect1(f, c, dps: int = DPS):
    """<f(z)> for z ~ N(0, c) (c ≥ 0), as an mpf."""
    with mp.workdps(dps):
        c = mp.mpf(c)
        if c < 0:
            raise ValueError(f"variance c={c} is negative")
        a = mp.sqrt(c)
        if a == 0:
            return mp.mpf(f(mp.mpf(0)))
        return _integrate(lambda t: f(a * t), None, dps)


def expect2(f, g, c11, c22, c12, dps: int = DPS):
    """<f(u) g(v)> for (u, v) ~ N(0, [[c11, c12], [c12, c22]]), as an mpf."""
    with mp.workdps(dps):
        c11, c22, c12 = mp.mpf(c11), mp.mpf(c22), mp.mpf(c12)
        if c11 < 0 or c22 < 0:
            raise ValueError(f"variances c11={c11}, c22={c22} must be non-negative")
        a, b = mp.sqrt(c11), mp.sqrt(c22)
        if a == 0 or b == 0:
            if c12 != 0:
                raise ValueError(f"c12={c12} must vanish when a variance is zero")
            if a == 0:
                return f(mp.mpf(0)) * expect1(g, c22, dps)
            return g(mp.mpf(0)) * expect1(f, c11, dps)
        rho = c12 / (a * b)
        if abs(rho) > 1 + mp.mpf(10) ** (-12):
            raise ValueError(f"covariance is not positive semi-definite: rho={rho}")
        rho = max(-1, min(1, rho))
        s = mp.sqrt(1 - rho * rho)
        if s == 0:
            return _integrate(lambda t: f(a * t) * g(b * rho * t), None, dps)

        def inner(t):
            return _integrate(lambda y: g(b * (rho * t + s * y)), -rho * t / s, dps)

        return _integrate(lambda t: f(a * t) * inner(t), None, dps)


@lru_cache(maxsize=None)
def pair_reference(phi, c11: float, c22: float, c12: float, orders=(0, 0), dps: int = DPS) -> float:
    """<φ^(o1)(u) φ^(o2)(v)> from :func:`expect2` as a float (memoised; ``phi`` must be hashable)."""
    return float(expect2(mp_function(phi, orders[0]), mp_function(phi, orders[1]), c11, c22, c12, dps))


@lru_cache(maxsize=None)
def single_reference(phi, c: float, orders=(0,), dps: int = DPS) -> float:
    """<Π_i φ^(o_i)(z)> for z ~ N(0, c), from :func:`expect1`, as a float (memoised)."""
    fs = [mp_function(phi, o) for o in orders]

    def f(z):
        out = mp.mpf(1)
        for fi in fs:
            out *= fi(z)
        return out

    return float(expect1(f, c, dps))

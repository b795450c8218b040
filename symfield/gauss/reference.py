"""High-precision (mpmath) reference values of Gaussian expectations, for tests.

    expect1:  <f(z)>,        z ~ N(0, c)            = ∫ Dx f(√c x)
    expect2:  <f(u) g(v)>,   (u,v) ~ N(0, [[c11,c12],[c12,c22]])
              = ∫ Dx f(a x) ∫ Dy g(b(ρ x + √(1-ρ²) y)),   a=√c11, b=√c22, ρ=c12/(ab)

with Dx the standard normal measure.  Arithmetic is done at ``mp.dps = 30``; each integral is a
composite Gauss–Legendre rule (``NODES`` nodes per panel) on [-12, 12] (the Gaussian tail beyond is
< 1e-32).  The panels are the fixed ``PANELS`` plus, for every point p where f or g may change fast
(``points`` in the argument of f, g: kinks and centres, 0 by default), the breakpoint p/a (outer) or
(p/b - ρx)/s (inner) and the graded points around it at distances h 2^j with h = GRADE/a (resp.
GRADE/(b s)): a function of the argument that is smooth on the scale GRADE is resolved at every
variance (tanh(a x) -> sign(x) at large a).  ρ = ±1 is integrated as the 1-D integral
∫ Dx f(a x) g(±b x), and so is |ρ| >= 1 - COLLINEAR_EPS: a double c12 = ±√(c11 c22) misses ±1 by rounding,
and the 2-D rule there (inner width √(1 - ρ²) ~ 1e-8) left the outer integral ungraded (<erf'erf'> at
c11 = 1e4 came out 16 % high).  The ungraded 2-D rule refuses variances above UNGRADED_MAX_VARIANCE.  The rule is independent of the panel rule of symfield.gauss.panels (other
breakpoints, node type and count, 30 digits); a 1-D value costs ~0.2 s, a 2-D value ~1 s (ungraded) to
minutes (graded); :func:`mehler_reference` (Hermite coefficients on the graded rule, ~1 s per variance,
memoised) and :func:`near_collinear_reference` are the fast 2-D references at any variance.
"""
from __future__ import annotations

from functools import lru_cache

import mpmath as mp
import numpy as np
import sympy as sp

from .registry import get_phi, x as _x

DPS = 30
NODES = 20
PANELS = (-12, -9, -6.5, -4.5, -3, -1.5, 0, 1.5, 3, 4.5, 6.5, 9, 12)
#: finest grading width around a point where f changes, in units of its argument
GRADE = mp.mpf(1) / 1024
#: |ρ| >= 1 - COLLINEAR_EPS is integrated as ρ = ±1 (1-D): a double c12 = ±√(c11 c22) has |ρ| off 1 by a
#: few ulps, and the 2-D rule with its inner width √(1 - ρ²) ~ 1e-8 would leave the outer integral ungraded
#: (measured: <erf' erf'> at c11 = 1e4, c22 = 2e4 came out 0.006050 instead of 0.005198)
COLLINEAR_EPS = mp.mpf(2) ** -48
#: largest variance of the ungraded 2-D rule (``grade=None``): panels of width >= 1.5 resolve φ(a x) for a <= 2
UNGRADED_MAX_VARIANCE = 4


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


def _graded(points, h, plain=()):
    """Breakpoints of [-12, 12]: PANELS, ``plain``, each point p and p ± h 2^j inside."""
    pts = {mp.mpf(p) for p in PANELS} | set(plain)
    for p in points:
        if -12 < p < 12:
            pts.add(p)
        if h == mp.inf:
            continue
        step = h
        while p - step > -12 or p + step < 12:
            pts.update(q for q in (p - step, p + step) if -12 < q < 12)
            step *= 2
    return sorted(pts)


@lru_cache(maxsize=4096)
def _gauss_rule(points, h, dps, plain=()):
    """Nodes t_j and weights W_j with Σ W_j h(t_j) ≈ ∫ Dt h(t), panels graded towards ``points``."""
    gx, gw = _legendre(NODES, dps)
    norm = 1 / mp.sqrt(2 * mp.pi)
    nodes, weights = [], []
    pts = _graded(points, h, plain)
    for lo, hi in zip(pts[:-1], pts[1:]):
        c, d = (lo + hi) / 2, (hi - lo) / 2
        for xi, wi in zip(gx, gw):
            t = c + d * xi
            nodes.append(t)
            weights.append(d * wi * norm * mp.exp(-t * t / 2))
    return nodes, weights


def _integrate(fn, points, h, dps):
    nodes, weights = _gauss_rule(tuple(points), h, dps)
    return mp.fsum(w * fn(t) for t, w in zip(nodes, weights))


def expect1(f, c, dps: int = DPS, points=(0,)):
    """<f(z)> for z ~ N(0, c) (c ≥ 0), as an mpf; ``points``: where f changes fast (see module doc)."""
    with mp.workdps(dps):
        c = mp.mpf(c)
        if c < 0:
            raise ValueError(f"variance c={c} is negative")
        a = mp.sqrt(c)
        if a == 0:
            return mp.mpf(f(mp.mpf(0)))
        return _integrate(lambda t: f(a * t), [mp.mpf(p) / a for p in points], GRADE / a, dps)


def expect2(f, g, c11, c22, c12, dps: int = DPS, points=(0,), grade=None):
    """<f(u) g(v)> for (u, v) ~ N(0, [[c11, c12], [c12, c22]]), as an mpf; ``points`` as in expect1
    (for both f and g).  ``grade``: finest grading width (in the argument of f, g; e.g. GRADE) or None for
    the fixed panels split at the points only (4x to 100x cheaper; enough for variances up to ~4 and
    functions smooth on the scale 1); ρ = ±1 is always graded (1-D)."""
    with mp.workdps(dps):
        c11, c22, c12 = mp.mpf(c11), mp.mpf(c22), mp.mpf(c12)
        if c11 < 0 or c22 < 0:
            raise ValueError(f"variances c11={c11}, c22={c22} must be non-negative")
        a, b = mp.sqrt(c11), mp.sqrt(c22)
        if a == 0 or b == 0:
            if c12 != 0:
                raise ValueError(f"c12={c12} must vanish when a variance is zero")
            if a == 0:
                return f(mp.mpf(0)) * expect1(g, c22, dps, points)
            return g(mp.mpf(0)) * expect1(f, c11, dps, points)
        rho = c12 / (a * b)
        if abs(rho) > 1 + mp.mpf(10) ** (-12):
            raise ValueError(f"covariance is not positive semi-definite: rho={rho}")
        if abs(rho) >= 1 - COLLINEAR_EPS:  # ±√(c11 c22) rounded to a double: the collinear pair
            rho = mp.sign(rho)
        if grade is None and max(c11, c22) > UNGRADED_MAX_VARIANCE and abs(rho) != 1:
            raise ValueError(f"the ungraded rule needs variances <= {UNGRADED_MAX_VARIANCE:g}, got c11={c11}, "
                             f"c22={c22}: pass grade (e.g. GRADE) or use mehler_reference")
        s = mp.sqrt(1 - rho * rho)
        outer = [mp.mpf(p) / a for p in points] + ([mp.mpf(p) / (b * rho) for p in points] if rho else [])
        if s == 0:
            h = min(GRADE / a, GRADE / b)
            return _integrate(lambda t: f(a * t) * g(b * rho * t), outer, h, dps)
        h = mp.inf if grade is None else grade / a
        if rho and grade is not None:  # g(b(ρx + s y)) is smoothed over b s in x: grade towards its points too
            h = min(h, max(grade, b * s) / (b * abs(rho)))

        def inner(t):
            return _integrate(lambda y: g(b * (rho * t + s * y)), [(mp.mpf(p) / b - rho * t) / s for p in points],
                              mp.inf if grade is None else grade / (b * s), dps)

        return _integrate(lambda t: f(a * t) * inner(t), outer, h, dps)


@lru_cache(maxsize=None)
def pair_reference(phi, c11: float, c22: float, c12: float, orders=(0, 0), dps: int = DPS, points=(0,),
                   grade=None) -> float:
    """<φ^(o1)(u) φ^(o2)(v)> from :func:`expect2` as a float (memoised; ``phi`` must be hashable)."""
    return float(expect2(mp_function(phi, orders[0]), mp_function(phi, orders[1]), c11, c22, c12, dps, points,
                         grade))


@lru_cache(maxsize=None)
def single_reference(phi, c: float, orders=(0,), dps: int = DPS, points=(0,)) -> float:
    """<Π_i φ^(o_i)(z)> for z ~ N(0, c), from :func:`expect1`, as a float (memoised)."""
    fs = [mp_function(phi, o) for o in orders]

    def f(z):
        out = mp.mpf(1)
        for fi in fs:
            out *= fi(z)
        return out

    return float(expect1(f, c, dps, points))


#: width of the uniform panels added for Hermite coefficients (h_k, k <= ~400, oscillates on ~1/√k)
HERMITE_PANEL = mp.mpf(1) / 4
#: values below this are 0 in extended precision (its smallest normal number is ~3.4e-4932)
TINY = mp.mpf(10) ** -4900


def hermite_coefficients(f, c, kmax: int, dps: int = DPS, points=(0,)):
    """(c_k = <f(√c t) h_k(t)>, k <= kmax, and <f(√c t)²>) with h_k = He_k/√k!, on the graded rule of
    expect1 refined to panels of at most HERMITE_PANEL (so h_k is resolved).  Nodes, weights and f at ``dps``
    digits; the recursion h_(k+1) = (t h_k - √k h_(k-1))/√(k+1) and the sums in extended precision
    (np.longdouble, 64-bit mantissa, where the platform has it: 50x faster than mpmath, ~1e-18 relative to
    √<f²>; else in mpmath)."""
    with mp.workdps(dps):
        a = mp.sqrt(mp.mpf(c))
        grid = [mp.mpf(-12) + HERMITE_PANEL * i for i in range(int(24 / HERMITE_PANEL) + 1)]
        nodes, weights = _gauss_rule(tuple(mp.mpf(p) / a for p in points), GRADE / a, dps, tuple(grid))
        if np.finfo(np.longdouble).eps < 1e-18:
            def num(v):
                return np.array([np.longdouble(mp.nstr(u, 24, min_fixed=1, max_fixed=0) if abs(u) > TINY else 0) for u in v])
        else:
            def num(v):
                return np.array(v, dtype=object)
        t, fv = num(nodes), num([f(a * u) for u in nodes])
        wf = num(weights) * fv
        roots = num([mp.sqrt(k) for k in range(kmax + 2)])
        coef = []
        hm, hk = 0 * t, 0 * t + 1
        for k in range(kmax + 1):
            coef.append(mp.mpf(str(np.sum(wf * hk))))
            hm, hk = hk, (t * hk - roots[k] * hm) / roots[k + 1]
        return coef, mp.mpf(str(np.sum(wf * fv)))


@lru_cache(maxsize=None)
def _phi_hermite(phi, order, c, kmax, dps, points):
    """:func:`hermite_coefficients` of φ^(order) (memoised: the grid meets each variance several times)."""
    return hermite_coefficients(mp_function(phi, order), c, kmax, dps, points)


def mehler_reference(phi, c11: float, c22: float, c12: float, orders=(0, 0), kmax: int = 400, dps: int = 25,
                     points=(0,)) -> float:
    """<φ^(o1)(u) φ^(o2)(v)> for |ρ| < 1 by the Mehler sum Σ ρ^k c_k d_k of mpmath Hermite coefficients
    (:func:`hermite_coefficients`), stopped when the Cauchy–Schwarz bound |ρ|^k √(T_a T_b) on the rest
    (T = <f²> - Σ_{j<k} c_j²) is below 1e-18 of √(<f²><g²>); ValueError if kmax terms do not reach it."""
    with mp.workdps(dps):
        ca, na = _phi_hermite(phi, orders[0], c11, kmax, dps, tuple(points))
        cb, nb = _phi_hermite(phi, orders[1], c22, kmax, dps, tuple(points))
        return mehler_sum(ca, na, cb, nb, c11, c22, c12)


def mehler_sum(ca, na, cb, nb, c11, c22, c12) -> float:
    """Σ ρ^k c_k d_k of Hermite coefficients c_k = <f(√c11 t) h_k(t)>, d_k = <g(√c22 t) h_k(t)> with <f²> = na,
    <g²> = nb (:func:`hermite_coefficients`): <f(u) g(v)>, stopped when the Cauchy–Schwarz bound on the rest is
    below 1e-18 of √(na nb); ValueError if the coefficients run out first."""
    rho = mp.mpf(c12) / mp.sqrt(mp.mpf(c11) * mp.mpf(c22))
    if na == 0 or nb == 0:  # f or g vanishes (φ'' of a linear φ)
        return 0.0
    total, ta, tb, pw = mp.mpf(0), na, nb, mp.mpf(1)
    for k in range(min(len(ca), len(cb))):
        total += pw * ca[k] * cb[k]
        ta, tb, pw = ta - ca[k] ** 2, tb - cb[k] ** 2, pw * rho
        if abs(pw) * mp.sqrt(abs(ta * tb)) < mp.mpf(10) ** -18 * mp.sqrt(na * nb):
            return float(total)
    raise ValueError(f"Mehler reference not converged in {len(ca)} terms (rho={float(rho)}, c11={c11}, c22={c22})")


def near_collinear_supported(phi, orders) -> bool:
    """Whether :func:`near_collinear_reference` applies: every φ^(o) continuous (a jump of φ^(o) puts a δ into
    φ^(o+1), which SymPy's derivative of a Piecewise drops: ELU'' at ρ = 1 - 1e-12 came out 5.6e-13 off) and
    φ^(o+1) not a distribution."""
    nl = get_phi(phi)
    for o in orders:
        if nl.derivative(o + 1).has(sp.DiracDelta):
            return False
        f = mp_function(nl, o)
        with mp.workdps(DPS):
            h = mp.mpf(10) ** -20
            if any(abs(f(mp.mpf(p) - h) - f(mp.mpf(p) + h)) > mp.mpf(10) ** -12
                   for p in nl.kinks(o)):
                return False
    return True


def near_collinear_reference(phi, c11: float, c22: float, c12: float, orders=(0, 0), dps: int = DPS,
                             points=(0,)) -> float:
    """<φ^(o1)(u) φ^(o2)(v)> at |ρ| = 1 - ε, ε <= 1e-8, by Price's theorem from ρ = ±1:
    E(c12) = E(c*) + (c12 - c*) <φ^(o1+1)(u) φ^(o2+1)(v)>(c*), c* = ±√(c11 c22) (two 1-D integrals); the
    remainder is O((c12 - c*)^2 <φ^(o1+2)φ^(o2+2)>) for smooth φ^(o+1), O(|c12 - c*| √ε) for a kink of
    φ^(o+1); ValueError if φ^(o+1) is a distribution (a step of φ^(o): the O(√ε) term is not small)."""
    if not near_collinear_supported(phi, orders):
        raise ValueError(f"near_collinear_reference needs phi^(o) continuous and phi^(o+1) a function, orders {orders}")
    with mp.workdps(dps):
        c11, c22, c12 = mp.mpf(c11), mp.mpf(c22), mp.mpf(c12)
        edge = mp.sign(c12) * mp.sqrt(c11 * c22)
        if 1 - abs(c12 / edge) > mp.mpf(10) ** -8:
            raise ValueError("near_collinear_reference needs 1 - |rho| <= 1e-8")
        e0, e1 = (pair_reference(phi, float(c11), float(c22), float(edge), (orders[0] + d, orders[1] + d), dps,
                                 tuple(points)) for d in (0, 1))
        return float(mp.mpf(e0) + (c12 - edge) * mp.mpf(e1))

"""Two-point Gaussian expectations at any scale by graded composite Gauss–Kronrod panels.

    E = <φ^(o1)(u) φ^(o2)(v)>,  (u, v) ~ N(0, [[c11, c12], [c12, c22]]),
      = ∫ du N(u; 0, c11) φ^(o1)(u) H(u),   H(u) = ∫ dv N(v; r u, s²) φ^(o2)(v),
        r = c12/c11,  s² = (c11 c22 - c12²)/c11  (guarded: a Gram excess within rounding counts as 0),

each one-dimensional integral over [m - ZMAX s, m + ZMAX s] (Gaussian mass outside < 1e-18) split into
panels at (i) the Gaussian's own scale points m + τ s (τ in TAUS), (ii) every feature p of φ^(o)
(``Nonlinearity.features``: kinks, the origin, zeros of linear function arguments) and the graded points
p ± w 2^j, j = 0, 1, ... (w the feature's width), and (iii) for the outer integral the features of
φ^(o2) mapped to u = p/r, with width max(w, s/8)/|r| (H has its features there, smoothed over s/|r|), or
min(w, s/8)/|r| for a kink of φ^(o2) (H turns on the scale s/|r| there, which near ρ = ±1 is far below w:
ReLU at ρ = 0.999 had an error estimate of 3e-6 of the scale and was refused, now 4e-12).
So every panel sees a piece of φ that is analytic on the panel's own scale (tanh → sign at large
variance, kinks, softplus with β = 20, the narrow inner Gaussian near ρ = ±1): the number of panels
grows only like log2(√variance / w), not like √variance, and ρ = ±1 (s = 0) is the 1-D integral
∫ N(u) φ^(o1)(u) φ^(o2)(r u) du.  Each panel is integrated with the 15-point Kronrod rule; the error
estimate is |K15 - G7| summed over panels (the embedded 7-point Gauss rule: an upper estimate, K15's own
error is far smaller) plus ROUNDING Σ|w f| (double rounding), the inner errors weighted into the outer one.

The breakpoints come from one compiled, φ-independent routine (:func:`breakpoints`); φ is evaluated on all
nodes of a pair at once by its vectorised NumPy form (``Nonlinearity.numeric_function``), so nothing is
compiled per φ.
"""
from __future__ import annotations

import numpy as np
import sympy as sp
from numba import njit

from .registry import get_phi

#: Gauss–Kronrod 7/15 (QUADPACK's qk15): nodes x ≥ 0 (descending), Kronrod weights, weights of the 7-point
#: Gauss rule on the odd-indexed nodes; K15 integrates degree 22 exactly (tests/test_expectations_grid.py)
KRONROD_X = (0.991455371120812639206854697526329, 0.949107912342758524526189684047851,
             0.864864423359769072789712788640926, 0.741531185599394439863864773280788,
             0.586087235467691130294144845693013, 0.405845151377397166906606412076961,
             0.207784955007898467600689403773245, 0.0)
KRONROD_W = (0.022935322010529224963732008058970, 0.063092092629978553290700663189204,
             0.104790010322250183839876322541518, 0.140653259715525918745189590510238,
             0.169004726639267902826583426598550, 0.190350578064785409913256402421014,
             0.204432940075298892414161999234649, 0.209482141084727828012999174891714)
GAUSS_W = (0.129484966168869693270611432679082, 0.279705391489276667901467771423780,
           0.381830050505118944950369775488975, 0.417959183673469387755102040816327)
#: half-width of the integration range in standard deviations
ZMAX = 9.0
#: breakpoints of the Gaussian's own scale, in standard deviations from its mean
TAUS = (-6.0, -4.0, -2.5, -1.25, 0.0, 1.25, 2.5, 4.0, 6.0)
#: graded points p ± w 2^j per feature and side, j < LEVELS (w 2^LEVELS >> any supported scale)
LEVELS = 80
#: largest variance accepted (w 2^LEVELS covers ZMAX √ of it)
MAX_VARIANCE = 1e30
#: rounding in the error estimate, relative to Σ|w f| of the panels' nodes
ROUNDING = 16 * np.finfo(float).eps
#: a Gram excess c11 c22 - c12² below COLLINEAR c11 c22 (1 - |ρ| < 3.6e-15, a few ulps) is rounding: ρ = ±1,
#: the 1-D integral (symfield.gauss.reference.COLLINEAR_EPS the same); the exact value there differs by
#: O(√(1 - ρ²)) < 1e-7 of the scale for a step in φ^(o), O(1 - ρ²) for continuous φ^(o)
COLLINEAR = 2.0 ** -47
#: |ρ| may exceed 1 by this much (rounding) before the covariance counts as invalid
RHO_TOL = 1e-10



@njit(cache=True)
def breakpoints(lo, hi, m, s, pts, ws, out, count):
    """Row i of ``out``: sorted breakpoints of [lo[i], hi[i]]: the ends, m[i] + s[i] TAUS, each feature
    pts[k] and pts[k] ± ws[k] 2^j inside; their number in count[i]."""
    taus = np.array(TAUS)
    for i in range(lo.shape[0]):
        row = out[i]
        row[0] = lo[i]
        row[1] = hi[i]
        n = 2
        for t in taus:
            z = m[i] + s[i] * t
            if lo[i] < z < hi[i]:
                row[n] = z
                n += 1
        for k in range(pts.shape[0]):
            p = pts[k]
            h = ws[k]
            if lo[i] < p < hi[i]:
                row[n] = p
                n += 1
            for _ in range(LEVELS):
                if not (p - h > lo[i] or p + h < hi[i]):
                    break
                if lo[i] < p - h < hi[i]:
                    row[n] = p - h
                    n += 1
                if lo[i] < p + h < hi[i]:
                    row[n] = p + h
                    n += 1
                h *= 2.0
        for a in range(1, n):  # insertion sort of a few hundred points
            v = row[a]
            b = a - 1
            while b >= 0 and row[b] > v:
                row[b + 1] = row[b]
                b -= 1
            row[b + 1] = v
        count[i] = n


def _rule(m, s, pts, ws):
    """Panel nodes of ∫ N(z; m_i, s_i²) (·) dz for each row i (s_i > 0): (z, Kronrod weights, Gauss weights)
    as (panels, 15) arrays with the Gaussian density folded in, and the row of every panel."""
    m, s = np.atleast_1d(m).astype(float), np.atleast_1d(s).astype(float)
    m, s = np.broadcast_arrays(m, s)
    width = 2 + len(TAUS) + len(pts) * (1 + 2 * LEVELS)
    out = np.empty((m.size, width))
    count = np.empty(m.size, dtype=np.int64)
    breakpoints(m - ZMAX * s, m + ZMAX * s, np.ascontiguousarray(m), np.ascontiguousarray(s),
                np.asarray(pts, float), np.asarray(ws, float), out, count)
    col = np.arange(width - 1)
    valid = col[None, :] < (count - 1)[:, None]
    a, b = out[:, :-1], out[:, 1:]
    valid &= b > a
    rows = np.nonzero(valid)[0]
    a, b = a[valid], b[valid]
    xk, wk, wg = _kronrod()
    # nodes in the standardised t = (z - m)/s: computing t from z loses digits when s << |m| (an inner Gaussian
    # near ρ = ±1); panels sharing an end share its t, so they still tile the line
    mr, sr = m[rows, None], s[rows, None]
    ta, tb = (a[:, None] - mr) / sr, (b[:, None] - mr) / sr
    t = (ta + tb) / 2 + (tb - ta) / 2 * xk
    dens = (tb - ta) / 2 * np.exp(-0.5 * t * t) / np.sqrt(2 * np.pi)
    return mr + sr * t, wk * dens, wg * dens, rows


def _by_row(values, rows, n):
    return np.bincount(rows, weights=values, minlength=n)


def _gauss1(f, m, s, pts, ws):
    """(<f(z)>, error estimate, evaluations) for z ~ N(m_i, s_i²), rows i (s_i > 0)."""
    z, wk, wg, rows = _rule(m, s, pts, ws)
    fz = f(z)
    kr, ga = np.sum(wk * fz, axis=1), np.sum(wg * fz, axis=1)
    err = np.abs(kr - ga) + ROUNDING * np.sum(np.abs(wk * fz), axis=1)
    n = np.size(m)
    return _by_row(kr, rows, n), _by_row(err, rows, n), _by_row(np.full(rows.size, 15.0), rows, n)


def _pair_one(phi, o1, o2, c11, c22, c12):
    """(E, error estimate, evaluations) for one valid covariance with c11, c22 > 0."""
    f1, f2 = phi.numeric_function(o1), phi.numeric_function(o2)
    p1, w1 = _features(phi, o1)
    p2, w2 = _features(phi, o2)
    excess = c11 * c22 - c12 * c12
    if excess <= COLLINEAR * c11 * c22:  # rounding of a collinear pair (c12 = ±√(c11 c22) in doubles): ρ = ±1
        excess = 0.0
    r, s, a = c12 / c11, np.sqrt(excess / c11), np.sqrt(c11)
    if r != 0:  # H has the features of φ^(o2) at p/r, smoothed over s/|r|; a kink of φ^(o2) rounded over s/|r|
        kink = np.isin(p2, phi.kinks(o2)) & (s > 0)
        w = np.where(kink, np.minimum(w2, s / 8), np.maximum(w2, s / 8))
        p1, w1 = np.concatenate([p1, p2 / r]), np.concatenate([w1, w / abs(r)])
    z, wk, wg, _ = _rule(0.0, a, p1, w1)
    if s == 0:
        h, eh, nh = f2(r * z), 0.0, np.ones(z.shape)
    else:
        h, eh, nh = _gauss1(f2, (r * z).ravel(), np.full(z.size, s), p2, w2)
        h, eh, nh = h.reshape(z.shape), eh.reshape(z.shape), nh.reshape(z.shape)
    fz = f1(z)
    kr, ga = np.sum(wk * fz * h, axis=1), np.sum(wg * fz * h, axis=1)
    err = np.sum(np.abs(kr - ga)) + np.sum(np.abs(wk * fz) * (eh + ROUNDING * np.abs(h)))
    return float(np.sum(kr)), float(err), int(np.sum(nh + 1))


def _kronrod() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nodes, Kronrod weights and Gauss weights (0 off the Gauss nodes) of the 7/15-point rule on [-1, 1]."""
    half = np.array(KRONROD_X)
    x = np.concatenate([half, -half[-2::-1]])
    wk = np.concatenate([KRONROD_W, KRONROD_W[-2::-1]])
    wg = np.zeros(15)
    wg[1::2] = np.concatenate([GAUSS_W, GAUSS_W[-2::-1]])
    return x, wk, wg


def _features(phi, order: int) -> tuple[np.ndarray, np.ndarray]:
    feats = phi.features(order)
    return (np.array([p for p, _ in feats], dtype=float), np.array([w for _, w in feats], dtype=float))


def pair(phi, c11, c22, c12, orders=(0, 0), counts: bool = False):
    """(<φ^(o1)(u) φ^(o2)(v)>, error estimate) for broadcastable c11, c22, c12 by graded panels
    (with ``counts``: also the number of φ evaluations spent on each).

    Raises ValueError for a negative or non-finite variance, a variance above MAX_VARIANCE, a
    covariance with |ρ| > 1 + RHO_TOL or a derivative order that is a distribution."""
    phi = get_phi(phi)
    c11, c22, c12 = np.broadcast_arrays(*(np.asarray(c, dtype=float) for c in (c11, c22, c12)))
    shape = c12.shape
    a, b, c = (np.ascontiguousarray(v, dtype=float).ravel() for v in (c11, c22, c12))
    for name, v in (("c11", a), ("c22", b), ("c12", c)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} contains NaN or inf")
    for name, v in (("c11", a), ("c22", b)):
        if np.any(v < 0):
            raise ValueError(f"variance {name} is negative: {v[v < 0][0]:.6g}")
        if np.any(v > MAX_VARIANCE):
            raise ValueError(f"variance {name} = {v.max():.6g} is above the panel rule's maximum {MAX_VARIANCE:g}")
    o1, o2 = (int(o) for o in orders)
    for o in (o1, o2):
        if phi.numeric(o).has(sp.DiracDelta):
            raise ValueError(f"derivative {o} of phi {phi.name!r} is a distribution (a kink of a lower derivative)")
    bad = (c * c > a * b * (1 + 2 * RHO_TOL)) | (((a == 0) | (b == 0)) & (c != 0))
    if bad.any():
        k = int(np.nonzero(bad)[0][0])
        raise ValueError(f"covariance is not positive semi-definite: c11={a[k]:.6g}, c22={b[k]:.6g}, c12={c[k]:.6g}")
    out, err, evals = np.empty(c.size), np.empty(c.size), np.empty(c.size, dtype=np.int64)
    for k in range(c.size):
        if a[k] == 0 or b[k] == 0:  # one of u, v is 0: φ^(o)(0) times a 1-D integral
            o_zero, o_rand, var = (o1, o2, b[k]) if a[k] == 0 else (o2, o1, a[k])
            f0 = float(phi.numeric_function(o_zero)(0.0))
            if var == 0:
                v, e, n = float(phi.numeric_function(o_rand)(0.0)), 0.0, 1
            else:
                v, e, n = (float(q[0]) for q in _gauss1(phi.numeric_function(o_rand), 0.0, np.sqrt(var),
                                                         *_features(phi, o_rand)))
            out[k], err[k], evals[k] = f0 * v, abs(f0) * e, n + 1
        else:
            out[k], err[k], evals[k] = _pair_one(phi, o1, o2, a[k], b[k], c[k])
    if counts:
        return out.reshape(shape), err.reshape(shape), evals.reshape(shape)
    return out.reshape(shape), err.reshape(shape)

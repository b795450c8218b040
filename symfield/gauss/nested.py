"""Scale-free 1- to 4-site moments by nested conditional integration on graded panels, with an error estimate.

    M_c = < Π_l f_{c,l}(z_l) >,   z = L x,  x ~ N(0, 1_m),   f_{c,l} ∈ {g_l, g_l', ½ g_l''}

(the value and Price-gradient columns of :func:`symfield.gauss.moments.moments`), L the pivoted Cholesky factor
(``moments._pivoted``; a dropped pivot is the single node x_l = 0).  The integral is nested, x_0 outermost:
given x_0 .. x_{l-1}, level l integrates over x_l ∈ [-ZMAX, ZMAX] (Gaussian mass outside < 2.3e-19) with
z_d = q_d + L_dl x_l + (inner terms), q_d = Σ_{j<l} L_dj x_j.  Its panels (:func:`level_rule`) break at

* BASE (the Gaussian's own scale) and the ends;
* every feature (p, w) of φ (``Nonlinearity.features`` of φ, φ', φ'': kinks, the origin, zeros of linear
  arguments) for each site d ≥ l with L_dl ≠ 0, at x_l = (p - q_d)/L_dl, graded geometrically
  x_l ± W 2^j up to GRADE_MAX: W = w/L_ll for the level's own site (its factor is φ(q_l + L_ll x_l): the feature
  has width w/L_ll in x_l), and for an inner site W = max(w, s/8)/|L_dl| (min for a kink), s = the residual
  standard deviation of z_d given x_0 .. x_l (the inner integral smooths the feature over s) — as in
  :mod:`symfield.gauss.panels` for two sites.

So a level has O(log(L_ll/w)) panels: the node count grows like log σ per level, not σ, and the integrand is
always resolved on its own scale (no rescaling of a fixed grid).  Each panel carries the 7/15-point
Gauss–Kronrod pair of :mod:`symfield.gauss.panels`; the error estimate of a level is |K - G| of the level
plus the inner levels' estimates weighted by |K weight · factor| plus ROUNDING of Σ|w f| (the nested form of
``panels._pair_one``).  The absolute moment A_c = <|Π f|> comes with it (the scale of the tolerance).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .panels import ROUNDING, ZMAX, _kronrod

#: breakpoints of the Gaussian's own scale in x (standard deviations); with the ends ±ZMAX eight panels (four,
#: (-4, 0, 4), are as accurate but their |K15 - G7| estimate reaches 2e-5 of <|f|> at variance 1e-6)
BASE = (-6.0, -3.5, -1.75, 0.0, 1.75, 3.5, 6.0)
#: features are graded from their width W up to this width (in x); a smooth feature with W >= GRADE_MAX adds
#: no breakpoint (the base panels resolve it)
GRADE_MAX = 1.0
#: graded points per feature and side are at most this many (W 2^GRADE_LEVELS >= GRADE_MAX down to W ~ 1e-19:
#: variances up to panels.MAX_VARIANCE = 1e30 for the narrowest registered feature)
GRADE_LEVELS = 64


def column_kinds(m: int) -> np.ndarray:
    """(columns, m) factor kinds of the moment columns (value, then (i, j), i <= j, as ``moments.pair_columns``):
    0 = g, 1 = g', 2 = ½ g''."""
    cols = [(i, j) for i in range(m) for j in range(i, m)]
    kind = np.zeros((1 + len(cols), m), np.int64)
    for c, (i, j) in enumerate(cols):
        if i == j:
            kind[1 + c, i] = 2
        else:
            kind[1 + c, i] = kind[1 + c, j] = 1
    return kind


def max_breaks(m: int, features: int) -> int:
    """Size of a level's breakpoint buffer: the ends, BASE, and per site and feature the point and its grading."""
    return 2 + len(BASE) + m * features * (1 + 2 * GRADE_LEVELS)


@njit(cache=True)
def level_rule(l, L, S, q, fp, fw, fkink, base, gmax, xk, wk, wg, brk, cen, wid, X, WK, WG):
    """Nodes X, Kronrod weights WK and Gauss weights WG (Gaussian density folded in) of level l given the
    partial sums q[d] = Σ_{j<l} L[d, j] x_j; returns their number.  ``S[d, l]``: residual standard deviation of
    z_d given x_0 .. x_l.  A dropped pivot (L[l, l] = 0): the single node x_l = 0."""
    m = L.shape[0]
    if L[l, l] == 0.0:
        X[0] = 0.0
        WK[0] = 1.0
        WG[0] = 1.0
        return 1
    n = 0
    brk[n] = -ZMAX
    brk[n + 1] = ZMAX
    n += 2
    for t in base:
        brk[n] = t
        n += 1
    nc = 0  # feature centres and widths in x_l; coincident centres (identical or antipodal sites) merged
    for d in range(l, m):
        a = L[d, l]
        if a == 0.0:
            continue
        s = S[d, l]
        for f in range(fp.shape[0]):
            if d == l or s == 0.0:
                w = fw[f]
            elif fkink[f]:
                w = min(fw[f], s / 8.0)
            else:
                w = max(fw[f], s / 8.0)
            w /= abs(a)
            if w >= gmax and not fkink[f]:
                continue
            c = (fp[f] - q[d]) / a
            for j in range(nc):
                if abs(cen[j] - c) <= 1e-12 * (1.0 + abs(c)):
                    wid[j] = min(wid[j], w)
                    break
            else:
                cen[nc] = c
                wid[nc] = w
                nc += 1
    for j in range(nc):
        c = cen[j]
        if -ZMAX < c < ZMAX:
            brk[n] = c
            n += 1
        h = wid[j]
        for _ in range(GRADE_LEVELS):
            if h >= gmax or not (c - h > -ZMAX or c + h < ZMAX):
                break
            if -ZMAX < c - h < ZMAX:
                brk[n] = c - h
                n += 1
            if -ZMAX < c + h < ZMAX:
                brk[n] = c + h
                n += 1
            h *= 2.0
    brk[:n].sort()
    k = 0
    norm = 1.0 / np.sqrt(2.0 * np.pi)
    for i in range(n - 1):
        lo, hi = brk[i], brk[i + 1]
        if hi <= lo:
            continue
        mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo)
        for r in range(xk.shape[0]):
            t = mid + half * xk[r]
            dens = half * norm * np.exp(-0.5 * t * t)
            X[k] = t
            WK[k] = wk[r] * dens
            WG[k] = wg[r] * dens
            k += 1
    return k


#: the φ-specific kernel, a template of the generated moments module (it calls that module's ``site``)
KERNEL = '''
@njit(cache=True, error_model="numpy", parallel=True)
def nested(L, S, kk, kind, fp, fw, fkink, base, gmax, xk, wk, wg, nbrk, out, err, absval, leaves):
    """Nested graded-panel moments of every covariance b (symfield.gauss.nested): out, err, absval (B, columns)."""
    B, m, ncol = L.shape[0], L.shape[1], kind.shape[0]
    maxn = (nbrk - 1) * xk.shape[0]
    for b in prange(B):
        X = np.empty((m, maxn))
        WK = np.empty((m, maxn))
        WG = np.empty((m, maxn))
        brk = np.empty(nbrk)
        cen = np.empty(m * fp.shape[0])
        wid = np.empty(m * fp.shape[0])
        n = np.zeros(m, np.int64)
        idx = np.zeros(m, np.int64)
        Q = np.zeros((m + 1, m))
        F = np.zeros((m, ncol))
        aK = np.zeros((m, ncol))
        aG = np.zeros((m, ncol))
        aE = np.zeros((m, ncol))
        aA = np.zeros((m, ncol))
        count = 0
        lev = 0
        n[0] = level_rule(0, L[b], S[b], Q[0], fp, fw, fkink, base, gmax, xk, wk, wg, brk, cen, wid, X[0], WK[0], WG[0])
        while True:
            i = idx[lev]
            if i < n[lev]:
                xv = X[lev, i]
                g, d, e = site(Q[lev, lev] + L[b, lev, lev] * xv, kk[b, lev])
                for c in range(ncol):
                    F[lev, c] = g if kind[c, lev] == 0 else (d if kind[c, lev] == 1 else 0.5 * e)
                if lev == m - 1:
                    w1, w2 = WK[lev, i], WG[lev, i]
                    for c in range(ncol):
                        v = F[lev, c]
                        aK[lev, c] += w1 * v
                        aG[lev, c] += w2 * v
                        aA[lev, c] += abs(w1 * v)
                    count += 1
                    idx[lev] = i + 1
                else:
                    for r in range(lev + 1, m):
                        Q[lev + 1, r] = Q[lev, r] + L[b, r, lev] * xv
                    lev += 1
                    idx[lev] = 0
                    for c in range(ncol):
                        aK[lev, c] = 0.0
                        aG[lev, c] = 0.0
                        aE[lev, c] = 0.0
                        aA[lev, c] = 0.0
                    n[lev] = level_rule(lev, L[b], S[b], Q[lev], fp, fw, fkink, base, gmax, xk, wk, wg, brk, cen, wid,
                                        X[lev], WK[lev], WG[lev])
            else:
                if lev == 0:
                    break
                p = lev - 1
                j = idx[p]
                w1, w2 = WK[p, j], WG[p, j]
                for c in range(ncol):
                    inner = aK[lev, c]
                    ie = abs(aK[lev, c] - aG[lev, c]) + aE[lev, c] + ROUNDING * aA[lev, c]
                    f = F[p, c]
                    aK[p, c] += w1 * f * inner
                    aG[p, c] += w2 * f * inner
                    aE[p, c] += abs(w1 * f) * ie
                    aA[p, c] += abs(w1 * f) * aA[lev, c]
                idx[p] = j + 1
                lev = p
        for c in range(ncol):
            out[b, c] = aK[0, c]
            err[b, c] = abs(aK[0, c] - aG[0, c]) + aE[0, c] + ROUNDING * aA[0, c]
            absval[b, c] = aA[0, c]
        leaves[b] = count
'''

IMPORTS = "from symfield.gauss.nested import level_rule\nfrom symfield.gauss.panels import ROUNDING\n"


def rule() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-panel rule on [-1, 1]: the Gauss–Kronrod 7/15 nodes, Kronrod weights and embedded Gauss weights
    (0 off the Gauss nodes) of :mod:`symfield.gauss.panels` (a 3/7 pair was tried: its |K7 - G3| estimate is
    ~1e5 times the actual error, so certifying 1e-6 took more nodes)."""
    return _kronrod()


@njit(cache=True)
def predicted_leaves(L, S, fp, fw, fkink, base, gmax, xk, nbrk):
    """Leaf evaluations of :data:`KERNEL` predicted per covariance: the product over levels of the level's node
    count at x = 0 (where the features of every site are: the largest count), before integrating."""
    B, m = L.shape[0], L.shape[1]
    out = np.ones(B)
    maxn = (nbrk - 1) * xk.shape[0]
    brk, cen, wid = np.empty(nbrk), np.empty(m * fp.shape[0]), np.empty(m * fp.shape[0])
    X, WK, WG, q = np.empty(maxn), np.empty(maxn), np.empty(maxn), np.zeros(m)
    for b in range(B):
        for l in range(m):
            out[b] *= level_rule(l, L[b], S[b], q, fp, fw, fkink, base, gmax, xk, xk, xk, brk, cen, wid, X, WK, WG)
    return out

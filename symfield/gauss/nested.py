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
Gauss–Kronrod pair of :mod:`symfield.gauss.panels`; the error estimate of a level is the sum over its panels of
the sharpened |K - G| (:func:`sharpened`: min(d, asc (d/asc)^1.5), asc the panel's variation Σ w|f - mean f|) plus
the inner levels' estimates weighted by |K weight · factor| plus ROUNDING of Σ|w f|.  The absolute moment A_c = <|Π f|> comes with it (the scale of the tolerance).
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .panels import ROUNDING, ZMAX, _kronrod

#: breakpoints of the Gaussian's own scale in x (standard deviations); with the ends ±ZMAX eight panels (four,
#: (-4, 0, 4), are as accurate but their |K15 - G7| estimate reaches 2e-5 of <|f|> at variance 1e-6)
BASE = (-6.0, -3.5, -1.75, 0.0, 1.75, 3.5, 6.0)
#: features are graded from their width W up to this width (in x); a smooth feature with W >= GRADE_MAX adds
#: no breakpoint (the base panels resolve it).  2, not 1: with 1 the first base panel after the grading spanned
#: z ≈ 4 ... 18 of a Gaussian-decaying φ''(z) (GELU at variance 100), where G7 is poor and |K15 - G7| overstated the
#: error 1e4-fold (docs/reliability.md); 2 costs ~20 % more nodes per level
GRADE_MAX = 2.0
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


#: the sharpened panel estimate: SHARPEN_SCALE and SHARPEN_POWER of :func:`sharpened`
SHARPEN_SCALE = 1.0
SHARPEN_POWER = 1.5


@njit(cache=True, inline="always")
def sharpened(d, asc, scale, power):
    """Error of a panel's Kronrod value from d = |K15 - G7| (an estimate of the Gauss rule's error, ~1e4-1e5 times
    the Kronrod one on the grids) and asc = Σ w_K |f - mean f| (the panel's variation): min(d, asc (scale d/asc)^power),
    d itself where asc = 0 (docs/reliability.md)."""
    if asc <= 0.0 or d <= 0.0:
        return d
    return min(d, asc * (scale * d / asc) ** power)


@njit(cache=True)
def panel_error(lev, pV, pW, pG, pn, aD, scale, power):
    """Close the current panel of level ``lev`` (values pV[lev, :k], Kronrod weights pW[lev, :k], Gauss sums pG[lev]):
    add :func:`sharpened` of each column to aD[lev] and reset the panel."""
    k = pn[lev]
    if k == 0:
        return
    wsum = 0.0
    for r in range(k):
        wsum += pW[lev, r]
    for c in range(aD.shape[1]):
        K = 0.0
        for r in range(k):
            K += pW[lev, r] * pV[lev, r, c]
        mean = K / wsum if wsum > 0.0 else 0.0
        asc = 0.0
        for r in range(k):
            asc += pW[lev, r] * abs(pV[lev, r, c] - mean)
        aD[lev, c] += sharpened(abs(K - pG[lev, c]), asc, scale, power)
        pG[lev, c] = 0.0
    pn[lev] = 0


#: the φ-specific kernel, a template of the generated moments module (it calls that module's ``site``)
KERNEL = '''
@njit(cache=True, error_model="numpy", parallel=True)
def nested(L, S, mu, kk, kind, fp, fw, fkink, base, gmax, xk, wk, wg, nbrk, tab, tbrk, tnb, tval, tabs, tperr, out, err,
           absval, leaves):
    """Nested graded-panel moments of every covariance b (symfield.gauss.nested): out, err, absval (B, columns),
    z = mu[b] + L[b] x; ``tab``: the innermost level from the tables of ``nested_table``
    (symfield.gauss.nested.tabulated_level)."""
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
        aE = np.zeros((m, ncol))
        aA = np.zeros((m, ncol))
        V = np.zeros(9)
        nk = xk.shape[0]
        pV = np.zeros((m, nk, ncol))  # the current panel of each level: integrand values, Kronrod weights, Gauss sum
        pW = np.zeros((m, nk))
        pG = np.zeros((m, ncol))
        pn = np.zeros(m, np.int64)
        aD = np.zeros((m, ncol))      # Σ over the level's finished panels of their sharpened |K - G| (panel_error)
        count = 0
        lev = 0
        for r in range(m):
            Q[0, r] = mu[b, r]
        n[0] = level_rule(0, L[b], S[b], Q[0], fp, fw, fkink, base, gmax, xk, wk, wg, brk, cen, wid, X[0], WK[0], WG[0])
        while True:
            i = idx[lev]
            if i < n[lev]:
                xv = X[lev, i]
                g, d, e = site(Q[lev, lev] + L[b, lev, lev] * xv, kk[b, lev])
                for c in range(ncol):
                    F[lev, c] = g if kind[c, lev] == 0 else (d if kind[c, lev] == 1 else 0.5 * e)
                if tab and lev == m - 2:  # the innermost level from its table (tabulated_level)
                    zl = Q[lev, m - 1] + L[b, m - 1, lev] * xv
                    if L[b, m - 1, m - 1] == 0.0:  # a dropped pivot: z fixed by the outer levels
                        g, d, e = site(zl, kk[b, m - 1])
                        V[0], V[1], V[2] = g, d, 0.5 * e
                        for j in range(3):
                            V[3 + j] = abs(V[j])
                            V[6 + j] = 0.0
                    else:
                        table_interpolate(zl, tbrk[b], tnb[b], tval[b], tabs[b], tperr[b], V)
                    w1, w2 = WK[lev, i], WG[lev, i]
                    r = pn[lev]
                    pW[lev, r] = w1
                    for c in range(ncol):
                        f = F[lev, c]
                        j = kind[c, m - 1]
                        aK[lev, c] += w1 * f * V[j]
                        pV[lev, r, c] = f * V[j]
                        pG[lev, c] += w2 * f * V[j]
                        aE[lev, c] += abs(w1 * f) * V[6 + j]
                        aA[lev, c] += abs(w1 * f) * V[3 + j]
                    pn[lev] = r + 1
                    if r + 1 == nk:
                        panel_error(lev, pV, pW, pG, pn, aD, SHARPEN_)
                    count += 1
                    idx[lev] = i + 1
                elif lev == m - 1:
                    w1, w2 = WK[lev, i], WG[lev, i]
                    r = pn[lev]
                    pW[lev, r] = w1
                    for c in range(ncol):
                        v = F[lev, c]
                        aK[lev, c] += w1 * v
                        pV[lev, r, c] = v
                        pG[lev, c] += w2 * v
                        aA[lev, c] += abs(w1 * v)
                    pn[lev] = r + 1
                    if r + 1 == nk:
                        panel_error(lev, pV, pW, pG, pn, aD, SHARPEN_)
                    count += 1
                    idx[lev] = i + 1
                else:
                    for r in range(lev + 1, m):
                        Q[lev + 1, r] = Q[lev, r] + L[b, r, lev] * xv
                    lev += 1
                    idx[lev] = 0
                    pn[lev] = 0
                    for c in range(ncol):
                        aK[lev, c] = 0.0
                        pG[lev, c] = 0.0
                        aD[lev, c] = 0.0
                        aE[lev, c] = 0.0
                        aA[lev, c] = 0.0
                    n[lev] = level_rule(lev, L[b], S[b], Q[lev], fp, fw, fkink, base, gmax, xk, wk, wg, brk, cen, wid,
                                        X[lev], WK[lev], WG[lev])
            else:
                panel_error(lev, pV, pW, pG, pn, aD, SHARPEN_)  # the level's last (or single-node) panel
                if lev == 0:
                    break
                p = lev - 1
                j = idx[p]
                w1, w2 = WK[p, j], WG[p, j]
                r = pn[p]
                pW[p, r] = w1
                for c in range(ncol):
                    inner = aK[lev, c]
                    ie = aD[lev, c] + aE[lev, c] + ROUNDING * aA[lev, c]
                    f = F[p, c]
                    aK[p, c] += w1 * f * inner
                    pV[p, r, c] = f * inner
                    pG[p, c] += w2 * f * inner
                    aE[p, c] += abs(w1 * f) * ie
                    aA[p, c] += abs(w1 * f) * aA[lev, c]
                pn[p] = r + 1
                if r + 1 == nk:
                    panel_error(p, pV, pW, pG, pn, aD, SHARPEN_)
                idx[p] = j + 1
                lev = p
        for c in range(ncol):
            out[b, c] = aK[0, c]
            err[b, c] = aD[0, c] + aE[0, c] + ROUNDING * aA[0, c]
            absval[b, c] = aA[0, c]
        leaves[b] = count


@njit(cache=True, error_model="numpy", parallel=True)
def nested_table(L, S, kk, fp, fw, fkink, base, gmax, xk, wk, wg, nbrk, tz, tval, tabs, terr):
    """Innermost level m - 1 at z = tz[b, t] + L[b, m-1, m-1] x: tval[b, t, j] = <f_j>, tabs <|f_j|>, terr
    |K15 - G7| + rounding (f_0, f_1, f_2 = g, g', ½g'' of the site; symfield.gauss.nested.tabulated_level)."""
    B, m = L.shape[0], L.shape[1]
    maxn = (nbrk - 1) * xk.shape[0]
    for b in prange(B):
        X, WK, WG = np.empty(maxn), np.empty(maxn), np.empty(maxn)
        brk, cen, wid = np.empty(nbrk), np.empty(m * fp.shape[0]), np.empty(m * fp.shape[0])
        q = np.zeros(m)
        nk = xk.shape[0]
        pV, pW, pG, pn, aD = np.zeros((1, nk, 3)), np.zeros((1, nk)), np.zeros((1, 3)), np.zeros(1, np.int64), np.zeros((1, 3))
        for t in range(tz.shape[1]):
            q[m - 1] = tz[b, t]
            n = level_rule(m - 1, L[b], S[b], q, fp, fw, fkink, base, gmax, xk, wk, wg, brk, cen, wid, X, WK, WG)
            K, A = np.zeros(3), np.zeros(3)
            aD[0, :] = 0.0
            for i in range(n):
                g, d, e = site(q[m - 1] + L[b, m - 1, m - 1] * X[i], kk[b, m - 1])
                r = pn[0]
                pW[0, r] = WK[i]
                for j in range(3):
                    f = g if j == 0 else (d if j == 1 else 0.5 * e)
                    K[j] += WK[i] * f
                    pV[0, r, j] = f
                    pG[0, j] += WG[i] * f
                    A[j] += abs(WK[i] * f)
                pn[0] = r + 1
                if r + 1 == nk:
                    panel_error(0, pV, pW, pG, pn, aD, SHARPEN_)
            panel_error(0, pV, pW, pG, pn, aD, SHARPEN_)
            for j in range(3):
                tval[b, t, j] = K[j]
                tabs[b, t, j] = A[j]
                terr[b, t, j] = aD[0, j] + ROUNDING * A[j]
'''

KERNEL = KERNEL.replace("SHARPEN_", f"{SHARPEN_SCALE!r}, {SHARPEN_POWER!r}")  # in the text: a change recompiles
IMPORTS = "from symfield.gauss.nested import level_rule, panel_error, table_interpolate\nfrom symfield.gauss.panels import ROUNDING\n"


def rule() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The per-panel rule on [-1, 1]: the Gauss–Kronrod 7/15 nodes, Kronrod weights and embedded Gauss weights
    (0 off the Gauss nodes) of :mod:`symfield.gauss.panels` (a 3/7 pair was tried: its |K7 - G3| estimate is
    ~1e5 times the actual error, so certifying 1e-6 took more nodes; for hardtanh at four sites it cut the leaves
    tenfold with an actual error of 1e-9 but reported 2.4e-4)."""
    return _kronrod()


@njit(cache=True)
def predicted_leaves(L, S, fp, fw, fkink, base, gmax, xk, nbrk, tab=False, mu=None):
    """Leaf evaluations of :data:`KERNEL` predicted per covariance: the product over levels of the level's node
    count at x = 0 (z = mu: where the features of every site are for a zero mean, the largest count), before
    integrating; ``tab``: without the innermost level (a table lookup per leaf, :func:`tabulated_level`)."""
    B, m = L.shape[0], L.shape[1]
    out = np.ones(B)
    maxn = (nbrk - 1) * xk.shape[0]
    brk, cen, wid = np.empty(nbrk), np.empty(m * fp.shape[0]), np.empty(m * fp.shape[0])
    X, WK, WG = np.empty(maxn), np.empty(maxn), np.empty(maxn)
    for b in range(B):
        q = np.zeros(m) if mu is None else mu[b].copy()
        for l in range(m - 1 if tab else m):
            out[b] *= level_rule(l, L[b], S[b], q, fp, fw, fkink, base, gmax, xk, xk, xk, brk, cen, wid, X, WK, WG)
    return out


# ---------------------------------------------------------------------------- the innermost level as a table
#: Chebyshev points (first kind) per panel of the innermost-level table
TABLE_POINTS = 16
#: a panel's interpolation error is estimated as TABLE_SAFETY times the largest deviation of the interpolant from the
#: integral at the panel's check points (the TABLE_POINTS - 1 interior extrema of T_n, where the error peaks)
TABLE_SAFETY = 4.0


def chebyshev(n: int = TABLE_POINTS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(nodes t_i = cos((2i+1)π/2n), barycentric weights (-1)^i sin((2i+1)π/2n), check points cos(kπ/n), 0 < k < n)
    on [-1, 1]."""
    a = (2 * np.arange(n) + 1) * np.pi / (2 * n)
    return np.cos(a), (-1.0) ** np.arange(n) * np.sin(a), np.cos(np.arange(1, n) * np.pi / n)


_NODES, _WEIGHTS, _ = chebyshev()


def table_breaks(a: float, reach: float, fp, fw, fkink, center: float = 0.0) -> np.ndarray:
    """Panels of the table of H_j(q) = <f_j(q + a x)> over |q - center| <= reach: the ends, and for each feature
    (p, w) of the site p and p ± h 2^j inside, h = max(w, a) (a kink: a; H is f smoothed over a), so every panel
    sees H analytic on the panel's own scale."""
    reach = max(reach, a, 1e-300)
    lo, hi = center - reach, center + reach
    pts = {lo, hi}
    for p, w, kink in zip(fp, fw, fkink):
        h = (a if a > 0 else w) if kink else max(w, a)
        if lo < p < hi:
            pts.add(float(p))
        while h < 2 * reach:
            pts.update(v for v in (p - h, p + h) if lo < v < hi)
            h *= 2.0
    return np.array(sorted(pts))


@njit(cache=True)
def table_interpolate(z, brk, nb, tval, tabs, tperr, V):
    """V[0:3] = H_j(z), V[3:6] = the tabulated <|f_j|>, V[6:9] = the panel's error estimate, by barycentric
    Chebyshev interpolation on the panel of ``brk[:nb]`` holding z (:func:`tabulated_level`)."""
    n = TABLE_POINTS
    p = np.searchsorted(brk[:nb], z) - 1
    p = min(max(p, 0), nb - 2)
    mid, half = 0.5 * (brk[p] + brk[p + 1]), 0.5 * (brk[p + 1] - brk[p])
    t = (z - mid) / half
    for j in range(6):
        V[j] = 0.0
    den = 0.0
    for i in range(n):
        dt = t - _NODES[i]
        r = p * n + i
        if dt == 0.0:
            for j in range(3):
                V[j], V[3 + j] = tval[r, j], tabs[r, j]
            den = 1.0
            break
        s = _WEIGHTS[i] / dt
        den += s
        for j in range(3):
            V[j] += s * tval[r, j]
            V[3 + j] += s * tabs[r, j]
    else:
        for j in range(6):
            V[j] /= den
    for j in range(3):
        V[3 + j] = max(V[3 + j], abs(V[j]))
        V[6 + j] = tperr[p, j]


def tabulated_level(module, Lp, S, kp, fp, fw, fkink, base, grade_max, xk, wk, wg, nbrk, mu=None):
    """Tables of the innermost level m - 1 of every covariance (pivot order): H_j(q) = <f_j(q + L_{m-1,m-1} x)>
    (f_j = g, g', ½g'' of the site), on the panels of :func:`table_breaks` over the reach
    |q - mu_{m-1}| <= ZMAX Σ_{l<m-1} |L_{m-1,l}| of the outer levels (``mu``: the means of z, default 0),
    TABLE_POINTS Chebyshev points each, by the level's own
    graded rule (``module.nested_table``).  Error per panel and j: TABLE_SAFETY · max |interpolant - integral| at
    the check points plus the largest quadrature estimate of the panel's values.
    Returns (tbrk, tnb, tval, tabs, tperr, table evaluations) for the kernel ``nested(..., tab=True, ...)``."""
    B, m = Lp.shape[:2]
    nodes, weights, checks = chebyshev()
    n, nc = len(nodes), len(checks)
    breaks = [table_breaks(Lp[b, m - 1, m - 1], ZMAX * np.sum(np.abs(Lp[b, m - 1, :m - 1])), fp, fw, fkink,
                           0.0 if mu is None else float(mu[b, m - 1])) for b in range(B)]
    P = max(len(br) for br in breaks) - 1
    tbrk, tnb = np.zeros((B, P + 1)), np.array([len(br) for br in breaks], np.int64)
    tz = np.zeros((B, P * (n + nc)))
    for b, br in enumerate(breaks):
        tbrk[b, :len(br)] = br
        tbrk[b, len(br):] = br[-1]
        mid, half = (br[1:] + br[:-1]) / 2, (br[1:] - br[:-1]) / 2
        k = len(br) - 1
        tz[b, :k * n] = (mid[:, None] + half[:, None] * nodes).ravel()
        tz[b, P * n:P * n + k * nc] = (mid[:, None] + half[:, None] * checks).ravel()
    val, ab, qe = (np.empty((B, tz.shape[1], 3)) for _ in range(3))
    module.nested_table(Lp, S, kp, fp, fw, fkink, base, grade_max, xk, wk, wg, nbrk, tz, val, ab, qe)
    tval, tabs = np.ascontiguousarray(val[:, :P * n]), np.ascontiguousarray(ab[:, :P * n])
    # barycentric interpolation of every panel at its check points
    diff = checks[:, None] - nodes[None, :]
    bary = weights / diff
    bary /= bary.sum(axis=1, keepdims=True)                                       # (nc, n)
    at_checks = np.einsum("kn,bpnj->bpkj", bary, tval.reshape(B, P, n, 3))
    exact = val[:, P * n:].reshape(B, P, nc, 3)
    quad = np.maximum(qe[:, :P * n].reshape(B, P, n, 3).max(axis=2), qe[:, P * n:].reshape(B, P, nc, 3).max(axis=2))
    tperr = TABLE_SAFETY * np.abs(at_checks - exact).max(axis=2) + quad
    evals = float(np.sum(tnb - 1)) * (n + nc)
    return tbrk, tnb, tval, tabs, np.ascontiguousarray(tperr), evals

"""Compiled loops over pair pairs (u, v) of the one-loop vertices, without skip connections (C = D).

The pair variables u = {s, s'} and their previous sites g = s - P (theory Sec. 8.1); a pair pair
(u, v) is *related* when a previous site of u and one of v lie in blocks that exist (else
Cov(Φ_u, Φ_v) = 0 and it is skipped).  Each loop gets the previous-site 4-multiset of (u, v) by its
dense rank (:func:`multiset_rank`: r = Σ_k C(q_k + k, k + 1) of the sorted sites q_0 <= ... <= q_3)
and reads the four-point moment computed once for that multiset:

* :func:`mark_multisets`: which ranks occur;
* :func:`assemble_covariance`: K_uv = m_u m_v (<φφφφ>_uv - E_u E_v), zero for independent sites;
* :func:`weight_sharing`: t_u = Σ_v Σ_w ∂K_uv/∂C_w (J⁻¹)_wv (Price gradient of <φφφφ> and of E_u E_v
  at the previous-site pairs w);
* :func:`forward_substitute`: X ← J⁻¹ X in place for the unit lower-triangular sparse J = 1 - F'.

The numpy path of :func:`symfield.theory.one_loop._vertices` (``method="reference"``, skip
connections) computes the same sums on chunks of index arrays.
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange


def binomial_table(top: int) -> np.ndarray:
    """(4, top) int64: row k is C(a, k + 1) for a < top (the combinatorial number system of the ranks)."""
    a = np.arange(top, dtype=np.int64)
    return np.stack([a, a * (a - 1) // 2, a * (a - 1) * (a - 2) // 6, a * (a - 1) * (a - 2) * (a - 3) // 24])


@njit(cache=True, inline="always")
def _sorted4(a, b, c, d):
    if a > b:
        a, b = b, a
    if c > d:
        c, d = d, c
    if a > c:
        a, c = c, a
    if b > d:
        b, d = d, b
    if b > c:
        b, c = c, b
    return a, b, c, d


@njit(cache=True, inline="always")
def _rank(sites, u, v, binom):
    """Rank of the sorted previous-site multiset of pairs u and v."""
    q0, q1, q2, q3 = _sorted4(sites[u, 0], sites[u, 1], sites[v, 0], sites[v, 1])
    return binom[0, q0] + binom[1, q1 + 1] + binom[2, q2 + 2] + binom[3, q3 + 3]


@njit(cache=True, inline="always")
def _related(times, exists, u, v):
    for i in range(2):
        for j in range(2):
            if exists[times[u, i], times[v, j]]:
                return True
    return False


@njit(cache=True, inline="always")
def _independent(sites, Cf, u, v):
    """No previous site of u is correlated with one of v: Cov(Φ_u, Φ_v) and its within-u or within-v
    derivatives vanish exactly."""
    for i in range(2):
        for j in range(2):
            if Cf[sites[u, i], sites[v, j]] != 0.0:
                return False
    return True


@njit(cache=True, parallel=True)
def mark_multisets(sites, times, exists, binom, needed):
    """needed[r] = True for the rank r of every related pair pair u <= v."""
    n = sites.shape[0]
    for u in prange(n):
        for v in range(u, n):
            if _related(times, exists, u, v):
                needed[_rank(sites, u, v, binom)] = True


@njit(cache=True, parallel=True)
def assemble_covariance(sites, times, exists, binom, slot, E4, E2, mg2, Cf, K):
    """K_uv = K_vu = mg2_u mg2_v (E4[slot[rank(u, v)]] - E2_u E2_v) for related u <= v (K zero on entry)."""
    n = sites.shape[0]
    for u in prange(n):
        for v in range(u, n):
            if not _related(times, exists, u, v) or _independent(sites, Cf, u, v):
                continue
            val = mg2[u] * mg2[v] * (E4[slot[_rank(sites, u, v, binom)]] - E2[u] * E2[v])
            K[u, v] = val
            K[v, u] = val


@njit(cache=True, parallel=True)
def weight_sharing(sites, times, exists, binom, slot, G4, E2, D, mg2, Cf, lookup, prev, JinvT, out):
    """out[u] = Σ_v (Σ_c w G4[c] (J⁻¹)[{a_c, b_c}, v] - w Σ_i (D_u,i E2_v (J⁻¹)[prev_u,i, v] + D_v,i E2_u (J⁻¹)[prev_v,i, v]))
    over related v (both orders), w = mg2_u mg2_v, (a_c, b_c) the site pair of gradient column c (the distinct
    sites of the multiset in increasing order, columns i <= j row-major, as ``pair_columns``); for independent
    u, v only the cross entries (a in u, b in v or back).  ``JinvT`` = (J⁻¹)ᵀ: the inner loop over u reads one
    contiguous row; the v are split over blocks, each summing into its own row."""
    n = sites.shape[0]
    blocks = min(n, 64)
    part = np.zeros((blocks, n))
    for blk in prange(blocks):
        ds = np.empty(4, np.int64)
        for v in range(blk, n, blocks):
            col = JinvT[v]
            for u in range(n):
                if not _related(times, exists, u, v):
                    continue
                w = mg2[u] * mg2[v]
                q0, q1, q2, q3 = _sorted4(sites[u, 0], sites[u, 1], sites[v, 0], sites[v, 1])
                k = slot[binom[0, q0] + binom[1, q1 + 1] + binom[2, q2 + 2] + binom[3, q3 + 3]]
                m = 1
                ds[0] = q0
                for q in (q1, q2, q3):
                    if q != ds[m - 1]:
                        ds[m] = q
                        m += 1
                indep = _independent(sites, Cf, u, v)
                acc = 0.0
                c = 0
                for i in range(m):
                    for j in range(i, m):
                        a, b = ds[i], ds[j]
                        g = G4[k, c]
                        c += 1
                        if indep:
                            a_in_u = a == sites[u, 0] or a == sites[u, 1]
                            b_in_u = b == sites[u, 0] or b == sites[u, 1]
                            if a_in_u == b_in_u:
                                continue
                        x = lookup[a, b]
                        if x >= 0:
                            acc += g * col[x]
                if not indep:
                    for i in range(3):
                        x = prev[u, i]
                        if x >= 0:
                            acc -= D[u, 1 + i] * E2[v] * col[x]
                        y = prev[v, i]
                        if y >= 0:
                            acc -= D[v, 1 + i] * E2[u] * col[y]
                part[blk, u] += w * acc
    for u in range(n):
        out[u] = np.sum(part[:, u])


@njit(cache=True)
def forward_substitute(indptr, indices, data, X):
    """X ← J⁻¹ X in place for J = 1 - F', F' strictly lower triangular in CSR (indptr, indices, data):
    row i of J X = B reads X_i = B_i + Σ_k F'_ik X_k with k < i already solved."""
    n, m = X.shape
    for i in range(n):
        for p in range(indptr[i], indptr[i + 1]):
            k = indices[p]
            f = data[p]
            for j in range(m):
                X[i, j] += f * X[k, j]


@njit(cache=True)
def transpose_inplace(X):
    n = X.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            X[i, j], X[j, i] = X[j, i], X[i, j]


@njit(cache=True)
def symmetrize_inplace(X):
    """X ← (X + Xᵀ) / 2 in place."""
    n = X.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            m = 0.5 * (X[i, j] + X[j, i])
            X[i, j] = m
            X[j, i] = m

"""Moments of products of φ with their Price gradients, for the one-loop vertices.

For m ≤ 4 distinct sites with multiplicities k_i (a multiset of up to four sites),

    M(Σ) = < Π_i g_i(z_i) >,   g_i = φ^{k_i},   z ~ N(0, Σ)  (m×m),

and its gradient in the unordered covariance entries (Price's theorem, theory Sec. 5.1)

    ∂M/∂Σ_ij = < g_i' g_j' Π_{l≠i,j} g_l >   (i < j),     ∂M/∂Σ_ii = ½ < g_i'' Π_{l≠i} g_l >,

with g' = k φ^{k-1} φ' and g'' = k(k-1) φ^{k-2} φ'² + k φ^{k-1} φ''.  All 1 + m(m+1)/2 numbers
come from one tensor-product Gauss–Hermite sweep (z = L x, L the Cholesky factor), compiled per φ
into a generated module.  Output columns: value, then (i, j) for i <= j in row-major order.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..codegen import load_module, module_text, scalar_source
from ..errors import NonFiniteError, ResourceError
from .quadrature import cholesky_factors, hermite_nodes
from .registry import Nonlinearity, get_phi

#: Gauss-Hermite nodes per dimension for unit variance; the 3-site integrals carry the K' vertex and
#: need the most (erf, g = 2, C ≈ 2.6: mean shift within 0.3 % of 150/100/64/20 nodes)
DEFAULT_NODES = {1: 120, 2: 80, 3: 48, 4: 12}
#: nodes grow like the width of the integrand: n = max(NODE_MIN, ceil(NODE_SCALE sqrt(largest variance)))
NODE_SCALE = {1: 75, 2: 50, 3: 30, 4: 8}
NODE_MIN = {1: 40, 2: 24, 3: 16, 4: 8}
#: documented maximum nodes per dimension (cost nodes^m per site set; each is reached at a largest
#: variance of about 150-2800, far above inputs of ordinary size); more raises ResourceError
NODE_MAX = {1: 4000, 2: 1200, 3: 400, 4: 100}


def nodes_for(m: int, variance, argument: str = "X", polynomial: bool = False) -> np.ndarray:
    """Nodes per dimension for m-site moments whose largest variance is ``variance`` (array):
    n = max(NODE_MIN, ceil(NODE_SCALE sqrt(variance))), at most NODE_MAX (else ResourceError naming
    ``argument``, the input whose scale sets the variances).  A ``polynomial`` φ of degree d is
    integrated exactly by any n > 2d at every scale (the rescaled problem): n is capped, not refused."""
    variance = np.asarray(variance, float)
    with np.errstate(invalid="ignore"):  # a negative variance gives nan: refused below
        need = np.maximum(NODE_MIN[m], np.ceil(NODE_SCALE[m] * np.sqrt(variance)))
    if not np.all(np.isfinite(need)):
        raise NonFiniteError(f"the {m}-site moments got a non-finite or negative variance "
                             f"({variance[~np.isfinite(need)].ravel()[0]!r}); check the scale of {argument}")
    if polynomial:
        need = np.minimum(need, NODE_MAX[m])
    if np.any(need > NODE_MAX[m]):
        worst = float(np.max(variance))
        raise ResourceError(f"the {m}-site Gauss-Hermite moments would need {np.max(need):.3g} nodes per dimension "
                            f"(largest variance {worst:.3g}; cost ~ nodes^{m} per site set), above the maximum "
                            f"NODE_MAX[{m}] = {NODE_MAX[m]}; the variances grow with the input scale: rescale "
                            f"{argument} (or the weight/bias variances)")
    return need.astype(int)
MAX_MULTIPLICITY = 4

_SITE = '''
@njit(cache=True, error_model="numpy", inline="always")
def site(z, k):
    """(g, g', g'') of g = phi(z)**k."""
    p = phi0(z)
    d = phi1(z)
    e = phi2(z)
    if k == 1:
        return p, d, e
    if k == 2:
        return p * p, 2.0 * p * d, 2.0 * d * d + 2.0 * p * e
    if k == 3:
        return p * p * p, 3.0 * p * p * d, 6.0 * p * d * d + 3.0 * p * p * e
    return p * p * p * p, 4.0 * p * p * p * d, 12.0 * p * p * d * d + 4.0 * p * p * p * e
'''


def pair_columns(m: int) -> list[tuple[int, int]]:
    """The (i, j), i <= j, of the gradient columns 1.. in output order."""
    return [(i, j) for i in range(m) for j in range(i, m)]


def _product(factors):
    return " * ".join(factors) if factors else "1.0"


def _kernel_source(m: int) -> str:
    """``moments{m}(L, kk, x, w, out)``: nested loops, one level per site (z_l formed at level l)."""
    cols = pair_columns(m)
    acc = ["a_v"] + [f"a_{i}{j}" for i, j in cols]
    lines = ["", '@njit(cache=True, error_model="numpy", parallel=True)', f"def moments{m}(L, kk, x, w, out):",
             "    n = x.shape[0]", "    for b in prange(L.shape[0]):"]
    pad = " " * 8
    lines += [f"{pad}l{r}{c} = L[b, {r}, {c}]" for r in range(m) for c in range(r + 1)]
    lines += [f"{pad}k{r} = kk[b, {r}]" for r in range(m)]
    lines += [f"{pad}{a} = 0.0" for a in acc]
    for lev in range(m):
        z = f"l00 * xv" if lev == 0 else f"q{lev}_{lev - 1} + l{lev}{lev} * xv"
        wv = "w[i0]" if lev == 0 else f"w{lev - 1} * w[i{lev}]"
        lines += [f"{pad}for i{lev} in range(n):", f"{pad}    xv = x[i{lev}]", f"{pad}    w{lev} = {wv}",
                  f"{pad}    g{lev}, d{lev}, e{lev} = site({z}, k{lev})"]
        for d in range(lev + 1, m):
            prev = "" if lev == 0 else f"q{d}_{lev - 1} + "
            lines.append(f"{pad}    q{d}_{lev} = {prev}l{d}{lev} * xv")
        pad += " " * 4
    W = f"w{m - 1}"
    g = [f"g{i}" for i in range(m)]
    lines.append(f"{pad}a_v += {W} * {_product(g)}")
    for i, j in cols:
        if i == j:
            rest = [g[l] for l in range(m) if l != i]
            lines.append(f"{pad}a_{i}{j} += {W} * 0.5 * {_product([f'e{i}'] + rest)}")
        else:
            rest = [g[l] for l in range(m) if l not in (i, j)]
            lines.append(f"{pad}a_{i}{j} += {W} * {_product([f'd{i}', f'd{j}'] + rest)}")
    lines += [f"        out[b, {c}] = {a}" for c, a in enumerate(acc)]
    return "\n".join(lines) + "\n"


def moments_source(phi: Nonlinearity) -> str:
    funcs = [scalar_source(f"phi{k}", ["x"], phi.expr if k == 0 else phi.derivative(k), inline=True)
             for k in range(3)]
    return module_text("symfield.gauss.moments", f"phi(x) = {phi.expr}",
                       [("phi", "\n\n".join(funcs)), ("site", _SITE)] +
                       [(f"moments{m}", _kernel_source(m)) for m in range(1, 5)])


@lru_cache(maxsize=None)
def _module(key: str, phi: Nonlinearity):
    return load_module(moments_source(phi), f"moments_{key}")


def moments(phi, covs, multiplicities, n: int | None = None) -> np.ndarray:
    """Value and Price gradient of <Π_i φ(z_i)^{k_i}> for a stack of (B, m, m) covariances.

    ``multiplicities``: (B, m) integers 1..4.  Returns (B, 1 + m(m+1)/2); see :func:`pair_columns`.
    """
    phi = get_phi(phi)
    covs = np.asarray(covs, dtype=float)
    if covs.ndim != 3 or not 1 <= covs.shape[1] <= 4:
        raise ValueError(f"covs must have shape (B, m, m) with m in 1..4, got {covs.shape}")
    m = covs.shape[1]
    kk = np.ascontiguousarray(np.broadcast_to(multiplicities, covs.shape[:2]), dtype=np.int64)
    if np.any(kk < 1) or np.any(kk > MAX_MULTIPLICITY) or np.any(kk.sum(axis=1) > MAX_MULTIPLICITY):
        raise ValueError("multiplicities must be >= 1 with at most 4 factors in total")
    x, w = hermite_nodes(int(n or DEFAULT_NODES[m]))
    out = np.empty((covs.shape[0], 1 + m * (m + 1) // 2))
    if covs.shape[0]:
        getattr(_module(phi.key, phi), f"moments{m}")(np.ascontiguousarray(cholesky_factors(covs)), kk, x, w, out)
    return out

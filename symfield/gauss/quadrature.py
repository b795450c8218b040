"""Tensor-product Gauss–Hermite quadrature for k-point expectations (k = 1..4).

    <Π_i φ^(o_i)(z_{s_i})>,   z ~ N(0, Σ) (m×m, m ≤ 4 distinct sites)
        = Σ_{i_1..i_m} w_{i_1}···w_{i_m} Π_s g_s((L x)_s),   Σ = L Lᵀ,

with probabilists' Hermite nodes x_i, weights w_i normalised to N(0,1), and g_s the product
of the factors sitting on site s (repeated sites are collapsed before choosing m).  L is
lower triangular: Cholesky of Σ, of Σ + 1e-12·max(diag)·I if that fails, or, for singular
Σ, the triangular factor Rᵀ of a clipped PSD square root A = V√Λ (Aᵀ = QR ⇒ A x ≐ Rᵀ x).
Default orders: 80, 60², 24³, 14⁴ (theory note 9.2).  Accuracy is limited for non-entire or
steep integrands: tanh (poles at ±iπ/2) and erf at variance ≳ 1 lose digits fast at 14⁴
(~1e-5 at variance 1, ~1e-3 at variance 3 for a 4-point tanh product); pass ``n`` to refine.
ReLU converges slowly (kink): use its closed forms.

Per φ, one generated module (in the codegen cache) holds φ, φ', ..., φ'''' (where printable)
and the m-dimensional kernels, all ``njit(cache=True)``; a second process recompiles nothing.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
import sympy as sp
from scipy.linalg import eigvalsh_tridiagonal

from ..codegen import build_module, scalar_source
from .registry import Nonlinearity, get_phi

DEFAULT_NODES = {1: 80, 2: 60, 3: 24, 4: 14}
MAX_DERIVATIVE = 4
MAX_SITES = 4
JITTER = 1e-12
#: eigenvalues below -PSD_TOL·max(diag) mean "not a covariance" (raise), above are clipped to 0
PSD_TOL = 1e-9
#: batches with more integrand evaluations than this run on all cores (prange)
PARALLEL_WORK = 2_000_000


# ---------------------------------------------------------------------------- nodes
#: up to this order numpy's ``hermegauss`` is finite and used as is; above it the same algorithm
#: (eigenvalue start, Newton polish, Christoffel weights) runs on a rescaled recurrence
NUMPY_MAX_NODES = 150


def _recurrence(x: np.ndarray, n: int, log_start=None):
    """Orthonormal Hermite h_k(x) = He_k(x)/√k!, k < n, by h_{k+1} = (x h_k - √k h_{k-1})/√(k+1),
    rescaled by 1e-100 whenever an entry exceeds 1e100 (so no overflow at any n).

    Returns (h_{n-2}, h_{n-1}, Σ_{k<n} h_k², log scale, rows): the first three in units of e^(log scale)
    (per x); ``rows`` is None, or with ``log_start`` (per x) the matrix e^(log_start) h_k(x), k < n
    (V[k, i] = √w_i h_k(x_i) for log_start = log √w)."""
    hm, hk, s, lg = np.zeros_like(x), np.ones_like(x), np.ones_like(x), np.zeros_like(x)
    rows = None if log_start is None else np.empty((n, x.size))
    if rows is not None:
        rows[0] = np.exp(log_start)
    for k in range(n - 1):
        hm, hk = hk, (x * hk - np.sqrt(k) * hm) / np.sqrt(k + 1)
        s += hk * hk
        big = np.abs(hk) > 1e100
        if big.any():
            hm[big] *= 1e-100
            hk[big] *= 1e-100
            s[big] *= 1e-200
            lg[big] += 100 * np.log(10.0)
        if rows is not None:
            rows[k + 1] = hk * np.exp(log_start + lg)
    return hm, hk, s, lg, rows


@lru_cache(maxsize=None)
def _rule(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, w, log √w): the one Gauss–Hermite rule behind :func:`hermite_nodes` and :func:`hermite_functions`."""
    if n < 1:
        raise ValueError(f"number of Gauss-Hermite nodes must be >= 1, got {n}")
    if n <= NUMPY_MAX_NODES:
        x, w = np.polynomial.hermite_e.hermegauss(n)
        w = w / w.sum()
        with np.errstate(divide="ignore"):
            return x, w, 0.5 * np.log(w)
    # Golub–Welsch nodes (eigenvalues of the Jacobi matrix), then Newton on h_n (h_n' = √n h_{n-1})
    x = eigvalsh_tridiagonal(np.zeros(n), np.sqrt(np.arange(1.0, n)))
    for _ in range(3):
        hm, hk, _, _, _ = _recurrence(x, n)
        x = x - (x * hk - np.sqrt(n - 1) * hm) / np.sqrt(n) / (np.sqrt(n) * hk)
    _, _, s, lg, _ = _recurrence(x, n)
    logw = -2 * lg - np.log(s)                      # Christoffel: w_i = 1 / Σ_{k<n} h_k(x_i)²
    logw = (logw + logw[::-1]) / 2                  # exact symmetry x_{n-1-i} = -x_i, w_{n-1-i} = w_i
    logw -= np.log(np.exp(logw).sum())
    return (x - x[::-1]) / 2, np.exp(logw), 0.5 * logw


@lru_cache(maxsize=None)
def hermite_nodes(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilists' Gauss–Hermite nodes x_i and weights w_i with Σ w_i f(x_i) ≈ <f(x)>_{N(0,1)}."""
    x, w, _ = _rule(n)
    x, w = x.copy(), w.copy()
    x.setflags(write=False)
    w.setflags(write=False)
    return x, w


@lru_cache(maxsize=None)
def hermite_functions(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes x_i of :func:`hermite_nodes` and the orthogonal matrix V[k, i] = √w_i h_k(x_i), k < n.

    h_k = He_k/√k! are the orthonormal Hermite polynomials, so Σ_i V[k,i] V[0,i] f(x_i) ≈ <f(x) h_k(x)>.
    Rows come from the rescaled recurrence started at √w_i (entries below 1e-308 flush to 0)."""
    x, _, half_logw = _rule(n)
    V = _recurrence(x, n, half_logw)[4]
    # exact symmetry V[k, n-1-i] = (-1)^k V[k, i]
    sign = np.where(np.arange(n) % 2 == 0, 1.0, -1.0)[:, None]
    V = (V + sign * V[:, ::-1]) / 2
    x = x.copy()
    x.setflags(write=False)
    V.setflags(write=False)
    return x, V


# ---------------------------------------------------------------------------- code generation
_DISPATCH = """
@njit(cache=True)
def phi_d(k, x):
{branches}    return math.nan


@njit(cache=True)
def site_value(o, s, z):
    v = 1.0
    for j in range(o.shape[1]):
        if o[s, j] >= 0:
            v *= phi_d(o[s, j], z)
    return v
"""


_BATCH = """

@njit(cache=True)
def expect{m}(L, o, x, w):
    out = np.empty(L.shape[0])
    for b in range(L.shape[0]):
        out[b] = one{m}(L, b, o, x, w)
    return out


@njit(cache=True, parallel=True)
def expect{m}_parallel(L, o, x, w):
    out = np.empty(L.shape[0])
    for b in prange(L.shape[0]):
        out[b] = one{m}(L, b, o, x, w)
    return out
"""


def _kernel_source(m: int) -> str:
    """Source of ``one{m}`` (item b of a batch: nested loops over the m sites; the factor of
    site l and the partial sums q_d = Σ_{j≤l} L_dj x_j are formed at loop level l) and of the
    serial/parallel batch drivers ``expect{m}``/``expect{m}_parallel``."""
    lines = [
        "",
        "@njit(cache=True)",
        f"def one{m}(L, b, o, x, w):",
        "    n = x.shape[0]",
    ]
    pad = " " * 4
    lines += [f"{pad}l{r}{c} = L[b, {r}, {c}]" for r in range(m) for c in range(r + 1)]
    lines.append(f"{pad}acc0 = 0.0")
    for lev in range(m):
        z = f"l{lev}{lev} * xv" if lev == 0 else f"q{lev}_{lev - 1} + l{lev}{lev} * xv"
        lines += [f"{pad}for i{lev} in range(n):",
                  f"{pad}    xv = x[i{lev}]",
                  f"{pad}    f{lev} = w[i{lev}] * site_value(o, {lev}, {z})"]
        if lev == m - 1:
            lines.append(f"{pad}    acc{lev} += f{lev}")
            break
        lines.append(f"{pad}    if f{lev} != 0.0:")
        for d in range(lev + 1, m):
            prev = "" if lev == 0 else f"q{d}_{lev - 1} + "
            lines.append(f"{pad}        q{d}_{lev} = {prev}l{d}{lev} * xv")
        lines.append(f"{pad}        acc{lev + 1} = 0.0")
        pad += " " * 8
    for lev in range(m - 2, -1, -1):  # close the loops from the inside out
        pad = pad[:-8]
        lines.append(f"{pad}        acc{lev} += f{lev} * acc{lev + 1}")
    lines.append("    return acc0")
    return "\n".join(lines) + "\n" + _BATCH.format(m=m)


_MODULES: dict = {}


def _module_for(key: str, phi: Nonlinearity):
    if key in _MODULES:
        return _MODULES[key]
    available, funcs, branches = [], [], []
    for k in range(MAX_DERIVATIVE + 1):
        expr = phi.numeric(k)
        if expr.has(sp.DiracDelta):
            continue
        try:
            funcs.append(scalar_source(f"d{k}", ["x"], expr))
        except Exception:  # not printable for Numba: this order is unavailable
            continue
        available.append(k)
        branches.append(f"    if k == {k}:\n        return 1.0 * d{k}(x)\n")
    templates = [("available", f"AVAILABLE = {tuple(available)!r}"), ("derivatives", "\n\n".join(funcs)),
                 ("dispatch", _DISPATCH.format(branches="".join(branches)))]
    templates += [(f"expect{m}", _kernel_source(m)) for m in range(1, MAX_SITES + 1)]
    _MODULES[key] = mod = build_module(f"gauss_{key}", "symfield.gauss.quadrature",
                                       f"phi = {phi.name}: {phi.expr}", templates)
    return mod


def phi_module(phi):
    """The generated, imported module of φ (``phi_d``, ``expect1`` .. ``expect4``, ``AVAILABLE``)."""
    nl = get_phi(phi)
    return _module_for(nl.key, nl)


# ---------------------------------------------------------------------------- factorisation
def _psd_triangular(cov: np.ndarray, where: str) -> np.ndarray:
    """Lower-triangular L with L Lᵀ = cov (jitter, then eigen-clip + QR for singular cov)."""
    scale = max(float(np.max(np.diag(cov))), 0.0)
    if scale == 0.0:
        if np.any(cov != 0.0):
            raise ValueError(f"covariance{where} has zero variances but non-zero covariances")
        return np.zeros_like(cov)
    for jitter in (0.0, JITTER):
        try:
            return np.linalg.cholesky(cov + jitter * scale * np.eye(len(cov)))
        except np.linalg.LinAlgError:
            pass
    lam, V = np.linalg.eigh(cov)
    if lam[0] < -PSD_TOL * scale:
        raise ValueError(f"covariance{where} is not positive semi-definite (eigenvalue {lam[0]:.3g}, "
                         f"max variance {scale:.3g})")
    A = V * np.sqrt(np.clip(lam, 0.0, None))
    _, R = np.linalg.qr(A.T)
    return np.ascontiguousarray(R.T)


def cholesky_factors(covs) -> np.ndarray:
    """Lower-triangular factors of a stack (B, m, m) of covariances; validates symmetry/PSD."""
    covs = np.asarray(covs, dtype=float)
    if covs.ndim != 3 or covs.shape[1] != covs.shape[2]:
        raise ValueError(f"covariances must have shape (B, m, m), got {covs.shape}")
    if not np.all(np.isfinite(covs)):
        raise ValueError("covariance contains NaN or inf")
    if not np.allclose(covs, np.swapaxes(covs, 1, 2), rtol=1e-12, atol=0.0):
        raise ValueError("covariance is not symmetric")
    if np.any(np.diagonal(covs, axis1=1, axis2=2) < 0):
        raise ValueError("covariance has a negative variance")
    try:
        return np.linalg.cholesky(covs)
    except np.linalg.LinAlgError:
        where = (lambda b: f" #{b}") if len(covs) > 1 else (lambda b: "")
        return np.stack([_psd_triangular(c, where(b)) for b, c in enumerate(covs)])


# ---------------------------------------------------------------------------- public API
def _site_orders(orders, sites, m):
    orders = [int(o) for o in orders]
    if len(orders) != len(sites):
        raise ValueError(f"orders {orders} and sites {list(sites)} differ in length")
    per_site = [[] for _ in range(m)]
    for o, s in zip(orders, sites):
        if not 0 <= s < m:
            raise ValueError(f"site index {s} out of range for a {m}x{m} covariance")
        per_site[s].append(o)
    width = max(1, max(len(p) for p in per_site))
    table = -np.ones((m, width), dtype=np.int64)
    for s, p in enumerate(per_site):
        table[s, :len(p)] = p
    return table


def _check_orders(mod, phi, table):
    bad = sorted({int(o) for o in table.ravel() if o >= 0 and o not in mod.AVAILABLE})
    if bad:
        raise ValueError(f"derivative order(s) {bad} of phi {phi.name!r} are not available "
                         f"(available: {mod.AVAILABLE}; higher derivatives of a kink are distributions)")


def _run(phi, L, table, n):
    m = L.shape[1]
    if not 1 <= m <= MAX_SITES:
        raise ValueError(f"quadrature supports 1..{MAX_SITES} distinct sites, got {m}")
    mod = _module_for(phi.key, phi)
    _check_orders(mod, phi, table)
    x, w = hermite_nodes(int(n or DEFAULT_NODES[m]))
    parallel = L.shape[0] * x.size ** m >= PARALLEL_WORK
    kernel = getattr(mod, f"expect{m}_parallel" if parallel else f"expect{m}")
    return kernel(np.ascontiguousarray(L), table, x, w)


def collapse_sites(cov, rtol: float = 1e-12):
    """Merge identical variables: returns (reduced cov, sites) with cov[i] ≡ reduced[sites[i]].

    Variables i, j are identical when Σ_ii = Σ_jj = Σ_ij (to ``rtol`` of the largest variance).
    """
    cov = np.asarray(cov, dtype=float)
    k = cov.shape[0]
    tol = rtol * max(float(np.max(np.abs(np.diag(cov)))), 1e-300)
    sites, keep = [], []
    for i in range(k):
        for s, j in enumerate(keep):
            if abs(cov[i, i] - cov[i, j]) <= tol and abs(cov[j, j] - cov[i, j]) <= tol:
                sites.append(s)
                break
        else:
            sites.append(len(keep))
            keep.append(i)
    return cov[np.ix_(keep, keep)], sites


def expect(phi, cov, orders=None, n: int | None = None, sites=None) -> float:
    """<Π_i φ^(orders[i])(z_{sites[i]})>, z ~ N(0, cov), by Gauss–Hermite quadrature.

    ``cov``: scalar or (m, m).  Without ``sites`` factor i sits on variable i (``orders`` has
    length m, default all 0) and identical variables are merged automatically.  ``n``: nodes
    per dimension (default :data:`DEFAULT_NODES` for the number of distinct sites).
    """
    phi = get_phi(phi)
    cov = np.atleast_2d(np.asarray(cov, dtype=float))
    if cov.shape[0] != cov.shape[1]:
        raise ValueError(f"cov must be square, got shape {cov.shape}")
    if sites is None:
        orders = [0] * cov.shape[0] if orders is None else list(orders)
        if len(orders) != cov.shape[0]:
            raise ValueError(f"{len(orders)} derivative orders for a {cov.shape[0]}x{cov.shape[0]} covariance")
        cholesky_factors(cov[None])  # validate before merging
        cov, sites = collapse_sites(cov)
    elif orders is None:
        orders = [0] * len(sites)
    table = _site_orders(orders, sites, cov.shape[0])
    return float(_run(phi, cholesky_factors(cov[None]), table, n)[0])


def expect_batch(phi, covs, orders=None, sites=None, n: int | None = None) -> np.ndarray:
    """:func:`expect` for a stack of covariances (B, m, m) sharing orders and sites (no merging)."""
    phi = get_phi(phi)
    covs = np.asarray(covs, dtype=float)
    if covs.ndim == 2:
        covs = covs[None]
    m = covs.shape[-1]
    sites = list(range(m)) if sites is None else list(sites)
    orders = [0] * len(sites) if orders is None else list(orders)
    return _run(phi, cholesky_factors(covs), _site_orders(orders, sites, m), n)


def expect2_block(phi, d1, d2, c12, orders=(0, 0), n: int | None = None, symmetric: bool = False) -> np.ndarray:
    """<φ^(o1)(u_i) φ^(o2)(v_j)> for all i, j: Var u_i = d1[i], Var v_j = d2[j], Cov = c12[i, j].

    ``symmetric=True`` (d1 is d2, c12 symmetric, o1 = o2): only the upper triangle is integrated.
    """
    phi = get_phi(phi)
    d1, d2, c12 = (np.asarray(a, dtype=float) for a in (d1, d2, c12))
    if c12.shape != (d1.size, d2.size):
        raise ValueError(f"c12 has shape {c12.shape}, expected {(d1.size, d2.size)}")
    if symmetric:
        if d1.shape != d2.shape or not np.array_equal(d1, d2) or orders[0] != orders[1]:
            raise ValueError("symmetric=True needs d1 == d2 and equal orders")
        iu, ju = np.triu_indices(d1.size)
    else:
        iu, ju = (a.ravel() for a in np.indices(c12.shape))
    covs = np.empty((iu.size, 2, 2))
    covs[:, 0, 0], covs[:, 1, 1] = d1[iu], d2[ju]
    covs[:, 0, 1] = covs[:, 1, 0] = c12[iu, ju]
    vals = _run(phi, cholesky_factors(covs), _site_orders(orders, [0, 1], 2), n)
    out = np.empty(c12.shape)
    out[iu, ju] = vals
    if symmetric:
        out[ju, iu] = vals
    return out

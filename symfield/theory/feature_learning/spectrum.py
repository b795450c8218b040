"""Spectra of the Hessian of S/N: by lag sector, dense or block by block, and of the learned weights.

In congruence coordinates around C = L Lᵀ (:mod:`.solver`) the ln det C part of the Hessian is −½·1,
so eigenvalues are comparable across problems; the inertia equals that in C coordinates.

* :func:`sector_hessian`, :func:`top_eigen`: the dense Hessian restricted to the entries of given lags
  |t − s| (:class:`~.action.LinearAction`, any problem);
* :func:`sector_top`, :func:`sector_spectrum`, :func:`embed_sector`: lag sectors k >= 1 at a
  time-block-diagonal C, block by block (:class:`~.blocks.Blocks`, theory Sec. 7.2);
* :func:`learned_eigenvalues`: eig(C_pp⁻¹ C_pn) of the learned part of each W group (theory Sec. 8).
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse.linalg as ssl

from ...resources import check_time
from .action import LinearAction, gp_kernel
from .blocks import Blocks, BlockPoint
from .solver import Frame, sector_mask, smat, svec
from .span import factor


def sector_hessian(act: LinearAction, C: np.ndarray, lags, chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Dense Hessian of S/N restricted to the svec entries with lag in ``lags``, in congruence
    coordinates at C (same inertia as in C coordinates); returns (H, svec indices)."""
    fr = Frame(act, C)
    idx = np.flatnonzero(sector_mask(act, lags)) if lags is not None else np.arange(act.n * (act.n + 1) // 2)
    m = idx.size
    H = np.empty((m, m))
    for start in range(0, m, chunk):
        sel = idx[start:start + chunk]
        V = np.zeros((sel.size, fr.z0().size))
        V[np.arange(sel.size), sel] = 1.0
        Hv = fr.hessp(fr.z0(), V)
        H[start:start + sel.size] = Hv[:, idx]
    return 0.5 * (H + H.T), idx


DENSE_MAX = 1500
#: Hessian-vector products assumed for the time estimate of a dense Lanczos run (:func:`top_eigen`)
LANCZOS_PRODUCTS = 300


def top_eigen(act: LinearAction, C: np.ndarray, lags=None):
    """Largest eigenvalue of the Hessian of S/N (congruence coordinates at C) over ``lags``;
    returns (λ, direction as an (n, n) symmetric matrix in C coordinates, normalised)."""
    fr = Frame(act, C, sector_mask(act, lags))
    mask = fr.mask
    dim = int(mask.sum()) if mask is not None else fr.z0().size
    if dim == 0:
        return -np.inf, np.zeros((act.n, act.n))
    if dim <= DENSE_MAX:
        H, idx = sector_hessian(act, C, lags)
        lam, vecs = np.linalg.eigh(H)
        v = np.zeros(fr.z0().size)
        v[idx] = vecs[:, -1]
        top = lam[-1]
    else:  # Lanczos: a few hundred products of O(n³) each (the (n²)² Hessian is never formed)
        check_time(LANCZOS_PRODUCTS * 10.0 * act.n ** 3, f"the dense Hessian's top eigenvalue (T·P = {act.n}: Lanczos "
                   "with O((T·P)³) Hessian-vector products)", "T or P (the subspace solver's spectra need none)")
        z0 = fr.z0()
        full = np.flatnonzero(mask) if mask is not None else np.arange(z0.size)

        def mv(x):
            v = np.zeros(z0.size)
            v[full] = x
            return fr.hessp(z0, v)[full]

        op = ssl.LinearOperator((full.size, full.size), matvec=mv, dtype=float)
        lam, vecs = ssl.eigsh(op, k=1, which="LA", tol=1e-8)
        v = np.zeros(z0.size)
        v[full] = vecs[:, 0]
        top = lam[0]
    D = fr.L @ smat(v, act.n) @ fr.L.T
    return float(top), D / np.linalg.norm(D)


#: sector dimension up to which the sector Hessian is built densely (above: Lanczos, ``eigsh``)
DENSE_SECTOR_MAX = 64
#: the same for the reference method (the solver before the scale work)
DENSE_SECTOR_MAX_REFERENCE = 900


def sector_top(bl: Blocks, p: BlockPoint, k: int, dense_max: int = DENSE_SECTOR_MAX):
    """(top eigenvalue, eigenvector as (T-k, P, P) blocks in C coordinates) of lag sector k: dense up to
    dimension ``dense_max``, else Lanczos (O(T P³) per product, a fixed start vector)."""
    op, shape = bl.sector_operator(p, k)
    dim = int(np.prod(shape))
    if dim <= dense_max:
        H = op(np.eye(dim).reshape((dim,) + shape)).reshape(dim, dim)
        lam, vec = np.linalg.eigh(0.5 * (H + H.T))
        top, v = lam[-1], vec[:, -1]
    else:
        lin = ssl.LinearOperator((dim, dim), matvec=lambda x: op(x.reshape(shape)).reshape(-1), dtype=float)
        v0 = np.random.default_rng(0).standard_normal(dim)
        lam, vec = ssl.eigsh(lin, k=1, which="LA", tol=1e-12, v0=v0)
        top, v = lam[0], vec[:, 0]
    L = factor(p.C, bl.span, "C")
    V = v.reshape(shape)
    Dc = L[:bl.T - k] @ V @ np.swapaxes(L[k:], -1, -2)
    return float(top), Dc


def sector_spectrum(bl: Blocks, Cb: np.ndarray, lags=None, dense_max: int = DENSE_SECTOR_MAX) -> dict:
    """{k: (top eigenvalue, direction)} for the lag sectors ``lags`` (default 1..T-1)."""
    p = bl.point(Cb)
    lags = range(1, bl.T) if lags is None else lags
    return {k: sector_top(bl, p, k, dense_max) for k in lags}


def embed_sector(bl: Blocks, k: int, Dc: np.ndarray) -> np.ndarray:
    """An (n, n) symmetric matrix with blocks Dc[t] at (t, t+k) and their transposes at (t+k, t)."""
    P = bl.P
    out = np.zeros((bl.n, bl.n))
    for t in range(bl.T - k):
        out[t * P:(t + 1) * P, (t + k) * P:(t + k + 1) * P] = Dc[t]
        out[(t + k) * P:(t + k + 1) * P, t * P:(t + 1) * P] = Dc[t].T
    return out



def weight_group_sites(pr) -> list:
    """(previous sites, next sites, applications) per W group: W_k maps state k−1 to state k (0-based,
    k = 1..T−1), so a group's learned part solves W Φ_p = X_n over the columns of its applications."""
    P = pr.P
    out = []
    for grp in pr.spec.groups("W") if pr.T > 1 else ():
        ks = np.array(grp)
        prev = (np.repeat(ks - 1, P) * P + np.tile(np.arange(P), ks.size))
        out.append((prev, prev + P, ks))
    return out


def _overlaps(C, prev, nxt, ak, rk):
    """(C_pp, C_px) with C_px = (C_pn − C_pp a)/r (columns scaled)."""
    Cpp, Cpx = C[np.ix_(prev, prev)], C[np.ix_(prev, nxt)]
    if np.any(ak != 0) or np.any(rk != 1):
        Cpx = (Cpx - Cpp * ak) / rk
    return Cpp, Cpx


def _solve_pd(Cpp: np.ndarray, Cpx: np.ndarray) -> np.ndarray:
    """C_pp⁻¹ C_px by one Cholesky factorisation; least squares (SVD, several times the cost) when C_pp is
    singular (dependent inputs)."""
    try:
        return sla.cho_solve(sla.cho_factor(Cpp), Cpx)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(Cpp, Cpx, rcond=None)[0]


def perturbed_nilpotent_spectrum(Cpp0, Cpx0, Phi_p, Phi_x, N, order: int):
    """All eigenvalues of C_pp⁻¹C_px for C_pp = C₀_pp + Φ_p N Φ_pᵀ, C_px = C₀_px + Φ_p N Φ_xᵀ when the GP part
    Z = C₀_pp⁻¹C₀_px is nilpotent (Z^order = 0, checked on a probe vector; else None, as when dR > n_p).

    By Woodbury C_pp⁻¹C_px = Z + U Vᵀ, U = C₀_pp⁻¹Φ_p, Vᵀ = (1 + N ΦₚᵀU)⁻¹N(Φ_xᵀ − UᵀC₀_px), so
    det(λ − Z − UVᵀ) = λ^{n_p} det(1 − Σ_{j<d} VᵀZ^jU λ^{−j−1}) (d: the first j with Z^jU = 0): the eigenvalues are
    those of the block companion matrix of the monic λ^d − Σ_j λ^{d−1−j} VᵀZ^jU (size dR) and n_p − dR exact
    zeros.  The dense eig of the n_p × n_p matrix instead spreads each zero of a Jordan chain of length d to a
    circle of radius ~ε^{1/d} (0.14 at d = 19): those values are round-off."""
    n_p, R = Phi_p.shape
    try:
        fac = sla.cho_factor(Cpp0)
    except np.linalg.LinAlgError:  # singular GP overlaps (dependent inputs)
        return None

    def Z(X):
        return sla.cho_solve(fac, Cpx0 @ X)

    probe = np.random.default_rng(0).standard_normal(n_p)
    x = probe
    for _ in range(order):
        x = Z(x)
    if np.abs(x).max() > 1e-12 * np.abs(probe).max():
        return None
    U = sla.cho_solve(fac, Phi_p)
    Vt = np.linalg.solve(np.eye(R) + N @ (Phi_p.T @ U), N @ (Phi_x.T - U.T @ Cpx0))
    blocks, ZU, scale = [], U, np.abs(U).max()
    for _ in range(order):
        if np.abs(ZU).max() <= 1e-12 * scale:
            break
        blocks.append(Vt @ ZU)
        ZU = Z(ZU)
    d = len(blocks)
    if d * R > n_p:
        return None
    comp = np.zeros((d * R, d * R))
    comp[:R] = np.hstack(blocks)
    comp[R:, :-R] = np.eye((d - 1) * R)
    return np.concatenate([np.linalg.eigvals(comp), np.zeros(n_p - d * R)])


def low_rank_part(C0: np.ndarray, C: np.ndarray, tol: float = 1e-13):
    """(Φ, N) with C − C₀ = Φ N Φᵀ to round-off: the eigenvectors of C − C₀ (O(n³) eigh) whose eigenvalues exceed
    ``tol`` × the largest in modulus (the rest is round-off: 1e-16 relative at a converged solve)."""
    lam, V = np.linalg.eigh(0.5 * ((C - C0) + (C - C0).T))
    keep = np.abs(lam) > tol * max(np.abs(lam).max(), 1e-300)
    return V[:, keep], np.diag(lam[keep])


def learned_eigenvalues(pr, C: np.ndarray, low_rank=None) -> list:
    """Non-zero spectrum of the learned part of each W group (theory Sec. 8), linear φ: with
    x_k = (h_k − a_k h_{k−1})/r_k = W_k h_{k−1}, eig(C_pp⁻¹ C_px), C_pp over the previous sites of the
    group's applications and (C_px) their overlaps with x at the next sites.  Needs input at t = 1 only
    and no bias (then W H_p = X_n exactly).  Returns one array per W group (all n_p eigenvalues).

    C = C₀ + Φ N Φᵀ with C₀ the GP kernel: ``low_rank`` = (C₀, Φ, N) at a subspace-solver point, else from
    :func:`low_rank_part` (one eigh of C − C₀).  The GP part C₀_pp⁻¹C₀_px is nilpotent, so
    :func:`perturbed_nilpotent_spectrum` gives the spectrum from a (d R)-dimensional companion matrix (d <= the
    group's applications), exact zeros for the rest; the dense eig of C_pp⁻¹C_px only where that does not apply
    (d R > n_p, singular C₀_pp, a GP part that is not nilpotent)."""
    if pr.spec.input != "first" or np.any(pr.sigma_det[pr.P:]) or np.any(pr.sigma_det[:, pr.P:]):
        raise NotImplementedError("learned eigenvalues need input at t = 1 only and no bias (W H_p = H_n)")
    a, r = pr.spec.leak_values(), pr.spec.r_values()
    if low_rank is None:
        C0 = gp_kernel(pr)
        low_rank = (C0,) + low_rank_part(C0, C)
    C0, Phi, N = low_rank
    out = []
    for prev, nxt, ks in weight_group_sites(pr):
        ak, rk = np.repeat(a[ks], pr.P), np.repeat(r[ks], pr.P)
        Cpp0, Cpx0 = _overlaps(C0, prev, nxt, ak, rk)
        Phi_x = (Phi[nxt] - ak[:, None] * Phi[prev]) / rk[:, None]
        lam = perturbed_nilpotent_spectrum(Cpp0, Cpx0, Phi[prev], Phi_x, N, ks.size + 1)
        if lam is not None:
            out.append(lam)
            continue
        Cpp, Cpx = _overlaps(C, prev, nxt, ak, rk)
        out.append(np.linalg.eigvals(_solve_pd(Cpp, Cpx)))
    return out

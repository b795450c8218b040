"""Stability of the factorised (symmetric) branch in the lag sectors, for any odd φ (theory Secs. 6, 7.2).

At a time-block-diagonal solution (Σ, Ĉ, C block-diagonal, the tilted measure a product over time
steps) an off-diagonal perturbation changes the log-density by ½hᵀXh + ½φᵀδĈφ with X = Σ⁻¹δΣΣ⁻¹,
δΣ = A(Wm ∘ B δC Bᵀ)Aᵀ.  Its first-order responses across time need only the pair expectations of each
time block, A_t = ⟨φ_t h_tᵀ⟩, K_t = ⟨h_t h_tᵀ⟩, F_t = ⟨φ_t φ_tᵀ⟩ (block-diagonal matrices A, K, F):

    δ⟨φφᵀ⟩ = A X Aᵀ + F δĈ F,          δ⟨hhᵀ⟩ = K X K + Aᵀ δĈ A            (off-diagonal blocks)

Eliminating Ĉ by the forward equation (δĈ* = F⁻¹(δC − A X Aᵀ)F⁻¹) the Hessian of S/N along δC is

    H δC = ½ [ Bᵀ(Wm ∘ Aᵀ δ(Σ⁻¹KΣ⁻¹ − Σ⁻¹) A)B + δ(data) − δĈ* ],
    δ(Σ⁻¹KΣ⁻¹ − Σ⁻¹) = −X K Σ⁻¹ − Σ⁻¹ K X + Σ⁻¹ δK Σ⁻¹ + X                       (:func:`lag_hessp`)

(for linear φ, A = K = F = C and this is the Hessian of the closed-form action).  The lag sectors
|t − s| = k decouple; :func:`lag_spectrum` returns the top eigenvalue per sector in the orthonormal
basis of symmetric unit perturbations, and the branch is unstable where one is positive.
"""
from __future__ import annotations

import numpy as np

from ...errors import NotSupportedError
from .span import span

#: perturbations per batched Hessian product
CHUNK = 64


def lag_hessp(act, p, mom, D: np.ndarray):
    """(H D, δĈ*) for off-diagonal symmetric directions D (batched (..., n, n)); module docstring."""
    Fi = kernel_inverse(mom.phiphi)
    A, K = mom.phih, mom.hh
    X = p.Sinv @ act.dsigma(D) @ p.Sinv
    dChat = Fi @ (D - A @ X @ A.T) @ Fi
    dK = K @ X @ K + A.T @ dChat @ A
    XKS = X @ K @ p.Sinv
    inner = -XKS - np.swapaxes(XKS, -1, -2) + p.Sinv @ dK @ p.Sinv + X
    return 0.5 * (act.sigma_adjoint(inner) + act.data_hessp(p, D) - dChat), dChat


def kernel_inverse(F: np.ndarray) -> np.ndarray:
    """⟨φφᵀ⟩⁻¹; a singular one (duplicated, antipodal or zero patterns with nonlinear φ) is refused: the
    lag-sector basis of unit site perturbations would leave the span the kernel lives on."""
    if span(F) is not None:
        raise NotSupportedError(
            "X: with this nonlinear φ the kernel <φφᵀ> of some patterns is linearly dependent (duplicated, "
            "antipodal or zero input sequences), and the lag-sector stability test of the symmetric branch "
            "is implemented for a nonsingular kernel only. Remove the repeated patterns (k copies of a pattern "
            "with one target act as that pattern with likelihood variance kappa/k) or use phi='linear'")
    return np.linalg.inv(F)


def sector_basis(pr, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Site pairs (i < j) at time lag k."""
    i, j = np.triu_indices(pr.n, 1)
    keep = pr.lag()[i, j] == k
    return i[keep], j[keep]


def sector_matrix(act, p, mom, k: int) -> tuple[np.ndarray, tuple]:
    """The Hessian restricted to lag k in the basis (e_i e_jᵀ + e_j e_iᵀ)/√2."""
    i, j = sector_basis(act.pr, k)
    m, n = len(i), act.pr.n
    M = np.empty((m, m))
    for a in range(0, m, CHUNK):
        b = np.arange(a, min(a + CHUNK, m))
        D = np.zeros((len(b), n, n))
        D[np.arange(len(b)), i[b], j[b]] = D[np.arange(len(b)), j[b], i[b]] = 1 / np.sqrt(2)
        HD = lag_hessp(act, p, mom, D)[0]
        M[:, b] = np.sqrt(2) * HD[:, i, j].T
    return 0.5 * (M + M.T), (i, j)


def lag_spectrum(act, p, mom) -> dict:
    """{k: (top eigenvalue, unit direction D (n, n), δĈ* along D)} for the lag sectors k = 1..T-1."""
    out = {}
    n = act.pr.n
    for k in range(1, act.pr.T):
        M, (i, j) = sector_matrix(act, p, mom, k)
        if M.size == 0:
            continue
        lam, V = np.linalg.eigh(M)
        D = np.zeros((n, n))
        D[i, j] = D[j, i] = V[:, -1] / np.sqrt(2)
        out[k] = (float(lam[-1]), D, lag_hessp(act, p, mom, D)[1])
    return out


def top_lag(act, p, mom):
    """(top eigenvalue over the lag sectors, its direction D, δĈ*); (-inf, None, None) for T < 2."""
    spec = lag_spectrum(act, p, mom)
    if not spec:
        return -np.inf, None, None
    return spec[max(spec, key=lambda q: spec[q][0])]

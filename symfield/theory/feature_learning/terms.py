"""The terms of the μP action, each written once: Σ(C), A(C) and S/N (theory Secs. 2, 3, 5).

Sites s = (t, μ), index t·P + μ.  For h_t = a_t h_{t-1} + r_t W_t φ(h_{t-1}) + U_t x_t + b_t the
driving term ξ_t = r_t W_t φ(h_{t-1}) + U_t x_t + b_t is, after the weight average, Gaussian per
neuron with covariance D(C) = B_M ∘ (B C Bᵀ) + Σdet (B_M = branch mask ∘ g gᵀ, B the backshift);
h = A ξ with the skip propagator A_ts = a_{s+1}···a_t (s <= t, A_tt = 1) has unit Jacobian, so

    Σ(C) = A [B_M ∘ (B C Bᵀ) + Σdet] Aᵀ                                  (A = 1 without skip)
    A(C) = κ 1 + σ_v² (M_out ∘ C)_SS
    S/N  = ½ [ln det C − ln det Σ(C) − tr(Σ⁻¹C) + n − y_Sᵀ A(C)⁻¹ y_S]

Numeric functions are batched over leading axes; ``*_sym`` are the SymPy templates of the same
formulas (explicit matrices); :func:`action_value` serves both.
"""
from __future__ import annotations

import numpy as np
import sympy as sp

from ...spec import skip_matrix


# ------------------------------------------------------------------ operators
def shift(C: np.ndarray, P: int) -> np.ndarray:
    """B C Bᵀ: entry ((t, μ), (s, ν)) = C((t-1, μ), (s-1, ν)), zero at t = 1 or s = 1 (batched)."""
    out = np.zeros_like(C)
    out[..., P:, P:] = C[..., :-P, :-P]
    return out


def unshift(G: np.ndarray, P: int) -> np.ndarray:
    """Bᵀ G B (the adjoint of :func:`shift`): entry (i, j) = G(i + P, j + P), zero at t = T."""
    out = np.zeros_like(G)
    out[..., :-P, :-P] = G[..., P:, P:]
    return out


def shift_sym(X: sp.Matrix, P: int) -> sp.Matrix:
    n = X.shape[0]
    return sp.Matrix(n, n, lambda i, j: X[i - P, j - P] if i >= P and j >= P else 0)


def unshift_sym(G: sp.Matrix, P: int) -> sp.Matrix:
    n = G.shape[0]
    return sp.Matrix(n, n, lambda i, j: G[i + P, j + P] if i + P < n and j + P < n else 0)


def embed(K: np.ndarray, S: np.ndarray, n: int) -> np.ndarray:
    """E_S: an (|S|, |S|) matrix placed on the sites S of an (n, n) matrix (batched)."""
    out = np.zeros(K.shape[:-2] + (n, n))
    out[..., S[:, None], S[None, :]] = K
    return out


def embed_sym(K: sp.Matrix, S, n: int) -> sp.Matrix:
    out = sp.zeros(n, n)
    for a, i in enumerate(S):
        for b, j in enumerate(S):
            out[i, j] = K[a, b]
    return out


def restrict(C: np.ndarray, S: np.ndarray) -> np.ndarray:
    """C_SS (batched)."""
    return C[..., S[:, None], S[None, :]]


def propagator(a, P: int):
    """A ⊗ 1_P with A_ts = a_{s+1}···a_t for s <= t (a: the T skip coefficients, 0-based, a[0] unused);
    works for numbers (NumPy array) and SymPy symbols (Matrix)."""
    A = skip_matrix(a)
    if isinstance(A, sp.MatrixBase):
        return sp.kronecker_product(A, sp.eye(P))
    return np.kron(A, np.eye(P))


def propagate(D: np.ndarray, prop) -> np.ndarray:
    """A D Aᵀ (identity without skip, ``prop`` None; batched)."""
    return D if prop is None else prop @ D @ prop.T


def propagate_adjoint(G: np.ndarray, prop) -> np.ndarray:
    """Aᵀ G A, the adjoint of :func:`propagate`: ⟨G, A dX Aᵀ⟩ = ⟨Aᵀ G A, dX⟩."""
    return G if prop is None else prop.T @ G @ prop


# ---------------------------------------------------------------------- terms
def sigma(C: np.ndarray, weight: np.ndarray, sdet, P: int, prop=None) -> np.ndarray:
    """Σ(C) = A [weight ∘ (B C Bᵀ) + Σdet] Aᵀ (batched); ``sdet=None`` gives the linear part dΣ."""
    D = weight * shift(C, P)
    if sdet is not None:
        D = D + sdet
    return propagate(D, prop)


def sigma_sym(C: sp.Matrix, weight: sp.Matrix, sdet: sp.Matrix, P: int, prop=None) -> sp.Matrix:
    """SymPy template of :func:`sigma` on explicit matrices."""
    D = weight.multiply_elementwise(shift_sym(C, P)) + sdet
    return D if prop is None else prop * D * prop.T


def data_matrix(C_SS: np.ndarray, mask_SS, kappa: float, sigma_v2: float) -> np.ndarray:
    """A(C) = κ 1 + σ_v² (M_out ∘ C)_SS from C_SS (batched); ``kappa=None`` gives the linear part dA."""
    out = sigma_v2 * mask_SS * C_SS
    return out if kappa is None else kappa * np.eye(C_SS.shape[-1]) + out


def data_matrix_sym(C_SS: sp.Matrix, mask_SS, kappa, sigma_v2) -> sp.Matrix:
    """SymPy template of :func:`data_matrix`."""
    m, mask = C_SS.shape[0], np.asarray(mask_SS)
    return sp.Matrix(m, m, lambda a, b: kappa * int(a == b) + sigma_v2 * int(mask[a, b]) * C_SS[a, b])


def action_value(logdet_C, logdet_Sigma, trace, n, yAy):
    """S/N = ½ [ln det C − ln det Σ − tr(Σ⁻¹C) + n − y_Sᵀ A⁻¹ y_S] (numbers, arrays or SymPy)."""
    return (logdet_C - logdet_Sigma - trace + n - yAy) / 2

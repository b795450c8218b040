"""The span of the inputs: where the Gaussians of the μP action live when the input kernel is singular.

With D < P inputs, linearly dependent or duplicated patterns, the input part of the pre-activation
covariance Σ(C) is singular: h ~ N(0, Σ) is a Gaussian on the range of Σ.  The action and the
forward–backward equations are then those of the nonsingular theory written on that range (the
limit of nonsingular problems, tested in tests/test_fl_singular_inputs.py): with U an orthonormal
basis of the range,

    Σ⁻¹ → Σ⁺ = U (UᵀΣU)⁻¹ Uᵀ,     ln det Σ → ln det(UᵀΣU),

and the same for C (linear φ: C = ⟨hhᵀ⟩ has the range of Σ; :func:`kernel_span`).  Every variation dC
of the solvers stays in the range, so the pseudo-inverse is the exact derivative there.

The range is decided once per matrix by :func:`span`: sites with zero variance are dropped, and of
the correlation matrix R = D^{-½} M D^{-½} (D = diag M: scale-free, so that small but genuine
variances, e.g. g^{2t} at late times, are kept) the eigendirections with eigenvalue <= RANK_TOL are
dropped.  A direction with relative variance ε below the tolerance changes the solution by O(ε)
(the ε → 0 limit of tests/test_fl_singular_inputs.py), below the solver's accuracy.

A :class:`Span` is stored padded: ``basis`` (..., n, n) with the m orthonormal columns first and n − m
zero columns, ``dead`` (..., n) marks the zero columns; batched over time blocks.  ``None`` stands for
the full space (the nonsingular case runs the unchanged Cholesky code).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg as sla
from scipy.linalg import lapack

from ...errors import NotPositiveDefinite

#: eigenvalues of the correlation matrix at or below this count as zero (the span drops them)
RANK_TOL = 1e-10
#: a diagonal entry below −NEGATIVE_TOL × max |diagonal| is a negative variance: not PSD, no span (rounding of zeros passes)
NEGATIVE_TOL = 1e-12
#: reciprocal condition number (LAPACK estimate) above which a matrix is full rank without an eigensolve
FAST_RCOND = 1e-7


@dataclass
class Span:
    """Padded orthonormal basis of a range (module docstring): ``basis`` (..., n, n), ``dead`` (..., n)."""

    basis: np.ndarray
    dead: np.ndarray

    @property
    def rank(self) -> np.ndarray:
        return (~self.dead).sum(-1)

    def project(self, M: np.ndarray) -> np.ndarray:
        """UᵀMU with unit diagonal on the dead coordinates (a nonsingular matrix of the same size)."""
        Mu = np.swapaxes(self.basis, -1, -2) @ M @ self.basis
        return Mu + self.dead[..., None, :] * np.eye(M.shape[-1])


def _basis(M: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray] | None:
    """(padded basis, dead) of the range of one PSD matrix M, or None when M is nonsingular at ``tol``."""
    n = M.shape[0]
    d = np.diag(M).copy()
    if np.any(d < -NEGATIVE_TOL * max(np.abs(d).max(initial=0.0), 1e-300)) or not np.all(np.isfinite(d)):
        raise NotPositiveDefinite("a matrix with a negative (or non-finite) variance is not positive semi-definite")
    live = d > 0
    if live.all():
        R = M / np.sqrt(np.outer(d, d))
        c, info = lapack.dpotrf(R, lower=True)
        if info == 0:
            rc, info2 = lapack.dpocon(c, float(np.abs(R).sum(0).max()), uplo="L")
            if info2 == 0 and rc > FAST_RCOND:
                return None
    idx = np.flatnonzero(live)
    s = np.sqrt(d[idx])
    lam, V = np.linalg.eigh(M[np.ix_(idx, idx)] / np.outer(s, s))
    keep = lam > tol
    B = np.zeros((n, int(keep.sum())))
    if B.shape[1]:
        B[idx] = np.linalg.qr(s[:, None] * V[:, keep])[0]
    if B.shape[1] == n:
        return None
    basis = np.zeros((n, n))
    basis[:, :B.shape[1]] = B
    dead = np.arange(n) >= B.shape[1]
    return basis, dead


def span(M: np.ndarray, tol: float = RANK_TOL) -> Span | None:
    """The range of PSD M (..., n, n) as a :class:`Span` (batched: one basis per leading index), or None
    when every matrix is nonsingular at ``tol`` (module docstring)."""
    M = np.asarray(M, dtype=float)
    flat = M.reshape((-1,) + M.shape[-2:])
    parts = [_basis(0.5 * (A + A.T), tol) for A in flat]
    if all(p is None for p in parts):
        return None
    n = M.shape[-1]
    basis = np.stack([np.eye(n) if p is None else p[0] for p in parts]).reshape(M.shape)
    dead = np.stack([np.zeros(n, bool) if p is None else p[1] for p in parts]).reshape(M.shape[:-1])
    return Span(basis, dead)


def condition(M: np.ndarray, tol: float = RANK_TOL) -> float:
    """Condition number of PSD M on its span: λ_max/λ_min over the eigenvalues above ``tol``·λ_max."""
    lam = np.linalg.eigvalsh(0.5 * (M + M.T))
    keep = lam[lam > tol * lam[-1]] if lam.size and lam[-1] > 0 else lam[:0]
    return float(keep[-1] / keep[0]) if keep.size else float("inf")


def inv_logdet(M: np.ndarray, sp: Span | None, name: str):
    """(M⁺, ln det) on the span (M⁻¹ and ln det M for ``sp`` None) by Cholesky; batched over leading axes.
    Raises NotPositiveDefinite if M is not positive definite on the span."""
    Mu = M if sp is None else sp.project(M)
    try:
        L = np.linalg.cholesky(Mu)
    except np.linalg.LinAlgError:
        raise NotPositiveDefinite(f"{name} is not positive definite") from None
    logdet = 2.0 * np.log(np.diagonal(L, axis1=-2, axis2=-1)).sum(-1)
    if M.ndim == 2:
        inv = sla.cho_solve((L, True), np.eye(M.shape[0]))
    else:
        Li = np.linalg.inv(L)
        inv = np.swapaxes(Li, -1, -2) @ Li
    if sp is not None:
        inv = sp.basis @ inv @ np.swapaxes(sp.basis, -1, -2)
    return 0.5 * (inv + np.swapaxes(inv, -1, -2)), logdet


def factor(M: np.ndarray, sp: Span | None, name: str, condition: bool = False):
    """Padded factor L with M = L Lᵀ on the span (zero columns at the dead coordinates; the Cholesky
    factor for ``sp`` None); batched.  ``condition``: also return the LAPACK estimate (1-norm, O(n²)) of
    the condition number of M on the span (that of its Cholesky factor squared; the unit dead block in)."""
    try:
        L = np.linalg.cholesky(M if sp is None else sp.project(M))
    except np.linalg.LinAlgError:
        raise NotPositiveDefinite(f"{name} is not positive definite") from None
    out = L if sp is None else sp.basis @ L
    if not condition:
        return out
    rc = [lapack.dtrcon(Lk, norm="1", uplo="L", diag="N")[0] for Lk in L.reshape((-1,) + L.shape[-2:])]
    return out, float(1.0 / max(min(rc), 1e-300) ** 2)


class SpanBases:
    """Orthonormal bases (n, m) of the ranges of the covariances Σ a measure is called with, one per
    subspace and kept: a subspace met again gets the same basis, so that points h = U chol(UᵀΣU) x of a
    fixed rule or of common random numbers x move smoothly with Σ (the fixed-point map stays smooth)."""

    def __init__(self, tol: float = RANK_TOL):
        self.tol, self._kept = tol, []

    def basis(self, Sigma: np.ndarray) -> np.ndarray | None:
        """U with range(U) = range(Σ), None when Σ is nonsingular."""
        sp = span(Sigma, self.tol)
        if sp is None:
            return None
        U = sp.basis[:, ~sp.dead]
        for V in self._kept:
            if V.shape == U.shape and np.abs(V @ (V.T @ U) - U).max() < 1e-8:
                return V
        if len(self._kept) > 64:
            self._kept.clear()
        self._kept.append(U)
        return U

"""The μP action of a linear network with its gradient and Hessian from verified matrix rules.

Closed-form action (theory Sec. 5; the terms Σ(C), A(C), S/N of :mod:`.terms`), with the constant
chosen so that S = 0 at the prior (GP) kernel without data:

    S/N = ½ [ ln det C − ln det Σ(C) − tr(Σ⁻¹C) + n − y_Sᵀ A(C)⁻¹ y_S ],   Σ(C) = A[Wm ∘ (BCBᵀ) + Σdet]Aᵀ.

Ordered gradient G (dS/N = tr(G dC)), assembled from the rules of :mod:`.rules`:

    G = ½ [ C⁻¹ − Σ⁻¹ + Bᵀ(Wm ∘ Aᵀ(Σ⁻¹CΣ⁻¹ − Σ⁻¹)A)B + σ_v² E_S(M_out ∘ w wᵀ) ],   w = A(C)⁻¹ y_S.

Stationarity G = 0 is the forward–backward pair of Sec. 4 for the Gaussian tilted measure:
C = (Σ⁻¹ − Ĉ)⁻¹ with Ĉ = Bᵀ(Wm ∘ Aᵀ(Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹)A)B + σ_v² E_S(M_out ∘ wwᵀ), ⟨hhᵀ⟩ = C
(A = 1 without skip).  Matrices are on sites (n = T·P); every method accepts a batch of directions.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from .problem import FLProblem
from .terms import action_value, data_matrix, embed, propagate_adjoint, restrict, sigma, unshift


from ...errors import NotPositiveDefinite  # noqa: E402  (defined with the other errors)


def _inv_logdet(M: np.ndarray, name: str):
    try:
        L = np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        raise NotPositiveDefinite(f"{name} is not positive definite") from None
    inv = sla.cho_solve((L, True), np.eye(M.shape[0]))
    return 0.5 * (inv + inv.T), 2.0 * np.log(np.diag(L)).sum()


class Point:
    """Everything the gradient and Hessian need at one C (inverses computed once)."""

    def __init__(self, act: "LinearAction", C: np.ndarray):
        pr = act.pr
        self.C = C
        self.Sigma = act.sigma(C)
        self.Cinv, self.logdetC = _inv_logdet(C, "C")
        self.Sinv, self.logdetS = _inv_logdet(self.Sigma, "Σ(C)")
        self.Q = self.Sinv @ C @ self.Sinv  # Σ⁻¹CΣ⁻¹
        A = data_matrix(restrict(C, pr.sites_S), pr.mask_out_SS, pr.kappa, pr.sigma_v2)
        self.Ainv, self.logdetA = _inv_logdet(A, "A(C)")
        self.w = self.Ainv @ pr.y_S
        self.trace = float(np.sum(self.Sinv * C))


class LinearAction:
    """S/N, its gradient and Hessian-vector products for linear φ (module docstring)."""

    def __init__(self, pr: FLProblem):
        self.pr = pr
        self.P = pr.P
        self.n = pr.n

    # -------------------------------------------------------------- pieces
    def sigma(self, C: np.ndarray) -> np.ndarray:
        """Σ(C) = A [Wm ∘ (B C Bᵀ) + Σdet] Aᵀ (theory Sec. 2; :func:`.terms.sigma`)."""
        return sigma(C, self.pr.wmask, self.pr.sigma_det, self.P, self.pr.prop)

    def dsigma(self, D: np.ndarray) -> np.ndarray:
        """Directional derivative of Σ along D (linear: A (Wm ∘ B D Bᵀ) Aᵀ)."""
        return sigma(D, self.pr.wmask, None, self.P, self.pr.prop)

    def sigma_adjoint(self, Gam: np.ndarray) -> np.ndarray:
        """Chain rule through Σ: ⟨Γ, dΣ⟩ = ⟨Bᵀ(Wm ∘ AᵀΓA)B, dC⟩."""
        return unshift(self.pr.wmask * propagate_adjoint(Gam, self.pr.prop), self.P)

    def embed_S(self, K: np.ndarray) -> np.ndarray:
        """E_S: an (|S|, |S|) matrix placed on the supervised sites of an (n, n) matrix (batched)."""
        return embed(K, self.pr.sites_S, self.n)

    def point(self, C: np.ndarray) -> Point:
        return Point(self, C)

    # --------------------------------------------------------------- value
    def value(self, C: np.ndarray) -> float:
        """S/N (−inf outside the domain C ≻ 0, Σ(C) ≻ 0)."""
        try:
            p = self.point(C)
        except NotPositiveDefinite:
            return -np.inf
        return self.value_at(p)

    def value_at(self, p: Point) -> float:
        return action_value(p.logdetC, p.logdetS, p.trace, self.n, float(self.pr.y_S @ p.w))

    def data_term(self, p: Point) -> float:
        """−½ y_Sᵀ A⁻¹ y_S."""
        return -0.5 * float(self.pr.y_S @ p.w)

    # ------------------------------------------------------------ gradient
    def chat(self, p: Point, hh: np.ndarray | None = None, tilt: np.ndarray | None = None) -> np.ndarray:
        """Backward equation: Ĉ = Bᵀ(Wm ∘ Aᵀ(Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹)A)B + σ_v² E_S(M_out ∘ wwᵀ), ⟨hhᵀ⟩ = C default;
        ``tilt`` gives Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹ directly (e.g. by the Stein identity of :mod:`.tilted_mc`)."""
        inner = (p.Q if hh is None else p.Sinv @ hh @ p.Sinv) - p.Sinv if tilt is None else tilt
        data = self.pr.sigma_v2 * self.embed_S(self.pr.mask_out_SS * np.outer(p.w, p.w))
        return self.sigma_adjoint(inner) + data

    def forward(self, p: Point, chat: np.ndarray) -> np.ndarray:
        """Forward equation for the Gaussian tilted measure: C = ⟨hhᵀ⟩ = (Σ⁻¹ − Ĉ)⁻¹."""
        return np.linalg.inv(p.Sinv - chat)

    def grad_at(self, p: Point) -> np.ndarray:
        """G = ½ (C⁻¹ − Σ⁻¹ + Ĉ): zero iff the forward–backward equations hold."""
        return 0.5 * (p.Cinv - p.Sinv + self.chat(p))

    def grad(self, C: np.ndarray) -> np.ndarray:
        return self.grad_at(self.point(C))

    # ------------------------------------------------------------- Hessian
    def hessp_at(self, p: Point, D: np.ndarray) -> np.ndarray:
        """dG along D (symmetric, batched (..., n, n)): the Hessian of S/N applied to D."""
        dS = self.dsigma(D)
        SdS = p.Sinv @ dS  # Σ⁻¹ dΣ
        term_c = -p.Cinv @ D @ p.Cinv
        term_s = SdS @ p.Sinv  # d(−Σ⁻¹) = Σ⁻¹ dΣ Σ⁻¹
        M1 = SdS @ p.Q  # Σ⁻¹dΣQ; its transpose is QdΣΣ⁻¹ (Q, dΣ, Σ⁻¹ symmetric)
        dQ = -M1 - np.swapaxes(M1, -1, -2) + p.Sinv @ D @ p.Sinv
        return 0.5 * (term_c + term_s + self.sigma_adjoint(dQ + term_s) + self.data_hessp(p, D))

    def data_hessp(self, p: Point, D: np.ndarray) -> np.ndarray:
        """Derivative of the data part σ_v² E_S(M_out ∘ wwᵀ) of Ĉ along D: dw = −A⁻¹ dA w (batched)."""
        pr = self.pr
        dA = data_matrix(restrict(D, pr.sites_S), pr.mask_out_SS, None, pr.sigma_v2)
        dw = -(p.Ainv @ (dA @ p.w[:, None]))[..., 0]
        dww = dw[..., :, None] * p.w[None, :] + p.w[:, None] * dw[..., None, :]
        return pr.sigma_v2 * self.embed_S(pr.mask_out_SS * dww)

    def hessp(self, C: np.ndarray, D: np.ndarray) -> np.ndarray:
        return self.hessp_at(self.point(C), D)

    # ----------------------------------------------------------- prediction
    def readout_kernel(self, C: np.ndarray) -> np.ndarray:
        """σ_v² (M_out ∘ C) on all sites (the output covariance × N, theory Sec. 2)."""
        pr = self.pr
        return pr.sigma_v2 * np.kron(pr.mask_out, np.ones((pr.P, pr.P))) * C

    def predict(self, C: np.ndarray) -> np.ndarray:
        """Mean output at every site: f̄ = σ_v² (M_out ∘ C)_{·S} A⁻¹ y_S (theory Sec. 4), shape (n,)."""
        return self.readout_kernel(C)[:, self.pr.sites_S] @ self.point(C).w

    def predictive_variance(self, C: np.ndarray) -> np.ndarray:
        """N × Var f at every site: σ_v²(M∘C)_** − σ_v⁴ (M∘C)_*S A⁻¹ (M∘C)_S* (diagonal, shape (n,))."""
        p = self.point(C)
        K = self.readout_kernel(C)
        KS = K[:, self.pr.sites_S]
        return np.diag(K) - np.einsum("ia,ab,ib->i", KS, p.Ainv, KS)


def gp_kernel(pr: FLProblem) -> np.ndarray:
    """The prior (GP) solution C = Σ(C) without data: T sweeps of the causal recursion."""
    act = LinearAction(pr)
    C = pr.sigma_det.copy()
    for _ in range(pr.T):
        C = act.sigma(C)
    return C

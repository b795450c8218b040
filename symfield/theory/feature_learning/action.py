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

import weakref

import numpy as np
import scipy.linalg as sla

from .problem import FLProblem
from .span import Span, inv_logdet, span
from .terms import action_value, data_matrix, embed, propagate_adjoint, restrict, sigma, unshift


from ...errors import NotPositiveDefinite  # noqa: E402  (defined with the other errors)


class Point:
    """Everything the gradient and Hessian need at one C (inverses computed once).

    ``kernel`` True (linear φ): C and Σ(C) on the kernel span of the problem (:func:`kernel_span`), C⁻¹
    and Σ⁻¹ the inverses there.  False (the nonlinear solver, where C = ⟨φφᵀ⟩ need not share the range
    of Σ): no C⁻¹, and Σ⁻¹ on the range of Σ(C) (:func:`.span.span`)."""

    def __init__(self, act: "LinearAction", C: np.ndarray, kernel: bool = True):
        self.C = C
        self.Sigma = act.sigma(C)
        self.span = act.span if kernel else span(self.Sigma)
        if kernel:
            self.Cinv, self.logdetC = inv_logdet(C, self.span, "C")
        self.Sinv, self.logdetS = inv_logdet(self.Sigma, self.span, "Σ(C)")
        self.Q = self.Sinv @ C @ self.Sinv  # Σ⁻¹CΣ⁻¹
        self.Ainv, self.w = act.dual(C)
        self.trace = float(np.sum(self.Sinv * C))

    def __getattr__(self, name):
        """C⁻¹ and ln det C of a ``kernel=False`` point, on demand, on the range of C (:func:`.span.span`)."""
        if name not in ("Cinv", "logdetC"):
            raise AttributeError(name)
        self.Cinv, self.logdetC = inv_logdet(self.C, span(self.C), "C")
        return getattr(self, name)


class LinearAction:
    """S/N, its gradient and Hessian-vector products for linear φ (module docstring)."""

    def __init__(self, pr: FLProblem):
        self.pr = pr
        self.P = pr.P
        self.n = pr.n

    @property
    def span(self) -> Span | None:
        """The range of every kernel of linear φ (:func:`kernel_span`; None: the full space)."""
        return kernel_span(self.pr)

    @property
    def dim(self) -> int:
        """Dimension of the kernel span (n when the input kernel is nonsingular)."""
        sp = self.span
        return self.n if sp is None else int(sp.rank)

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

    def point(self, C: np.ndarray, kernel: bool = True) -> Point:
        return Point(self, C, kernel)

    # --------------------------------------------------------------- value
    def value(self, C: np.ndarray) -> float:
        """S/N (−inf outside the domain C ≻ 0, Σ(C) ≻ 0)."""
        try:
            p = self.point(C)
        except NotPositiveDefinite:
            return -np.inf
        return self.value_at(p)

    def value_at(self, p: Point) -> float:
        return action_value(p.logdetC, p.logdetS, p.trace, self.dim, self.data_value(p))

    def data_value(self, p: Point) -> float:
        """y_Sᵀ A⁻¹ y_S."""
        return float(self.pr.y_S @ p.w)

    def data_term(self, p: Point) -> float:
        """−½ y_Sᵀ A⁻¹ y_S."""
        return -0.5 * self.data_value(p)

    def data_grad(self, p: Point) -> np.ndarray:
        """The data part σ_v² E_S(M_out ∘ wwᵀ) of Ĉ (2 × the gradient of −½ y_Sᵀ A⁻¹ y_S)."""
        return self.pr.sigma_v2 * self.embed_S(self.pr.mask_out_SS * np.outer(p.w, p.w))

    # ------------------------------------------------------------ gradient
    def chat(self, p: Point, hh: np.ndarray | None = None, tilt: np.ndarray | None = None) -> np.ndarray:
        """Backward equation: Ĉ = Bᵀ(Wm ∘ Aᵀ(Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹)A)B + σ_v² E_S(M_out ∘ wwᵀ), ⟨hhᵀ⟩ = C default;
        ``tilt`` gives Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹ directly (e.g. by the Stein identity of :mod:`.tilted_mc`)."""
        inner = (p.Q if hh is None else p.Sinv @ hh @ p.Sinv) - p.Sinv if tilt is None else tilt
        return self.sigma_adjoint(inner) + self.data_grad(p)

    def forward(self, p: Point, chat: np.ndarray) -> np.ndarray:
        """Forward equation for the Gaussian tilted measure: C = ⟨hhᵀ⟩ = (Σ⁻¹ − Ĉ)⁻¹ = Σ(1 − ĈΣ)⁻¹ (the last
        form also on the span of a singular Σ)."""
        C = np.linalg.solve((np.eye(self.n) - chat @ p.Sigma).T, p.Sigma.T).T
        return 0.5 * (C + C.T)

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

    def dual(self, C: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(A(C)⁻¹, w = A(C)⁻¹ y_S): the data part alone (no inverse of C or Σ needed)."""
        pr = self.pr
        Ainv = inv_logdet(data_matrix(restrict(C, pr.sites_S), pr.mask_out_SS, pr.kappa, pr.sigma_v2), None,
                          "A(C)")[0]
        return Ainv, Ainv @ pr.y_S

    def data_cholesky(self, C: np.ndarray) -> np.ndarray:
        """Lower Cholesky factor of A(C) = σ_v² (M_out ∘ C)_SS + κ 1 (NotPositiveDefinite if it has none)."""
        pr = self.pr
        try:
            return np.linalg.cholesky(data_matrix(restrict(C, pr.sites_S), pr.mask_out_SS, pr.kappa, pr.sigma_v2))
        except np.linalg.LinAlgError:
            raise NotPositiveDefinite("A(C) is not positive definite") from None

    def predict(self, C: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
        """Mean output at every site: f̄ = σ_v² (M_out ∘ C)_{·S} A⁻¹ y_S (theory Sec. 4), shape (n,);
        ``w`` = A(C)⁻¹ y_S if known (else one Cholesky solve)."""
        pr = self.pr
        if w is None:
            w = sla.cho_solve((self.data_cholesky(C), True), pr.y_S)
        return self.readout_kernel(C)[:, pr.sites_S] @ w

    def predictive_variance(self, C: np.ndarray) -> np.ndarray:
        """N × Var f at every site: σ_v²(M∘C)_** − σ_v⁴ (M∘C)_*S A⁻¹ (M∘C)_S* (diagonal, shape (n,)), with
        one Cholesky factor A = L Lᵀ: the second term is the row norms of L⁻¹ (M∘C)_S*."""
        K = self.readout_kernel(C)
        Y = sla.solve_triangular(self.data_cholesky(C), K[self.pr.sites_S], lower=True)
        return np.diag(K) - np.sum(Y * Y, axis=0)


def gp_kernel(pr: FLProblem) -> np.ndarray:
    """The prior (GP) solution C = Σ(C) without data: T sweeps of the causal recursion."""
    C = pr.sigma_det.copy()
    for _ in range(pr.T):
        C = sigma(C, pr.wmask, pr.sigma_det, pr.P, pr.prop)
    return C


_SPANS: dict = {}


def _per_problem(pr: FLProblem, key: str, make):
    """Cache ``make()`` per problem data (the arrays shared by ``pr.with_targets`` copies)."""
    ident = (id(pr.sigma_det), id(pr.wmask), key)
    hit = _SPANS.get(ident)
    if hit is not None and hit[0]() is pr.sigma_det and hit[1]() is pr.wmask:
        return hit[2]
    if len(_SPANS) > 64:
        _SPANS.clear()
    val = make()
    _SPANS[ident] = (weakref.ref(pr.sigma_det), weakref.ref(pr.wmask), val)
    return val


def kernel_span_blocks(pr: FLProblem) -> Span | None:
    """Per time step (T, P, P) span of the kernels when the symmetric sector exists (:mod:`.blocks`)."""
    def make():
        C = gp_kernel(pr)
        P = pr.P
        return span(np.stack([C[t * P:(t + 1) * P, t * P:(t + 1) * P] for t in range(pr.T)]))
    return _per_problem(pr, "blocks", make)


def kernel_span(pr: FLProblem) -> Span | None:
    """The range R of the kernels of linear φ, None when it is the full space.

    h = A ξ with ξ Gaussian of covariance Wm ∘ (B C Bᵀ) + Σdet: for PSD C its range depends on range(C)
    only, R ↦ A[Σ_groups Π_g B R + range Σdet], and the tilted measure of linear φ keeps the range of Σ
    (C = Σ(1 − ĈΣ)⁻¹).  So every kernel the solvers visit has the range of the prior kernel C_GP (the
    smallest fixed point, reached by the T sweeps of :func:`gp_kernel`), decided by :func:`.span.span`;
    per time step when the symmetric sector exists (block-diagonal C_GP)."""
    def make():
        if pr.block_diagonal_invariant():
            sb = kernel_span_blocks(pr)
            if sb is None:
                return None
            return Span(sla.block_diag(*sb.basis), sb.dead.reshape(-1))
        return span(gp_kernel(pr))
    return _per_problem(pr, "full", make)

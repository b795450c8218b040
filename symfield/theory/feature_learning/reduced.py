"""The linear μP action on a low-dimensional subspace that contains the saddle point (issue 9 part 4).

Applies when Σ(C) = 𝔅 C 𝔅ᵀ + Σ₀ is a congruence — one W group, Wm = γγᵀ, so 𝔅 = A D_γ B (skip
propagator A, backshift B; nilpotent, 𝔅^T = 0) and Σ₀ = A Σdet Aᵀ — and the readout mask is
positive semi-definite, M_out = Σ_k m_k m_kᵀ (rank r: one for a shared readout, T for untied ones), so that
the data part of Ĉ is σ_v² Σ_k ê_k ê_kᵀ with ê_k = m_k ∘ E_S w, w = A(C)⁻¹ y_S.  Then:

* backward equation and C − Σ = Σ Ĉ C (the forward equation) give Ĉ = σ_v² êêᵀ + 𝔅ᵀ Ĉ C Σ⁻¹ 𝔅, so the
  range of Ĉ lies in V = span{(𝔅ᵀ)^j ê_k};
* C − C₀ = Σ_k 𝔅^k (C − Σ)(𝔅ᵀ)^k (C₀ = C_GP = Σ(C₀)), so range(C − C₀) ⊆ 𝒦 = span{𝔅^j Σ V}: dimension
  <= T², 2T in the sequential tasks measured, against n = T·P.

On a 𝔅-invariant subspace with C₀⁻¹-orthonormal basis Φ (n × R), C = C₀ + Φ N Φᵀ and c = 1 + N, the action
is exactly the same form in R dimensions (:class:`ReducedAction`):

    S/N = ½ [ln det c − ln det σ(c) − tr(σ⁻¹c) + R − y_Sᵀ A⁻¹ y_S],   σ(c) = B c Bᵀ + 1 − B Bᵀ,  B = ΦᵀC₀⁻¹𝔅Φ,

with A = A₀ + σ_v² F (1_r ⊗ N) Fᵀ (A₀ = A(C₀), F = [(m_1 ∘ Φ)_S, …, (m_r ∘ Φ)_S]) inverted by Woodbury.  :class:`Reduction` grows the
subspace from 𝒦 at the current point until the full gradient (:meth:`Reduction.grad_norm`, congruence
coordinates as in :mod:`.solver`) is below tolerance: cost O(n² R) per outer step, O(R³) per Newton–CG product.

Several W groups (Wm = Σ_g γ_g γ_gᵀ, :func:`weight_factors`): Σ(C) = Σ_g 𝔅_g C 𝔅_gᵀ + Σ₀ with 𝔅_g = A D_γg B, and all of
the above holds with the words in the 𝔅_g in place of the powers of 𝔅 (σ(c) = Σ_g B_g c B_gᵀ + 1 − Σ_g B_g B_gᵀ;
the Krylov steps take every 𝔅_g; Ĉ's low-rank part has one factor per group).

A singular input kernel (D < P, dependent patterns): every kernel lives on the span E of the inputs (the range of
C₀, :func:`.action.kernel_span`), so whitening is on the span, L₀ = E l₀ with C₀ = L₀L₀ᵀ (:meth:`Reduction.whiten`);
Ũ, 𝔅̃ and the Newton–CG products live in n' = dim E dimensions; where E = ℝᵀ ⊗ 𝒳 (the same pattern span at
every step) its basis is taken as 1_T ⊗ E_𝒳 (:func:`time_aligned`), so that 𝔅̃ keeps the form b ⊗ 1 the inertia
counts of :mod:`.reduced_top` use.  The Hessian spectra (:mod:`.reduced_spectrum`) cover several W groups and
singular inputs in the same whitened coordinates.

The observables of a result stay in this representation (:class:`ReducedPoint`, O(n² R) each): Ĉ = Z X Zᵀ +
σ_v² êêᵀ of rank R + 1 (:meth:`Reduction.backward_factors`), the fixed-point residual from the whitened gradient
(:meth:`Reduction.fixed_point_residual`), w = A⁻¹y_S by Woodbury (:meth:`Reduction.dual`); a continuation path
keeps (subspace, N) per step (:class:`KernelPath`).  Hessian spectra: :mod:`.reduced_spectrum`.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg as sla

from ...solve import ConvergenceError
from ...solve.continuation import ContinuationPath
from .action import LinearAction, gp_kernel, kernel_span
from .problem import FLProblem
from .reduced_spectrum import time_product
from .span import factor
from .terms import data_matrix, restrict

#: singular value (whitened raw directions, relative to the largest column) below which a direction is round-off
BASIS_TOL = 1e-9
#: outer (subspace) iterations per solve
MAX_OUTER = 12


def readout_factor(M: np.ndarray) -> np.ndarray | None:
    """F (T, r) with M = F Fᵀ exactly (to 1e-14; M positive semi-definite, r its rank), or None."""
    lam, V = np.linalg.eigh(M)
    scale = max(np.abs(M).max(), 1e-300)
    keep = lam > 1e-14 * scale
    F = V[:, keep] * np.sqrt(lam[keep])
    return F if np.abs(F @ F.T - M).max() <= 1e-14 * scale else None


def blockwise(N: np.ndarray, r: int) -> np.ndarray:
    """1_r ⊗ N: N acting on each of the r readout factors."""
    return np.kron(np.eye(r), N)


def weight_factors(pr: FLProblem) -> list | None:
    """Site gain vectors γ_g with Wm = Σ_g γ_g γ_gᵀ exactly (Σ(C) = Σ_g 𝔅_g C 𝔅_gᵀ + Σ₀, 𝔅_g = A D_γg B): [√diag Wm]
    for one W group, else a factor of Wm (of its T × T part when Wm = w ⊗ 𝟙𝟙ᵀ), None when there is none."""
    gam = np.sqrt(np.diag(pr.wmask))
    if np.allclose(pr.wmask, np.outer(gam, gam), rtol=1e-14, atol=0):
        return [gam]
    P = pr.P
    wT = pr.wmask[::P, ::P]
    if np.array_equal(pr.wmask, np.kron(wT, np.ones((P, P)))):
        F = readout_factor(wT)
        return None if F is None else list(np.repeat(F, P, axis=0).T)
    F = readout_factor(pr.wmask)
    return None if F is None else list(F.T)


def time_aligned(E: np.ndarray, T: int) -> np.ndarray:
    """An orthonormal basis 1_T ⊗ E_𝒳 of range E when range E = ℝᵀ ⊗ 𝒳 (EEᵀ = 1_T ⊗ Π_𝒳 to 1e-12,
    :func:`.reduced_spectrum.time_product`; sites t·P + μ), else E."""
    Px = time_product(E, T)
    if Px is None:
        return E
    lam, V = np.linalg.eigh(0.5 * (Px + Px.T))
    Ex = V[:, lam > 0.5]
    return np.kron(np.eye(T), Ex) if T * Ex.shape[1] == E.shape[1] else E


def not_applicable(pr: FLProblem) -> str | None:
    """Why the reduction is not exact for ``pr`` (module docstring), or None when it is."""
    if pr.T < 2:
        return "T = 1 (no recurrence)"
    if weight_factors(pr) is None:
        return "a W mask that is not positive semi-definite (Σ(C) is not a sum of congruences 𝔅_g C 𝔅_gᵀ)"
    if readout_factor(pr.mask_out) is None:
        return "the readout mask is not positive semi-definite"
    return None


def applicable(pr: FLProblem) -> bool:
    """Is the reduction exact for ``pr`` (:func:`not_applicable` is None)?"""
    return not_applicable(pr) is None


class Reduction:
    """The problem's congruence 𝔅, C₀ = C_GP with its Cholesky factor, A₀ = A(C₀), and the outer solver."""

    def __init__(self, pr: FLProblem):
        self.pr, self.n, self.P, self.T = pr, pr.n, pr.P, pr.T
        #: γ_g per W group (:func:`weight_factors`); ``single``: one congruence
        self.gams = weight_factors(pr)
        self.single = len(self.gams) == 1
        self.C0 = gp_kernel(pr)
        sp = kernel_span(pr)
        #: orthonormal basis E (n × n') of the span of the inputs when the input kernel is singular (C and every
        #: kernel visited live there), else None; whitened coordinates are then n'-dimensional: L₀ = E l₀
        self.E = None if sp is None else time_aligned(sp.basis[:, ~sp.dead], pr.T)
        if self.E is None:
            self.L0, self.cond0 = factor(self.C0, None, "the GP kernel", condition=True)
        else:
            self.l0, self.cond0 = factor(self.E.T @ self.C0 @ self.E, None, "the GP kernel on the span", condition=True)
            self.L0 = self.E @ self.l0
        #: dimension of the whitened coordinates (n, or n' = dim E)
        self.m = self.L0.shape[1]
        self.S = pr.sites_S
        #: readout factors on the supervised sites, (|S|, r): M_out = Σ_k m_k m_kᵀ
        self.m_S = np.repeat(readout_factor(pr.mask_out), pr.P, axis=0)[self.S]
        self.r = self.m_S.shape[1]
        self.A0 = sla.cho_factor(data_matrix(restrict(self.C0, self.S), pr.mask_out_SS, pr.kappa, pr.sigma_v2))

    # ------------------------------------------------------------- whitening
    def whiten(self, X: np.ndarray) -> np.ndarray:
        """L₀⁺X = L₀⁻¹X, or l₀⁻¹EᵀX on the span of the inputs (exact for X in the span)."""
        if self.E is None:
            return sla.solve_triangular(self.L0, X, lower=True)
        return sla.solve_triangular(self.l0, self.E.T @ X, lower=True)

    def whiten_t(self, X: np.ndarray) -> np.ndarray:
        """L₀⁺ᵀX (n' rows in, n out): L₀⁻ᵀX, or E l₀⁻ᵀX."""
        if self.E is None:
            return sla.solve_triangular(self.L0.T, X, lower=False)
        return self.E @ sla.solve_triangular(self.l0.T, X, lower=False)

    # ---------------------------------------------------------------- 𝔅
    def bmul(self, X: np.ndarray, g: int = 0) -> np.ndarray:
        """𝔅_g X = A D_γg B X (columns of X are site vectors; g: the W group)."""
        Y = np.zeros_like(X)
        Y[self.P:] = X[:-self.P]
        Y *= self.gams[g][:, None]
        return Y if self.pr.prop is None else self.pr.prop @ Y

    def bmul_t(self, X: np.ndarray, g: int = 0) -> np.ndarray:
        """𝔅_gᵀ X."""
        Y = (X if self.pr.prop is None else self.pr.prop.T @ X) * self.gams[g][:, None]
        out = np.zeros_like(Y)
        out[:-self.P] = Y[self.P:]
        return out

    def bmul_all(self, X: np.ndarray, transpose: bool = False) -> np.ndarray:
        """[𝔅_1 X, …, 𝔅_G X] (𝔅_gᵀ with ``transpose``)."""
        op = self.bmul_t if transpose else self.bmul
        return np.hstack([op(X, g) for g in range(len(self.gams))])

    def krylov(self, X: np.ndarray, transpose: bool = False) -> np.ndarray:
        """[X, 𝔅X, …, 𝔅^{T−1}X] (𝔅ᵀ with ``transpose``): the smallest 𝔅-invariant space holding X.  Several W
        groups: the words in 𝔅_g of length < T, each new block reduced to its range (SVD, BASIS_TOL)."""
        out = [X]
        for _ in range(self.T - 1):
            Y = self.bmul_all(out[-1], transpose)
            if not self.single and Y.size:
                Q, sv, _ = np.linalg.svd(Y, full_matrices=False)
                keep = sv > BASIS_TOL * max(sv.max(), 1e-300)
                Y = Q[:, keep] * sv[keep]
            out.append(Y)
        return np.hstack(out)

    # ----------------------------------------------------------- subspace
    def subspace(self, raw: np.ndarray, base: "Subspace | None" = None) -> "Subspace":
        """The smallest 𝔅-invariant subspace holding ``base`` (invariant) and the columns of ``raw``, by block
        Krylov in whitened coordinates (z = L₀⁻¹x, 𝔅̃ = L₀⁻¹𝔅L₀): each block is orthogonalised against the
        basis so far, its part above BASIS_TOL × its largest column kept (round-off of the Krylov vectors is
        dropped; a genuine direction dropped would show in :meth:`grad_norm`) and mapped by 𝔅̃ for the next."""
        U = np.zeros((self.m, 0)) if base is None else base.U
        block = self.whiten(raw)
        for _ in range(self.n + 1):
            scale = np.linalg.norm(block, axis=0).max() if block.size else 0.0
            if not scale > 0:
                break
            for _ in range(2):  # twice: orthogonal to working precision
                block = block - U @ (U.T @ block)
            Q, sv, _ = np.linalg.svd(block, full_matrices=False)
            Q = Q[:, sv > BASIS_TOL * scale]
            if not Q.shape[1]:
                break
            U = np.hstack([U, Q])
            block = self.whiten(self.bmul_all(self.L0 @ Q))
        return Subspace(self, U)

    def dual(self, sub: "Subspace | None", N, s: float) -> np.ndarray:
        """w = A⁻¹ y_S = a − A₀⁻¹F σ_v² N u (Woodbury, O(|S|²))."""
        if sub is None:
            return sla.cho_solve(self.A0, s * self.pr.y_S)
        d = sub.data(s)
        return d.a - sub.AF @ (self.pr.sigma_v2 * (blockwise(N, self.r) @ d.u(N)))

    def e_hat(self, sub: "Subspace | None", N, s: float) -> np.ndarray:
        """ê_k = m_k ∘ E_S w (:meth:`dual`), the (n, r) columns with data part Σ_k σ_v² ê_k ê_kᵀ of Ĉ."""
        e = np.zeros((self.n, self.r))
        e[self.S] = self.m_S * self.dual(sub, N, s)[:, None]
        return e

    def directions(self, sub: "Subspace | None", N, s: float) -> np.ndarray:
        """Σ V, V = span{(𝔅ᵀ)^k ê}, at C = C₀ + Φ N Φᵀ (``sub`` None: C₀); 𝒦 = its 𝔅-closure (:meth:`subspace`)."""
        V = self.krylov(self.e_hat(sub, N, s), transpose=True)
        SV = self.C0 @ V
        if sub is not None:
            for g in range(len(self.gams)):  # Σ(C) = C₀ + Σ_g 𝔅_gΦ N (𝔅_gΦ)ᵀ
                BPhi = self.bmul(sub.Phi, g)
                SV = SV + BPhi @ (N @ (BPhi.T @ V))
        return SV

    def state(self, C: np.ndarray):
        """(subspace, N) with C = C₀ + Φ N Φᵀ for a dense stationary point C (O(n³): its whitened C − C₀ is
        diagonalised; the 𝔅-closure of its range holds C exactly when C − C₀ has the structure of the module
        docstring)."""
        Ct = self.whiten(self.whiten(C - self.C0).T)
        lam, V = np.linalg.eigh(0.5 * (Ct + Ct.T))
        keep = np.abs(lam) > 1e-13 * max(np.abs(lam).max(), 1e-300)
        sub = self.subspace(self.L0 @ V[:, keep])
        return sub, sub.U.T @ Ct @ sub.U

    def pruned(self, sub: "Subspace", N: np.ndarray, tol: float = 1e-13):
        """(subspace, N) on the 𝔅-closure of the range of N alone (drops directions the point does not use)."""
        lam, Vn = np.linalg.eigh(N)
        keep = np.abs(lam) > tol * max(np.abs(lam).max(), 1e-300)
        if not keep.any():
            return None, None
        new = self.subspace(sub.Phi @ Vn[:, keep])
        return new, new.project(sub, N)

    def solve(self, s: float, sub: "Subspace | None", N, gtol: float, label: str = "μP saddle point"):
        """Maximise S/N at targets s·Y from C = C₀ + Φ N Φᵀ: alternate the maximisation on the subspace
        (:class:`ReducedAction`, Newton–CG of :func:`.solver.maximise`) with its growth by the directions 𝒦
        at the new point, until the full gradient (:meth:`grad_norm`) is below the attainable tolerance.
        Returns (subspace, N, full gradient norm, trust-region result)."""
        from .solver import ROUNDOFF_FLOOR, attainable_gtol, maximise
        if sub is not None:
            sub, N = self.pruned(sub, N)
        history = []
        for _ in range(MAX_OUTER):
            raw = self.directions(sub, N, s)
            new = self.subspace(raw, sub)
            grown = sub is None or new.R > sub.R
            N = np.zeros((new.R, new.R)) if sub is None else new.project(sub, N)
            sub = new
            act = ReducedAction(sub, s)
            c, res = maximise(act, np.eye(sub.R) + N, gtol=gtol, label=label)
            N = 0.5 * (c + c.T) - np.eye(sub.R)
            g = self.grad_norm(sub, N, s)
            history.append(g)
            # converged; or the subspace holds every direction of the gradient (it did not grow) and the rest is
            # round-off (no longer halved by another outer step), accepted up to ROUNDOFF_FLOOR·gtol like the dense
            # solver (:func:`.solver.maximise`)
            stalled = not grown and len(history) > 1 and g > 0.5 * history[-2] and g <= ROUNDOFF_FLOOR * gtol
            if g <= attainable_gtol(gtol, self.cond0 * np.linalg.cond(c)) or stalled:
                res.grad_norm, res.at_roundoff = g, res.at_roundoff or g > gtol
                return sub, N, res
        raise ConvergenceError(f"{label}: the subspace iteration did not reach |grad| <= {gtol:g} "
                               f"(dimension {sub.R} of {self.n})", history)

    def backward_factors(self, sub: "Subspace", N: np.ndarray, s: float):
        """(Z, X, ê) with Ĉ = Z X Zᵀ + σ_v² ê êᵀ, the backward equation at C = C₀ + Φ N Φᵀ in low rank: on the
        subspace Σ = C₀ + Φ(σ − 1)Φᵀ, so Σ⁻¹CΣ⁻¹ − Σ⁻¹ = Ψ X Ψᵀ with Ψ = C₀⁻¹Φ, X = σ⁻¹(c − σ)σ⁻¹, and
        𝔅ᵀ(·)𝔅 maps it to Z = 𝔅ᵀΨ (O(n² R))."""
        c = np.eye(sub.R) + N
        si = np.linalg.inv(sub.sigma(c))
        Z = self.bmul_all(self.whiten_t(sub.U), transpose=True)
        X = si @ (c - sub.sigma(c)) @ si
        return Z, sla.block_diag(*[X] * len(self.gams)), self.e_hat(sub, N, s)

    def chat(self, sub: "Subspace", N: np.ndarray, s: float) -> np.ndarray:
        """Ĉ (n, n) from :meth:`backward_factors`."""
        Z, X, e = self.backward_factors(sub, N, s)
        out = Z @ X @ Z.T + self.pr.sigma_v2 * (e @ e.T)
        return 0.5 * (out + out.T)

    def _whitened_gradient(self, sub: "Subspace", N: np.ndarray, s: float):
        """(Q, g) with L₀ᵀ G L₀ = Q g Qᵀ, Q orthonormal (n, 2R + 1): the full gradient G = ½(C⁻¹ − Σ⁻¹ + Ĉ) at
        C = C₀ + Φ N Φᵀ in whitened coordinates (C̃ = 1 + Ũ N Ũᵀ, Ũ = L₀⁻¹Φ orthonormal):
        G̃ = ½[Ũ(c⁻¹ − σ⁻¹)Ũᵀ + Y X Yᵀ + σ_v² ẽẽᵀ], Y = L₀ᵀZ, ẽ = L₀ᵀê (:meth:`backward_factors`)."""
        c = np.eye(sub.R) + N
        Z, X, e = self.backward_factors(sub, N, s)
        Q, Rz = np.linalg.qr(np.hstack([sub.U, self.L0.T @ Z, self.L0.T @ e]))
        g = 0.5 * Rz @ sla.block_diag(np.linalg.inv(c) - np.linalg.inv(sub.sigma(c)), X,
                                  self.pr.sigma_v2 * np.eye(self.r)) @ Rz.T
        return Q, g

    def grad_norm(self, sub: "Subspace", N: np.ndarray, s: float) -> float:
        """‖Lᵀ G L‖_F (C = L Lᵀ) of the full gradient from :meth:`_whitened_gradient` (‖·‖ = ‖L_qᵀ g L_q‖,
        L_q L_qᵀ = QᵀC̃Q on the basis Q of its range)."""
        Q, g = self._whitened_gradient(sub, N, s)
        QU = Q.T @ sub.U
        Lq = np.linalg.cholesky(np.eye(Q.shape[1]) + QU @ N @ QU.T)
        return float(np.linalg.norm(Lq.T @ g @ Lq))

    def fixed_point_residual(self, sub: "Subspace", N: np.ndarray, s: float) -> float:
        """max |C − (Σ⁻¹ − Ĉ)⁻¹| / max |C| (theory Sec. 5) in O(n² R): Σ⁻¹ − Ĉ = C⁻¹ − 2G, whitened
        1 + Q h Q ᵀ with h = QᵀŨ(c⁻¹ − 1)ŨᵀQ − 2g (:meth:`_whitened_gradient`), inverted on the basis Q."""
        Q, g = self._whitened_gradient(sub, N, s)
        QU = Q.T @ sub.U
        c = np.eye(sub.R) + N
        h = QU @ (np.linalg.inv(c) - np.eye(sub.R)) @ QU.T - 2.0 * g
        k = np.eye(h.shape[0])
        delta = np.linalg.inv(k + h) - k - QU @ N @ QU.T
        LQ = self.L0 @ Q
        return float(np.abs(LQ @ delta @ LQ.T).max() / np.abs(self.dense(sub, N)).max())

    def dense(self, sub: "Subspace", N: np.ndarray) -> np.ndarray:
        """C = C₀ + Φ N Φᵀ as an (n, n) array."""
        C = self.C0 + sub.Phi @ N @ sub.Phi.T
        return 0.5 * (C + C.T)

    def value(self, sub: "Subspace", N: np.ndarray, s: float) -> float:
        return ReducedAction(sub, s).value(np.eye(sub.R) + N)

    def continuation(self, grid, gtol: float, loose: float | None = None, on_step=None, min_step: float = 1e-4):
        """Follow the (single) branch from C₀ through the scales ``grid`` (increasing, positive), halving a
        step that fails; the last scale is solved to ``gtol``, the others to ``loose`` (default ``gtol``).
        Returns (ContinuationPath of C as a :class:`KernelPath`, (subspace, N) at the last scale)."""
        path = ContinuationPath([0.0], KernelPath(self), [None])
        s_cur, sub, N = 0.0, None, None
        history = []
        for target in grid:
            while s_cur < target:
                s_next = target
                while True:
                    tol = gtol if s_next == grid[-1] or loose is None else max(gtol, loose)
                    try:
                        sub_n, N_n, res = self.solve(s_next, sub, N, tol)
                        break
                    except ConvergenceError as err:
                        history.extend(err.history[-3:])
                        if s_next - s_cur <= min_step * grid[-1]:
                            raise ConvergenceError(f"continuation: no convergence at s = {s_next:.6g}",
                                                   history) from err
                        s_next = 0.5 * (s_cur + s_next)
                s_cur, sub, N = s_next, sub_n, N_n
                path.s.append(s_cur)
                path.x.append((sub, N))
                path.info.append(res)
                if on_step is not None:
                    on_step(s_cur, path.x[-1], res)
        return path, (sub, N)

    def error(self, sub: "Subspace", N: np.ndarray, s: float) -> float:
        """:func:`.solver.newton_error` on the subspace: max |Φ Δc Φᵀ| / max |C| with Δc the Newton correction of
        the reduced action (the saddle point lies in the subspace: 𝒦 at the solution, module docstring)."""
        from .solver import newton_correction
        dc = newton_correction(ReducedAction(sub, s), np.eye(sub.R) + N)
        return float(np.abs(sub.Phi @ dc @ sub.Phi.T).max() / np.abs(self.dense(sub, N)).max())


class KernelPath(Sequence):
    """The kernels C of a continuation stored as (subspace, N) and rebuilt on access, C = C₀ + Φ N Φᵀ
    (O(n² R)); a path holds O(n R) numbers per step instead of n².  The first entry is C₀."""

    def __init__(self, red: Reduction):
        self.red, self.states = red, [None]

    def append(self, state) -> None:
        self.states.append(state)

    def __len__(self) -> int:
        return len(self.states)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        st = self.states[i]
        return self.red.C0.copy() if st is None else self.red.dense(*st)


class ReducedPoint:
    """A point C = C₀ + Φ N Φᵀ of the subspace solver at targets s·Y, for the observables of a result."""

    def __init__(self, red: Reduction, sub: "Subspace", N: np.ndarray, s: float):
        self.red, self.sub, self.N, self.s = red, sub, N, s

    def chat_factors(self):
        """(U, K) with Ĉ = U K Uᵀ (:meth:`Reduction.backward_factors`), U of n × (R + 1)."""
        Z, X, e = self.red.backward_factors(self.sub, self.N, self.s)
        return np.hstack([Z, e]), sla.block_diag(X, self.red.pr.sigma_v2 * np.eye(self.red.r))

    def chat(self) -> np.ndarray:
        return self.red.chat(self.sub, self.N, self.s)

    def dual(self) -> np.ndarray:
        return self.red.dual(self.sub, self.N, self.s)

    def fixed_point_residual(self) -> float:
        return self.red.fixed_point_residual(self.sub, self.N, self.s)


class SubspaceData:
    """a = A₀⁻¹ y_S, b = Fᵀ a and y_Sᵀ a at one target scale s."""

    def __init__(self, sub: "Subspace", s: float):
        red = sub.red
        self.sub, self.y = sub, s * red.pr.y_S
        self.a = sla.cho_solve(red.A0, self.y)
        self.b = sub.F.T @ self.a
        self.yAy0 = float(self.y @ self.a)

    def u(self, N: np.ndarray) -> np.ndarray:
        """u = Fᵀ A⁻¹ y_S = (1 + σ_v² G N)⁻¹ b (Woodbury)."""
        red = self.sub.red
        return np.linalg.solve(np.eye(self.b.size) + red.pr.sigma_v2 * self.sub.G @ blockwise(N, red.r), self.b)


class Subspace:
    """A subspace invariant under every 𝔅_g: Ũ (orthonormal, whitened), Φ = L₀Ũ, B_g = ŨᵀL₀⁺𝔅_gΦ, F = (m ∘ Φ)_S,
    G = FᵀA₀⁻¹F."""

    def __init__(self, red: Reduction, U: np.ndarray):
        self.red, self.U = red, U
        self.Phi = red.L0 @ U
        #: B_g = ŨᵀL₀⁻¹𝔅_gΦ per W group
        self.Bs = [U.T @ red.whiten(red.bmul(self.Phi, g)) for g in range(len(red.gams))]
        self.F = np.hstack([red.m_S[:, k, None] * self.Phi[red.S] for k in range(red.r)])
        self.AF = sla.cho_solve(red.A0, self.F)
        self.G = self.F.T @ self.AF
        self._data = {}

    @property
    def R(self) -> int:
        return self.U.shape[1]

    def data(self, s: float) -> SubspaceData:
        if s not in self._data:
            self._data = {s: SubspaceData(self, s)}
        return self._data[s]

    def sigma(self, c: np.ndarray) -> np.ndarray:
        """σ(c) = Σ_g B_g c B_gᵀ + 1 − Σ_g B_g B_gᵀ."""
        return sum(B @ c @ B.T - B @ B.T for B in self.Bs) + np.eye(self.R)

    def project(self, other: "Subspace", N: np.ndarray) -> np.ndarray:
        """N' with Φ' N' Φ'ᵀ = Φ N Φᵀ (``other`` = (Φ, N); exact when range Φ ⊆ range Φ')."""
        T = self.U.T @ other.U
        return T @ N @ T.T


class ReducedAction(LinearAction):
    """S/N as a function of c = 1 + N on a :class:`Subspace` (module docstring): the σ(c) of a congruence by B,
    the data part by Woodbury; the ln det, trace and Σ-chain terms are those of :class:`LinearAction`."""

    def __init__(self, sub: Subspace, s: float):
        self.pr, self.sub, self.n, self.P, self.r = sub.red.pr, sub, sub.R, None, sub.red.r
        self.d = sub.data(s)
        self.sv2 = self.pr.sigma_v2

    span = None

    @property
    def dim(self) -> int:
        return self.n

    def sigma(self, C):
        return self.sub.sigma(C)

    def dsigma(self, D):
        return sum(B @ D @ B.T for B in self.sub.Bs)

    def sigma_adjoint(self, Gam):
        return sum(B.T @ Gam @ B for B in self.sub.Bs)

    def dual(self, c):
        """((1 + σ_v² G N)⁻¹ G, u = Fᵀ A⁻¹ y_S) in place of (A⁻¹, w)."""
        Hm = np.eye(self.r * self.n) + self.sv2 * self.sub.G @ blockwise(c - np.eye(self.n), self.r)
        HG = np.linalg.solve(Hm, self.sub.G)
        return HG, np.linalg.solve(Hm, self.d.b)

    def data_value(self, p) -> float:
        """y_Sᵀ A⁻¹ y_S = y_Sᵀ A₀⁻¹ y_S − σ_v² bᵀ N u."""
        return self.d.yAy0 - self.sv2 * float(self.d.b @ (blockwise(p.C - np.eye(self.n), self.r) @ p.w))

    def data_grad(self, p):
        """σ_v² Σ_k u_k u_kᵀ (u = [u_1, …, u_r])."""
        U = p.w.reshape(self.r, self.n)
        return self.sv2 * U.T @ U

    def data_hessp(self, p, D):
        """d(σ_v² u uᵀ) along D: du = −σ_v² (1 + σ_v² G N)⁻¹ G D u (batched)."""
        U = p.w.reshape(self.r, self.n)
        DU = np.swapaxes(D @ U.T, -1, -2).reshape(D.shape[:-2] + (-1,))  # (1_r ⊗ D) u
        dU = (-self.sv2 * (p.Ainv @ DU[..., None])[..., 0]).reshape(D.shape[:-2] + U.shape)
        return self.sv2 * (np.swapaxes(dU, -1, -2) @ U + U.T @ dU)

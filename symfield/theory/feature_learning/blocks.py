"""The μP action at time-block-diagonal kernels, block by block (the symmetric sector).

When the symmetric sector exists (``FLProblem.block_diagonal_invariant``), C = ⊕_t C_t with P×P
blocks, Σ_t = g_t² C_{t−1} + Σdet_t and A = ⊕_t A_t, A_t = κ1 + σ_v² (C_t)_{S_t S_t}, so

    S/N = ½ Σ_t [ ln det C_t − ln det Σ_t − tr(Σ_t⁻¹C_t) − y_tᵀA_t⁻¹y_t ] + n/2,
    G_t = ½ [ C_t⁻¹ − Σ_t⁻¹ + g_{t+1}² (Σ_{t+1}⁻¹C_{t+1}Σ_{t+1}⁻¹ − Σ_{t+1}⁻¹) + σ_v² E_{S_t}(w_t w_tᵀ) ].

The Hessian at such a point decouples into lag sectors k = |t − s| (theory Sec. 7.2): a
perturbation with blocks D_t = dC_{t,t+k} maps to dG_{t,t+k} =
½[−C_t⁻¹D_tC_{t+k}⁻¹ + Σ_t⁻¹dΣ_tΣ_{t+k}⁻¹ + w_{t+1}(dQ_{t+1} + Σ_{t+1}⁻¹dΣ_{t+1}Σ_{t+1+k}⁻¹)],
dΣ_t = w_t D_{t−1}, w_t = M_{t,t+k} g_t g_{t+k}, dQ_t = −Σ_t⁻¹dΣ_tQ_{t+k} − Q_tdΣ_tΣ_{t+k}⁻¹ + Σ_t⁻¹D_tΣ_{t+k}⁻¹
(Q = Σ⁻¹CΣ⁻¹; for k >= 1 the data term does not contribute).  Both cost O(T P³) per product.
All operators are given in congruence coordinates D_t = L_t V_t L_{t+k}ᵀ (C_t = L_t L_tᵀ), where the
ln det part is exactly −½·1.  Checked against the dense :class:`LinearAction` in the tests.
Σ, A and S/N are those of :mod:`.terms`; spectra of the lag sectors are in :mod:`.spectrum`.
"""
from __future__ import annotations

import numpy as np

from .action import NotPositiveDefinite, kernel_span_blocks
from .problem import FLProblem
from .span import factor, inv_logdet
from .terms import action_value, data_matrix, sigma


def _chol(M, name):
    try:
        return np.linalg.cholesky(M)
    except np.linalg.LinAlgError:
        raise NotPositiveDefinite(f"{name} is not positive definite") from None


def _inv(L):
    Li = np.linalg.inv(L)
    return np.swapaxes(Li, -1, -2) @ Li


class BlockPoint:
    """Inverses and log-determinants of the blocks at one block-diagonal C ((T, P, P) array)."""

    def __init__(self, bl: "Blocks", Cb: np.ndarray):
        T = bl.T
        self.C = Cb
        self.Sig = bl.sigma(Cb)
        self.Cinv, ldC = inv_logdet(Cb, bl.span, "C")
        self.Sinv, ldS = inv_logdet(self.Sig, bl.span, "Σ(C)")
        self.logdetC, self.logdetS = float(ldC.sum()), float(ldS.sum())
        self.Q = self.Sinv @ Cb @ self.Sinv
        self.Ainv, self.w, self.yAy = [], [], 0.0
        for t in range(T):
            S = bl.S[t]
            if S.size:
                Ai = _inv(_chol(data_matrix(Cb[t][np.ix_(S, S)], 1.0, bl.kappa, bl.sv2), "A(C)"))
                w = Ai @ bl.y[t]
                self.yAy += float(bl.y[t] @ w)
            else:
                Ai, w = np.zeros((0, 0)), np.zeros(0)
            self.Ainv.append(Ai)
            self.w.append(w)


class Blocks:
    """Block form of the action for a problem whose symmetric sector exists."""

    def __init__(self, pr: FLProblem):
        if not pr.block_diagonal_invariant():
            raise ValueError("the time-block-diagonal sector is not invariant for this problem")
        self.pr, self.T, self.P = pr, pr.T, pr.P
        T, P = self.T, self.P
        self.g2 = np.array([pr.wmask[t * P, t * P] for t in range(T)])  # g_t² (0 at t = 0)
        sup = pr.supervised
        self.S = [np.flatnonzero(sup[:, t]) for t in range(T)]
        self.y = [pr.Y[self.S[t], t] for t in range(T)]
        self.kappa, self.sv2 = pr.kappa, pr.sigma_v2
        self.n = pr.n
        #: per-step span of the kernels (:func:`.action.kernel_span_blocks`; None: nonsingular)
        self.span = kernel_span_blocks(pr)
        self.dim = self.n if self.span is None else int(self.span.rank.sum())

    # ------------------------------------------------------------ conversion
    def blocks(self, C: np.ndarray) -> np.ndarray:
        P = self.P
        return np.stack([C[t * P:(t + 1) * P, t * P:(t + 1) * P] for t in range(self.T)])

    def full(self, Cb: np.ndarray) -> np.ndarray:
        out = np.zeros((self.n, self.n))
        P = self.P
        for t in range(self.T):
            out[t * P:(t + 1) * P, t * P:(t + 1) * P] = Cb[t]
        return out

    def sigma(self, Cb: np.ndarray) -> np.ndarray:
        """The diagonal blocks Σ_t = g_t² C_{t−1} + Σdet_t of :func:`.terms.sigma` (no skip here)."""
        pr = self.pr
        return self.blocks(sigma(self.full(Cb), pr.wmask, pr.sigma_det, self.P))

    # --------------------------------------------------------------- lag 0
    def point(self, Cb) -> BlockPoint:
        return BlockPoint(self, Cb)

    def value_at(self, p: BlockPoint) -> float:
        return action_value(p.logdetC, p.logdetS, float(np.sum(p.Sinv * p.C)), self.dim, p.yAy)

    def grad_at(self, p: BlockPoint) -> np.ndarray:
        G = p.Cinv - p.Sinv
        G[:-1] += self.g2[1:, None, None] * (p.Q[1:] - p.Sinv[1:])
        for t in range(self.T):
            S = self.S[t]
            if S.size:
                G[t][np.ix_(S, S)] += self.sv2 * np.outer(p.w[t], p.w[t])
        return 0.5 * G

    def hessp_at(self, p: BlockPoint, D: np.ndarray) -> np.ndarray:
        """dG along block-diagonal D ((T, P, P))."""
        dS = np.zeros_like(D)
        dS[1:] = self.g2[1:, None, None] * D[:-1]
        term_c = -p.Cinv @ D @ p.Cinv
        term_s = p.Sinv @ dS @ p.Sinv
        dQ = -p.Sinv @ dS @ p.Q - p.Q @ dS @ p.Sinv + p.Sinv @ D @ p.Sinv
        out = term_c + term_s
        out[:-1] += self.g2[1:, None, None] * (dQ[1:] + term_s[1:])
        for t in range(self.T):
            S = self.S[t]
            if S.size:
                dA = self.sv2 * D[t][np.ix_(S, S)]
                dw = -p.Ainv[t] @ (dA @ p.w[t])
                out[t][np.ix_(S, S)] += self.sv2 * (np.outer(dw, p.w[t]) + np.outer(p.w[t], dw))
        return 0.5 * out

    # ---------------------------------------------------------- lag k >= 1
    def sector_weights(self, k: int) -> np.ndarray:
        """w_t = M_{t,t+k} g_t g_{t+k} for t = 0..T-1-k (0 at t = 0)."""
        pr, P = self.pr, self.P
        return np.array([pr.wmask[t * P, (t + k) * P] for t in range(self.T - k)])

    def sector_operator(self, p: BlockPoint, k: int):
        """Hessian of S/N in lag sector k >= 1, congruence coordinates: a function V -> H V on
        (T-k, P, P) arrays (V_t = block (t, t+k)), symmetric in the Euclidean product of the entries."""
        T, P = self.T, self.P
        m = T - k
        L = factor(p.C, self.span, "C")
        a, b = slice(0, m), slice(k, T)
        La, Lb = L[a], L[b]
        Si, Q = p.Sinv, p.Q
        w = self.sector_weights(k)
        wn = np.concatenate([w[1:], [0.0]])  # adjoint weight of block t: w_{t+1}

        def op(V):
            D = La @ V @ np.swapaxes(Lb, -1, -2)
            dS = np.zeros_like(D)
            dS[..., 1:, :, :] = w[1:, None, None] * D[..., :-1, :, :]
            term_s = Si[a] @ dS @ Si[b]
            dQ = -Si[a] @ dS @ Q[b] - Q[a] @ dS @ Si[b] + Si[a] @ D @ Si[b]
            out = term_s.copy()
            out[..., :-1, :, :] += wn[:-1, None, None] * (dQ[..., 1:, :, :] + term_s[..., 1:, :, :])
            return -0.5 * V + 0.5 * (np.swapaxes(La, -1, -2) @ out @ Lb)
        return op, (m, P, P)

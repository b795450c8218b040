"""Top eigenvalue of the full Hessian of S/N at a point of the subspace solver, by Lanczos with Hessian-vector
products of cost O(n² R) (issue 9 part 4: no (n²)×(n²) Hessian is formed).

At C = C₀ + Φ N Φᵀ (:mod:`.reduced`), in coordinates whitened by C₀ = L₀L₀ᵀ every matrix of the Hessian is the
identity plus a term on the orthonormal basis Ũ = L₀⁻¹Φ of the subspace (c = 1 + N, σ = σ(c)):

    C̃ = 1 + Ũ N Ũᵀ,   Σ̃ = 1 + Ũ(σ − 1)Ũᵀ,   Σ̃⁻¹C̃Σ̃⁻¹ = 1 − Ũ(1 − σ⁻¹cσ⁻¹)Ũᵀ,

Σ(C) enters through the congruence 𝔅̃ = L₀⁻¹𝔅L₀ (kept sparse when it is, e.g. for a time-block-diagonal C₀),
and the data part through ẽ = L₀ᵀê and A(C)⁻¹ by Woodbury.  The Hessian-vector product is that of
:meth:`.action.LinearAction.hessp_at` written with these factors (:meth:`WhitenedHessian.apply`).  The
congruence coordinates of :mod:`.solver` at C use a factor C = L Lᵀ; here L = L₀ M, M = 1 + Ũ(c^½ − 1)Ũᵀ
(every factor gives the same spectrum, L and the Cholesky factor differ by an orthogonal matrix), so a
product is D̃ = M V M, the whitened product, then M(·)M.  :func:`top_eigen` runs Lanczos (``eigsh``) on it.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sps
import scipy.sparse.linalg as ssl

from ...errors import NotSupportedError
from .solver import smat, svec
from .terms import data_matrix, restrict

#: 𝔅̃ is stored sparse when at most this fraction of its entries is non-zero
SPARSE_FRACTION = 0.2


def _low(U: np.ndarray, a: np.ndarray, X: np.ndarray) -> np.ndarray:
    """(1 − U a Uᵀ) X."""
    return X - U @ (a @ (U.T @ X))


def _sandwich(U, a, X, b) -> np.ndarray:
    """(1 − U a Uᵀ) X (1 − U b Uᵀ)."""
    Y = _low(U, a, X)
    return Y - ((Y @ U) @ b) @ U.T


def _sqrtm_psd(c: np.ndarray) -> np.ndarray:
    lam, V = np.linalg.eigh(0.5 * (c + c.T))
    return (V * np.sqrt(lam)) @ V.T


class WhitenedHessian:
    """The Hessian of S/N at C = C₀ + Φ N Φᵀ (targets s·Y) in the congruence coordinates at C (module docstring)."""

    def __init__(self, red, sub, N: np.ndarray, s: float):
        if red.hessian_support is not None:
            raise NotSupportedError(f"the subspace Hessian is written for one W group (one congruence 𝔅̃) and a "
                                    f"nonsingular input kernel, not {red.hessian_support}: use the dense Hessian "
                                    f"(spectrum.top_eigen)")
        self.red, self.n, self.sv2 = red, red.n, red.pr.sigma_v2
        self.sub_state = (sub, N)
        U = self.U = sub.U
        R = sub.R
        c = np.eye(R) + N
        sig = sub.sigma(c)
        ci, si = np.linalg.inv(c), np.linalg.inv(sig)
        self.a_c, self.a_s = np.eye(R) - ci, np.eye(R) - si  # C̃⁻¹ = 1 − Ũ a_c Ũᵀ, Σ̃⁻¹ = 1 − Ũ a_s Ũᵀ
        self.a_q = np.eye(R) - si @ c @ si  # Σ̃⁻¹C̃Σ̃⁻¹ = 1 − Ũ a_q Ũᵀ
        self.m = -(_sqrtm_psd(c) - np.eye(R))  # M = 1 − Ũ m Ũᵀ
        Bt = sla.solve_triangular(red.L0, red.bmul(red.L0), lower=True)
        self.Bt = sps.csr_array(Bt) if np.count_nonzero(Bt) <= SPARSE_FRACTION * Bt.size else Bt
        e = red.e_hat(sub, N, s)
        self.e_t = red.L0.T @ e  # ẽ_k = L₀ᵀê_k, (n, r)
        self.S, self.m_S = red.S, red.m_S
        # A(C)⁻¹ v = A₀⁻¹v − A₀⁻¹F (1 + K G)⁻¹ K FᵀA₀⁻¹v, K = σ_v² 1_r ⊗ N (Woodbury)
        K = self.sv2 * np.kron(np.eye(red.r), N)
        self._wood = (sub.AF, np.linalg.solve(np.eye(K.shape[0]) + K @ sub.G, K))

    def _ainv(self, v: np.ndarray) -> np.ndarray:
        AF, W = self._wood
        a = sla.cho_solve(self.red.A0, v)
        return a - AF @ (W @ (AF.T @ v))

    def data_direction(self, De: np.ndarray) -> np.ndarray:
        """d̃_k = L₀ᵀ dê_k (n, r) from D̃ẽ (n, r): dw = −A⁻¹ dA w with dA w = σ_v² Σ_k m_k ∘ (D ê_k)_S in original
        coordinates (D ê_k = L₀ D̃ ẽ_k), and dê_k = m_k ∘ E_S dw."""
        u = self.red.L0 @ De
        dw = -self._ainv(self.sv2 * np.sum(self.m_S * u[self.S], axis=1))
        de = np.zeros((self.n, self.m_S.shape[1]))
        de[self.S] = self.m_S * dw[:, None]
        return self.red.L0.T @ de

    def nondata(self, D: np.ndarray) -> np.ndarray:
        """The whitened product without the data term: ½[−C̃⁻¹DC̃⁻¹ + Σ̃⁻¹dΣΣ̃⁻¹ + 𝔅̃ᵀ(dQ + Σ̃⁻¹dΣΣ̃⁻¹)𝔅̃], dΣ = 𝔅̃D𝔅̃ᵀ,
        Q = Σ̃⁻¹C̃Σ̃⁻¹.  Uses only U, Bt and a_c, a_s, a_q, so on a subspace invariant under 𝔅̃, 𝔅̃ᵀ that holds Ũ it
        is the same formula in that subspace's coordinates (:class:`SchurCertificate`)."""
        U, Bt = self.U, self.Bt
        dS = Bt @ (Bt @ D).T  # 𝔅̃ D 𝔅̃ᵀ (D symmetric)
        SdS = _low(U, self.a_s, dS)  # Σ̃⁻¹ dΣ
        term_c = -_sandwich(U, self.a_c, D, self.a_c)
        term_s = SdS - ((SdS @ U) @ self.a_s) @ U.T  # Σ̃⁻¹ dΣ Σ̃⁻¹
        M1 = SdS - ((SdS @ U) @ self.a_q) @ U.T  # Σ̃⁻¹ dΣ Q̃
        inner = -M1 - M1.T + _sandwich(U, self.a_s, D, self.a_s) + term_s
        adj = Bt.T @ (Bt.T @ inner.T).T  # 𝔅̃ᵀ (·) 𝔅̃
        out = 0.5 * (term_c + term_s + adj)
        return 0.5 * (out + out.T)

    def apply(self, D: np.ndarray) -> np.ndarray:
        """The whitened Hessian-vector product L₀ᵀ H(L₀ D L₀ᵀ) L₀ (as :meth:`.action.LinearAction.hessp_at`):
        :meth:`nondata` plus the data term ½σ_v² Σ_k (d̃_k ẽ_kᵀ + ẽ_k d̃_kᵀ) (:meth:`data_direction`)."""
        d_t = self.data_direction(D @ self.e_t)
        data = 0.5 * self.sv2 * (d_t @ self.e_t.T + self.e_t @ d_t.T)
        return self.nondata(D) + data

    def congruence(self, V: np.ndarray) -> np.ndarray:
        """The product in the congruence coordinates at C: M · apply(M V M) · M."""
        U, m = self.U, self.m
        return _sandwich(U, m, self.apply(_sandwich(U, m, V, m)), m)

    def direction(self, V: np.ndarray) -> np.ndarray:
        """V in congruence coordinates as a perturbation of C: L₀ M V M L₀ᵀ."""
        L0 = self.red.L0
        return L0 @ _sandwich(self.U, self.m, V, self.m) @ L0.T


def top_eigen(red, sub, N: np.ndarray, s: float, tol: float = 1e-10, seed: int = 0):
    """(largest eigenvalue of the full Hessian of S/N in congruence coordinates at C = C₀ + Φ N Φᵀ, direction
    (n, n) in C coordinates, normalised) by Lanczos on :class:`WhitenedHessian` (O(n² R) per product, plus
    O(n² T P) for a sparse 𝔅̃; the vectors are svec of n × n matrices)."""
    H = WhitenedHessian(red, sub, N, s)
    n = red.n
    dim = n * (n + 1) // 2
    op = ssl.LinearOperator((dim, dim), matvec=lambda v: svec(H.congruence(smat(np.ravel(v), n))), dtype=float)
    v0 = np.random.default_rng(seed).standard_normal(dim)
    lam, vec = ssl.eigsh(op, k=1, which="LA", tol=tol, v0=v0, ncv=min(dim, 24))
    D = H.direction(smat(vec[:, 0], n))
    return float(lam[0]), D / np.linalg.norm(D)


# ------------------------------------------------------------------ the stability certificate
def reducing_basis(H: WhitenedHessian, cap: int) -> np.ndarray | None:
    """Orthonormal W (n, R_w) of the smallest subspace 𝒲 holding Ũ and ẽ and invariant under 𝔅̃ and 𝔅̃ᵀ (block
    Krylov, directions below :data:`.reduced.BASIS_TOL` of a block dropped), or None when R_w exceeds ``cap``."""
    from .reduced import BASIS_TOL
    W = np.zeros((H.n, 0))
    block = np.hstack([H.U, H.e_t])
    while block.size:
        scale = np.linalg.norm(block, axis=0).max()
        if not scale > 0:
            break
        for _ in range(2):
            block = block - W @ (W.T @ block)
        Q, sv, _ = np.linalg.svd(block, full_matrices=False)
        Q = Q[:, sv > BASIS_TOL * scale]
        if W.shape[1] + Q.shape[1] > cap:
            return None
        W = np.hstack([W, Q])
        block = np.hstack([H.Bt @ Q, H.Bt.T @ Q])
    return W


class CoupledBlock:
    """The Hessian on the perturbations V = W A Wᵀ + W X + Xᵀ Wᵀ (A symmetric R_w × R_w, rows of X (R_w, n) in
    𝒲⊥) of the congruence coordinates at C, 𝒲 = range W from :func:`reducing_basis`.

    𝒲 and 𝒲⊥ are invariant under 𝔅̃ and 𝔅̃ᵀ and C̃ = Σ̃ = 1 on 𝒲⊥ (Ũ ⊂ 𝒲), and ẽ ∈ 𝒲, so the Hessian maps these V
    to themselves and the rest, V on 𝒲⊥ × 𝒲⊥, to itself; there it is that of the GP kernel without data,
    −½‖V − 𝔅̃V𝔅̃ᵀ‖², whose largest eigenvalue is at most −½/T² (𝔅̃𝔅̃ᵀ ⪯ 1 since C̃₀ = 1 = 𝔅̃𝔅̃ᵀ + Σ̃₀, and
    𝔅̃^T = 0, so ‖(1 − 𝒯)⁻¹‖ = ‖Σ_{k<T} 𝒯^k‖ <= T for 𝒯V = 𝔅̃V𝔅̃ᵀ).  Products cost O(n R_w²) plus the sparse 𝔅̃."""

    def __init__(self, H: WhitenedHessian, W: np.ndarray):
        self.H, self.W = H, W
        Tu = W.T @ H.U
        self.mu = Tu @ H.m @ Tu.T  # M = 1 − W μ Wᵀ
        self.k = W.shape[1]
        self.dim = self.k * (self.k + 1) // 2 + self.k * H.n

    def split(self, z: np.ndarray):
        k = self.k
        a = k * (k + 1) // 2
        return smat(z[:a], k), z[a:].reshape(k, -1) / np.sqrt(2.0)

    def join(self, A: np.ndarray, X: np.ndarray) -> np.ndarray:
        return np.concatenate([svec(A), np.sqrt(2.0) * X.reshape(-1)])

    def _rows(self, A: np.ndarray, X: np.ndarray):
        """(WᵀOW, WᵀO − (WᵀOW)Wᵀ) of O = the whitened product of D = F G Fᵀ, F = [W, Xᵀ], G = [[A, 1], [1, 0]]."""
        H, W = self.H, self.W
        U, k = H.U, self.k
        F = np.hstack([W, X.T])
        G = np.block([[A, np.eye(k)], [np.eye(k), np.zeros((k, k))]])
        F1 = H.Bt @ F  # dΣ = F1 G F1ᵀ
        sF1, qF1 = _low(U, H.a_s, F1), _low(U, H.a_q, F1)
        sF, cF = _low(U, H.a_s, F), _low(U, H.a_c, F)
        terms = [(-cF, cF, 1.0), (sF1, sF1, 1.0)]  # −C̃⁻¹DC̃⁻¹, Σ̃⁻¹dΣΣ̃⁻¹
        inner = [(sF1, qF1, -1.0), (qF1, sF1, -1.0), (sF, sF, 1.0), (sF1, sF1, 1.0)]
        BtT = H.Bt.T
        terms += [(BtT @ P, BtT @ Q, c) for P, Q, c in inner]  # 𝔅̃ᵀ(dQ + Σ̃⁻¹dΣΣ̃⁻¹)𝔅̃
        WO = sum(c * ((W.T @ P) @ G) @ Q.T for P, Q, c in terms)
        # data: σ_v² Σ_k (d̃_k ẽ_kᵀ + ẽ_k d̃_kᵀ) (:meth:`WhitenedHessian.data_direction`)
        e = H.e_t
        d = H.data_direction(F @ (G @ (F.T @ e)))
        WO += H.sv2 * ((W.T @ d) @ e.T + (W.T @ e) @ d.T)
        WO *= 0.5
        Aout = WO @ W
        return 0.5 * (Aout + Aout.T), WO - Aout @ W.T

    def apply(self, z: np.ndarray) -> np.ndarray:
        """The Hessian in congruence coordinates at C (M(·)M around the whitened product), on z = [svec A, √2 X];
        a component of X along 𝒲 (round-off) is mapped to −1 × itself (off the block, below its spectrum)."""
        A, X = self.split(z)
        P = np.eye(self.k) - self.mu
        off = X @ self.W
        X = X - off @ self.W.T
        Ao, Xo = self._rows(P @ A @ P, P @ X)
        return self.join(P @ Ao @ P, P @ Xo - off @ self.W.T)


def stability(red, sub, N: np.ndarray, s: float, cap: int | None = None, tol: float = 1e-10, seed: int = 0):
    """(largest eigenvalue of the Hessian on the coupled block of :class:`CoupledBlock`, the bound −½/T² on the
    rest) at C = C₀ + Φ N Φᵀ, or None when the reducing subspace 𝒲 is larger than ``cap`` (default n/4).  The
    full Hessian's largest eigenvalue is the first when it is at least the bound, else it lies below the bound."""
    H = WhitenedHessian(red, sub, N, s)
    W = reducing_basis(H, red.n // 4 if cap is None else cap)
    if W is None:
        return None
    blk = CoupledBlock(H, W)
    op = ssl.LinearOperator((blk.dim, blk.dim), matvec=lambda v: blk.apply(np.ravel(v)), dtype=float)
    A0 = np.random.default_rng(seed).standard_normal((blk.k, blk.k))
    X0 = np.random.default_rng(seed + 1).standard_normal((blk.k, red.n))
    v0 = blk.join(A0 + A0.T, X0 - (X0 @ W) @ W.T)
    lam = ssl.eigsh(op, k=1, which="LA", tol=tol, v0=v0, ncv=min(blk.dim, 24), return_eigenvectors=False)
    return float(lam[0]), -0.5 / red.T ** 2


# ------------------------------------------------------------------ the exact certificate by inertia
class _OnSubspace:
    """:meth:`WhitenedHessian.nondata` in the coordinates of an orthonormal W whose range holds Ũ and is invariant
    under 𝔅̃ and 𝔅̃ᵀ: Ũ → WᵀŨ, 𝔅̃ → β = Wᵀ𝔅̃W (exact, the k × k blocks of the same formula)."""

    nondata = WhitenedHessian.nondata

    def __init__(self, H: WhitenedHessian, W: np.ndarray):
        self.U, self.Bt = W.T @ H.U, W.T @ (H.Bt @ W)
        self.a_c, self.a_s, self.a_q = H.a_c, H.a_s, H.a_q


class SchurCertificate:
    """The inertia of the Hessian from a k(k+1)/2-dimensional Schur complement (k = dim 𝒲), without iteration.

    On the coupled block of :class:`CoupledBlock` (congruence coordinates at C, z = [svec A, √2 X]) the quadratic
    form of the Hessian is

        q(A, X) = ⟨A, 𝒩_A A⟩ − |K X|² − σ_v⁴ jᵀ A(C)⁻¹ j,   j = J_A A + J_X X,   K X = X − a X 𝔅̃ᵀ,

    with 𝒩_A the non-data part on 𝒲 × 𝒲 (a k × k computation, :class:`_OnSubspace`), a = P s_W β P (P = (WᵀC̃W)^-½,
    s_W = WᵀΣ̃⁻¹W, β = Wᵀ𝔅̃W), j_i = Σ_k m_k,i (L₀ D ẽ_k)_{S_i} the data direction of D = the perturbation: the
    non-data part does not couple A and X (𝒲 and 𝒲⊥ are invariant under 𝔅̃, 𝔅̃ᵀ, and C̃ = Σ̃ = 1 on 𝒲⊥), and on X it
    is −½KᵀK (the non-data part of a chain whose transition is a; checked against :meth:`CoupledBlock.apply`
    in tests/test_fl_dense_paths.py).  K is invertible (𝔅̃^T = 0: K⁻¹X = Σ_{j<T} a^j X 𝔅̃ᵀ^j), so the X block
    is negative definite and by Haynsworth's inertia additivity the Hessian has exactly as many positive
    (zero) eigenvalues on the coupled block as the Schur complement

        𝒮 = 𝒩_A − J_Aᵀ (A(C)/σ_v⁴ + Q)⁻¹ J_A,   Q = J_X K⁻¹K⁻ᵀ J_Xᵀ  (|S| × |S|),

    (maximising q over Y = K X: sup_Y [−|Y|² − (u + J_X K⁻¹ Y)ᵀ G (u + …)] = −uᵀ(G⁻¹ + Q)⁻¹u, G = σ_v⁴A⁻¹).  The
    rest of the Hessian (𝒲⊥ × 𝒲⊥) is negative definite (:class:`CoupledBlock`), so the saddle point is stable
    exactly when 𝒮 is negative semi-definite.  Q = Σ_l Y_lᵀ C₀⊥ Y_l with C₀⊥ = L₀(1 − WWᵀ)L₀ᵀ and
    Y_l = Σ_j 𝔅ᵀ^j E_S diag(c_jl) (𝔅̃ᵀ^j L₀ᵀ = L₀ᵀ𝔅ᵀ^j; c from a factor of the Gram matrix of the vectors
    (aᵀ)^j P Wᵀẽ_k): sparse when 𝔅 is (no skip connections), O(ρ n |S| T) with ρ <= min(T r, k)."""

    def __init__(self, blk: CoupledBlock):
        H, W, k = blk.H, blk.W, blk.k
        red, pr = H.red, H.red.pr
        self.blk, self.k = blk, k
        P = np.eye(k) - blk.mu
        on = _OnSubspace(H, W)
        m = k * (k + 1) // 2
        basis = smat(np.eye(m), k)
        NA = np.array([svec(P @ on.nondata(P @ E @ P) @ P) for E in basis])
        self.NA = 0.5 * (NA + NA.T)
        # J_A: the data direction of D = W (PAP) Wᵀ on the svec basis
        S, mS = red.S, red.m_S
        LW = red.L0 @ W
        Gs = LW[S] @ P
        pe = P @ (W.T @ H.e_t)  # P Wᵀẽ (k, r)
        JA = np.zeros((S.size, m))
        for kk in range(mS.shape[1]):
            JA += mS[:, kk, None] * (Gs @ (basis @ pe[:, kk]).T)
        self.JA = JA
        # Q from the Gram factor of the vectors (aᵀ)^j P Wᵀẽ_k, j < T
        sW = np.eye(k) - on.U @ H.a_s @ on.U.T
        a = P @ sW @ on.Bt @ P
        self.a, self.pe = a, pe  # K X = X − a X 𝔅̃ᵀ; J_X X = Σ_k m_k ∘ (L₀ Xᵀ pe_k)_S
        Ucols = [pe]
        for _ in range(red.T - 1):
            Ucols.append(a.T @ Ucols[-1])
        Ucat = np.hstack(Ucols)  # columns (j, k)
        lam, V = np.linalg.eigh(Ucat.T @ Ucat)
        keep = lam > 1e-14 * max(lam.max(), 1e-300)
        F = (V[:, keep] * np.sqrt(lam[keep])).reshape(red.T, mS.shape[1], -1)  # (j, k, l)
        c = np.einsum("jkl,sk->jls", F, mS)  # (j, l, |S|)
        Bmat = red.bmul(np.eye(red.n))
        dense_b = np.count_nonzero(Bmat) > SPARSE_FRACTION * Bmat.size
        BT = Bmat.T if dense_b else sps.csr_array(Bmat.T)
        ES = sps.csr_array((np.ones(S.size), (S, np.arange(S.size))), shape=(red.n, S.size))
        R = [ES.toarray() if dense_b else ES]  # 𝔅ᵀ^j E_S
        for _ in range(red.T - 1):
            R.append(BT @ R[-1])
        Q = np.zeros((S.size, S.size))
        for l in range(c.shape[1]):
            if dense_b:
                Y = sum(R[j] * c[j, l] for j in range(red.T))
                YC = Y.T @ red.C0
                Ql = YC @ Y
            else:
                Y = sum(R[j] @ sps.diags_array(c[j, l]) for j in range(red.T))
                YC = np.asarray(Y.T @ red.C0)  # (|S|, n)
                Ql = np.asarray(Y.T @ YC.T).T
            YW = np.asarray(Y.T @ LW)
            Q += Ql - YW @ YW.T
        self.Q = 0.5 * (Q + Q.T)
        C = red.dense(*blk.H.sub_state)
        self.A = data_matrix(restrict(C, S), pr.mask_out_SS, pr.kappa, pr.sigma_v2)
        if pr.sigma_v2 > 0:
            Sc = self.NA - JA.T @ sla.cho_solve(sla.cho_factor(self.A / pr.sigma_v2 ** 2 + self.Q), JA)
        else:  # no data term (G = 0)
            Sc = self.NA
        self.schur = 0.5 * (Sc + Sc.T)
        self.eigenvalues = np.linalg.eigvalsh(self.schur)

    def positive(self, tol: float = 0.0) -> int:
        """The number of eigenvalues of 𝒮 above ``tol``; with tol = 0 exactly the number of positive eigenvalues
        of the Hessian."""
        return int(np.sum(self.eigenvalues > tol))


#: largest dimension k of 𝒲 for the certificate: the Schur complement is k(k+1)/2 square (3,916 at k = 88)
CERTIFICATE_MAX_K = 88


def certificate(red, sub, N: np.ndarray, s: float, cap: int | None = None) -> SchurCertificate | None:
    """:class:`SchurCertificate` at C = C₀ + Φ N Φᵀ, or None when the reducing subspace 𝒲 is larger than ``cap``
    (default :data:`CERTIFICATE_MAX_K`) or the subspace Hessian does not cover the problem
    (:attr:`.reduced.Reduction.hessian_support`)."""
    if red.hessian_support is not None:
        return None
    H = WhitenedHessian(red, sub, N, s)
    W = reducing_basis(H, CERTIFICATE_MAX_K if cap is None else cap)
    return None if W is None else SchurCertificate(CoupledBlock(H, W))

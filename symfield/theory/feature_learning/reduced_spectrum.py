"""Top eigenvalue of the full Hessian of S/N at a point of the subspace solver, by Lanczos with Hessian-vector
products of cost O(n² R) (issue 9 part 4: no (n²)×(n²) Hessian is formed).

At C = C₀ + Φ N Φᵀ (:mod:`.reduced`), in coordinates whitened by C₀ = L₀L₀ᵀ every matrix of the Hessian is the
identity plus a term on the orthonormal basis Ũ = L₀⁻¹Φ of the subspace (c = 1 + N, σ = σ(c)):

    C̃ = 1 + Ũ N Ũᵀ,   Σ̃ = 1 + Ũ(σ − 1)Ũᵀ,   Σ̃⁻¹C̃Σ̃⁻¹ = 1 − Ũ(1 − σ⁻¹cσ⁻¹)Ũᵀ,

Σ(C) enters through the congruences 𝔅̃_g = L₀⁺𝔅_gL₀, one per W group (Σ(C) = Σ_g 𝔅_g C 𝔅_gᵀ + Σ₀; kept sparse
when they are, e.g. for a time-block-diagonal C₀), and the data part through ẽ = L₀ᵀê and A(C)⁻¹ by Woodbury.
With a singular input kernel every kernel lives on the span E of the inputs, L₀ = E l₀ (n × n', :mod:`.reduced`), and
the whitened coordinates are n'-dimensional: the Hessian is that of the action on the kernels supported on E (the
domain of the span solver, :mod:`.span`), and 𝔅_g maps E into E, so 𝔅̃_gᵀL₀ᵀ = L₀ᵀ𝔅_gᵀ as in the nonsingular case.
The Hessian-vector product is that of :meth:`.action.LinearAction.hessp_at` written with these factors
(:meth:`WhitenedHessian.apply`).  The congruence coordinates of :mod:`.solver` at C use a factor C = L Lᵀ; here
L = L₀ M, M = 1 + Ũ(c^½ − 1)Ũᵀ (every factor gives the same spectrum, L and the Cholesky factor differ by an
orthogonal matrix), so a product is D̃ = M V M, the whitened product, then M(·)M.  :func:`top_eigen` runs Lanczos (``eigsh``) on it.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla
import scipy.sparse as sps
import scipy.sparse.linalg as ssl

from ...resources import check_memory
from .solver import smat, svec
from .terms import data_matrix, restrict

#: 𝔅̃ is stored sparse when at most this fraction of its entries is non-zero
SPARSE_FRACTION = 0.2


def _sparse_if(B: np.ndarray):
    """B as a sparse array when at most :data:`SPARSE_FRACTION` of its entries are non-zero."""
    return sps.csr_array(B) if np.count_nonzero(B) <= SPARSE_FRACTION * B.size else B


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
        #: n sites; nw whitened coordinates (n, or n' = dim E on the span of singular inputs)
        self.red, self.n, self.nw, self.sv2 = red, red.n, red.m, red.pr.sigma_v2
        self.sub_state = (sub, N)
        U = self.U = sub.U
        R = sub.R
        c = np.eye(R) + N
        sig = sub.sigma(c)
        ci, si = np.linalg.inv(c), np.linalg.inv(sig)
        self.a_c, self.a_s = np.eye(R) - ci, np.eye(R) - si  # C̃⁻¹ = 1 − Ũ a_c Ũᵀ, Σ̃⁻¹ = 1 − Ũ a_s Ũᵀ
        self.a_q = np.eye(R) - si @ c @ si  # Σ̃⁻¹C̃Σ̃⁻¹ = 1 − Ũ a_q Ũᵀ
        self.m = -(_sqrtm_psd(c) - np.eye(R))  # M = 1 − Ũ m Ũᵀ
        #: 𝔅̃_g = L₀⁺𝔅_gL₀ per W group (m × m)
        self.Bts = [_sparse_if(red.whiten(red.bmul(red.L0, g))) for g in range(len(red.gams))]
        e = red.e_hat(sub, N, s)
        self.e_t = red.L0.T @ e  # ẽ_k = L₀ᵀê_k, (n, r)
        self.S, self.m_S = red.S, red.m_S
        # A(C)⁻¹ v = A₀⁻¹v − A₀⁻¹F (1 + K G)⁻¹ K FᵀA₀⁻¹v, K = σ_v² 1_r ⊗ N (Woodbury)
        K = self.sv2 * np.kron(np.eye(red.r), N)
        self._wood = (sub.AF, np.linalg.solve(np.eye(K.shape[0]) + K @ sub.G, K))

    @property
    def Bt(self):
        """𝔅̃ of a problem with one W group."""
        if len(self.Bts) != 1:
            raise AttributeError("several W groups: use Bts")
        return self.Bts[0]

    @Bt.setter
    def Bt(self, value):
        self.Bts = [value]

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
        """The whitened product without the data term: ½[−C̃⁻¹DC̃⁻¹ + Σ̃⁻¹dΣΣ̃⁻¹ + Σ_g 𝔅̃_gᵀ(dQ + Σ̃⁻¹dΣΣ̃⁻¹)𝔅̃_g],
        dΣ = Σ_g 𝔅̃_gD𝔅̃_gᵀ, Q = Σ̃⁻¹C̃Σ̃⁻¹.  Uses only U, Bts and a_c, a_s, a_q, so on a subspace invariant under every
        𝔅̃_g, 𝔅̃_gᵀ that holds Ũ it is the same formula in that subspace's coordinates (:class:`SchurCertificate`)."""
        U = self.U
        dS = sum(B @ (B @ D).T for B in self.Bts)  # Σ_g 𝔅̃_g D 𝔅̃_gᵀ (D symmetric)
        SdS = _low(U, self.a_s, dS)  # Σ̃⁻¹ dΣ
        term_c = -_sandwich(U, self.a_c, D, self.a_c)
        term_s = SdS - ((SdS @ U) @ self.a_s) @ U.T  # Σ̃⁻¹ dΣ Σ̃⁻¹
        M1 = SdS - ((SdS @ U) @ self.a_q) @ U.T  # Σ̃⁻¹ dΣ Q̃
        inner = -M1 - M1.T + _sandwich(U, self.a_s, D, self.a_s) + term_s
        adj = sum(B.T @ (B.T @ inner.T).T for B in self.Bts)  # Σ_g 𝔅̃_gᵀ (·) 𝔅̃_g
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
    n = red.m
    dim = n * (n + 1) // 2
    op = ssl.LinearOperator((dim, dim), matvec=lambda v: svec(H.congruence(smat(np.ravel(v), n))), dtype=float)
    v0 = np.random.default_rng(seed).standard_normal(dim)
    lam, vec = ssl.eigsh(op, k=1, which="LA", tol=tol, v0=v0, ncv=min(dim, 24))
    D = H.direction(smat(vec[:, 0], n))
    return float(lam[0]), D / np.linalg.norm(D)


# ------------------------------------------------------------------ the stability certificate
def reducing_basis(H: WhitenedHessian, cap: int) -> np.ndarray | None:
    """Orthonormal W (m, R_w) of the smallest subspace 𝒲 holding Ũ and ẽ and invariant under every 𝔅̃_g and 𝔅̃_gᵀ
    (block Krylov, directions below :data:`.reduced.BASIS_TOL` of a block dropped), or None when R_w exceeds
    ``cap``."""
    from .reduced import BASIS_TOL
    W = np.zeros((H.nw, 0))
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
        block = np.hstack([B @ Q for B in H.Bts] + [B.T @ Q for B in H.Bts])
    return W


class CoupledBlock:
    """The Hessian on the perturbations V = W A Wᵀ + W X + Xᵀ Wᵀ (A symmetric R_w × R_w, rows of X (R_w, m) in
    𝒲⊥) of the congruence coordinates at C, 𝒲 = range W from :func:`reducing_basis`.

    𝒲 and 𝒲⊥ are invariant under every 𝔅̃_g and 𝔅̃_gᵀ and C̃ = Σ̃ = 1 on 𝒲⊥ (Ũ ⊂ 𝒲), and ẽ ∈ 𝒲, so the Hessian maps
    these V to themselves and the rest, V on 𝒲⊥ × 𝒲⊥, to itself; there it is that of the GP kernel without data,
    −½‖V − 𝒯V‖², 𝒯V = Σ_g 𝔅̃_gV𝔅̃_gᵀ, negative definite because 𝒯 is nilpotent (a T-fold product of the 𝔅̃_g
    vanishes).  With one group its largest eigenvalue is at most −½/T² (𝔅̃𝔅̃ᵀ ⪯ 1 since C̃₀ = 1 = 𝔅̃𝔅̃ᵀ + Σ̃₀, so
    ‖𝒯‖ <= 1 and ‖(1 − 𝒯)⁻¹‖ = ‖Σ_{k<T} 𝒯^k‖ <= T).  Products cost O(m R_w²) plus the sparse 𝔅̃_g."""

    def __init__(self, H: WhitenedHessian, W: np.ndarray):
        self.H, self.W = H, W
        Tu = W.T @ H.U
        self.mu = Tu @ H.m @ Tu.T  # M = 1 − W μ Wᵀ
        self.k = W.shape[1]
        self.dim = self.k * (self.k + 1) // 2 + self.k * H.nw

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
        ng = len(H.Bts)
        F1, G1 = np.hstack([B @ F for B in H.Bts]), sla.block_diag(*[G] * ng)  # dΣ = F1 G1 F1ᵀ
        sF1, qF1 = _low(U, H.a_s, F1), _low(U, H.a_q, F1)
        sF, cF = _low(U, H.a_s, F), _low(U, H.a_c, F)
        terms = [(-cF, cF, G, 1.0), (sF1, sF1, G1, 1.0)]  # −C̃⁻¹DC̃⁻¹, Σ̃⁻¹dΣΣ̃⁻¹
        inner = [(sF1, qF1, G1, -1.0), (qF1, sF1, G1, -1.0), (sF, sF, G, 1.0), (sF1, sF1, G1, 1.0)]
        terms += [(np.hstack([B.T @ P for B in H.Bts]), np.hstack([B.T @ Q for B in H.Bts]),
                   sla.block_diag(*[Gm] * ng), c) for P, Q, Gm, c in inner]  # Σ_g 𝔅̃_gᵀ(dQ + Σ̃⁻¹dΣΣ̃⁻¹)𝔅̃_g
        WO = sum(c * ((W.T @ P) @ Gm) @ Q.T for P, Q, Gm, c in terms)
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
    rest) at C = C₀ + Φ N Φᵀ, or None when the reducing subspace 𝒲 is larger than ``cap`` (default n/4) or there are
    several W groups (the bound needs ‖𝒯‖ <= 1 for 𝒯V = 𝔅̃V𝔅̃ᵀ, from 𝔅̃𝔅̃ᵀ ⪯ 1; Σ_g 𝔅̃_g𝔅̃_gᵀ ⪯ 1 does not give it).
    The full Hessian's largest eigenvalue is the first when it is at least the bound, else it lies below the bound."""
    if not red.single:
        return None
    H = WhitenedHessian(red, sub, N, s)
    W = reducing_basis(H, red.n // 4 if cap is None else cap)
    if W is None:
        return None
    blk = CoupledBlock(H, W)
    op = ssl.LinearOperator((blk.dim, blk.dim), matvec=lambda v: blk.apply(np.ravel(v)), dtype=float)
    A0 = np.random.default_rng(seed).standard_normal((blk.k, blk.k))
    X0 = np.random.default_rng(seed + 1).standard_normal((blk.k, red.m))
    v0 = blk.join(A0 + A0.T, X0 - (X0 @ W) @ W.T)
    lam = ssl.eigsh(op, k=1, which="LA", tol=tol, v0=v0, ncv=min(blk.dim, 24), return_eigenvectors=False)
    return float(lam[0]), -0.5 / red.T ** 2


# ------------------------------------------------------------------ the exact certificate by inertia
class _OnSubspace:
    """:meth:`WhitenedHessian.nondata` in the coordinates of an orthonormal W whose range holds Ũ and is invariant
    under every 𝔅̃_g and 𝔅̃_gᵀ: Ũ → WᵀŨ, 𝔅̃_g → β_g = Wᵀ𝔅̃_gW (exact, the k × k blocks of the same formula)."""

    nondata = WhitenedHessian.nondata

    def __init__(self, H: WhitenedHessian, W: np.ndarray):
        self.U, self.Bts = W.T @ H.U, [W.T @ (B @ W) for B in H.Bts]
        self.a_c, self.a_s, self.a_q = H.a_c, H.a_s, H.a_q


class SchurCertificate:
    """The inertia of the Hessian from a k(k+1)/2-dimensional Schur complement (k = dim 𝒲), without iteration.

    On the coupled block of :class:`CoupledBlock` (congruence coordinates at C, z = [svec A, √2 X]) the quadratic
    form of the Hessian is

        q(A, X) = ⟨A, 𝒩_A A⟩ − |K X|² − σ_v⁴ jᵀ A(C)⁻¹ j,   j = J_A A + J_X X,   K X = X − a X 𝔅̃ᵀ,

    with 𝒩_A the non-data part on 𝒲 × 𝒲 (a k × k computation, :class:`_OnSubspace`), a = P s_W β P (P = (WᵀC̃W)^-½,
    s_W = WᵀΣ̃⁻¹W, β = Wᵀ𝔅̃W; several W groups: K X = X − Σ_g a_g X 𝔅̃_gᵀ, a_g = P s_W β_g P, the same algebra with
    dΣ = Σ_g 𝔅̃_g D 𝔅̃_gᵀ, whose mixed part is W Σ_g β_g (PX) 𝔅̃_gᵀ + its transpose), j_i = Σ_k m_k,i (L₀ D ẽ_k)_{S_i}
    the data direction of D = the perturbation: the non-data part does not couple A and X (𝒲 and 𝒲⊥ are invariant
    under 𝔅̃, 𝔅̃ᵀ, and C̃ = Σ̃ = 1 on 𝒲⊥), and on X it is −½KᵀK (the non-data part of a chain whose transition is a;
    checked against :meth:`CoupledBlock.apply` in tests/test_fl_dense_paths.py and, for several groups,
    tests/test_fl_grouped_singular_spectra.py).  K is invertible (any T-fold product of the 𝔅̃_g vanishes, each
    shifting time by one: K⁻¹X = Σ_{j<T} (Σ_g a_g X 𝔅̃_gᵀ)^j), so the X block is negative definite and by
    Haynsworth's inertia additivity the Hessian has exactly as many positive (zero) eigenvalues on the coupled block
    as the Schur complement

        𝒮 = 𝒩_A − J_Aᵀ (A(C)/σ_v⁴ + Q)⁻¹ J_A,   Q = J_X K⁻¹K⁻ᵀ J_Xᵀ  (|S| × |S|),

    (maximising q over Y = K X: sup_Y [−|Y|² − (u + J_X K⁻¹ Y)ᵀ G (u + …)] = −uᵀ(G⁻¹ + Q)⁻¹u, G = σ_v⁴A⁻¹).  The
    rest of the Hessian (𝒲⊥ × 𝒲⊥) is negative definite (:class:`CoupledBlock`), so the saddle point is stable
    exactly when 𝒮 is negative semi-definite.  Q = Σ_l Y_lᵀ C₀⊥ Y_l with C₀⊥ = L₀(1 − WWᵀ)L₀ᵀ and
    Y_l = Σ_j 𝔅ᵀ^j E_S diag(c_jl) (𝔅̃ᵀ^j L₀ᵀ = L₀ᵀ𝔅ᵀ^j; c from a factor of the Gram matrix of the vectors
    (aᵀ)^j P Wᵀẽ_k): sparse when 𝔅 is (no skip connections), O(ρ n |S| T) with ρ <= min(T r, k).  Several W groups:
    K⁻¹ sums over words in the 𝔅̃_g (G^{T−1} of them), so Q comes instead from the time-chain form of
    :class:`ChainQ` (𝔅̃_g = b_g ⊗ 1_p, 𝒲 = ℝᵀ ⊗ 𝒱; :func:`certificate` returns None where that does not hold)."""

    def __init__(self, blk: CoupledBlock, bs: list | None = None):
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
        sW = np.eye(k) - on.U @ H.a_s @ on.U.T
        #: a_g per W group: K X = X − Σ_g a_g X 𝔅̃_gᵀ; J_X X = Σ_k m_k ∘ (L₀ Xᵀ pe_k)_S
        self.a_list, self.pe = [P @ sW @ B @ P for B in on.Bts], pe
        #: the time-chain form of Q (several W groups, or given ``bs`` = the b_g of 𝔅̃_g = b_g ⊗ 1_p), else None
        self.chain = None if bs is None and red.single else ChainQ(H, W, self.a_list, pe, bs or chain_factors(H))
        self.Q = self.chain.Q(0.0) if self.chain is not None else self._propagated_q(H, W, P, LW, pe)
        C = red.dense(*blk.H.sub_state)
        self.A = data_matrix(restrict(C, S), pr.mask_out_SS, pr.kappa, pr.sigma_v2)
        if pr.sigma_v2 > 0:
            Sc = self.NA - JA.T @ sla.cho_solve(sla.cho_factor(self.A / pr.sigma_v2 ** 2 + self.Q), JA)
        else:  # no data term (G = 0)
            Sc = self.NA
        self.schur = 0.5 * (Sc + Sc.T)
        self.eigenvalues = np.linalg.eigvalsh(self.schur)

    @property
    def a(self) -> np.ndarray:
        """a of one W group."""
        if len(self.a_list) != 1:
            raise AttributeError("several W groups: use a_list")
        return self.a_list[0]

    def _propagated_q(self, H, W, P, LW, pe) -> np.ndarray:
        """Q of one W group by sparse propagation, from the Gram factor of the vectors (aᵀ)^j P Wᵀẽ_k, j < T (the
        class docstring)."""
        red = H.red
        S, mS = red.S, red.m_S
        a = self.a
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
        return 0.5 * (Q + Q.T)

    def positive(self, tol: float = 0.0) -> int:
        """The number of eigenvalues of 𝒮 above ``tol``; with tol = 0 exactly the number of positive eigenvalues
        of the Hessian."""
        return int(np.sum(self.eigenvalues > tol))


#: largest dimension k of 𝒲 for the certificate: the Schur complement is k(k+1)/2 square (3,916 at k = 88)
CERTIFICATE_MAX_K = 88


def certificate(red, sub, N: np.ndarray, s: float, cap: int | None = None) -> SchurCertificate | None:
    """:class:`SchurCertificate` at C = C₀ + Φ N Φᵀ, or None when the reducing subspace 𝒲 is larger than ``cap``
    (default :data:`CERTIFICATE_MAX_K`), or there are several W groups and Q has no time-chain form
    (:class:`ChainQ`: 𝔅̃_g = b_g ⊗ 1_p and 𝒲 = ℝᵀ ⊗ 𝒱 needed)."""
    H = WhitenedHessian(red, sub, N, s)
    W = reducing_basis(H, CERTIFICATE_MAX_K if cap is None else cap)
    if W is None or (not red.single and (chain_factors(H) is None or time_product(W, red.T) is None)):
        return None
    return SchurCertificate(CoupledBlock(H, W))


# ------------------------------------------------------------------ the time-chain form
def chain_factors(H: WhitenedHessian) -> list | None:
    """[b_g] (T × T each) with 𝔅̃_g = b_g ⊗ 1_p (p = m/T whitened coordinates per step) to 1e-13 (relative to
    max |𝔅̃_g|), or None."""
    T = H.red.T
    if H.nw % T:
        return None
    p = H.nw // T
    out = []
    for B in H.Bts:
        Bt = B.toarray() if hasattr(B, "toarray") else np.asarray(B)
        b = Bt[::p, ::p]
        if np.abs(Bt - np.kron(b, np.eye(p))).max() > 1e-13 * max(np.abs(Bt).max(), 1e-300):
            return None
        out.append(b)
    return out


def time_product(W: np.ndarray, T: int) -> np.ndarray | None:
    """The projector Π_𝒱 (p × p) when range W = ℝᵀ ⊗ 𝒱 (WWᵀ = 1_T ⊗ Π_𝒱 to 1e-12), else None."""
    p = W.shape[0] // T
    Pi = W @ W.T
    PV = sum(Pi[t * p:(t + 1) * p, t * p:(t + 1) * p] for t in range(T)) / T
    return PV if np.abs(Pi - np.kron(np.eye(T), PV)).max() <= 1e-12 else None


class ChainQ:
    """Q(λ) = J_X(KᵀK + 2λ)⁻¹J_Xᵀ (|S| × |S|) when 𝔅̃_g = b_g ⊗ 1_p and 𝒲 = ℝᵀ ⊗ 𝒱 (one T × T chain per W group acting
    on every whitened pattern coordinate alike, e.g. C₀ = c₀ ⊗ K).  On X ∈ ℝᵏ ⊗ ℝᵀ ⊗ ℝᵖ, K = 1 − Σ_g a_g ⊗ b_g ⊗ 1_p,
    so KᵀK = κ ⊗ 1_p with κ = (1 − Σ_g a_g ⊗ b_g)ᵀ(1 − Σ_g a_g ⊗ b_g) (kT × kT, diagonalised once: κ = V ω Vᵀ), and
    the projector Π onto 𝒲⊥ commutes with b_g ⊗ 1_p: Q(λ) = Σ_kk' Ψ_kᵀ (g_kk'(λ) ⊗ 1_p) Ψ_k' with g_kk'(λ) =
    (pe_k ⊗ 1_T)ᵀ V (ω + 2λ)⁻¹ Vᵀ (pe_k' ⊗ 1_T) and Ψ_k = Π L₀ᵀ E_S diag(m_k) (m × |S|): O(r m |S|²) per λ."""

    def __init__(self, H: WhitenedHessian, W: np.ndarray, a_list: list, pe: np.ndarray, bs: list):
        red = H.red
        T, S, mS = red.T, red.S, red.m_S
        k, r = W.shape[1], mS.shape[1]
        check_memory(8.0 * (2 * r * H.nw + 2 * red.n) * S.size, "the Hessian's inertia (Ψ_k, m × |S| each)",
                     "a smaller problem (T·P)")
        Kt = np.eye(k * T) - sum(np.kron(a, b) for a, b in zip(a_list, bs))
        self.omega, V = np.linalg.eigh(Kt.T @ Kt)
        self.V = V
        # F[l, k, t] = (Vᵀ (pe_k ⊗ 1_T))[l, t]
        self.F = np.einsum("itl,ik->lkt", V.reshape(k, T, k * T), pe)
        LS = red.L0[S].T  # L₀ᵀ E_S (m, |S|)
        LS = LS - W @ (W.T @ LS)  # Π L₀ᵀ E_S
        self.Psi = np.stack([LS * mS[:, kk] for kk in range(r)])  # (r, m, |S|)
        self.r, self.T, self.p = r, T, H.nw // T

    def g(self, lam: float, power: int = 1) -> np.ndarray:
        """g(λ) = Fᵀ (ω + 2λ)^−power F, ((k, t), (k', t')) (power 2: for the derivative of Q)."""
        F = self.F.reshape(self.F.shape[0], self.r * self.T)
        return F.T @ (F / ((self.omega + 2.0 * lam) ** power)[:, None])

    def Q(self, lam: float) -> np.ndarray:
        """Q(λ) = Σ_kk' Ψ_kᵀ (g_kk'(λ) ⊗ 1_p) Ψ_k'."""
        r, T, p = self.r, self.T, self.p
        nS = self.Psi.shape[-1]
        Psi = self.Psi.reshape(r * T, p * nS)
        Z = (self.g(lam) @ Psi).reshape(r * T * p, nS)
        Q = Psi.reshape(r * T * p, nS).T @ Z
        return 0.5 * (Q + Q.T)

    def adjoint_x(self, y: np.ndarray, pe: np.ndarray) -> np.ndarray:
        """J_Xᵀy as a (k, m) matrix: Σ_k' pe_k' (Π L₀ᵀ E_S (m_k' ∘ y))ᵀ."""
        return pe @ np.einsum("knS,S->kn", self.Psi, y)

    def solve_k(self, X: np.ndarray, lam: float) -> np.ndarray:
        """(KᵀK + 2λ)⁻¹X for X (k, m) with rows in 𝒲⊥ (κ ⊗ 1_p on the (k, t) index)."""
        k = X.shape[0]
        Z = X.reshape(k * self.T, self.p)
        Z = self.V @ ((self.V.T @ Z) / (self.omega + 2.0 * lam)[:, None])
        return Z.reshape(k, -1)

    def x_norm2(self, y: np.ndarray, lam: float) -> float:
        """|(KᵀK + 2λ)⁻¹J_Xᵀy|² = yᵀ J_X (KᵀK + 2λ)⁻² J_Xᵀ y = −½ yᵀQ′(λ)y."""
        x = np.einsum("knS,S->kn", self.Psi, y).reshape(self.r * self.T, self.p)  # J_Xᵀy by (k, t)
        return float(np.sum(x * (self.g(lam, 2) @ x)))

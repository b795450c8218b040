"""The largest eigenvalue of the full Hessian of S/N at a subspace point by inertia counts of an |S| × |S| matrix
(issue 9 part 4): no iteration on n × n matrices.

The Hessian (congruence coordinates at C = C₀ + Φ N Φᵀ) splits into the coupled block and the perturbations with
both sides in 𝒲⊥ (:class:`.reduced_spectrum.CoupledBlock`); the largest eigenvalue is the larger of their tops.

* **The 𝒲⊥ × 𝒲⊥ block** is the GP Hessian without data, −½(1 − 𝒯)ᵀ(1 − 𝒯), 𝒯V = Σ_g 𝔅̃_gV𝔅̃_gᵀ (one term per W
  group).  When 𝔅̃_g = b_g ⊗ 1_p (one T × T chain per group acting on every whitened pattern coordinate alike, e.g.
  C₀ = c₀ ⊗ K; p = P, or n'/T on the span of singular inputs: :func:`.reduced_spectrum.chain_factors`) and
  𝒲 = ℝᵀ ⊗ 𝒱 (checked), 𝒲⊥ = ℝᵀ ⊗ 𝒱⊥ and 𝒯 acts on each T × T block of V between two directions of 𝒱⊥ as
  V ↦ Σ_g b_g V b_gᵀ: its top is −½ σ_min(1 − Σ_g b_g ⊗ b_g)² over T × T matrices (symmetric ones when
  dim 𝒱⊥ = 1) (:func:`rest_top`).
* **The coupled block** has the quadratic form q = zᵀ(D₀ − JᵀGJ)z on z = [svec A, √2 X]
  (:class:`.reduced_spectrum.SchurCertificate`): D₀ = diag(𝒩_A, −½KᵀK) without data, J z = J_A A + J_X X the data
  direction, G = σ_v⁴A(C)⁻¹.  Haynsworth's inertia additivity applied to [[D₀ − λ, Jᵀ], [J, G⁻¹]] both ways gives the
  number of its eigenvalues above λ (:meth:`ShiftedSchur.count`):

      #pos(D₀ − λ) + #pos(T(λ)) − |S|,   T(λ) = A(C)/σ_v⁴ − J_A(𝒩_A − λ)⁻¹J_Aᵀ + Q(λ),   Q(λ) = J_X(KᵀK + 2λ)⁻¹J_Xᵀ

  With 𝔅̃_g = b_g ⊗ 1_p, K = 1 − Σ_g a_g ⊗ b_g ⊗ 1_p and KᵀK = κ ⊗ 1_p (kT × kT κ diagonalised once; on 𝒲⊥ each
  eigenvalue ω has multiplicity dim 𝒱⊥), so Q(λ) costs O(r n |S|²) per λ (:class:`.reduced_spectrum.ChainQ`).
* **Its top eigenvalue** (:meth:`ShiftedSchur.block_top`).  Above ξ = −½ ω_min (the X block's top without data)
  the shifted X block is negative definite and eliminating it (as the certificate does at λ = 0) leaves
  𝒮(λ) = 𝒩_A − λ − J_Aᵀ(A(C)/σ_v⁴ + Q(λ))⁻¹J_A, with as many positive eigenvalues as the block has above λ; its top
  f(λ) decreases with slope at most −1, so Newton's method on f in the bracket [λ₀, λ₀ + f(λ₀)] finds the root
  and |f| bounds the error.  Below ξ (a stable point where the top lies between the 𝒲⊥ block's and ξ) the count
  decides: T(λ) decreases with λ between its poles (the eigenvalues ν of 𝒩_A and −ω/2), so bisection on the count
  until no pole is left in the bracket, then Newton's method on the eigenvalue of T(λ) that passes through 0.

Exact to :data:`TOP_TOL` plus the round-off of T(λ) (the count is an inertia; the root is bracketed); a top that
lies within :data:`POLE_DELTA` (relative) of a lone pole of T(λ) is returned as that pole (an eigenvalue of the block
without data whose eigenvector the data does not see, the generic way to sit there).  Checked
against the dense Hessian's eigenvalues in tests/test_fl_top_eigenvalue.py (one W group) and
tests/test_fl_grouped_singular_spectra.py (several W groups, singular inputs).

* **Its eigenvector** when the top is positive (:func:`top_direction`, used to leave a saddle in the subspace
  solver): A from the top eigenvector of 𝒮(λ) at the root, X from eliminating the X block at λ.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg as sla

from ...errors import ConvergenceError
from .reduced_spectrum import ChainQ, SchurCertificate, _sandwich, certificate, chain_factors, time_product
from .solver import smat, svec

#: accuracy of the top eigenvalue: |f| <= TOP_TOL in Newton's method (slope <= −1), or the final bracket width
TOP_TOL = 1e-12
#: Newton's method starts this far (relative) above ξ, where KᵀK + 2λ becomes singular
XI_MARGIN = 1e-8
#: relative distance from a lone pole of T(λ) at which the count is taken (a top within it is the pole itself)
POLE_DELTA = 1e-9
#: bound on Newton or bisection steps
MAX_STEPS = 200


def chain_factor(H) -> np.ndarray | None:
    """b (T × T) with 𝔅̃ = b ⊗ 1_p of one W group (:func:`.reduced_spectrum.chain_factors`), or None."""
    bs = chain_factors(H)
    return None if bs is None or len(bs) != 1 else bs[0]


def rest_top(bs, W: np.ndarray, p: int) -> float | None:
    """Top eigenvalue of the Hessian on 𝒲⊥ × 𝒲⊥ (module docstring; ``bs``: b_g per W group, or one b; ``p``: whitened
    coordinates per step, P for a nonsingular input kernel) when 𝒲 = ℝᵀ ⊗ 𝒱 (to 1e-12), else None; −inf when 𝒲⊥ is
    empty."""
    bs = [bs] if isinstance(bs, np.ndarray) else bs
    T = W.shape[0] // p
    PV = time_product(W, T)
    if PV is None:
        return None
    dim_perp = PV.shape[0] - int(round(np.trace(PV)))
    if dim_perp == 0:
        return -np.inf
    op = np.eye(T * T) - sum(np.kron(b, b) for b in bs)  # V ↦ V − Σ_g b_g V b_gᵀ on row-major vec(V)
    if dim_perp == 1:  # only symmetric T × T blocks
        basis = smat(np.eye(T * (T + 1) // 2), T)
        op = np.array([svec((op @ E.reshape(-1)).reshape(T, T)) for E in basis]).T
    return -0.5 * float(np.linalg.svd(op, compute_uv=False)[-1]) ** 2


class ShiftedSchur:
    """T(λ) and the eigenvalue count of the coupled block (module docstring) from a
    :class:`.reduced_spectrum.SchurCertificate` (its 𝒩_A, J_A, A(C), a_g and pe) when 𝔅̃_g = b_g ⊗ 1_p, 𝒲 = ℝᵀ ⊗ 𝒱
    (``bs``: the b_g, or one b); Q(λ) from :class:`.reduced_spectrum.ChainQ`."""

    def __init__(self, cert: SchurCertificate, bs):
        blk = cert.blk
        H, W, k = blk.H, blk.W, blk.k
        red = H.red
        bs = [bs] if isinstance(bs, np.ndarray) else bs
        self.cert, self.sv2 = cert, red.pr.sigma_v2
        self.chain = cert.chain if cert.chain is not None else ChainQ(H, W, cert.a_list, cert.pe, bs)
        self.omega = self.chain.omega
        self.nu, U = np.linalg.eigh(cert.NA)  # 𝒩_A = U ν Uᵀ
        self.JU = cert.JA @ U
        #: dim 𝒱⊥: the multiplicity of each eigenvalue −ω/2 of the X block without data (𝒲⊥ = ℝᵀ ⊗ 𝒱⊥)
        self.d_perp = (H.nw - k) // red.T

    def Q(self, lam: float) -> np.ndarray:
        """Q(λ) (|S| × |S|, :meth:`.reduced_spectrum.ChainQ.Q`)."""
        return self.chain.Q(lam)

    def schur_top(self, lam: float) -> tuple[float, float]:
        """(f, f′) with f(λ) = λ_max(𝒮(λ)), 𝒮(λ) = 𝒩_A − λ − J_Aᵀ(A/σ_v⁴ + Q(λ))⁻¹J_A, for λ > ξ (the X block's top
        without data): f > 0 exactly when the coupled block has an eigenvalue above λ (Haynsworth, the X block
        −½(KᵀK + 2λ) − data being negative definite), f′ = vᵀ𝒮′v = −1 − 2|(KᵀK + 2λ)⁻¹J_Xᵀw|², w = (A/σ_v⁴ + Q)⁻¹J_A v
        (Hellmann–Feynman, v the top eigenvector): the slope is at most −1."""
        c = self.cert
        m = c.NA.shape[0]
        Sm = c.NA - lam * np.eye(m)
        if self.sv2 > 0:
            RJ = sla.cho_solve(sla.cho_factor(c.A / self.sv2 ** 2 + self.Q(lam)), c.JA)
            Sm = Sm - c.JA.T @ RJ
        ev, vec = sla.eigh(0.5 * (Sm + Sm.T), subset_by_index=[m - 1, m - 1])
        if self.sv2 == 0:
            return float(ev[0]), -1.0
        return float(ev[0]), -1.0 - 2.0 * self.chain.x_norm2(RJ @ vec[:, 0], lam)

    def newton_top(self, a: float, tol: float) -> float | None:
        """The root of :meth:`schur_top` above ``a`` (> ξ), i.e. the coupled block's top eigenvalue, or None when
        f(a) <= 0 (no eigenvalue above a): :func:`bracketed_newton` in [a, a + f(a)] (f(a + f(a)) <= 0 as the slope
        is at most −1), stopped at |f| <= tol, which bounds the distance to the root by tol."""
        f, d = self.schur_top(a)
        return None if f <= 0 else bracketed_newton(self.schur_top, a, a + f, f, d, tol)

    def data_top(self, lam: float, q: int) -> tuple[float, float]:
        """(h, h′): the q-th smallest eigenvalue of T(λ) and its derivative uᵀT′u = −|(𝒩_A − λ)⁻¹(J_A U)ᵀu|²
        − 2|(KᵀK + 2λ)⁻¹J_Xᵀu|² (Hellmann–Feynman, u its eigenvector; negative: h decreases)."""
        ev, vec = sla.eigh(self.data_matrix(lam), subset_by_index=[q - 1, q - 1])
        u = vec[:, 0]
        return float(ev[0]), -float(np.sum(((self.JU.T @ u) / (self.nu - lam)) ** 2)) - 2.0 * self.chain.x_norm2(u, lam)

    def data_matrix(self, lam: float) -> np.ndarray:
        """T(λ) = A(C)/σ_v⁴ − J_A(𝒩_A − λ)⁻¹J_Aᵀ + Q(λ) (|S| × |S|; module docstring)."""
        c = self.cert
        JU = self.JU
        Tm = c.A / self.sv2 ** 2 - (JU / (self.nu - lam)) @ JU.T + self.Q(lam)
        return 0.5 * (Tm + Tm.T)

    def poles_above(self, lam: float) -> int:
        """#pos(D₀ − λ): eigenvalues of the block without data above λ (ν of 𝒩_A; −ω/2, d⊥ times each)."""
        return int(np.sum(self.nu > lam) + self.d_perp * np.sum(-0.5 * self.omega > lam))

    def count(self, lam: float) -> int:
        """The number of eigenvalues of the coupled block above λ: by Haynsworth on [[D₀ − λ, Jᵀ], [J, A/σ_v⁴]]
        both ways, #pos(D₀ − λ) + #pos(T(λ)) = |S| + that number (the inertia of T(λ) from its LDLᵀ factors)."""
        _, D, _ = sla.ldl(self.data_matrix(lam))
        ev = sla.eigvalsh_tridiagonal(np.diag(D).copy(), np.diag(D, 1).copy())  # D: 1 × 1 and 2 × 2 blocks
        return self.poles_above(lam) - int(np.sum(ev <= 0))

    def block_top(self, lo: float, tol: float = TOP_TOL) -> float | None:
        """The coupled block's top eigenvalue when it lies above ``lo``, else None.  Above ξ by
        :meth:`newton_top`; between ``lo`` and ξ by counts in the middle gap between the poles of T(λ) in the
        bracket (beside a lone pole: at ±:data:`POLE_DELTA` relative, and a top within that is the pole) until none
        is left, then :func:`bracketed_newton` on :meth:`data_top` (q = :meth:`poles_above`, constant there; the
        q-th eigenvalue of T(λ) decreases through 0 at the top)."""
        poles = np.concatenate([self.nu, -0.5 * self.omega])
        if self.sv2 == 0:  # the block is D₀
            return poles.max() if poles.max() > lo else None
        xi = -0.5 * float(self.omega[0])
        a = max(lo, xi + XI_MARGIN * max(1.0, abs(xi)))
        if a > lo and np.isfinite(lo) and self.count(lo) < 1:  # first the common case: nothing above lo
            return None
        top = self.newton_top(a, tol)
        if top is not None or a <= lo:
            return top
        hi = a  # the top is at most a
        if not np.isfinite(lo):  # no 𝒲⊥ block: widen downwards until the count sees the top
            lo = poles.min() - 1.0
            while self.count(lo) < 1:
                lo = hi - 2.0 * (hi - lo)
        for _ in range(MAX_STEPS):  # counts between poles (never close to one) until none is left in the bracket
            inside = np.unique(poles[(poles > lo) & (poles < hi)])
            if not inside.size or hi - lo <= tol:
                break
            if inside.size > 1:  # the middle of the gap between the two middle poles
                tests = [0.5 * (inside[inside.size // 2 - 1] + inside[inside.size // 2])]
            else:  # one pole p: is the top above p + δ, below p − δ, or within δ of p?
                p = float(inside[0])
                delta = max(tol, POLE_DELTA * max(1.0, abs(p)))
                tests = [p + delta, p - delta]
            for test in tests:
                if lo < test < hi:
                    lo, hi = (test, hi) if self.count(test) >= 1 else (lo, test)
            if inside.size == 1 and lo < inside[0] < hi:  # within δ of the pole: an eigenvalue of D₀ the data
                return float(inside[0])                   # does not see (its residue in T(λ) vanishes)
        if hi - lo <= tol:
            return 0.5 * (lo + hi)
        q = self.poles_above(0.5 * (lo + hi))
        h, d = self.data_top(lo, q)
        return bracketed_newton(lambda lam: self.data_top(lam, q), lo, hi, h, d, tol)


def top_direction(red, sub, N: np.ndarray, s: float, cert: SchurCertificate | None = None,
                  tol: float = TOP_TOL) -> tuple[float, np.ndarray, np.ndarray] | None:
    """(λ, V, D̃) for a positive top eigenvalue λ of the Hessian at C = C₀ + Φ N Φᵀ: its eigenvector V (congruence
    coordinates, whitened, m × m, unit Frobenius norm) and D̃ = M V M, the perturbation of the whitened C̃ it is
    (C coordinates: L₀ D̃ L₀ᵀ, :meth:`.reduced_spectrum.WhitenedHessian.direction`); None when the top is not
    positive or this route does not apply (:func:`top_eigenvalue`).  A positive top lies in the coupled block above ξ
    (the 𝒲⊥ block and the X block without data are negative definite), where λ is the root of f(λ) = λ_max(𝒮(λ)):
    A = smat(v) with v the top eigenvector of 𝒮(λ), and the X block's stationarity gives X = −(KᵀK + 2λ)⁻¹J_Xᵀw,
    w = (A(C)/σ_v⁴ + Q(λ))⁻¹J_A v (eliminating X at λ by Woodbury); V = W A Wᵀ + W X + XᵀWᵀ."""
    route = _inertia_route(red, sub, N, s, cert)
    if route is None:
        return None
    cert, sh, rest = route
    lam = sh.block_top(max(rest, 0.0), tol)
    if lam is None or not lam > 0:
        return None
    H, chain, W, k = cert.blk.H, sh.chain, cert.blk.W, cert.k
    Sm = cert.NA - lam * np.eye(cert.NA.shape[0])
    X = np.zeros((k, H.nw))
    if sh.sv2 > 0:
        RJ = sla.cho_solve(sla.cho_factor(cert.A / sh.sv2 ** 2 + sh.Q(lam)), cert.JA)
        Sm = Sm - cert.JA.T @ RJ
    m = Sm.shape[0]
    v = sla.eigh(0.5 * (Sm + Sm.T), subset_by_index=[m - 1, m - 1])[1][:, 0]
    if sh.sv2 > 0:
        X = -chain.solve_k(chain.adjoint_x(RJ @ v, cert.pe), lam)
    WX = W @ X
    V = W @ smat(v, k) @ W.T + WX + WX.T
    V /= np.linalg.norm(V)
    return lam, V, _sandwich(H.U, H.m, V, H.m)


def bracketed_newton(fun, lo: float, hi: float, f: float, d: float, tol: float) -> float:
    """The root in [lo, hi] of a decreasing ``fun`` (returning value and slope) with f = fun(lo) > 0 >= fun(hi)
    and d = its slope at lo: Newton steps from lo, a bisection when a step leaves the bracket, stopped when
    |f| <= tol·min(1, |slope|) (the Newton step below tol; with slope <= −1, |f| bounds the distance to the root)
    or the bracket is narrower than tol."""
    lam = lo
    for _ in range(MAX_STEPS):
        if abs(f) <= tol * min(1.0, abs(d)):
            return lam
        step = lam - f / d
        lam = step if lo < step <= hi else 0.5 * (lo + hi)
        f, d = fun(lam)
        lo, hi = (lam, hi) if f > 0 else (lo, lam)
        if hi - lo <= tol:
            return 0.5 * (lo + hi)
    raise ConvergenceError(f"the Hessian's top eigenvalue: no convergence in {MAX_STEPS} Newton steps "
                           f"(bracket [{lo!r}, {hi!r}])")


def top_eigenvalue(red, sub, N: np.ndarray, s: float, cert: SchurCertificate | None = None,
                   tol: float = TOP_TOL) -> float | None:
    """The largest eigenvalue of the full Hessian (congruence coordinates) at C = C₀ + Φ N Φᵀ (module docstring),
    or None where this route does not apply (𝔅̃ is not b ⊗ 1_P, 𝒲 is not ℝᵀ ⊗ 𝒱, or the reducing subspace is
    too large for the certificate).  ``cert``: the :class:`.reduced_spectrum.SchurCertificate` at that point when
    already computed."""
    route = _inertia_route(red, sub, N, s, cert)
    if route is None:
        return None
    _, sh, rest = route
    top = sh.block_top(rest, tol)
    return rest if top is None else top


def _inertia_route(red, sub, N: np.ndarray, s: float, cert: SchurCertificate | None):
    """(certificate, :class:`ShiftedSchur`, top of the 𝒲⊥ block) at C = C₀ + Φ N Φᵀ, or None where the route does
    not apply (no certificate, 𝔅̃_g not b_g ⊗ 1_p, 𝒲 not ℝᵀ ⊗ 𝒱)."""
    cert = certificate(red, sub, N, s) if cert is None else cert
    if cert is None:
        return None
    bs = chain_factors(cert.blk.H)
    rest = None if bs is None else rest_top(bs, cert.blk.W, cert.blk.H.nw // red.T)
    return None if rest is None else (cert, ShiftedSchur(cert, bs), rest)

"""Expectations under the tilted single-neuron measure (theory Sec. 4), exact in low dimension.

    p(h) ∝ N(h; 0, Σ) exp(½ φ(h)ᵀ Ĉ φ(h)),     Z = ∫ N(h; 0, Σ) exp(½ φᵀĈφ) dh

Every estimator here (and in :mod:`.tilted_mc`) writes the integral over a Gaussian base N(0, Q),

    ⟨f⟩ = Σ_k ω_k r(h_k) f(h_k) / Σ_k ω_k r(h_k),   r(h) = N(h; 0, Σ) e^{½φᵀĈφ} / N(h; 0, Q),

with points h_k = L_Q x_k and weights ω_k: a tensor trapezoid rule (:class:`TiltedQuadrature`, d <= 3),
or random points with common random numbers (:class:`~.tilted_mc.TiltedMC`).  :class:`GaussianMeasure`
is the exact Gaussian measure of linear φ, :class:`BlockMeasure` the product over time blocks (the
factorised measure of the DNN and of the RNN's symmetric branch).  φ is applied by a module generated
from its SymPy expression through the one codegen builder (:func:`phi_module`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import sympy as sp

from ... import codegen
from ...errors import NotPositiveDefinite
from ...gauss.registry import x as X_SYM
from .span import SpanBases

#: default trapezoid nodes per dimension of the tilted measure, and the half-width L of the grid
DEFAULT_NODES = {1: 401, 2: 161, 3: 65}
HALF_WIDTH = {1: 10.0, 2: 9.0, 3: 8.0}
MAX_QUADRATURE_DIM = 3


# --------------------------------------------------------------------------- generated φ
_PHI_TEMPLATE = '''
@njit(cache=True)
def phi_apply(h, out):
    """out[k, i] = phi(h[k, i]) (2-D, C-contiguous)."""
    for k in range(h.shape[0]):
        for i in range(h.shape[1]):
            out[k, i] = phi_s(h[k, i])
    return out
'''
_DERIV_TEMPLATE = '''
SMOOTH = {smooth}


@njit(cache=True)
def phi_derivatives(h, d1, d2):
    """d1 = phi'(h), d2 = phi''(h) elementwise (2-D; zeros when SMOOTH is False)."""
    for k in range(h.shape[0]):
        for i in range(h.shape[1]):
            d1[k, i] = dphi_s(h[k, i])
            d2[k, i] = d2phi_s(h[k, i])
'''


@lru_cache(maxsize=None)
def _phi_module(key: str, phi):
    scalar = codegen.scalar_source("phi_s", (X_SYM,), phi.expr, inline=True, vectorise=False)
    d1, d2 = phi.derivative(1), phi.derivative(2)
    smooth = not (d1.has(sp.DiracDelta) or d2.has(sp.DiracDelta) or d1.has(sp.Heaviside) or phi.kinks(0))
    derivs = [codegen.scalar_source(name, (X_SYM,), e if smooth else sp.Integer(0), inline=True, vectorise=False)
              for name, e in (("dphi_s", d1), ("d2phi_s", d2))]
    return codegen.build_module(f"tilted_phi_{key}", "symfield.theory.feature_learning.tilted_quadrature",
                                f"phi = {phi.name}: {phi.expr}",
                                [("phi", scalar), ("apply", _PHI_TEMPLATE), ("dphi", derivs[0]), ("d2phi", derivs[1]),
                                 ("derivatives", _DERIV_TEMPLATE.format(smooth=smooth))])


def phi_module(phi):
    """The generated module applying φ elementwise (``phi_apply(h, out)``)."""
    return _phi_module(phi.key, phi)


def phi_derivatives(phi, H: np.ndarray):
    """(φ'(H), φ''(H)) by the generated kernel, or None when φ is not twice differentiable (kinks)."""
    mod = phi_module(phi)
    if not mod.SMOOTH:
        return None
    H = np.ascontiguousarray(H, dtype=float)
    d1, d2 = np.empty_like(H), np.empty_like(H)
    mod.phi_derivatives(H, d1, d2)
    return d1, d2


def apply_phi(phi, H: np.ndarray) -> np.ndarray:
    """φ(H) elementwise by the generated kernel."""
    H = np.ascontiguousarray(H, dtype=float)
    out = np.empty_like(H)
    return phi_module(phi).phi_apply(H.reshape(H.shape[0], -1), out.reshape(H.shape[0], -1)).reshape(H.shape)


@lru_cache(maxsize=None)
def _grows(key: str, phi) -> bool:
    v = apply_phi(phi, np.array([[-1e3, -10.0, 10.0, 1e3]]))[0]
    return max(abs(v[0]), abs(v[3])) > 10 * max(abs(v[1]), abs(v[2]), 1e-300)


def unbounded(phi) -> bool:
    """Does |φ| grow without bound (linear, ReLU) rather than saturate (erf, tanh)?"""
    return _grows(phi.key, phi)


# --------------------------------------------------------------------------- moments
@dataclass
class Moments:
    """Tilted expectations: ⟨φφᵀ⟩, ⟨hhᵀ⟩, ⟨φhᵀ⟩, ⟨φ⟩, ln Z; ``stderr`` the standard error of the ⟨φφᵀ⟩
    entries (None: deterministic rule), ``ess`` the effective number of points; ``points`` the estimator's
    points as blocks (sites or None for all, h, φ(h), normalised weights) (None: the exact Gaussian), reused
    by the predictions for new patterns (:mod:`.prediction`)."""

    phiphi: np.ndarray
    hh: np.ndarray
    phih: np.ndarray
    mean: np.ndarray
    logZ: float
    mean_h: np.ndarray | None = None
    #: Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹ from the Stein identity (Monte Carlo, smooth φ), None: use ⟨hhᵀ⟩
    tilt: np.ndarray | None = None
    stderr: np.ndarray | None = None
    ess: float = float("inf")
    extra: dict = field(default_factory=dict)
    points: list | None = None
    #: (δΣ, δĈ) -> (δ⟨φφᵀ⟩, δ⟨hhᵀ⟩, δ tilt or None): the exact derivative of these estimates (frozen Monte Carlo
    #: points, :meth:`.tilted_mc.TiltedMC.freeze`); None: not available
    jvp: object = None


def _chol(M: np.ndarray, name: str) -> np.ndarray:
    try:
        return np.linalg.cholesky(0.5 * (M + M.T))
    except np.linalg.LinAlgError:
        raise NotPositiveDefinite(f"{name} is not positive definite") from None


def base_covariance(Sigma: np.ndarray, Chat: np.ndarray, phi) -> np.ndarray:
    """Gaussian base Q of the estimators: Σ for saturating φ (the tilt e^{½φᵀĈφ} is bounded);
    (Σ⁻¹ − Ĉ)⁻¹ for growing φ when positive definite (exact for linear φ: r ≡ const), else Σ."""
    if not unbounded(phi):
        return Sigma
    return tilted_gaussian(Sigma, Chat)


def tilted_gaussian(Sigma: np.ndarray, K: np.ndarray) -> np.ndarray:
    """(Σ⁻¹ − K)⁻¹ where Σ⁻¹ − K is positive definite, else Σ."""
    try:
        L = np.linalg.cholesky(np.linalg.inv(Sigma) - K)
    except np.linalg.LinAlgError:
        return Sigma
    Li = np.linalg.inv(L)
    return Li.T @ Li


def log_ratio(H: np.ndarray, F: np.ndarray, Sigma: np.ndarray, Chat: np.ndarray, Q: np.ndarray) -> np.ndarray:
    """ln r(h) = ln N(h; 0, Σ) − ln N(h; 0, Q) + ½ φᵀĈφ for every row of H (φ values F; on a span, H, Σ and
    Q in the span coordinates u and F on the sites)."""
    Ls, Lq = _chol(Sigma, "Σ(C)"), _chol(Q, "the base covariance")
    a = H @ np.linalg.inv(Ls).T
    b = H @ np.linalg.inv(Lq).T
    out = -0.5 * (np.einsum("ki,ki->k", a, a) - np.einsum("ki,ki->k", b, b))
    out -= np.log(np.diag(Ls)).sum() - np.log(np.diag(Lq)).sum()
    return out + 0.5 * np.einsum("ki,ki->k", F @ Chat, F)


def weighted_moments(H: np.ndarray, F: np.ndarray, logw: np.ndarray, errors: bool = False) -> Moments:
    """Self-normalised weighted averages with ln Z = ln Σ_k e^{logw_k}; ``errors``: standard errors of
    ⟨φφᵀ⟩ by the delta method of the self-normalised estimator, Var ≈ Σ_k w̄_k² (φ_iφ_j − ⟨φ_iφ_j⟩)²."""
    m = float(np.max(logw))
    w = np.exp(logw - m)
    Zs = float(w.sum())
    wn = w / Zs
    Fw = F * wn[:, None]
    phiphi = Fw.T @ F
    out = Moments(0.5 * (phiphi + phiphi.T), None, Fw.T @ H, Fw.sum(0), m + np.log(Zs), wn @ H,
                  points=[(None, H, F, wn)])
    hh = (H * wn[:, None]).T @ H
    out.hh = 0.5 * (hh + hh.T)
    w2 = wn * wn
    out.ess = 1.0 / float(w2.sum())
    if errors:
        F2 = F * F
        var = (F2 * w2[:, None]).T @ F2 - 2 * out.phiphi * ((F * w2[:, None]).T @ F) + out.phiphi ** 2 * w2.sum()
        out.stderr = np.sqrt(np.clip(var, 0.0, None))
    return out


class OnSpan:
    """A singular Σ (dependent inputs): the Gaussian base lives on range(Σ) = range(U), U orthonormal
    (:class:`~.span.SpanBases`).  Points are drawn in the coordinates u = Uᵀh (Σ_u = UᵀΣU nonsingular)
    and lifted, h = U u; φ(h) and the tilt ½φᵀĈφ are evaluated on the sites.  Densities on the span are
    basis-independent, so ln Z and all moments are those of the measure on the span."""

    _bases = None

    def on_span(self, Sigma):
        """(U or None, Σ_u): None and Σ itself when Σ is nonsingular."""
        if self._bases is None:
            self._bases = SpanBases()
        U = self._bases.basis(Sigma)
        return U, restrict(U, Sigma)


def restrict(U, M):
    """UᵀMU, M in the span coordinates (M itself for U None)."""
    return M if U is None else U.T @ M @ U


def _lift(U, M):
    """U M Uᵀ, M back on the sites (M itself for U None)."""
    return M if U is None else U @ M @ U.T


class GaussianMeasure(OnSpan):
    """Linear φ: p = N(0, K), K = (Σ⁻¹ − Ĉ)⁻¹, ln Z = ½ (ln det K − ln det Σ) (exact; on the span of Σ)."""

    exact = True

    def tilted(self, Sigma, Chat, errors: bool = False) -> Moments:
        U, Su = self.on_span(Sigma)
        Chu = restrict(U, Chat)
        Ls = _chol(Su, "Σ(C)")
        Si = np.linalg.inv(Su)
        Lk = _chol(Si - Chu, "Σ⁻¹ − Ĉ (the tilted measure is not normalisable)")
        Li = np.linalg.inv(Lk)
        K = _lift(U, Li.T @ Li)
        logZ = -np.log(np.diag(Lk)).sum() - np.log(np.diag(Ls)).sum()
        return Moments(K, K, K, np.zeros(len(K)), float(logZ), np.zeros(len(K)))


class TiltedQuadrature(OnSpan):
    """Tensor trapezoid rule in the standardised variables x of the base N(0, Q) (d <= 3): nodes x_i = i·δ
    on [−L, L] (``nodes`` per dimension), weights δ·N(x_i; 0, 1).  For integrands analytic in a strip
    around the real axis (the tilted integrands of erf, tanh) the error falls like e^{−2π·width/δ};
    Gauss–Hermite does not converge that way here (erf(σx) grows like e^{σ²y²} off the axis, so its error
    at variance ≳ 1 stalls near 1e-5).  Kinked φ (ReLU): O(δ²)."""

    exact = True

    def __init__(self, phi, nodes: int | None = None):
        self.phi, self.nodes = phi, nodes

    @staticmethod
    @lru_cache(maxsize=16)
    def _grid(d: int, n: int):
        half = HALF_WIDTH[d]
        x = np.linspace(-half, half, n)
        lw1 = np.log(x[1] - x[0]) - 0.5 * x * x - 0.5 * np.log(2 * np.pi)
        X = np.stack(np.meshgrid(*([x] * d), indexing="ij"), -1).reshape(-1, d)
        lw = np.zeros(1)
        for _ in range(d):
            lw = np.add.outer(lw, lw1).reshape(-1)
        return X, lw

    def tilted(self, Sigma, Chat, errors: bool = False) -> Moments:
        U, Su = self.on_span(Sigma)
        d = Su.shape[0]
        if d > MAX_QUADRATURE_DIM:
            raise ValueError(f"tensor quadrature of the tilted measure is for d <= {MAX_QUADRATURE_DIM}, got {d}")
        Q = base_covariance(Su, restrict(U, Chat), self.phi)
        X, lw = self._grid(d, self.nodes or DEFAULT_NODES[d])
        Hu = X @ _chol(Q, "the base covariance").T
        H = Hu if U is None else Hu @ U.T
        F = apply_phi(self.phi, H)
        return weighted_moments(H, F, lw + log_ratio(Hu, F, Su, Chat, Q))


class BlockMeasure:
    """The product measure over time blocks (Σ and Ĉ time-block-diagonal): each P-dimensional block by
    ``inner`` (quadrature or Monte Carlo); cross-time moments are products of means, ⟨φ_t φ_sᵀ⟩ = ⟨φ_t⟩⟨φ_s⟩ᵀ
    etc., exactly 0 for odd φ (``odd``: the means vanish by symmetry and are not estimated)."""

    def __init__(self, inner, T: int, P: int, odd: bool):
        self.inner, self.T, self.P, self.odd = inner, T, P, odd
        self.exact = getattr(inner, "exact", False)

    def tilted(self, Sigma, Chat, errors: bool = False) -> Moments:
        n, P = Sigma.shape[0], self.P
        out = Moments(np.zeros((n, n)), np.zeros((n, n)), np.zeros((n, n)), np.zeros(n), 0.0, mean_h=np.zeros(n),
                      stderr=None if self.exact else np.zeros((n, n)), tilt=np.zeros((n, n)) if self.odd else None,
                      points=None if isinstance(self.inner, GaussianMeasure) else [])
        out.extra["odd"] = self.odd
        for t in range(self.T):
            b = slice(t * P, (t + 1) * P)
            sites = np.arange(t * P, (t + 1) * P)
            if not np.any(Sigma[b, b]):  # a state with no variance (e.g. no input): φ(0) deterministic
                if out.points is not None:
                    h0 = np.zeros((1, P))
                    out.points.append((sites, h0, apply_phi(self.inner.phi, h0), np.ones(1)))
                continue
            m = self.inner.tilted(Sigma[b, b], Chat[b, b], errors=errors)
            if out.points is not None:  # None where the inner measure has no points (a Gaussian surrogate)
                out.points = None if m.points is None else out.points + [(sites,) + m.points[0][1:]]
            out.phiphi[b, b], out.hh[b, b], out.phih[b, b] = m.phiphi, m.hh, m.phih
            if not self.odd:
                out.mean[b], out.mean_h[b] = m.mean, m.mean_h
            out.logZ += m.logZ
            if out.tilt is not None:
                if m.tilt is None:
                    out.tilt = None
                else:
                    out.tilt[b, b] = m.tilt
            out.ess = min(out.ess, m.ess)
            if out.stderr is not None and m.stderr is not None:
                out.stderr[b, b] = m.stderr
        blk = np.kron(np.eye(self.T), np.ones((P, P))) > 0
        out.phiphi = np.where(blk, out.phiphi, np.outer(out.mean, out.mean))
        out.hh = np.where(blk, out.hh, np.outer(out.mean_h, out.mean_h))
        out.phih = np.where(blk, out.phih, np.outer(out.mean, out.mean_h))
        return out

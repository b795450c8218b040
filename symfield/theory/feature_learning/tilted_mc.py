"""Monte Carlo expectations under the tilted single-neuron measure in any dimension (theory Sec. 4).

Self-normalised importance sampling (the weighted averages of :mod:`.tilted_quadrature`) from the
defensive mixture q = α N(0, Σ) + (1 − α) N(0, Q):

    ⟨f⟩ ≈ Σ_k w_k f(h_k) / Σ_k w_k,   w_k = N(h_k; 0, Σ) e^{½φᵀĈφ} / q(h_k),   Z ≈ mean_k w_k,

with the standard normals behind h_k drawn once per dimension (common random numbers), so that
for a fixed proposal the estimate is a smooth, deterministic function of (Σ, Ĉ) and the fixed-point
iteration converges to the solution of the sampled equations.  The Σ component bounds the weights
for saturating φ (w <= e^{½ max φᵀĈφ}/α); Q is the statistically linearised tilted Gaussian
(:func:`linearised_covariance`) unless set by :meth:`TiltedMC.adapt` (the solver keeps whichever of the two
gives the larger effective sample size at the point it starts from).  Statistical errors:
delta-method standard errors of ⟨φφᵀ⟩ (``Moments.stderr``) and the effective sample size.

Control variate (``control=True``; off by default): the Gaussian averages of the two proposal components are known —
A(K)_ab = E_{N(0,K)}[φ(h_a)φ(h_b)] from the compiled kernel map (closed form or dual kernel,
:func:`symfield.theory.kernel_map.kernel_map`) and E_{N(0,K)}[hhᵀ] = K — so with q's own plain average subtracted,

    ⟨φφᵀ⟩ ≈ Σ_k (w̄_k − 1/M) φ_kφ_kᵀ + α A(Σ₀) + (1 − α) A(Q₀),   ⟨hhᵀ⟩ ≈ Σ_k (w̄_k − 1/M) h_kh_kᵀ + α Σ₀ + (1 − α) Q₀

(α = m/M of the points from the Σ₀ component).  The same expectation; its noise is that of (w − 1)φφᵀ, small where
the proposal is close to the measure — at weak tilt — and no smaller than before where the weights are broad
(benchmarks/bench_fl_control_variate.py: erf, orthonormal sequential task, T = 8, P = 5, 4000 points, seed-to-seed
spread of ⟨φφᵀ⟩ 8 × smaller at 0.25·Y, 3 × at 0.5·Y, 1.2 × at Y, where the whole solve was no more accurate and took
more map evaluations in both seeds tried — hence off by default).  It costs two Gaussian kernels per draw (erf 2.2 ms,
tanh's numeric dual kernel 77 ms at T·P = 200).  For frozen points the correction is a constant: the Jacobian
(``Moments.jvp``) is the same.

For twice-differentiable φ the backward equation's Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹ is estimated by the Stein identity
(integration by parts against N(0, Σ) e^V, V = ½φᵀĈφ):  Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹ = ⟨∇V∇Vᵀ + ∇²V⟩, with
∇V = φ' ∘ Ĉφ and ∇²V = diag(φ')Ĉdiag(φ') + diag(φ'' ∘ Ĉφ): bounded for erf and tanh, free of Σ⁻¹ (no
amplification of the sampling noise by the conditioning of Σ) and exactly 0 at Ĉ = 0 (``Moments.tilt``).
"""
from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np

from ...errors import AccuracyError
from ...resources import check_memory
from ..kernel_map import kernel_map
from .span import span
from .tilted_quadrature import (Moments, OnSpan, _chol, apply_phi, base_covariance, phi_derivatives, restrict,
                                tilted_gaussian, weighted_moments)


#: Gauss–Hermite nodes of the one-dimensional averages ⟨φ'⟩ of :func:`linearised_covariance`
SLOPE_NODES = 40


def linearised_covariance(Sigma, U, Su, Chat, phi) -> np.ndarray:
    """The proposal of the statistically linearised tilt: φ(h) ≈ D h with D_ii = E_{N(0, Σ_ii)}[φ'] gives
    ½φᵀĈφ ≈ ½hᵀDĈDh and the Gaussian N(0, (Σ⁻¹ − DĈD)⁻¹) (on the span: Σ_u, UᵀDĈDU); Σ where that is not
    positive definite; for kinked φ the rule of the quadrature (:func:`.tilted_quadrature.base_covariance`).
    A smooth, deterministic function of (Σ, Ĉ): the sampled map stays smooth (common random numbers), it is
    exact for linear φ and equals Σ at Ĉ = 0 — unlike a covariance estimated from the weighted points, whose
    sampling noise (∝ √(d / ESS)) spoils the weights in high dimension d."""
    D = slopes(phi, Sigma)
    if D is None:  # kinked φ: the rule of the quadrature estimators
        return base_covariance(Su, restrict(U, Chat), phi)
    return tilted_gaussian(Su, restrict(U, D[:, None] * Chat * D[None, :]))


@lru_cache(maxsize=4)
def _hermite(n: int):
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / w.sum()


def slopes(phi, Sigma) -> np.ndarray | None:
    """D_ii = E_{N(0, Σ_ii)}[φ'] by Gauss–Hermite (``SLOPE_NODES``); None for φ that is not twice differentiable."""
    x, w = _hermite(SLOPE_NODES)
    der = phi_derivatives(phi, np.sqrt(np.clip(np.diag(Sigma), 0, None))[None, :] * x[:, None])
    return None if der is None else w @ der[0]


class Sample:
    """The points of one importance sample and everything about them that does not depend on (Σ, Ĉ): the span
    basis U (None: the sites), coordinates Hu, sites H = U Hu, φ(H), its derivatives (None for kinked φ) and
    ln q(h_k) of the mixture they were drawn from; ``m`` of them from the N(0, Σ₀) component.  ``gauss``: the
    exact Gaussian averages of the two components, ((A(Σ₀), Σ₀), (A(Q₀), Q₀)) on the sites (module docstring), or
    None (no control variate)."""

    def __init__(self, U, Hu, H, F, derivs, lnq, m, gauss=None):
        self.U, self.Hu, self.H, self.F, self.derivs, self.lnq, self.m = U, Hu, H, F, derivs, lnq, m
        self.gauss = gauss
        self._control = None  # control() once computed

    def rows(self, batch) -> "Sample":
        """The k-th of B interleaved batches (``batch`` = (k, B)), with the mixture proportions of the whole."""
        if batch is None:
            return self
        k, B = batch
        idx = np.concatenate([np.arange(self.m)[k::B], np.arange(self.m, len(self.Hu))[k::B]])
        d = None if self.derivs is None else tuple(a[idx] for a in self.derivs)
        return Sample(self.U, self.Hu[idx], self.H[idx], self.F[idx], d, self.lnq[idx], len(range(k, self.m, B)),
                      self.gauss)

    def control(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The control-variate corrections (module docstring) of ⟨φφᵀ⟩ and ⟨hhᵀ⟩ — the mixture's exact Gaussian
        averages minus the plain averages of these points — and the plain average of φφᵀ itself (for
        :func:`control_stderr`); computed once per sample (frozen points reuse them); None without ``gauss``."""
        if self.gauss is None:
            return None
        if self._control is None:
            (AS, S0), (AQ, Q0) = self.gauss
            a, M = self.m / len(self.F), len(self.F)
            fbar = self.F.T @ self.F / M
            self._control = (a * AS + (1 - a) * AQ - fbar, a * S0 + (1 - a) * Q0 - self.H.T @ self.H / M, fbar)
        return self._control


def gaussian_phiphi(phi, K: np.ndarray) -> np.ndarray | None:
    """A(K)_ab = E_{N(0,K)}[φ(h_a)φ(h_b)] by the compiled kernel map; None (with a warning) where it cannot be
    evaluated to its accuracy (e.g. a variance outside the numeric dual kernel's range): the estimator then runs
    without the control variate for these points."""
    d = np.ascontiguousarray(np.diag(K))
    try:
        A = kernel_map(phi).expect(d, d, np.ascontiguousarray(K), symmetric=True)
    except (FloatingPointError, AccuracyError) as err:
        A = None
        why = str(err)
    else:
        why = "non-finite values"
    if A is None or not np.all(np.isfinite(A)):
        warnings.warn(f"the control variate is off for these Monte Carlo points: the Gaussian kernel of phi="
                      f"{phi.name} could not be evaluated ({why})", stacklevel=2)
        return None
    return A


def control_stderr(F, wn, phiphi, fbar) -> np.ndarray:
    """Delta-method standard errors of the control-variate ⟨φφᵀ⟩ (module docstring): the per-point influence of
    f = φ_aφ_b is ψ_k = w̄_k (f_k − ⟨f⟩_w) − (f_k − f̄)/M, Var = Σ_k ψ_k² (⟨f⟩_w = ``phiphi``, the weighted average
    before the correction, f̄ = ``fbar`` the plain average), expanded into M × n² products."""
    M = len(F)
    c = wn - 1.0 / M
    F2 = F * F
    var = ((F2 * (c * c)[:, None]).T @ F2
           - 2 * phiphi * ((F * (c * wn)[:, None]).T @ F) + 2 * fbar / M * ((F * c[:, None]).T @ F)
           + phiphi ** 2 * (wn @ wn) - 2 * phiphi * fbar / M + fbar ** 2 / M)
    return np.sqrt(np.clip(var, 0.0, None))


def stein_terms(d, FC, G, Chat, wn, dwd=None):
    """Σ_k wn_k [∇V∇Vᵀ + ∇²V](h_k) with ∇V = G = φ' ∘ Ĉφ (FC = φĈ), ∇²V = diag(φ')Ĉdiag(φ') + diag(φ'' ∘ Ĉφ)
    (module docstring; ``wn`` of any sign: also the derivative of the average along the weights); ``dwd``:
    Σ_k wn_k φ'_k φ'_kᵀ if already formed."""
    if dwd is None:
        dwd = (d[0] * wn[:, None]).T @ d[0]
    T = (G * wn[:, None]).T @ G + Chat * dwd + np.diag(wn @ (d[1] * FC))
    return 0.5 * (T + T.T)


class TiltedMC(OnSpan):
    """Importance-sampling estimator with common random numbers (module docstring).

    :meth:`freeze` keeps the points of one proposal: the estimate is then an explicit function of (Σ, Ĉ)
    through the weights alone, ln w_k = −½ h_kᵀΣ⁻¹h_k − ½ ln det Σ + ½ φ_kᵀĈφ_k − ln q(h_k), and ``Moments.jvp``
    is its exact directional derivative along (δΣ, δĈ):

        δ⟨f⟩ = Σ_k w̄_k (f_k − ⟨f⟩) δ ln w_k + ⟨δf⟩,   δ ln w_k = ½ a_kᵀδΣa_k + ½ φ_kᵀδĈφ_k + const,  a_k = Σ⁻¹h_k,

    δf ≠ 0 only for the Stein terms (explicit in Ĉ); it returns (δ⟨φφᵀ⟩, δ⟨hhᵀ⟩ or None, δ tilt or None) —
    δ⟨hhᵀ⟩ only without φ'' (kinked φ).  O(M n²) for M points, about one evaluation."""

    exact = False

    def __init__(self, phi, samples: int = 20000, seed: int = 0, defensive: float = 0.2, control: bool = False):
        self.phi, self.samples, self.seed, self.defensive = phi, int(samples), int(seed), float(defensive)
        self.control = bool(control)  # the control variate of the module docstring
        self._z = {}
        self.Q = None  # proposal covariance set by adapt(); None: the base covariance rule
        self.batch = None  # (b, B): use only the b-th of B interleaved batches of the points (error estimates)
        self.frozen = None  # a Sample used for every (Σ, Ĉ) (freeze); None: points drawn at each call

    def normals(self, d: int) -> np.ndarray:
        if d not in self._z:
            check_memory(8 * self.samples * d * 6, "Monte Carlo points of the tilted measure", "samples")
            self._z[d] = np.random.default_rng([self.seed, d]).standard_normal((self.samples, d))
        return self._z[d]

    def adapt(self, Q: np.ndarray | None):
        """Use N(0, Q) (Q ≻ 0) as the main proposal component from now on (None: reset)."""
        self.Q = None if Q is None else 0.5 * (Q + Q.T)

    def freeze(self, Sigma, Chat) -> Sample:
        """Draw the points of the proposal at (Σ, Ĉ) and use them for every later call (until :meth:`thaw`)."""
        self.frozen = None
        self.frozen = self.draw(Sigma, Chat)
        return self.frozen

    def thaw(self):
        self.frozen = None

    def draw(self, Sigma, Chat) -> Sample:
        """The common random numbers mapped to the mixture α N(0, Σ) + (1 − α) N(0, Q), Q as the module says."""
        U, Su = self.on_span(Sigma)
        Q = None
        if self.Q is not None and self.Q.shape == Sigma.shape:
            Q = restrict(U, self.Q)
            if span(Q) is not None:  # adapted where Σ had a smaller range (e.g. the linear prior kernel)
                Q = None
        if Q is None:
            Q = linearised_covariance(Sigma, U, Su, Chat, self.phi)
        Z = self.normals(Su.shape[0])
        m = int(round(self.defensive * self.samples))
        Ls, Lq = _chol(Su, "Σ(C)"), _chol(Q, "the proposal covariance")
        Hu = np.empty_like(Z)
        Hu[:m] = Z[:m] @ Ls.T
        Hu[m:] = Z[m:] @ Lq.T
        H = Hu if U is None else Hu @ U.T  # on the span: lifted to the sites (OnSpan)
        a = Hu @ np.linalg.inv(Ls).T
        b = Hu @ np.linalg.inv(Lq).T
        lnS = -0.5 * np.einsum("ki,ki->k", a, a) - np.log(np.diag(Ls)).sum()
        lnQ = -0.5 * np.einsum("ki,ki->k", b, b) - np.log(np.diag(Lq)).sum()
        alpha = m / len(Z)
        with np.errstate(divide="ignore"):
            lnq = np.logaddexp(np.log(alpha) + lnS, np.log1p(-alpha) + lnQ)
        return Sample(U, Hu, H, apply_phi(self.phi, H), phi_derivatives(self.phi, H), lnq, m,
                      self._gauss(U, Su, Q) if self.control else None)

    def _gauss(self, U, Su, Q):
        """((A(Σ₀), Σ₀), (A(Q₀), Q₀)) of the two components on the sites (:class:`Sample`), None if A fails."""
        out = []
        for K in (Su, Q):
            K = 0.5 * (K + K.T) if U is None else U @ K @ U.T
            A = gaussian_phiphi(self.phi, K)
            if A is None:
                return None
            out.append((A, K))
        return tuple(out)

    def tilted(self, Sigma, Chat, errors: bool = False) -> Moments:
        smp = (self.frozen or self.draw(Sigma, Chat)).rows(self.batch)
        Su = restrict(smp.U, Sigma)
        Ls = _chol(Su, "Σ(C)")
        A = smp.Hu @ np.linalg.inv(Su)  # a_k = Σ⁻¹h_k (span coordinates)
        lnS = -0.5 * np.einsum("ki,ki->k", A, smp.Hu) - np.log(np.diag(Ls)).sum()
        F, d = smp.F, smp.derivs
        FC = F @ Chat
        cv = smp.control()
        out = weighted_moments(smp.H, F, lnS - smp.lnq + 0.5 * np.einsum("ki,ki->k", FC, F),
                               errors=errors and cv is None)  # the control variate has its own errors
        wn = out.points[0][3]
        if cv is not None:
            dphiphi, dhh, fbar = cv
            if errors:
                out.stderr = control_stderr(F, wn, out.phiphi, fbar)
            out.phiphi = out.phiphi + 0.5 * (dphiphi + dphiphi.T)
            out.hh = out.hh + 0.5 * (dhh + dhh.T)
        G = dwd = None
        if d is not None:  # Stein: Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹ = ⟨∇V∇Vᵀ + ∇²V⟩, V = ½φᵀĈφ (no Σ⁻¹, 0 at Ĉ = 0)
            G = d[0] * FC
            dwd = (d[0] * wn[:, None]).T @ d[0]  # Σ_k w̄_k φ'_k φ'_kᵀ: in the tilt and in jvp's δ(Ĉ ∘ ·)
            out.tilt = stein_terms(d, FC, G, Chat, wn, dwd)
        out.logZ -= np.log(len(F))
        if self.frozen is not None:
            def jvp(dSigma, dChat):
                """Exact derivative of the frozen-sample estimates (class docstring)."""
                dSu = restrict(smp.U, dSigma)
                dl = 0.5 * np.einsum("ki,ki->k", A @ dSu, A)
                FdC = F @ dChat
                dl += 0.5 * np.einsum("ki,ki->k", FdC, F)
                c = wn * (dl - wn @ dl)  # w̄_k (δ ln w_k − ⟨δ ln w⟩)
                dff = (F * c[:, None]).T @ F
                if d is None:
                    dhh = (smp.H * c[:, None]).T @ smp.H
                    return 0.5 * (dff + dff.T), 0.5 * (dhh + dhh.T), None
                GdG = (G * wn[:, None]).T @ (d[0] * FdC)
                dT = (stein_terms(d, FC, G, Chat, c) + GdG + GdG.T + dChat * dwd
                      + np.diag(wn @ (d[1] * FdC)))
                return 0.5 * (dff + dff.T), None, dT
            out.jvp = jvp
        return out

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

For twice-differentiable φ the backward equation's Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹ is estimated by the Stein identity
(integration by parts against N(0, Σ) e^V, V = ½φᵀĈφ):  Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹ = ⟨∇V∇Vᵀ + ∇²V⟩, with
∇V = φ' ∘ Ĉφ and ∇²V = diag(φ')Ĉdiag(φ') + diag(φ'' ∘ Ĉφ): bounded for erf and tanh, free of Σ⁻¹ (no
amplification of the sampling noise by the conditioning of Σ) and exactly 0 at Ĉ = 0 (``Moments.tilt``).
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ...resources import check_memory
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


class TiltedMC(OnSpan):
    """Importance-sampling estimator with common random numbers (module docstring)."""

    exact = False

    def __init__(self, phi, samples: int = 20000, seed: int = 0, defensive: float = 0.2):
        self.phi, self.samples, self.seed, self.defensive = phi, int(samples), int(seed), float(defensive)
        self._z = {}
        self.Q = None  # proposal covariance set by adapt(); None: the base covariance rule
        self.batch = None  # (b, B): use only the b-th of B interleaved batches of the points (error estimates)

    def normals(self, d: int) -> np.ndarray:
        if d not in self._z:
            check_memory(8 * self.samples * d * 6, "Monte Carlo points of the tilted measure", "samples")
            self._z[d] = np.random.default_rng([self.seed, d]).standard_normal((self.samples, d))
        return self._z[d]

    def adapt(self, Q: np.ndarray | None):
        """Use N(0, Q) (Q ≻ 0) as the main proposal component from now on (None: reset)."""
        self.Q = None if Q is None else 0.5 * (Q + Q.T)

    def tilted(self, Sigma, Chat, errors: bool = False) -> Moments:
        U, Su = self.on_span(Sigma)
        d = Su.shape[0]
        Q = None
        if self.Q is not None and self.Q.shape == Sigma.shape:
            Q = restrict(U, self.Q)
            if span(Q) is not None:  # adapted where Σ had a smaller range (e.g. the linear prior kernel)
                Q = None
        if Q is None:
            Q = linearised_covariance(Sigma, U, Su, Chat, self.phi)
        Z = self.normals(d)
        m = int(round(self.defensive * self.samples))
        if self.batch is not None:  # the same mixture proportions in every batch
            k, B = self.batch
            Z = np.concatenate([Z[:m][k::B], Z[m:][k::B]])
            m = len(range(k, m, B))
        Ls, Lq = _chol(Su, "Σ(C)"), _chol(Q, "the proposal covariance")
        Hu = np.empty_like(Z)
        Hu[:m] = Z[:m] @ Ls.T
        Hu[m:] = Z[m:] @ Lq.T
        H = Hu if U is None else Hu @ U.T  # on the span: lifted to the sites (OnSpan)
        F = apply_phi(self.phi, H)
        a = Hu @ np.linalg.inv(Ls).T
        b = Hu @ np.linalg.inv(Lq).T
        lnS = -0.5 * np.einsum("ki,ki->k", a, a) - np.log(np.diag(Ls)).sum()
        lnQ = -0.5 * np.einsum("ki,ki->k", b, b) - np.log(np.diag(Lq)).sum()
        alpha = m / len(Z)
        with np.errstate(divide="ignore"):
            lnq = np.logaddexp(np.log(alpha) + lnS, np.log1p(-alpha) + lnQ)
        tilt = 0.5 * np.einsum("ki,ki->k", F @ Chat, F)
        out = weighted_moments(H, F, lnS - lnq + tilt, errors=errors)
        d = phi_derivatives(self.phi, H)
        if d is not None:  # Stein: Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹ = ⟨∇V∇Vᵀ + ∇²V⟩, V = ½φᵀĈφ (no Σ⁻¹, exactly 0 at Ĉ = 0)
            wn = np.exp(lnS - lnq + tilt - np.max(lnS - lnq + tilt))
            wn /= wn.sum()
            FC = F @ Chat
            G = d[0] * FC
            T = (G * wn[:, None]).T @ G + Chat * ((d[0] * wn[:, None]).T @ d[0]) + np.diag(wn @ (d[1] * FC))
            out.tilt = 0.5 * (T + T.T)
        out.logZ -= np.log(len(Z))
        return out

"""The statistically linearised tilted measure: a cheap, smooth surrogate of the forward–backward map whose
Jacobian preconditions the Newton–Krylov corrector of :mod:`.nonlinear` (theory Sec. 4).

φ(h) ≈ D h with D_ii = E_{N(0, Σ_ii)}[φ'] (:func:`.tilted_mc.slopes`) makes the tilted measure Gaussian,
K = (Σ⁻¹ − M)⁻¹ with M = DĈD, and

    ⟨φφᵀ⟩ ≈ D K D,   Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹ = M + M K M      (:class:`LinearisedMeasure`)

(the second from Σ⁻¹ = K⁻¹ + M).  Exact for linear φ (D = 1: the Gaussian measure); for erf at Ĉ = 0 its
derivative in an off-diagonal Σ_ab is that of the arcsine kernel at small correlation."""
from __future__ import annotations

import numpy as np

from .tilted_mc import slopes
from .tilted_quadrature import Moments, OnSpan, _chol, _lift, apply_phi, restrict


class LinearisedMeasure(OnSpan):
    """Moments of the statistically linearised tilted Gaussian (module docstring)."""

    exact = True

    def __init__(self, phi):
        self.phi = phi

    def tilted(self, Sigma, Chat, errors: bool = False) -> Moments:
        U, Su = self.on_span(Sigma)
        D = slopes(self.phi, Sigma)
        if D is None:  # kinked φ: E[φ'] = E[hφ]/Σ_ii (Stein)
            x, w = np.polynomial.hermite_e.hermegauss(40)
            sd = np.sqrt(np.clip(np.diag(Sigma), 1e-300, None))
            D = (w / w.sum()) @ (x[:, None] * apply_phi(self.phi, sd[None, :] * x[:, None])) / sd
        M = D[:, None] * Chat * D[None, :]
        Si = np.linalg.inv(Su)
        Li = np.linalg.inv(_chol(Si - restrict(U, M), "Σ⁻¹ − DĈD (the linearised measure is not normalisable)"))
        K = _lift(U, Li.T @ Li)
        DKD = D[:, None] * K * D[None, :]
        return Moments(DKD, K, D[:, None] * K, np.zeros(len(K)), 0.0, tilt=M + M @ K @ M)

"""Forward–backward equations with a pluggable tilted single-neuron measure (theory Sec. 4).

    p(h) ∝ N(h; 0, Σ(C)) exp(½ φ(h)ᵀ Ĉ φ(h))
    forward:   C = ⟨φ(h) φ(h)ᵀ⟩
    backward:  Ĉ = Bᵀ[Wm ∘ Aᵀ(Σ⁻¹⟨hhᵀ⟩Σ⁻¹ − Σ⁻¹)A]B + σ_v² E_S[M_out ∘ wwᵀ],   w = A(C)⁻¹ y_S

A measure supplies ``moments(Sigma, Chat) -> (⟨φφᵀ⟩, ⟨hhᵀ⟩)``.  :class:`GaussianTilted` is exact
for linear φ (⟨hhᵀ⟩ = (Σ⁻¹ − Ĉ)⁻¹); :class:`ImportanceTilted` estimates both moments for any φ
by self-normalised importance sampling from a Gaussian proposal N(0, Q) with weights
N(h; 0, Σ) e^{½φᵀĈφ} / N(h; 0, Q); Q = (Σ⁻¹ − Ĉ)⁻¹ ("tilted", when positive definite) or Σ ("prior").
The nonlinear solver (:mod:`.nonlinear`) uses the estimators of :mod:`.tilted_quadrature` and :mod:`.tilted_mc`
(which also return ln Z, ⟨φhᵀ⟩ and error estimates); this module keeps the residual check.
"""
from __future__ import annotations

import numpy as np

from .action import LinearAction


class GaussianTilted:
    """Linear φ: the tilted measure is N(0, (Σ⁻¹ − Ĉ)⁻¹)."""

    def moments(self, Sigma, Chat):
        K = np.linalg.inv(np.linalg.inv(Sigma) - Chat)
        return K, K


class ImportanceTilted:
    """Self-normalised importance sampling of the tilted measure from N(0, Σ) (any φ)."""

    def __init__(self, phi, samples: int = 200000, seed: int = 0, proposal: str = "tilted"):
        if proposal not in ("tilted", "prior"):
            raise ValueError(f"proposal must be 'tilted' or 'prior', got {proposal!r}")
        self.phi = phi if callable(phi) else phi.numpy()
        self.samples, self.seed, self.proposal = samples, seed, proposal

    def moments(self, Sigma, Chat):
        rng = np.random.default_rng(self.seed)
        Q = Sigma
        if self.proposal == "tilted":
            K = np.linalg.inv(np.linalg.inv(Sigma) - Chat)
            if np.all(np.linalg.eigvalsh(0.5 * (K + K.T)) > 0):
                Q = 0.5 * (K + K.T)
        L = np.linalg.cholesky(Q)
        h = rng.standard_normal((self.samples, Sigma.shape[0])) @ L.T
        f = np.asarray(self.phi(h), dtype=float)
        logw = 0.5 * np.einsum("ki,ij,kj->k", f, Chat, f)
        logw += 0.5 * np.einsum("ki,ij,kj->k", h, np.linalg.inv(Q) - np.linalg.inv(Sigma), h)
        w = np.exp(logw - logw.max())
        w /= w.sum()
        return np.einsum("k,ki,kj->ij", w, f, f), np.einsum("k,ki,kj->ij", w, h, h)


def forward_backward_residual(act: LinearAction, C, Chat, measure) -> tuple[np.ndarray, np.ndarray]:
    """(C − ⟨φφᵀ⟩, Ĉ − backward(⟨hhᵀ⟩)): both vanish at the saddle point."""
    p = act.point(C)
    phiphi, hh = measure.moments(p.Sigma, Chat)
    return C - phiphi, Chat - act.chat(p, hh)

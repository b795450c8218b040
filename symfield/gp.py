"""Gaussian-process regression with any kernel (theory Sec. 4.4 and 7).

    μ* = K*D (K_DD + σ_ε² I)^{-1} Y_D,     σ*² = K** - K*D (K_DD + σ_ε² I)^{-1} K_D*

The network's output kernel at readout time a (single readout, φ readout):

    K^GP_αβ = σ_out² + g_out² <φ(z_aα) φ(z_aβ)>_{z ~ N(0, C̄)}     (readout='h': g_out² C̄_aα,aβ)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from .spec import NetworkSpec, SpecError


@dataclass(frozen=True)
class GPPrediction:
    mean: np.ndarray  #: predictive mean, shape (P_test,) or (P_test, outputs)
    var: np.ndarray   #: predictive variance of the network output (noise added if include_noise)


def gp_predict(K_train, K_cross, K_test_diag, Y, noise: float = 0.0, include_noise: bool = False) -> GPPrediction:
    """GP posterior mean and variance; ``K_cross`` is (P_test, P_train), ``K_test_diag`` (P_test,)."""
    K_train = np.asarray(K_train, float)
    K_cross = np.asarray(K_cross, float)
    K_test_diag = np.asarray(K_test_diag, float)
    Y = np.asarray(Y, float)
    n = K_train.shape[0]
    if K_train.shape != (n, n) or not np.allclose(K_train, K_train.T, rtol=1e-10, atol=1e-12):
        raise ValueError(f"K_train must be a symmetric square matrix, got shape {K_train.shape}")
    if K_cross.ndim != 2 or K_cross.shape[1] != n or K_test_diag.shape != (K_cross.shape[0],):
        raise ValueError(f"K_cross must be (P_test, {n}) and K_test_diag (P_test,), got {K_cross.shape}, "
                         f"{K_test_diag.shape}")
    if Y.shape[0] != n:
        raise ValueError(f"Y must have {n} rows (one per training point), got shape {Y.shape}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a finite non-negative variance, got {noise!r}")
    try:
        factor = cho_factor(K_train + noise * np.eye(n), lower=True)
    except np.linalg.LinAlgError as err:
        raise ValueError("K_train + noise*I is not positive definite; add noise") from err
    mean = K_cross @ cho_solve(factor, Y)
    var = K_test_diag - np.einsum("ij,ji->i", K_cross, cho_solve(factor, K_cross.T))
    return GPPrediction(mean, var + noise if include_noise else var)


def output_kernel(spec: NetworkSpec, X, readout_time: int | None = None, mf=None) -> np.ndarray:
    """K^GP (P, P) of a single readout at ``readout_time`` (1-based, default T)."""
    from .theory.kernel_map import kernel_map
    from .theory.mean_field import mean_field
    t = spec.T if readout_time is None else readout_time
    if not isinstance(t, (int, np.integer)) or not 1 <= t <= spec.T:
        raise SpecError(f"readout_time must be an integer in 1..{spec.T}, got {readout_time!r}")
    mf = mean_field(spec, X) if mf is None else mf
    C = mf.block(t - 1, t - 1)
    if spec.readout == "h":
        return spec.sigma_out2 + spec.g_out ** 2 * C
    d = np.diag(C)
    return spec.sigma_out2 + spec.g_out ** 2 * kernel_map(spec.phi_fn).expect(d, d, C, symmetric=True)


def predict(spec: NetworkSpec, X_train, Y_train, X_test, noise: float = 0.0, readout_time: int | None = None,
            include_noise: bool = False) -> GPPrediction:
    """Bayesian prediction of the wide network ``spec`` trained on (X_train, Y_train)."""
    X_train = np.asarray(X_train, float)
    X_test = np.asarray(X_test, float)
    if X_train.shape[1:] != X_test.shape[1:]:
        raise SpecError(f"X_train and X_test must agree beyond the pattern axis, got {X_train.shape}, {X_test.shape}")
    n = X_train.shape[0]
    K = output_kernel(spec, np.concatenate([X_train, X_test]), readout_time)
    return gp_predict(K[:n, :n], K[n:, :n], np.diag(K)[n:], Y_train, noise, include_noise)

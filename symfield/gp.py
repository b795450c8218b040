"""Gaussian-process regression with any kernel (theory Sec. 4.4 and 7).

    μ* = K*D (K_DD + σ_ε² I)^{-1} Y_D,     σ*² = K** - K*D (K_DD + σ_ε² I)^{-1} K_D*

The network's output kernel at readout time a (0-based; single readout, φ readout):

    K^GP_αβ = σ_out² + g_out² <φ(z_aα) φ(z_aβ)>_{z ~ N(0, C̄)}     (readout='h': g_out² C̄_aα,aβ)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, cho_solve

from .api import check_array, check_mean_field, check_real, check_spec, legacy_positional, renamed
from .errors import NotPositiveDefinite
from .spec import NetworkSpec, SpecError


@dataclass(frozen=True)
class GPPrediction:
    mean: np.ndarray  #: predictive mean, shape (P_test,) or (P_test, outputs)
    var: np.ndarray   #: predictive variance of the network output (noise added if include_noise)
    spec: NetworkSpec | None = None  #: the network (None for a bare :func:`gp_predict`)
    C: np.ndarray | None = None      #: the output kernel K^GP on [X_train; X_test], (P_train + P_test)²


def gp_predict(K_train, K_cross, K_test_diag, Y, noise: float = 0.0, include_noise: bool = False) -> GPPrediction:
    """GP posterior mean and variance; ``K_cross`` is (P_test, P_train), ``K_test_diag`` (P_test,)."""
    K_train, K_cross = check_array("K_train", K_train), check_array("K_cross", K_cross)
    K_test_diag, Y = check_array("K_test_diag", K_test_diag), check_array("Y", Y)
    noise = check_real("noise", noise, low=0)
    if K_train.ndim != 2 or Y.ndim not in (1, 2):
        raise SpecError(f"K_train must be 2-D and Y 1-D or 2-D, got shapes {K_train.shape}, {Y.shape}")
    n = K_train.shape[0]
    if K_train.shape != (n, n) or not np.allclose(K_train, K_train.T, rtol=1e-10, atol=1e-12):
        raise SpecError(f"K_train must be a symmetric square matrix, got shape {K_train.shape}")
    if K_cross.ndim != 2 or K_cross.shape[1] != n or K_test_diag.shape != (K_cross.shape[0],):
        raise SpecError(f"K_cross must be (P_test, {n}) and K_test_diag (P_test,), got {K_cross.shape}, "
                         f"{K_test_diag.shape}")
    if Y.shape[0] != n:
        raise SpecError(f"Y must have {n} rows (one per training point), got shape {Y.shape}")
    try:
        factor = cho_factor(K_train + noise * np.eye(n), lower=True)
    except np.linalg.LinAlgError as err:
        raise NotPositiveDefinite("K_train + noise*I is not positive definite; add noise") from err
    mean = K_cross @ cho_solve(factor, Y)
    var = K_test_diag - np.einsum("ij,ji->i", K_cross, cho_solve(factor, K_cross.T))
    return GPPrediction(mean, var + noise if include_noise else var)


def _readout_time(spec: NetworkSpec, time, readout_time, where: str) -> int:
    """0-based readout time from ``time`` (0-based) or the deprecated ``readout_time`` (1-based)."""
    if readout_time is None:
        t = spec.T - 1 if time is None else time
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 0 <= t < spec.T:
            raise SpecError(f"time must be an integer in 0..{spec.T - 1} (0-based), got {time!r}")
        return int(t)
    t, _ = renamed(time, readout_time, "readout_time", "time", where=where)
    if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 1 <= t <= spec.T:
        raise SpecError(f"readout_time must be an integer in 1..{spec.T} (1-based; use time= 0-based), "
                        f"got {readout_time!r}")
    return int(t) - 1


@legacy_positional("readout_time", "mf")
def output_kernel(spec: NetworkSpec, X, *, time: int | None = None, mf=None, readout_time: int | None = None
                  ) -> np.ndarray:
    """K^GP (P, P) of a single readout at 0-based ``time`` (default T - 1; ``readout_time`` is the
    deprecated 1-based form).  ``mf``: a MeanField of the same spec and X to reuse."""
    from .theory.kernel_map import kernel_map
    from .theory.mean_field import mean_field
    check_spec(spec)
    t = _readout_time(spec, time, readout_time, "output_kernel")
    mf = mean_field(spec, X) if mf is None else check_mean_field(mf, spec, X)
    C = mf.block(t, t)
    if spec.readout == "h":
        return spec.sigma_out2 + spec.g_out ** 2 * C
    d = np.diag(C)
    return spec.sigma_out2 + spec.g_out ** 2 * kernel_map(spec.phi_fn).expect(d, d, C, symmetric=True)


@legacy_positional("noise", "readout_time", "include_noise")
def predict(spec: NetworkSpec, X_train, Y_train, X_test, *, noise: float = 0.0, time: int | None = None,
            include_noise: bool = False, readout_time: int | None = None) -> GPPrediction:
    """Bayesian prediction of the wide network ``spec`` trained on (X_train, Y_train), read out at 0-based
    ``time`` (default T - 1; ``readout_time``: deprecated 1-based form).  ``.C`` of the result is the
    output kernel on the concatenated inputs [X_train; X_test]."""
    check_spec(spec)
    t = _readout_time(spec, time, readout_time, "predict")
    X_train = check_array("X_train", X_train)
    X_test = check_array("X_test", X_test)
    if X_train.ndim < 2 or X_train.shape[1:] != X_test.shape[1:]:
        raise SpecError(f"X_train and X_test must agree beyond the pattern axis, got {X_train.shape}, {X_test.shape}")
    Y_train = check_array("Y_train", Y_train)
    if X_train.shape[0] < 1 or Y_train.ndim not in (1, 2) or Y_train.shape[0] != X_train.shape[0]:
        raise SpecError(f"X_train needs at least one pattern and Y_train one row per pattern of X_train, "
                        f"got shapes {X_train.shape}, {Y_train.shape}")
    n = X_train.shape[0]
    K = output_kernel(spec, np.concatenate([X_train, X_test]), time=t)
    pred = gp_predict(K[:n, :n], K[n:, :n], np.diag(K)[n:], Y_train, noise, include_noise)
    return GPPrediction(pred.mean, pred.var, spec, K)

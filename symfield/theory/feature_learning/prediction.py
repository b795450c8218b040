"""Predictions for new patterns from the learned kernels, without re-solving (theory Sec. 4).

At the saddle point of linear φ, C⁻¹ = Σ(C)⁻¹ − Ĉ, i.e. C = Σ + Σ Ĉ C.  Appending unsupervised patterns
b to the training patterns a leaves C_aa and Ĉ_aa unchanged and Ĉ zero on every row of b: those rows
of the backward equation have no data term, and Bᵀ(·)B only shifts rows of b in time (ĈCΣ⁻¹ vanishes
on them); C_aa = ((Σ⁻¹ − Ĉ)⁻¹)_aa = (Σ_aa⁻¹ − Ĉ_aa)⁻¹ then involves only the training sites.  So the test
entries follow from the forward equation alone (:func:`joint_kernel`):

    C_ba = Σ_ba (1 + Ĉ_aa C_aa),        C_bb = Σ_bb + Σ_ba Ĉ_aa C_ab,

with Σ = Σ(C) on the joint sites, strictly causal in C (T sweeps).  The posterior-predictive mean is
GP regression with the learned kernel (:func:`predict_new`):

    f̄_b = σ_v² (M_out ∘ C)_{b S} A(C)⁻¹ y_S.
"""
from __future__ import annotations

import numpy as np

from ...spec import SpecError
from ...task import site_arrays
from .terms import sigma


def joint_kernel(pr, C: np.ndarray, Chat: np.ndarray, X_new: np.ndarray):
    """(C on the joint sites (training patterns first, then the new ones, time-major), joint index of the
    training sites (site order of ``pr``), joint index of the new sites (t·P_new + m order))."""
    spec = pr.spec
    Xn = spec.check_inputs(X_new)
    if Xn.shape[2] != pr.X.shape[2] or Xn.shape[1] != pr.X.shape[1]:
        raise SpecError(f"X_new must have the input shape of X, (P_new, {', '.join(map(str, pr.X.shape[1:]))}) "
                        f"after checking, got {Xn.shape}")
    Xj = np.concatenate([pr.X, Xn], axis=0)
    T, P, Pj = pr.T, pr.P, Xj.shape[0]
    sdet, wm, prop = site_arrays(spec, Xj)
    t = np.arange(T)[:, None]
    a = (t * Pj + np.arange(P)[None, :]).reshape(-1)
    b = (t * Pj + P + np.arange(Pj - P)[None, :]).reshape(-1)
    M = Chat @ C
    Cj = np.zeros((T * Pj, T * Pj))
    Cj[np.ix_(a, a)] = C
    for _ in range(T):
        Sj = sigma(Cj, wm, sdet, Pj, prop)
        Sba = Sj[np.ix_(b, a)]
        Cba = Sba + Sba @ M
        Cj[np.ix_(b, a)] = Cba
        Cj[np.ix_(a, b)] = Cba.T
        Cbb = Sj[np.ix_(b, b)] + Sba @ Chat @ Cba.T
        Cj[np.ix_(b, b)] = 0.5 * (Cbb + Cbb.T)
    return Cj, a, b


def predict_new(pr, C: np.ndarray, Chat: np.ndarray, w: np.ndarray, X_new) -> np.ndarray:
    """f̄ for the new patterns at every time, shape (P_new, T) (module docstring); ``w`` = A(C)⁻¹ y_S."""
    Cj, a, b = joint_kernel(pr, C, Chat, X_new)
    T, P = pr.T, pr.P
    Pn = b.size // T
    tS = pr.times()[pr.sites_S]
    tb = np.repeat(np.arange(T), Pn)
    K = pr.sigma_v2 * pr.mask_out[np.ix_(tb, tS)] * Cj[np.ix_(b, a[pr.sites_S])]
    return (K @ w).reshape(T, Pn).T

"""Predictions for new patterns from the learned kernels, without re-solving (theory Secs. 4, 6).

At the saddle point of linear φ, C⁻¹ = Σ(C)⁻¹ − Ĉ, i.e. C = Σ + Σ Ĉ C.  Appending unsupervised patterns
b to the training patterns a leaves C_aa and Ĉ_aa unchanged and Ĉ zero on every row of b: those rows
of the backward equation have no data term, and Bᵀ(·)B only shifts rows of b in time (ĈCΣ⁻¹ vanishes
on them); C_aa = ((Σ⁻¹ − Ĉ)⁻¹)_aa = (Σ_aa⁻¹ − Ĉ_aa)⁻¹ then involves only the training sites.  So the test
entries follow from the forward equation alone (:func:`joint_kernel`):

    C_ba = Σ_ba (1 + Ĉ_aa C_aa),        C_bb = Σ_bb + Σ_ba Ĉ_aa C_ab,

with Σ = Σ(C) on the joint sites, strictly causal in C (T sweeps).  The posterior-predictive mean is
GP regression with the learned kernel (:func:`predict_new`):

    f̄_b = σ_v² (M_out ∘ C)_{b S} A(C)⁻¹ y_S.

Any φ (:func:`tilted_joint_kernel`): the tilt ½φᵀĈφ involves only the training sites a, so on the joint
sites p(h_a, h_b) ∝ N(h; 0, Σ) e^{½φ_aᵀĈ_aaφ_a}: h_a follows the training measure and h_b | h_a is
Gaussian with mean K_b h_a, K_b = Σ_ba Σ_aa⁺, and covariance Σ_bb − K_b Σ_ab.  The backward equation gives
Ĉ = 0 on the rows of b (its Stein form ⟨∇V∇Vᵀ + ∇²V⟩ vanishes there), so C_aa, Ĉ_aa are unchanged and

    C_ba = ⟨E[φ(h_b) | h_a] φ(h_a)ᵀ⟩,        C_bb' = ⟨E[φ(h_b) φ(h_b') | h_a]⟩,

the outer average over the points and weights of the estimator of the solve (quadrature or importance
sampling), the inner conditional Gaussian one by a trapezoid rule in 1 or 2 dimensions; Σ on the joint
sites is causal in C (T sweeps).  For linear φ both reduce to the formulas above.
"""
from __future__ import annotations

import numpy as np

from ...spec import SpecError
from ...task import site_arrays
from ...errors import NotSupportedError
from ...resources import check_memory
from .terms import sigma
from .tilted_quadrature import TiltedQuadrature, apply_phi

#: trapezoid nodes per dimension of the inner conditional Gaussian rules (1-D, 2-D) at conditional standard
#: deviation <= 1 (more in proportion above: φ(m + s z) varies on the scale 1/s in z), and the finer pair used
#: for their error estimate (erf, s <= 3: 1-D error 3e-9 at 81 nodes; 2-D 1e-6 at 41, 3e-13 at 61)
INNER_NODES = (81, 41)
FINE_INNER_NODES = (121, 61)
#: outer points of relative weight below this are dropped (their total weight is below ~1e-12)
PRUNE = 1e-13
#: the outer points are processed in chunks of at most this many inner evaluations
CHUNK = 1 << 20


def joint_sites(pr, X_new):
    """(Σdet, Wm, skip propagator on the joint sites (training patterns first, then the new ones, time-major),
    joint index of the training sites (site order of ``pr``), joint index of the new sites (t·P_new + m))."""
    spec = pr.spec
    Xn = spec.check_inputs(X_new)
    if Xn.shape[2] != pr.X.shape[2] or Xn.shape[1] != pr.X.shape[1]:
        raise SpecError(f"X_new must have the input shape of X, (P_new, {', '.join(map(str, pr.X.shape[1:]))}) "
                        f"after checking, got {Xn.shape}")
    Xj = np.concatenate([pr.X, Xn], axis=0)
    T, P, Pj = pr.T, pr.P, Xj.shape[0]
    check_memory(8 * 6 * (T * Pj) ** 2, f"the kernels on the joint sites (T (P + P_new) = {T * Pj})", "X_new")
    sdet, wm, prop = site_arrays(spec, Xj)
    t = np.arange(T)[:, None]
    a = (t * Pj + np.arange(P)[None, :]).reshape(-1)
    b = (t * Pj + P + np.arange(Pj - P)[None, :]).reshape(-1)
    return sdet, wm, prop, a, b, Pj


def joint_kernel(pr, C: np.ndarray, Chat, X_new: np.ndarray):
    """Linear φ: (C on the joint sites, joint index of the training sites, of the new sites) (module docstring);
    ``Chat`` an (n, n) array or factors (U, K) of Ĉ = U K Uᵀ (low rank: O(n² rank) instead of O(n³))."""
    sdet, wm, prop, a, b, Pj = joint_sites(pr, X_new)
    T = pr.T
    U, K = Chat if isinstance(Chat, tuple) else (None, None)  # Ĉ = U K Uᵀ given in low rank
    M = Chat @ C if U is None else K @ (U.T @ C)  # ĈC, or its right factor K UᵀC
    Cj = np.zeros((T * Pj, T * Pj))
    Cj[np.ix_(a, a)] = C
    for _ in range(T):
        Sj = sigma(Cj, wm, sdet, Pj, prop)
        Sba = Sj[np.ix_(b, a)]
        Cba = Sba + (Sba @ M if U is None else (Sba @ U) @ M)
        Cj[np.ix_(b, a)] = Cba
        Cj[np.ix_(a, b)] = Cba.T
        Cbb = Sj[np.ix_(b, b)] + (Sba @ Chat @ Cba.T if U is None else (Sba @ U) @ K @ (Cba @ U).T)
        Cj[np.ix_(b, b)] = 0.5 * (Cbb + Cbb.T)
    return Cj, a, b


def readout(pr, Cj: np.ndarray, a: np.ndarray, b: np.ndarray, w: np.ndarray) -> np.ndarray:
    """f̄_b = σ_v² (M_out ∘ C)_{b S} w at every new site, shape (P_new, T); ``w`` = A(C)⁻¹ y_S."""
    T = pr.T
    Pn = b.size // T
    tS = pr.times()[pr.sites_S]
    tb = np.repeat(np.arange(T), Pn)
    K = pr.sigma_v2 * pr.mask_out[np.ix_(tb, tS)] * Cj[np.ix_(b, a[pr.sites_S])]
    return (K @ w).reshape(T, Pn).T


def predict_new(pr, C: np.ndarray, Chat: np.ndarray, w: np.ndarray, X_new) -> np.ndarray:
    """Linear φ: f̄ for the new patterns at every time, shape (P_new, T) (module docstring); ``w`` = A(C)⁻¹ y_S."""
    Cj, a, b = joint_kernel(pr, C, Chat, X_new)
    return readout(pr, Cj, a, b, w)


def joint_mirror(Cj: np.ndarray, T: int) -> np.ndarray:
    """J C J on the joint sites, J = diag((−1)^t) ⊗ 1 (the Z2 image, as :func:`.result.mirror`)."""
    j = np.repeat(np.where(np.arange(T) % 2 == 0, 1.0, -1.0), Cj.shape[0] // T)
    return Cj * np.outer(j, j)


# ------------------------------------------------------------------ any φ
def _rule(d: int, nodes: int, std: float):
    """Standard-normal trapezoid rule in d = 1, 2 dimensions for an integrand φ(m + L z) with L of norm ``std``:
    (nodes (k, d), normalised weights (k,)), nodes of negligible weight dropped."""
    n = int(nodes * max(1.0, std)) | 1
    X, lw = TiltedQuadrature._grid(d, n)
    keep = lw > lw.max() - 37.0  # weights below 1e-16 of the largest
    w = np.exp(lw[keep])
    return X[keep], w / w.sum()


def _conditional_mean_of(phi, m: np.ndarray, L: np.ndarray, nodes: int, powers=(1,)) -> np.ndarray:
    """E[Π_i φ((m_k + L z)_i)^p] over z ~ N(0, 1_d) for every row m_k of m (k, d) and every p in ``powers``,
    shape (len(powers), k); L (d, d) with LLᵀ the conditional covariance (d = 1: E[φ], E[φ²]; d = 2: E[φφ'])."""
    Z, w = _rule(L.shape[0], nodes, float(np.abs(L).max(initial=0.0)))
    out = np.empty((len(powers), len(m)))
    step = max(1, CHUNK // len(w))
    for i in range(0, len(m), step):
        H = m[i:i + step, None, :] + (Z @ L.T)[None]
        F = np.prod(apply_phi(phi, H.reshape(-1, H.shape[-1])).reshape(H.shape), axis=-1)
        for j, p in enumerate(powers):
            out[j, i:i + step] = (F if p == 1 else F ** p) @ w
    return out


def _sqrt_psd(S: np.ndarray) -> np.ndarray:
    """L with L Lᵀ = S for a symmetric positive semi-definite S (round-off negatives clipped)."""
    lam, V = np.linalg.eigh(0.5 * (S + S.T))
    return V * np.sqrt(np.clip(lam, 0.0, None))


class _Site:
    """A new site b given the training block it depends on: conditional means m_k = K_b h_k at the block's
    points (weights w), E[φ(h_b) | h_a] at them (g) and its average."""

    def __init__(self, phi, blocks, k: np.ndarray, var: float, nodes):
        norms = [np.abs(k if s is None else k[s]).max(initial=0.0) for s, *_ in blocks]
        top = int(np.argmax(norms))
        if norms[top] <= 1e-14 * max(np.abs(k).max(initial=0.0), 1e-300) or norms[top] == 0:
            self.block, self.m, self.w = None, np.zeros(1), np.ones(1)  # independent of h_a
        else:
            if any(v > 1e-10 * norms[top] for i, v in enumerate(norms) if i != top):
                raise NotSupportedError("a new site depends on several independent blocks of the tilted measure")
            s, H, _, w = blocks[top]
            self.block, self.m, self.w = top, H @ (k if s is None else k[s]), w
        L = _sqrt_psd(np.array([[var]]))
        self.g, self.g2 = _conditional_mean_of(phi, self.m[:, None], L, nodes[0], powers=(1, 2))
        self.mean = float(self.w @ self.g)


def _pruned(points):
    """The estimator's blocks without points of negligible weight (:data:`PRUNE`)."""
    out = []
    for s, H, F, w in points:
        keep = w > PRUNE * w.max()
        out.append((s, H[keep], F[keep], w[keep] / w[keep].sum()))
    return out


def tilted_joint_kernel(pr, phi, C: np.ndarray, points: list, X_new, odd: bool = False, nodes=INNER_NODES):
    """Any φ: (C on the joint sites, joint index of the training sites, of the new sites) (module docstring).

    ``points`` the estimator's blocks (:class:`.tilted_quadrature.Moments`); ``odd``: independent blocks of an
    odd φ have ⟨φ⟩ = 0 exactly (the block measure's convention).  Entries between different new patterns are
    not computed (0; they never enter C_ba); neither are those of one new pattern at two times unless a skip
    propagator makes them enter Σ at equal times (else they only enter Σ at unequal times of the new sites)."""
    sdet, wm, prop, a, b, Pj = joint_sites(pr, X_new)
    T = pr.T
    Pn = b.size // T
    blocks = _pruned(points)
    means = [w @ F for _, _, F, w in blocks]
    Cj = np.zeros((T * Pj, T * Pj))
    Cj[np.ix_(a, a)] = C
    K = np.zeros((b.size, a.size))
    Sinv, sites = None, {}
    for t in range(T):  # Σ at time t needs C up to t - 1: rows of b at time t are final after this step
        Sj = sigma(Cj, wm, sdet, Pj, prop)
        if Sinv is None:  # Σ_aa⁺ (Σ_aa = Σ(C) of the training sites; h_a lives on its range)
            Saa = Sj[np.ix_(a, a)]
            Sinv = np.linalg.pinv(0.5 * (Saa + Saa.T), rcond=1e-13, hermitian=True)
        bt = np.arange(t * Pn, (t + 1) * Pn)
        K[bt] = Sj[np.ix_(b[bt], a)] @ Sinv
        for m in range(Pn):
            i = t * Pn + m
            own = [r * Pn + m for r in range(t + 1)]  # the sites of this new pattern up to t
            cov = Sj[np.ix_(b[own], b[own])] - K[own] @ Sj[np.ix_(a, b[own])]
            site = sites[i] = _Site(phi, blocks, K[i], cov[-1, -1], nodes)
            row = np.zeros(a.size)  # C_ba: the same block by its points, other blocks independent
            for k, (s, _, F, _) in enumerate(blocks):
                cols = slice(None) if s is None else s
                if site.block == k:
                    row[cols] = (site.w * site.g) @ F
                elif not odd:
                    row[cols] = site.mean * means[k]
            Cj[b[i], a] = Cj[a, b[i]] = row
            Cj[b[i], b[i]] = site.w @ site.g2
            if prop is None:
                continue
            for r, j in enumerate(own[:-1]):  # C_bb' of this pattern at earlier times
                other = sites[j]
                if site.block is not None and other.block is not None and site.block != other.block:
                    if abs(cov[r, -1]) > 1e-10 * np.sqrt(abs(cov[r, r] * cov[-1, -1])):
                        raise NotSupportedError("new sites in independent blocks with a conditional covariance")
                    val = 0.0 if odd else site.mean * other.mean
                else:
                    w = site.w if site.block is not None else other.w
                    mm = np.stack(np.broadcast_arrays(other.m, site.m), 1)
                    L = _sqrt_psd(cov[np.ix_([r, -1], [r, -1])])
                    val = w @ _conditional_mean_of(phi, mm, L, nodes[1])[0]
                Cj[b[i], b[j]] = Cj[b[j], b[i]] = val
    return Cj, a, b

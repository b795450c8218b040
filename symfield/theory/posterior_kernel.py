"""Exact finite-N posterior of a linear μP network as a density over its kernel (theory Secs. 3, 12).

For linear φ the trajectories of the N neurons have the exact joint density ∏_i N(h_i; 0, Σ(C))
(causal network, unit Jacobian), which depends on H only through C = HᵀH/N; the Wishart volume
gives det C^{(N−n−1)/2}, and the Gaussian readout integrates to N(y_S; 0, A(C)/N).  Hence

    ln p(C | D) = N s(C) − (n+1)/2 ln det C − ½ ln det A(C) + const,

with s = S/N the μP action of :mod:`symfield.theory.feature_learning.terms`.  This n(n+1)/2-dimensional density is
sampled by random-walk Metropolis in congruence coordinates around the saddle point, with the
Laplace covariance (−N ∇²s)⁻¹ as proposal shape; the mean output is Rao–Blackwellised,
E[f | C] = σ_v² (M_out ∘ C)_{·S} A⁻¹ y_S.  It is an independent finite-N reference for the weight-space
sampler (same N) and for the 1/N approach to the saddle point (large N cheaply).
"""
from __future__ import annotations

import time

import numpy as np

from ..gauss.quadrature import hermite_nodes
from ..simulate.posterior import PosteriorSamples
from ..spec import SpecError
from .feature_learning.action import LinearAction
from .feature_learning.problem import problem
from .feature_learning.solver import smat
from .feature_learning.spectrum import sector_hessian
from .feature_learning.terms import action_value, data_matrix, restrict


def log_density(act: LinearAction, C: np.ndarray, N: int) -> np.ndarray:
    """ln p(C | D) up to a constant, batched over C (..., n, n); −inf outside the domain."""
    pr = act.pr
    n = pr.n
    sC, ldC = np.linalg.slogdet(C)
    Sig = act.sigma(C)
    sS, ldS = np.linalg.slogdet(Sig)
    S = pr.sites_S
    A = data_matrix(restrict(C, S), pr.mask_out_SS, pr.kappa, pr.sigma_v2)
    sA, ldA = np.linalg.slogdet(A)
    ok = (sC > 0) & (sS > 0) & (sA > 0)
    with np.errstate(all="ignore"):
        tr = np.trace(np.linalg.solve(np.where(ok[..., None, None], Sig, np.eye(n)), C), axis1=-2, axis2=-1)
        w = np.linalg.solve(np.where(ok[..., None, None], A, np.eye(S.size)),
                            np.broadcast_to(pr.y_S, A.shape[:-1])[..., None])[..., 0]
        quad = np.einsum("...i,i->...", w, pr.y_S)
        s = action_value(ldC, ldS, tr, n, quad)
        lp = N * s - 0.5 * (n + 1) * ldC - 0.5 * ldA
    return np.where(ok, lp, -np.inf)


def _laplace(pr, net, X, Y, supervised, kappa, readout, mode):
    """The action, the saddle point (``mode``, solved if None) and the eigenpairs (λ, V) of −∇²s there."""
    from .feature_learning import feature_learning
    act = LinearAction(pr)
    if act.span is not None:
        raise SpecError("X: the input kernel is singular (D < P, dependent or repeated patterns); the kernel-space "
                        "posterior is implemented for a nonsingular one: sample the weights instead "
                        "(symfield.simulate.posterior.posterior works on the span of the inputs)")
    if mode is None:
        mode = feature_learning(net, X, Y, supervised=supervised, kappa=kappa, readout=readout).C_sites
    H, _ = sector_hessian(act, mode, None)
    lam, V = np.linalg.eigh(-H)
    return act, mode, lam, V


def kernel_posterior(net, X, Y, supervised=None, kappa=1.0, N: int = 400, seed: int = 0, *, readout=None,
                     samples: int = 2000, chains: int = 32, burn: int = 2000, thin: int = 10,
                     mode: np.ndarray | None = None) -> PosteriorSamples:
    """Samples of the exact kernel posterior of the linear width-N network (module docstring).

    ``mode``: starting kernel on sites (n, n) (default: the saddle point of :func:`feature_learning`)."""
    pr = problem(net, X, Y, supervised, kappa, readout)
    if pr.spec.phi_fn.name != "linear":
        raise SpecError("the kernel-space posterior is exact for linear φ only")
    if N <= pr.n + 1:
        raise SpecError(f"N = {N} must exceed T·P + 1 = {pr.n + 1}")
    act, mode, lam, V = _laplace(pr, net, X, Y, supervised, kappa, readout, mode)
    n = pr.n
    lam = np.maximum(lam, 1e-3 * lam.max())
    root = V / np.sqrt(N * lam)  # proposal: δz = root @ ξ
    d = lam.size
    L = np.linalg.cholesky(mode)
    rng = np.random.default_rng(seed)
    z = np.zeros((chains, d))

    def kernels(z):
        return mode + L @ smat(z, n) @ L.T

    lp = log_density(act, kernels(z), N)
    scale = 2.38 / np.sqrt(d)
    t0 = time.time()
    Cs, acc, tries = [], 0, 0
    total = burn + samples * thin
    for it in range(total):
        prop = z + scale * rng.standard_normal((chains, d)) @ root.T
        lp_new = log_density(act, kernels(prop), N)
        accept = np.log(rng.random(chains)) < lp_new - lp
        z[accept] = prop[accept]
        lp[accept] = lp_new[accept]
        if it < burn:
            if (it + 1) % 50 == 0:
                scale *= float(np.exp(accept.mean() - 0.3))
        else:
            acc += int(accept.sum())
            tries += chains
            if (it - burn) % thin == thin - 1:
                Cs.append(kernels(z))
    C = np.stack(Cs, axis=1).reshape(-1, n, n)  # chain-major
    chain = np.repeat(np.arange(chains), len(Cs))
    mfull = np.kron(pr.mask_out, np.ones((pr.P, pr.P)))
    S = pr.sites_S
    A = pr.kappa * np.eye(S.size) + pr.sigma_v2 * pr.mask_out_SS * C[:, S[:, None], S[None, :]]
    w = np.linalg.solve(A, np.broadcast_to(pr.y_S, (C.shape[0], S.size))[..., None])[..., 0]
    f = pr.sigma_v2 * np.einsum("kis,ks->ki", (mfull * C)[:, :, S], w)
    f = f.reshape(-1, pr.T, pr.P).transpose(0, 2, 1)
    Ct = C.reshape(-1, pr.T, pr.P, pr.T, pr.P).transpose(0, 1, 3, 2, 4)
    return PosteriorSamples(pr.spec, int(N), Ct, f, chain, np.zeros((0, 0)), acc / max(tries, 1), scale,
                            time.time() - t0)


def kernel_expectation(net, X, Y, observables, supervised=None, kappa=1.0, N: int = 1000, *, readout=None,
                       nodes: int = 8, mode: np.ndarray | None = None) -> dict:
    """E[obs(C)] under the exact kernel posterior by Gauss–Hermite quadrature in Laplace coordinates.

    u ~ N(0, 1_d) ↦ C(u) = L (1 + smat(V Λ^{-1/2} u / √N)) Lᵀ around the saddle point (C* = L Lᵀ, −∇²s = VΛVᵀ
    in congruence coordinates); E[obs] = Σ w(u) e^{ln p(C(u)) − ln p(C*) + |u|²/2} obs(C(u)) / Σ (same without obs).
    For small T·P (d = n(n+1)/2 dimensions, nodes^d points).  Integrates around the selected branch only,
    so observables must be invariant under the Z2 mirror in the broken phase (diag, |corr|, C12·C23, f).
    ``observables``: dict name -> function of the batched site kernels (k, n, n) and outputs f (k, n)."""
    pr = problem(net, X, Y, supervised, kappa, readout)
    act, mode, lam, V = _laplace(pr, net, X, Y, supervised, kappa, readout, mode)
    n = pr.n
    if lam.min() <= 0:
        raise ValueError("the saddle point is not a maximum: no Laplace expansion")
    d = lam.size
    x, w = hermite_nodes(int(nodes))
    grids = np.meshgrid(*([x] * d), indexing="ij")
    U = np.stack([g.reshape(-1) for g in grids], axis=1)
    Wt = np.prod(np.meshgrid(*([w] * d), indexing="ij"), axis=0).reshape(-1)
    Z = U @ (V / np.sqrt(N * lam)).T
    L = np.linalg.cholesky(mode)
    out = {name: 0.0 for name in observables}
    norm = 0.0
    lp0 = float(log_density(act, mode[None], N)[0])
    mfull = np.kron(pr.mask_out, np.ones((pr.P, pr.P)))
    S = pr.sites_S
    for start in range(0, U.shape[0], 65536):
        sl = slice(start, start + 65536)
        C = mode + L @ smat(Z[sl], n) @ L.T
        lp = log_density(act, C, N)
        ratio = np.where(np.isfinite(lp), np.exp(lp - lp0 + 0.5 * np.sum(U[sl] ** 2, axis=1)), 0.0) * Wt[sl]
        A = pr.kappa * np.eye(S.size) + pr.sigma_v2 * pr.mask_out_SS * C[:, S[:, None], S[None, :]]
        A = np.where(np.isfinite(lp)[:, None, None], A, np.eye(S.size))
        wv = np.linalg.solve(A, np.broadcast_to(pr.y_S, (C.shape[0], S.size))[..., None])[..., 0]
        f = pr.sigma_v2 * np.einsum("kis,ks->ki", (mfull * C)[:, :, S], wv)
        norm += ratio.sum()
        for name, fn in observables.items():
            vals = fn(C, f)
            ok = np.isfinite(lp).reshape((-1,) + (1,) * (vals.ndim - 1))
            out[name] = out[name] + np.tensordot(ratio, np.where(ok, vals, 0.0), axes=1)
    return {name: v / norm for name, v in out.items()}

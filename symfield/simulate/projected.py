"""Exact-in-distribution sampling of finite-width networks without N x N matrices.

A Gaussian matrix W (entries N(0, g²/N)) is only ever applied to the vectors φ(h_t). Given the
images Y = W Q of an orthonormal basis Q of the vectors seen so far, the image of a new vector
v = Q c + r (r ⟂ Q) is

    W v = Y c + g |r| / √N · ξ,   ξ ~ N(0, 1_N) independent of Y,

and r/|r| with its image g ξ/√N extends the basis.  The RNN keeps one basis for all steps (one
shared W); the DNN starts a new basis per layer (fresh W): the weight-sharing switch again.  Cost
O(N (TP)²) per network instead of O(N² T).  Input weights act on known vectors: W_in x^(t)_μ are
drawn jointly from their Gram matrix g_in² x·x'/D Π^in.

:func:`kernel_moments` streams the entrywise mean and variance of the empirical kernel
(1/N) Σ h hᵀ and the auxiliary kernel Σdet + M g²/N Σ φφᵀ over many networks.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import numpy as np

from ..spec import NetworkSpec, input_gram


@dataclass
class KernelMoments:
    """Entrywise statistics over ``samples`` networks of width ``N``, each of shape (T, T, P, P):
    mean, unbiased variance and the fourth central moment of the empirical and auxiliary kernels."""

    N: int
    samples: int
    mean_emp: np.ndarray
    var_emp: np.ndarray
    mean_aux: np.ndarray
    var_aux: np.ndarray
    m4_emp: np.ndarray
    m4_aux: np.ndarray

    def mean(self, kind: str = "aux") -> np.ndarray:
        return {"aux": self.mean_aux, "emp": self.mean_emp}[kind]

    def var(self, kind: str = "aux") -> np.ndarray:
        """Unbiased entrywise variance (rounding below zero for deterministic entries clipped to 0)."""
        return np.maximum({"aux": self.var_aux, "emp": self.var_emp}[kind], 0.0)

    def sem(self, kind: str = "aux") -> np.ndarray:
        """Standard error of the mean."""
        return np.sqrt(self.var(kind) / self.samples)

    def var_sem(self, kind: str = "aux") -> np.ndarray:
        """Standard error of the variance, sqrt((μ4 - σ⁴)/S) with the measured fourth central moment."""
        m4 = {"aux": self.m4_aux, "emp": self.m4_emp}[kind]
        return np.sqrt(np.maximum(m4 - self.var(kind) ** 2, 0.0) / self.samples)


def _sqrt_psd(G: np.ndarray) -> np.ndarray:
    lam, V = np.linalg.eigh(G)
    return V * np.sqrt(np.clip(lam, 0.0, None))


def _drive(spec: NetworkSpec, X: np.ndarray, S: int, N: int, rng) -> np.ndarray:
    """Input plus bias at every (sample, time, pattern, neuron): (S, T, P, N)."""
    T, P = spec.T, X.shape[0]
    G = np.zeros((T, P, T, P))
    for a in range(T):
        for b in range(T):
            bias, w_in = spec.sigma_det_parts(a, b)
            if w_in:
                G[a, :, b, :] += w_in * input_gram(X, a, b)
    R = _sqrt_psd(G.reshape(T * P, T * P))
    H = np.einsum("snk,mk->smn", rng.standard_normal((S, N, T * P)), R).reshape(S, T, P, N)
    sb = np.sqrt(spec.sigma_b2_values())
    if spec.bias == "static":
        H += sb[None, :, None, None] * rng.standard_normal((S, 1, 1, N))
    elif spec.bias == "fresh":
        H += sb[None, :, None, None] * rng.standard_normal((S, T, 1, N))
    return H


def trajectories(spec: NetworkSpec, X: np.ndarray, N: int, S: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Hidden states H (S, T, P, N) and φ(H) of ``S`` networks (checked X of shape (P, T or 1, D))."""
    phi = spec.phi_fn.numpy()
    T, P = spec.T, X.shape[0]
    H = _drive(spec, X, S, N, rng)
    Phi = np.empty_like(H)
    gs = spec.g_values()
    Q = np.zeros((S, N, max((T - 1) * P, 1)))   # orthonormal basis of the vectors W has acted on
    Y = np.zeros_like(Q)                        # their images W q, in units of g/√N
    k = 0
    for t in range(T):
        Phi[:, t] = np.broadcast_to(phi(H[:, t]), H[:, t].shape)
        if t == T - 1:
            break
        if not spec.shares_weights:  # a DNN layer has a fresh W: forget the basis
            k = 0
        scale = gs[t] / np.sqrt(N)
        for mu in range(P):
            v = Phi[:, t, mu]
            c = np.einsum("snk,sn->sk", Q[:, :, :k], v)
            r = v - np.einsum("snk,sk->sn", Q[:, :, :k], c)
            nr = np.linalg.norm(r, axis=1)
            xi = rng.standard_normal((S, N))
            H[:, t + 1, mu] += scale * (np.einsum("snk,sk->sn", Y[:, :, :k], c) + nr[:, None] * xi)
            ok = nr > 1e-12 * np.maximum(np.linalg.norm(v, axis=1), 1e-300)
            Q[:, :, k] = np.where(ok[:, None], r / np.where(ok, nr, 1.0)[:, None], 0.0)
            Y[:, :, k] = np.where(ok[:, None], xi, 0.0)
            k += 1
    return H, Phi


def _kernels(spec, H, Phi, sdet):
    N = H.shape[-1]
    emp = np.einsum("satn,sbun->sabtu", H, H) / N
    gs = np.concatenate([[0.0], spec.g_values()])
    gg = np.outer(gs, gs) * spec.weight_mask()
    aux = np.broadcast_to(sdet, emp.shape).copy()
    aux[:, 1:, 1:] += gg[None, 1:, 1:, None, None] * np.einsum("satn,sbun->sabtu", Phi[:, :-1], Phi[:, :-1]) / N
    return emp, aux


def kernel_moments(spec: NetworkSpec, X, N: int, samples: int, seed=None, chunk: int | None = None,
                   progress: bool = False) -> KernelMoments:
    """Entrywise mean and variance of the empirical and auxiliary kernels over ``samples`` networks."""
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
    for name, v in (("N", N), ("samples", samples)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    X = spec.check_inputs(X)
    T, P = spec.T, X.shape[0]
    sdet = np.array([[spec.sigma_det(X, a, b) for b in range(T)] for a in range(T)])
    chunk = chunk or max(1, min(samples, int(4e7 // (8 * N * max((T - 1) * P, 1) * 3))))
    rng = np.random.default_rng(seed)
    power = np.arange(1, 5)[:, None, None, None, None, None]
    sums = np.zeros((2, 4, T, T, P, P))  # (emp, aux) x powers 1..4 of the deviation from a reference
    ref = None
    t0 = time.perf_counter()
    done = 0
    while done < samples:
        S = min(chunk, samples - done)
        H, Phi = trajectories(spec, X, N, S, rng)
        kernels = np.stack(_kernels(spec, H, Phi, sdet))        # (2, S, T, T, P, P)
        if ref is None:  # shift by the first chunk's mean: no cancellation in the higher moments
            ref = kernels.mean(axis=1)
        dev = kernels - ref[:, None]
        sums += (dev[:, None] ** power[None]).sum(axis=2)
        done += S
        if progress:
            print(f"\rkernel_moments {spec.arch} N={N}: {done}/{samples} networks, {time.perf_counter() - t0:.1f} s",
                  end="\n" if done == samples else "", file=sys.stderr, flush=True)
    m1, m2, m3, m4 = (sums[:, k] / samples for k in range(4))
    mean = ref + m1
    var = (m2 - m1 ** 2) * samples / max(samples - 1, 1)
    c4 = m4 - 4 * m1 * m3 + 6 * m1 ** 2 * m2 - 3 * m1 ** 4
    return KernelMoments(N, samples, mean[0], var[0], mean[1], var[1], c4[0], c4[1])

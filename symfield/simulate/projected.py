"""Exact-in-distribution sampling of finite-width networks without N x N matrices.

A Gaussian matrix W (entries N(0, g²/N)) is only ever applied to the vectors φ(h_t). Given the
images Y = W Q of an orthonormal basis Q of the vectors seen so far, the image of a new vector
v = Q c + r (r ⟂ Q) is

    W v = Y c + g |r| / √N · ξ,   ξ ~ N(0, 1_N) independent of Y,

and r/|r| with its image g ξ/√N extends the basis.  Every W group of ``spec.plan`` keeps its own
basis (an RNN one for all steps, a DNN a new one per layer): the weight-sharing switch again.  Cost
O(N (TP)²) per network instead of O(N² T).  Input weights act on known vectors: U x^(t)_μ are
drawn jointly from their Gram matrix g_in² x·x'/D Π^in; biases one vector per bias group; the skip
term a_t h_{t-1} is added as it stands.

:func:`kernel_moments` streams the entrywise mean and variance of the empirical kernel
(1/N) Σ h hᵀ and the auxiliary field C = A D Aᵀ over many networks, with the driving covariance
D = Σdet + (M ∘ r rᵀ) g g (1/N) Σ φφᵀ and the skip propagator A (:mod:`symfield.simulate.skip`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import parallel
from ..api import check_positive_int, check_spec, legacy_positional
from ..errors import SpecError, SpecTypeError
from ..resources import check_memory, check_steps, check_time
from ..spec import NetworkSpec, input_gram
from .skip import propagate


@dataclass
class KernelMoments:
    """Entrywise statistics over ``samples`` networks of width ``N``, each of shape (T, T, P, P):
    mean, unbiased variance and the fourth central moment of the empirical and auxiliary kernels.
    ``.C`` is the mean of the empirical kernel (as ``PriorEnsemble.C``); no per-sample kernels are kept."""

    N: int
    samples: int
    mean_emp: np.ndarray
    var_emp: np.ndarray
    mean_aux: np.ndarray
    var_aux: np.ndarray
    m4_emp: np.ndarray
    m4_aux: np.ndarray
    spec: NetworkSpec | None = None  #: the declaration simulated

    @property
    def C(self) -> np.ndarray:
        """Mean of the empirical kernel over the networks, (T, T, P, P) (compare with ``mean_field(spec, X).C``)."""
        return self.mean_emp

    def mean(self, kind: str = "aux") -> np.ndarray:
        return {"aux": self.mean_aux, "emp": self.mean_emp}[_kind(kind)]

    def var(self, kind: str = "aux") -> np.ndarray:
        """Unbiased entrywise variance (rounding below zero for deterministic entries clipped to 0)."""
        return np.maximum({"aux": self.var_aux, "emp": self.var_emp}[_kind(kind)], 0.0)

    def sem(self, kind: str = "aux") -> np.ndarray:
        """Standard error of the mean."""
        return np.sqrt(self.var(kind) / self.samples)

    def var_sem(self, kind: str = "aux") -> np.ndarray:
        """Standard error of the variance, sqrt((μ4 - σ⁴)/S) with the measured fourth central moment."""
        m4 = {"aux": self.m4_aux, "emp": self.m4_emp}[_kind(kind)]
        return np.sqrt(np.maximum(m4 - self.var(kind) ** 2, 0.0) / self.samples)

    def to_xarray(self):
        """Labelled Dataset (dims t, s, mu, nu; spec in attrs): :func:`symfield.labelled.kernel_moments`."""
        from ..labelled import kernel_moments as labelled
        names = ("mean_emp", "var_emp", "mean_aux", "var_aux", "m4_emp", "m4_aux")
        return labelled(self.spec, self.N, self.samples, {k: getattr(self, k) for k in names})


def _kind(kind: str) -> str:
    if kind not in ("aux", "emp"):
        raise SpecError(f"kind must be 'aux' or 'emp', got {kind!r}")
    return kind


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
    plan = spec.plan
    if plan.n_b:
        H += plan.b_scale[None, :, None, None] * rng.standard_normal((S, plan.n_b, 1, N))[:, plan.b]
    return H


def _basis_offsets(labels: np.ndarray, P: int) -> np.ndarray:
    """First basis column of each W group (labels per step, -1 at t = 0): a group gets as many columns
    as vectors it acts on, and reuses the columns of groups no longer applied (a DNN layer starts at 0)."""
    first = {int(l): t for t, l in reversed(list(enumerate(labels))) if l >= 0}
    last = {int(l): t for t, l in enumerate(labels) if l >= 0}
    off = np.zeros(len(first), dtype=np.int64)
    top = 0
    for l, t in sorted(first.items(), key=lambda item: item[1]):
        if all(last[m] < t for m in first if first[m] < t):
            top = 0  # no earlier group is applied again: its columns are free
        off[l] = top
        top += int(np.sum(labels == l)) * P
    return off


def trajectories(spec: NetworkSpec, X: np.ndarray, N: int, S: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """Hidden states H (S, T, P, N) and φ(H) of ``S`` networks (checked X of shape (P, T or 1, D))."""
    phi = spec.phi_fn.numpy()
    T, P = spec.T, X.shape[0]
    plan = spec.plan
    H = _drive(spec, X, S, N, rng)
    Phi = np.empty_like(H)
    Q = np.zeros((S, N, max((T - 1) * P, 1)))   # orthonormal bases of the vectors each W has acted on
    Y = np.zeros_like(Q)                        # their images W q, in units of r g/√N
    start = _basis_offsets(plan.W, P)
    used = np.zeros_like(start)                 # basis vectors of each group so far
    for t in range(T):
        Phi[:, t] = np.broadcast_to(phi(H[:, t]), H[:, t].shape)
        if t == T - 1:
            break
        if plan.leak[t + 1] != 0:
            H[:, t + 1] += plan.leak[t + 1] * H[:, t]
        grp = plan.W[t + 1]
        o = start[grp]
        scale = plan.w_scale[t + 1] / np.sqrt(N)
        for mu in range(P):
            k = used[grp]
            v = Phi[:, t, mu]
            c = np.einsum("snk,sn->sk", Q[:, :, o:o + k], v)
            r = v - np.einsum("snk,sk->sn", Q[:, :, o:o + k], c)
            nr = np.linalg.norm(r, axis=1)
            xi = rng.standard_normal((S, N))
            H[:, t + 1, mu] += scale * (np.einsum("snk,sk->sn", Y[:, :, o:o + k], c) + nr[:, None] * xi)
            ok = nr > 1e-12 * np.maximum(np.linalg.norm(v, axis=1), 1e-300)
            Q[:, :, o + k] = np.where(ok[:, None], r / np.where(ok, nr, 1.0)[:, None], 0.0)
            Y[:, :, o + k] = np.where(ok[:, None], xi, 0.0)
            used[grp] = k + 1
    return H, Phi


def _kernels(spec, H, Phi, sdet):
    """Empirical kernel (1/N) Σ h hᵀ and auxiliary field A D Aᵀ (module docstring), per sample."""
    N = H.shape[-1]
    emp = np.einsum("satn,sbun->sabtu", H, H) / N
    gs = np.concatenate([[0.0], spec.g_values()])
    gg = np.outer(gs, gs) * spec.branch_mask()
    aux = np.broadcast_to(sdet, emp.shape).copy()
    aux[:, 1:, 1:] += gg[None, 1:, 1:, None, None] * np.einsum("satn,sbun->sabtu", Phi[:, :-1], Phi[:, :-1]) / N
    return emp, propagate(spec, aux)


def chunk_moments(task):
    """Mean and central power sums (orders 2..4) of the (emp, aux) kernels of chunk ``j`` of networks:
    (count, mean (2, T, T, P, P), sums (3, 2, T, T, P, P)).  Chunk j draws from its own stream, the
    child (j,) of the root seed, so a chunk's numbers do not depend on where or when it runs."""
    spec, X, N, S, root, j = task
    T = spec.T
    rng = np.random.default_rng(np.random.SeedSequence(root.entropy, spawn_key=tuple(root.spawn_key) + (j,)))
    sdet = np.array([[spec.sigma_det(X, a, b) for b in range(T)] for a in range(T)])
    H, Phi = trajectories(spec, X, N, S, rng)
    kernels = np.stack(_kernels(spec, H, Phi, sdet))  # (2, S, T, T, P, P)
    mean = kernels.mean(axis=1)
    dev = kernels - mean[:, None]
    return S, mean, np.stack([(dev ** p).sum(axis=1) for p in (2, 3, 4)])


def combine_moments(parts) -> tuple:
    """Merge chunk moments in the given order (pairwise update of mean and central sums of orders 2..4,
    Pébay 2008, eqs. 3.1 and 2.10-2.12): (count, mean, (M2, M3, M4))."""
    n, mean, (M2, M3, M4) = parts[0]
    for nb, mb, (B2, B3, B4) in parts[1:]:
        m = n + nb
        d = mb - mean
        M4 = (M4 + B4 + d ** 4 * n * nb * (n * n - n * nb + nb * nb) / m ** 3
              + 6 * d ** 2 * (n * n * B2 + nb * nb * M2) / m ** 2 + 4 * d * (n * B3 - nb * M3) / m)
        M3 = M3 + B3 + d ** 3 * n * nb * (n - nb) / m ** 2 + 3 * d * (n * B2 - nb * M2) / m
        M2 = M2 + B2 + d ** 2 * n * nb / m
        mean = mean + d * nb / m
        n = m
    return n, mean, (M2, M3, M4)


def moment_tasks(spec, X, N: int, samples: int, seed, chunk: int | None) -> list:
    """The chunk tasks of :func:`kernel_moments` (checked arguments; X checked)."""
    T, P = spec.T, X.shape[0]
    if chunk is None:  # memory bound, and at least 8 chunks for the workers (no fewer than 32 networks each)
        chunk = min(int(4e7 // (8 * N * max((T - 1) * P, 1) * 3)), max(32, -(-samples // 8)))
    S = max(1, min(chunk, samples))  # states (H, φ(H), bases Q, images Y) and the kernel arrays of a chunk
    n_chunks = -(-samples // S)  # each returns a mean and three central sums of both kernels
    check_memory(8.0 * (8 * (T * P) ** 2 * (n_chunks + 1)
                        + S * (2 * N * T * P + 2 * N * max((T - 1) * P, 1) + 12 * (T * P) ** 2)),
                 f"kernel_moments (chunk of {S} networks of width N = {N}, T P = {T * P})", "chunk or N (or P, T)")
    try:
        root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    except (TypeError, ValueError) as err:
        raise SpecError(f"seed must be a non-negative int, a tuple of them, a SeedSequence or None: {err}") from None
    return [(spec, X, N, hi - lo, root, j) for j, (lo, hi) in enumerate(parallel.split(samples, n_chunks))]


def moments_result(spec, N: int, parts) -> KernelMoments:
    """:class:`KernelMoments` from the chunk moments of :func:`chunk_moments`, merged in chunk order."""
    n, mean, (M2, M3, M4) = combine_moments(parts)
    var = M2 / max(n - 1, 1)
    c4 = M4 / n
    return KernelMoments(N, n, mean[0], var[0], mean[1], var[1], c4[0], c4[1], spec)


@legacy_positional("seed", "chunk", "progress")
def kernel_moments(spec: NetworkSpec, X, N: int, samples: int, *, seed=None, chunk: int | None = None,
                   progress: bool = False, scheduler=None, checkpoint=None) -> KernelMoments:
    """Entrywise mean and variance of the empirical and auxiliary kernels over ``samples`` networks.

    The networks are simulated in chunks of ``chunk`` (default: memory-bounded, about samples/8), chunk j
    from the child (j,) of ``seed`` (an int, a tuple of ints or a SeedSequence); the numbers depend on
    ``seed``, ``samples`` and ``chunk`` only, not on ``scheduler`` (:mod:`symfield.parallel`), which runs
    the chunks; ``checkpoint``: directory keeping finished chunks."""
    check_spec(spec)
    N, samples = check_positive_int("N", N), check_positive_int("samples", samples)
    check_steps("samples", samples)
    chunk = None if chunk is None else check_positive_int("chunk", chunk)
    X = spec.check_inputs(X)
    if isinstance(seed, (bool, np.bool_)):
        raise SpecTypeError(f"seed must be an integer, a sequence of integers, a SeedSequence or None, got {seed!r}")
    T, P = spec.T, X.shape[0]
    check_time(samples * (T * (2.0 * N * N * P + 20.0 * N * N) + 8.0 * N * (T * P) ** 2),
               f"kernel_moments (samples = {samples}, N = {N}, T = {T}, P = {P})", "samples or N (or P, T)")
    tasks = moment_tasks(spec, X, N, samples, seed, chunk)
    parts = parallel.map_tasks(chunk_moments, tasks, scheduler=scheduler, checkpoint=checkpoint, progress=progress,
                               desc=f"kernel_moments {spec.label.lower()} N={N}")
    return moments_result(spec, N, parts)

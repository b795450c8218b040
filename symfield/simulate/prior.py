"""Prior ensembles of finite-width networks (any declaration) and their kernels (theory Secs. 2, 3.3, 8.7, 8.9).

Per network sample (all P patterns go through the same weights) two kernels are recorded on all
site pairs (t, mu), (s, nu):

    empirical  K̂[t,s,mu,nu] = (1/N) Σ_i h_i(t,mu) h_i(s,nu)                                (Sec. 8.7)
    driving    D[t,s,mu,nu] = Σdet[t,s,mu,nu] + M_ts r_t g_t r_s g_s (1/N) Σ_i φ(h_i(t-1,mu)) φ(h_i(s-1,nu))
    auxiliary  C = A D Aᵀ on the time index, A_ts = a_{s+1}···a_t (s <= t)                     (Sec. 3.3)

(the φφ term only for t, s >= 2; M the weight mask of the declaration, C = D without skip).  The
network is read from ``spec.plan``; samples are propagated in chunks with batched BLAS matmuls; the
seed -> sample map is documented in :mod:`symfield.simulate.draws`.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from .. import parallel
from ..api import check_positive_int, check_spec, legacy_positional
from ..errors import NonFiniteError, SpecError
from ..progress import progress_bar
from ..resources import check_memory, check_time
from ..spec import NetworkSpec
from . import draws
from .skip import propagate
from threadpoolctl import threadpool_limits

KINDS = ("emp", "aux")
_CHUNK_BYTES = 16 * 2 ** 20  # default memory budget of one chunk's states (also the progress step)
_CACHE_BYTES = 8 * 2 ** 20  # hidden weights propagated together


@dataclass
class PriorEnsemble:
    """Kernels of ``samples`` random networks: ``emp`` and ``aux`` of shape (samples, T, T, P, P)."""

    spec: NetworkSpec
    X: np.ndarray  # checked inputs, (P, T or 1, D)
    N: int
    seed: object  # int entropy (or the SeedSequence given): prior(..., seed=ens.seed) reproduces the ensemble
    emp: np.ndarray = field(repr=False)
    aux: np.ndarray = field(repr=False)
    sigma_det: np.ndarray = field(repr=False)  # (T, T, P, P)
    seconds: float = 0.0

    @property
    def samples(self) -> int:
        return self.emp.shape[0]

    def kernel(self, kind: str = "emp") -> np.ndarray:
        """Per-sample kernels of ``kind`` ('emp' = K̂, 'aux' = C): (samples, T, T, P, P)."""
        if kind not in KINDS:
            raise SpecError(f"kind must be one of {KINDS}, got {kind!r}")
        return self.emp if kind == "emp" else self.aux

    def mean(self, kind: str = "emp") -> np.ndarray:
        """Ensemble mean (T, T, P, P)."""
        return self.kernel(kind).mean(axis=0)

    def var(self, kind: str = "emp", ddof: int = 1) -> np.ndarray:
        """Ensemble variance of every entry (T, T, P, P)."""
        return self.kernel(kind).var(axis=0, ddof=ddof)

    def sem(self, kind: str = "emp") -> np.ndarray:
        """Standard error of :meth:`mean`."""
        return np.sqrt(self.var(kind) / self.samples)

    @property
    def C(self) -> np.ndarray:
        """Ensemble mean of the empirical kernel, (T, T, P, P) (compare with ``mean_field(spec, X).C``);
        the per-sample kernels are ``.emp`` / ``.aux``."""
        return self.mean("emp")

    def to_xarray(self):
        """Labelled Dataset (dims sample, t, s, mu, nu; spec in attrs): :func:`symfield.labelled.prior_ensemble`."""
        from ..labelled import prior_ensemble as labelled
        return labelled(self.spec, self.X, self.N, self.seed, self.emp, self.aux, self.sigma_det, self.seconds)


_positive_int = check_positive_int


def _sigma_det(spec: NetworkSpec, X: np.ndarray) -> np.ndarray:
    return np.array([[spec.sigma_det(X, a, b) for b in range(spec.T)] for a in range(spec.T)])


def _drive(spec, root, ks, N, X) -> np.ndarray:
    """Input + bias drive of each hidden state: (c, N, T, P).

    An input group acting at several steps (shared U) is one matmul on its stacked inputs; the groups
    of a sequence that act at one step each (per-layer U) are one batched einsum."""
    P, Tin, D = X.shape
    T = spec.T
    steps = [np.flatnonzero(spec.plan.U == l) for l in range(spec.plan.n_U)]
    single = [l for l, ts in enumerate(steps) if len(ts) == 1 and Tin > 1]
    ts1 = np.array([steps[l][0] for l in single], dtype=np.intp)
    out = np.zeros((len(ks), N, T, P))
    for j, k in enumerate(ks):
        w_in = draws.input_weights(spec, root, k, N, D)
        if single:
            out[j][:, ts1] = np.einsum("tnd,ptd->ntp", w_in[single], X[:, ts1])
        for l, ts in enumerate(steps):
            if l not in single:
                x = X[:, ts if Tin > 1 else [0]].transpose(2, 1, 0).reshape(D, len(ts) * P)
                out[j][:, ts] = (w_in[l] @ x).reshape(N, len(ts), P)
        out[j] += draws.biases(spec, root, k, N).T[:, :, None]
    return out


def _gram(A: np.ndarray, N: int) -> np.ndarray:
    """(1/N) A^T A over neurons for A of shape (c, N, T', P) -> (c, T', T', P, P)."""
    c, _, Tp, P = A.shape
    A2 = A.reshape(c, N, Tp * P)
    G = np.matmul(A2.transpose(0, 2, 1), A2) / N
    return G.reshape(c, Tp, P, Tp, P).transpose(0, 1, 3, 2, 4)


def _hidden_weights(root, jobs, N, Zbuf, pool):
    """Yield the standard normals of each job ``(samples, W group)``, drawn one job ahead in ``pool``.

    Double-buffered in ``Zbuf`` (2, B, N, N): a yielded array is valid until the next one is asked for.
    """
    def fill(i):
        ks, group = jobs[i]
        Z = Zbuf[i % 2, : len(ks)]
        for j, k in enumerate(ks):
            draws.hidden_normals(root, k, group, N, out=Z[j])
        return Z

    fut = pool.submit(fill, 0) if jobs else None
    for i in range(len(jobs)):
        Z = fut.result()
        if i + 1 < len(jobs):
            fut = pool.submit(fill, i + 1)
        yield Z


def _run_chunk(spec, root, ks, N, X, phi, sdet, Zbuf, pool):
    """Propagate samples ``ks`` and return their (emp, aux) kernels.

    Samples go through the recursion in sub-batches of ``Zbuf.shape[1]`` (batched matmul), so that
    the hidden weights of a sub-batch stay in cache while a run of steps sharing one W group reuses
    them (a group used again after another one is drawn again from its stream: same numbers).
    """
    T = spec.T
    plan = spec.plan
    H = _drive(spec, root, ks, N, X)  # becomes the hidden states h[:, :, t, :]
    Phi = np.empty_like(H[:, :, : T - 1])
    scales = draws.hidden_scales(spec, N)
    B = Zbuf.shape[1] if T > 1 else len(ks)
    subs = [slice(lo, min(lo + B, len(ks))) for lo in range(0, len(ks), B)] if T > 1 else []
    runs = draws.runs(plan.W)
    starts = {steps[0] for _, steps in runs}
    weights = _hidden_weights(root, [(ks[sub], group) for sub in subs for group, _ in runs], N, Zbuf, pool)
    for sub in subs:
        for t in range(1, T):
            if t in starts:
                Z = next(weights)
            f = np.ascontiguousarray(phi(H[sub, :, t - 1]))  # contiguous, so that matmul uses BLAS
            Phi[sub, :, t - 1] = f
            if plan.leak[t] != 0:
                H[sub, :, t] += plan.leak[t] * H[sub, :, t - 1]
            H[sub, :, t] += scales[t] * np.matmul(Z, f)
    emp = _gram(H, N)
    aux = np.broadcast_to(sdet, emp.shape).copy()
    if T > 1:
        gg = np.outer(scales[1:], scales[1:]) * N * spec.weight_mask()[1:, 1:]
        aux[:, 1:, 1:] += gg[None, :, :, None, None] * _gram(Phi, N)
    return emp, propagate(spec, aux)


def _default_chunk(spec, N, P, samples) -> int:
    per_sample = 8 * 3 * N * spec.T * P  # states, drive and φ(states)
    return max(1, min(samples, _CHUNK_BYTES // per_sample))


def _weight_batch(N, chunk) -> int:
    """Samples whose hidden weights are held at once (~8 MB, about one L3 cache)."""
    return max(1, min(chunk, _CACHE_BYTES // (8 * N * N)))


def _simulate_range(spec, X, N, root, lo, hi, chunk, blas_threads, out=None, bar=None):
    """Kernels (emp, aux) of samples lo..hi-1, in chunks of ``chunk`` samples (into ``out`` if given)."""
    T, P = spec.T, X.shape[0]
    emp, aux = out if out is not None else (np.empty((hi - lo, T, T, P, P)), np.empty((hi - lo, T, T, P, P)))
    phi = spec.phi_fn.numpy()
    sdet = _sigma_det(spec, X)
    chunk = min(chunk, hi - lo)
    Zbuf = np.empty((2, _weight_batch(N, chunk), N, N)) if T > 1 else None
    with ThreadPoolExecutor(max_workers=1) as pool, threadpool_limits(blas_threads, user_api="blas"):
        for start in range(lo, hi, chunk):
            ks = range(start, min(start + chunk, hi))
            emp[ks.start - lo:ks.stop - lo], aux[ks.start - lo:ks.stop - lo] = \
                _run_chunk(spec, root, ks, N, X, phi, sdet, Zbuf, pool)
            if bar is not None:
                bar.update(len(ks))
    return emp, aux


def _prior_task(task):
    """One task of a distributed ensemble: ``_simulate_range(*task)``."""
    return _simulate_range(*task)


@legacy_positional("seed", "chunk", "progress", "blas_threads")
def prior(spec: NetworkSpec, X, N: int, samples: int, *, seed=None, chunk: int | None = None,
          progress: bool = False, blas_threads: int | None = 1, scheduler=None, checkpoint=None) -> PriorEnsemble:
    """Simulate ``samples`` independent width-``N`` networks declared by ``spec`` on inputs ``X``.

    Returns a :class:`PriorEnsemble` with the empirical (``.emp``) and auxiliary (``.aux``)
    kernels of every sample.  ``seed``: int, ``SeedSequence`` or None (fresh entropy, stored in
    ``.seed``); sample k's randomness is independent of ``chunk`` (map in
    :mod:`symfield.simulate.draws`).  ``chunk``: samples whose states are held together (memory
    ~ 24·chunk·N·T·P bytes, default ~16 MB); hidden weights are drawn in a background thread, one
    batch ahead, and multiplied in batches of ~8 MB (at least one N x N matrix; two such buffers
    plus 16·N² bytes of scratch per thread).  ``progress``: a progress bar (:mod:`symfield.progress`).
    ``blas_threads``: BLAS threads while simulating (1: fastest for these thin matmuls on a shared
    machine; None: leave the BLAS setting alone).
    ``scheduler``: where the chunks run (:mod:`symfield.parallel`; bit-identical results on any number
    of workers); ``checkpoint``: a directory keeping finished chunks (an interrupted run resumes).
    """
    check_spec(spec)
    X = spec.check_inputs(X)
    N = _positive_int("N", N)
    samples = _positive_int("samples", samples)
    P = X.shape[0]
    chunk = _default_chunk(spec, N, P, samples) if chunk is None else min(_positive_int("chunk", chunk), samples)
    root = draws.root_seed(seed)
    blas_threads_n = None if blas_threads is None else _positive_int("blas_threads", blas_threads)
    client = parallel.resolve(scheduler)
    T = spec.T
    check_memory(16.0 * samples * (T * P) ** 2 + 24.0 * chunk * N * T * P + 16.0 * N * N * (_weight_batch(N, chunk) + 2),
                 f"prior (samples = {samples} x 2 kernels of (T P)^2 = {T * P}^2, N = {N})", "samples (or P, T, N)")
    check_time(samples * (T * (2.0 * N * N * P + 20.0 * N * N) + 4.0 * N * (T * P) ** 2),
               f"prior (samples = {samples}, N = {N}, T = {T}, P = {P})", "samples or N (or P, T)")
    emp = np.empty((samples, T, T, P, P))
    aux = np.empty_like(emp)
    t0 = time.perf_counter()
    desc = f"prior {spec.label.lower()} N={N}"
    if client is None and checkpoint is None:
        with progress_bar(samples, desc, progress) as bar:
            _simulate_range(spec, X, N, root, 0, samples, chunk, blas_threads_n, (emp, aux), bar)
    else:  # tasks of at most ~chunk samples, at least four per worker
        ranges = parallel.split(samples, max(4 * parallel.workers(client), -(-samples // chunk)))
        tasks = [(spec, X, N, root, lo, hi, chunk, blas_threads_n) for lo, hi in ranges]
        for i, (e, a) in parallel.run_tasks(_prior_task, tasks, scheduler="serial" if client is None else client,
                                            checkpoint=checkpoint, progress=progress, desc=desc):
            emp[ranges[i][0]:ranges[i][1]], aux[ranges[i][0]:ranges[i][1]] = e, a
    if not (np.all(np.isfinite(emp)) and np.all(np.isfinite(aux))):
        raise NonFiniteError(f"non-finite hidden states for phi={spec.phi_fn.name} at N={N} "
                             "(activity diverged; reduce g, the skip coefficients or T)")
    seed_out = root.entropy if not root.spawn_key else root
    return PriorEnsemble(spec, X, N, seed_out, emp, aux, _sigma_det(spec, X), time.perf_counter() - t0)

"""Finite-width posterior of μP networks by compiled HMC (theory Secs. 1.3, 12).

    post = posterior(spec, X, Y, supervised=..., kappa=..., N=400, seed=0)
    post.C          # samples: (samples, T, T, P, P) kernels φ(h)·φ(h)/N
    post.f          # (samples, P, T) outputs
    post.mean("abs_corr"), post.sem("abs_corr")

Samples p(θ | D) ∝ exp(−N/(2κ) Σ_S (y − f)²) p(θ), the stationary law of Langevin training with MSE
loss, weight decay from the prior and temperature κ/N.  Several independent chains (from prior
draws) are run; the step size is adapted during burn-in towards ``target_accept``.
"""
from __future__ import annotations

import time
from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from .. import parallel
from ..api import check_positive_int, check_real, legacy_positional
from ..progress import progress_bar
from ..resources import check_memory, check_steps, check_time
from ..spec import SpecError
from ..task import problem
from . import posterior_hmc
from .batch_means import batch_sem
from .draws import group_scales, root_seed

Layout = namedtuple("Layout", "T N u_off u_layer su w_off w_layer gw leak b_off b_layer sb v_off v_layer sv")


def _groups(mask: np.ndarray) -> np.ndarray:
    """Readout group of every time step from a readout mask (must be an equivalence relation)."""
    T = mask.shape[0]
    group = -np.ones(T, dtype=np.int64)
    g = 0
    for t in range(T):
        if group[t] < 0:
            members = np.flatnonzero(mask[t])
            if np.any(group[members] >= 0) or not np.all(mask[np.ix_(members, members)]):
                raise SpecError("the readout mask must group time steps into blocks sharing one readout")
            group[members] = g
            g += 1
    return group


def reduced_inputs(Xc: np.ndarray):
    """(x̃ (P, T_in, r), r): coordinates of the inputs in an orthonormal basis of their span."""
    P, Tin, D = Xc.shape
    flat = Xc.reshape(P * Tin, D)
    _, s, vt = np.linalg.svd(flat, full_matrices=False)
    r = max(1, int(np.sum(s > 1e-12 * max(s.max(), 1e-300))))
    return np.ascontiguousarray((flat @ vt[:r].T).reshape(P, Tin, r)), r


def layout(spec, N: int, D: int, r: int, mask_out: np.ndarray):
    """Parameter layout of θ = [U..., W..., b..., v...] from ``spec.plan`` and the scales of each block.

    Group labels per step (-1: none at that step): input U, hidden W (scale r_t g_t/√N), bias b (σ_t;
    no bias parameters when every σ_t = 0) and readout v from the readout mask ``mask_out`` (the
    declared v groups when it is the declaration's readout mask)."""
    plan = spec.plan
    T = spec.T
    sb = plan.b_scale.astype(float)
    n_b = plan.n_b if np.any(sb > 0) else 0
    b_layer = plan.b if n_b else -np.ones(T, dtype=np.int64)
    v_layer = plan.v if np.array_equal(mask_out, spec.readout_mask()) else _groups(mask_out)
    n_v = int(v_layer.max()) + 1
    u_off = 0
    w_off = u_off + plan.n_U * N * r
    b_off = w_off + plan.n_W * N * N
    v_off = b_off + n_b * N
    size = v_off + n_v * N
    lay = Layout(T, N, u_off, plan.U, spec.g_in / np.sqrt(D), w_off, plan.W, plan.w_scale / np.sqrt(N),
                 plan.leak.astype(float), b_off, b_layer, sb, v_off, v_layer, float(spec.sigma_v))
    return lay, size, plan.n_W


@dataclass
class PosteriorSamples:
    """Posterior samples of a width-N network: kernels, outputs and the top |eigenvalue| of W.

    ``.C`` holds **samples**: one kernel per stored sample, shape (samples, T, T, P, P); the posterior
    mean kernel is ``.mean("C")``."""

    spec: object
    N: int
    C: np.ndarray = field(repr=False)  # (samples, T, T, P, P)
    f: np.ndarray = field(repr=False)  # (samples, P, T)
    chain: np.ndarray = field(repr=False)  # chain index of every sample
    W_top: np.ndarray = field(repr=False)  # (m, n_W): top |eigenvalue| of each hidden matrix, m samples
    acceptance: float = 0.0
    step: float = 0.0
    seconds: float = 0.0
    W_last: list = field(default_factory=list, repr=False)  # hidden matrices of the last sample (actual scale)
    seed: object = None  # int entropy used (or the SeedSequence given): posterior(..., seed=post.seed) reproduces it

    @property
    def samples(self) -> int:
        return self.C.shape[0]

    def observable(self, name: str) -> np.ndarray:
        """Per-sample values: 'C' (T,T,P,P), 'diag' (T,P), 'abs_corr' (T,T,P,P), 'C12C23' (P,)
        (C[T-2,T-1]·C[T-1,T] per pattern, sign invariant), 'f' (P,T), 'W_top', 'learned'."""
        C = self.C
        if name == "C":
            return C
        if name == "diag":
            return np.einsum("kttmm->ktm", C)
        if name == "abs_corr":
            d = np.sqrt(np.einsum("kttmm->ktm", C))
            return np.abs(C) / (d[:, :, None, :, None] * d[:, None, :, None, :])
        if name == "C12C23":
            T = C.shape[1]
            if T < 3:
                raise SpecError("observable 'C12C23' needs T >= 3")
            return np.einsum("kmm->km", C[:, T - 3, T - 2]) * np.einsum("kmm->km", C[:, T - 2, T - 1])
        if name == "f":
            return self.f
        if name == "W_top":
            return self.W_top
        if name == "learned":
            return learned_eigenvalues(C)
        raise SpecError(f"unknown observable name {name!r}")

    def mean(self, name: str = "C") -> np.ndarray:
        return self.observable(name).mean(axis=0)

    def to_xarray(self):
        """Labelled Dataset (dims sample, t, s, mu, nu; spec in attrs): :func:`symfield.labelled.posterior_samples`."""
        from ..labelled import posterior_samples as labelled
        return labelled(self.spec, self.N, self.C, self.f, self.chain, self.W_top, self.acceptance, self.step,
                        self.seed, self.seconds)

    def sem(self, name: str = "C", batches: int = 5) -> np.ndarray:
        """Standard error of :meth:`mean`: batch means, ``batches`` contiguous batches per chain
        (:func:`symfield.simulate.batch_means.batch_sem`; ``batches=1``: the spread of the chain means,
        the robust choice when chains may sit in different branches); 'W_top': the spread of the draws."""
        obs = self.observable(name)
        if name == "W_top":
            return obs.std(axis=0, ddof=1) / np.sqrt(max(obs.shape[0], 2))
        return batch_sem(obs, self.chain, batches)


def learned_eigenvalues(C: np.ndarray) -> np.ndarray:
    """Per-sample eig(C_pp⁻¹ C_pn) (RNN, P = 1 sites t <= T-1), sorted by |λ| descending: (samples, T-1)."""
    k, T, _, P, _ = C.shape
    n = T * P
    Cs = C.transpose(0, 1, 3, 2, 4).reshape(k, n, n)
    M = np.linalg.solve(Cs[:, :n - P, :n - P], Cs[:, :n - P, P:])
    lam = np.linalg.eigvals(M)
    idx = np.argsort(-np.abs(lam), axis=1)
    return np.take_along_axis(lam, idx, axis=1)


def _hidden_matrices(theta, lay, gscale) -> list:
    """The hidden matrices g Z/√N of every W group (actual scale, without the branch scale r_t)."""
    N = lay.N
    return [theta[lay.w_off + l * N * N: lay.w_off + (l + 1) * N * N].reshape(N, N) * sc
            for l, sc in enumerate(gscale)]


def _top_abs_eig(W: np.ndarray) -> float:
    return float(np.abs(np.linalg.eigvals(W)).max())


def _chain(task, bar=None):
    """One HMC chain: (kernels, outputs, top eigenvalues, accepted, tried, final step, last hidden matrices)."""
    ss, spec, pr, xr, lay, size, gscale, eps0, burn, samples, thin, leapfrog, target_accept, eig_samples, blas = task
    mod = posterior_hmc.load(spec.phi_fn)
    y = np.ascontiguousarray(pr.Y.T, dtype=float)
    y[~pr.supervised.T] = 0.0
    sup = np.ascontiguousarray(pr.supervised.T)
    rng = np.random.default_rng(ss)
    theta = rng.standard_normal(size)
    eps = eps0
    seeds = rng.integers(0, 2 ** 31 - 1, size=burn + samples * thin + 1)
    Cs, fs, tops = [], [], []
    acc = tries = 0
    with threadpool_limits(blas, user_api="blas"):
        done = 0
        while done < burn:  # adaptation in windows of 10 trajectories
            m = min(10, burn - done)
            a = mod.hmc(theta, lay, xr, y, sup, pr.kappa, eps, leapfrog, m, int(seeds[done]))
            eps *= float(np.exp(0.5 * (a / m - target_accept)))
            done += m
            if bar is not None:
                bar.update(m)
                bar.set_postfix_str(f"burn-in, accept {a / m:.2f}, step {eps:.4f}")
        eig_every = max(1, samples // eig_samples) if eig_samples else 0
        C = np.empty((pr.n, pr.n))
        f = np.empty((pr.T, pr.P))
        for k in range(samples):
            acc += mod.hmc(theta, lay, xr, y, sup, pr.kappa, eps, leapfrog, thin, int(seeds[burn + k * thin]))
            tries += thin
            mod.kernel_and_outputs(theta, lay, xr, C, f)
            Cs.append(pr.from_sites(C.copy()))
            fs.append(f.T.copy())
            if eig_every and k % eig_every == 0:
                tops.append([_top_abs_eig(W) for W in _hidden_matrices(theta, lay, gscale)])
            if bar is not None:
                bar.update(thin)
                bar.set_postfix_str(f"accept {acc / max(tries, 1):.2f}")
    return np.array(Cs), np.array(fs), tops, acc, tries, eps, _hidden_matrices(theta, lay, gscale)


@legacy_positional("supervised", "kappa", "N", "seed")
def posterior(spec, X, Y, *, supervised=None, kappa=1.0, N: int = 400, seed=0, readout=None,
              samples: int = 200, burn: int = 200, thin: int = 1, chains: int = 4, leapfrog: int = 30,
              step: float | None = None, target_accept: float = 0.8, eig_samples: int = 0,
              progress: bool = False, blas_threads: int | None = 1, scheduler=None,
              checkpoint=None) -> PosteriorSamples:
    """HMC samples of the weight posterior of the width-N network ``spec`` (module docstring).

    ``samples`` per chain after ``burn`` adapting trajectories, one stored sample every ``thin``
    trajectories; ``step`` (leapfrog step, default 0.1, adapted in burn-in); ``eig_samples``: number of
    stored samples per chain whose hidden matrices are diagonalised (top |eigenvalue|, O(N³) each).
    ``scheduler``: where the chains run (:mod:`symfield.parallel`; chain c always uses the c-th child of
    the seed, so results are bit-identical on any number of workers); ``checkpoint``: a directory keeping
    finished chains; ``progress``: a progress bar over trajectories (in-process) or chains."""
    pr = problem(spec, X, Y, supervised, kappa, readout)
    step, target_accept = check_chain_args(N, samples, burn, thin, chains, leapfrog, eig_samples, step, target_accept)
    if blas_threads is not None:
        check_positive_int("blas_threads", blas_threads)
    TP, D = pr.T * pr.P, pr.X.shape[2]
    check_memory(8.0 * chains * samples * (TP ** 2 + TP) + 64.0 * N * (N * pr.T + D),
                 f"posterior ({chains} chains x {samples} samples of (T P)^2 = {TP}^2, N = {N})", "samples, chains or N")
    check_time(chains * ((burn + samples * thin) * leapfrog * 4.0 * N * N * TP + eig_samples * 10.0 * N ** 3),
               f"posterior (N = {N}, {chains} chains x {burn + samples * thin} trajectories x {leapfrog} leapfrog)",
               "samples, burn, leapfrog, chains or N")
    client = parallel.resolve(scheduler)
    root = root_seed(seed)
    spec = pr.spec
    xr, r = reduced_inputs(pr.X)
    lay, size, n_w = layout(spec, int(N), pr.X.shape[2], r, pr.mask_out)
    gscale = group_scales(spec, int(N))
    eps0 = 0.1 if step is None else float(step)
    t0 = time.time()
    tasks = [(ss, spec, pr, xr, lay, size, gscale, eps0, burn, samples, thin, leapfrog, target_accept, eig_samples,
              blas_threads) for ss in root.spawn(chains)]
    return run_chains(_chain, tasks, chains * (burn + samples * thin), f"posterior N={N}", client, checkpoint,
                      progress, spec, N, root, t0)


def check_chain_args(N, samples, burn, thin, chains, leapfrog, eig_samples, step, target_accept):
    """Validate the chain arguments of a posterior sampler; returns (step, target_accept) as floats/None."""
    for name, v in (("N", N), ("samples", samples), ("chains", chains), ("leapfrog", leapfrog), ("thin", thin)):
        check_positive_int(name, v)
    check_positive_int("burn", burn, minimum=0)
    check_positive_int("eig_samples", eig_samples, minimum=0)
    for name, v in (("samples", samples), ("burn", burn), ("thin", thin), ("leapfrog", leapfrog), ("chains", chains),
                    ("eig_samples", eig_samples)):
        check_steps(name, v)  # iteration counts bounded (resources.MAX_STEPS)
    step = check_real("step", step, low=0, low_open=True, none_ok=True)
    target_accept = check_real("target_accept", target_accept, low=0, high=1, low_open=True, high_open=True)
    return step, target_accept


def run_chains(chain_fn, tasks, total, desc, client, checkpoint, progress, spec, N, root, t0) -> PosteriorSamples:
    """Run the chain tasks (in-process with a bar over ``total`` trajectories, or through
    :func:`symfield.parallel.map_tasks` with ``checkpoint``) and collect them into PosteriorSamples."""
    if client is None and checkpoint is None:
        with progress_bar(total, desc, progress) as bar:
            results = [chain_fn(task, bar) for task in tasks]
    else:
        results = parallel.map_tasks(chain_fn, tasks, scheduler="serial" if client is None else client,
                                     checkpoint=checkpoint, progress=progress, desc=desc + " chains")
    Cs, fs, tops, acc, tries, eps, W_last = zip(*results)
    chain = np.concatenate([np.full(len(c), k) for k, c in enumerate(Cs)])
    tops = [t for chain_tops in tops for t in chain_tops]
    return PosteriorSamples(spec, int(N), np.concatenate(Cs), np.concatenate(fs), chain, np.array(tops, dtype=float),
                            sum(acc) / max(sum(tries), 1), eps[-1], time.time() - t0, W_last[-1],
                            root.entropy if not root.spawn_key else root)

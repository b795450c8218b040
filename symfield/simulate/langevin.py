"""Finite-width μP networks trained as the theory assumes: full-batch Langevin dynamics (SGLD).

With standardised parameters θ (each weight = prior standard deviation × θ; layout from ``spec.plan``
as in :mod:`symfield.simulate.posterior`) and the energy of :mod:`symfield.simulate.posterior_hmc`

    E(θ) = N/(2κ) Σ_{(t,μ)∈S} (y_tμ − f_tμ)² + ½|θ|²,

one step is the unadjusted Langevin update (Euler–Maruyama)

    θ ← θ − ε ∇E(θ) + √(2ε) ξ,   ξ ~ N(0, 1),

i.e. gradient descent on the MSE loss ½ Σ_S (y − f)² with weight decay from the prior, (κ/N) ½|θ|², at
temperature κ/N (time measured in units of κ/N).  Its stationary law is the weight posterior
exp(−E) sampled by :func:`symfield.simulate.posterior` up to a bias O(ε) (for the prior alone, E = ½|θ|²,
the stationary variance is exactly 1/(1 − ε/2)).  The step loop is compiled (Numba) in the same generated
module as the HMC energy and gradient.

The step (``sgld``, template :data:`SGLD_TEMPLATE`) keeps hidden states pattern-major, (T, P, N), so every
product with a hidden matrix is one BLAS call, and forms dE/dW of a W group as one product G_sᵀ Φ_s over
each run of consecutive steps sharing it; the normals come from the chain's numpy Generator.  The first
implementation (``sgld_reference``: the HMC module's gradient, Numba's legacy normals) is kept as
``method="reference"``; both drifts agree to rounding (tests/test_langevin.py) and
benchmarks/bench_langevin.py times them side by side.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from .. import parallel
from ..api import check_choice, check_positive_int, check_real
from ..progress import progress_bar
from ..resources import check_memory, check_steps, check_time
from ..task import problem
from . import posterior_hmc
from .draws import root_seed
from .batch_means import batch_sem
from .posterior import layout, reduced_inputs

SGLD_TEMPLATE = '''
@njit(cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"})
def forward_rows(theta, lay, xr, H, F):
    """Hidden states and phi(h) pattern-major, H, F (T, P, N) views of flat buffers (BLAS-friendly)."""
    T, N, P = lay.T, lay.N, xr.shape[0]
    r = xr.shape[2]
    H3 = H.reshape((T, P, N))
    F3 = F.reshape((T, P, N))
    for t in range(T):
        Ht = H3[t]
        if t > 0:  # g_t/sqrt(N) W phi(h_{t-1}) for every pattern: (P, N) = F_{t-1} W^T
            off = lay.w_off + lay.w_layer[t] * N * N
            W = theta[off:off + N * N].reshape((N, N))
            np.dot(F3[t - 1], W.T, Ht)
            gw = lay.gw[t]
            lk = lay.leak[t]
            for mu in range(P):
                for i in range(N):
                    Ht[mu, i] = gw * Ht[mu, i] + lk * H3[t - 1, mu, i]
        else:
            Ht[:, :] = 0.0
        if lay.u_layer[t] >= 0:
            off = lay.u_off + lay.u_layer[t] * N * r
            U = theta[off:off + N * r].reshape((N, r))
            Ht += lay.su * np.dot(xr[:, t, :].copy(), U.T)
        if lay.b_layer[t] >= 0:
            off = lay.b_off + lay.b_layer[t] * N
            for mu in range(P):
                for i in range(N):
                    Ht[mu, i] += lay.sb[t] * theta[off + i]
        for mu in range(P):
            for i in range(N):
                F3[t, mu, i] = phi(Ht[mu, i])


@njit(cache=True)
def outputs_rows(theta, lay, F3, f):
    """f[t, mu] = sigma_v/N v_r(t) . phi(h_t,mu) from pattern-major phi(h), F3 (T, P, N)."""
    T, P, N = F3.shape
    for t in range(T):
        voff = lay.v_off + lay.v_layer[t] * N
        for mu in range(P):
            f[t, mu] = lay.sv * np.dot(theta[voff:voff + N], F3[t, mu]) / N


@njit(cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"})
def data_grad(theta, lay, xr, y, sup, kappa, H, F, G, f, d):
    """Data energy N/(2 kappa) sum_S (y - f)^2 and its gradient d (back-propagation through time), the
    hidden-weight gradient as one matrix product per run of steps sharing a W group."""
    T, N, P = lay.T, lay.N, xr.shape[0]
    r = xr.shape[2]
    forward_rows(theta, lay, xr, H, F)
    H3 = H.reshape((T, P, N))
    F3 = F.reshape((T, P, N))
    G3 = G.reshape((T, P, N))
    outputs_rows(theta, lay, F3, f)
    Ed = 0.0
    delta = np.zeros((T, P))
    for t in range(T):
        for mu in range(P):
            if sup[t, mu]:
                res = y[t, mu] - f[t, mu]
                Ed += 0.5 * N / kappa * res * res
                delta[t, mu] = -N / kappa * res
    d[:lay.w_off] = 0.0
    d[lay.b_off:] = 0.0
    A = np.empty((P, N))
    for t in range(T - 1, -1, -1):  # G3[t] = dE/dh_t
        voff = lay.v_off + lay.v_layer[t] * N
        if t < T - 1:  # A = g_{t+1}/sqrt(N) G_{t+1} W_{t+1} (dE/dphi(h_t) through the next step)
            off = lay.w_off + lay.w_layer[t + 1] * N * N
            W = theta[off:off + N * N].reshape((N, N))
            np.dot(G3[t + 1], W, A)
            gw = lay.gw[t + 1]
            lk = lay.leak[t + 1]
        else:
            A[:, :] = 0.0
            gw = 0.0
            lk = 0.0
        for mu in range(P):
            c = lay.sv / N * delta[t, mu]
            for i in range(N):
                a = gw * A[mu, i] + c * theta[voff + i]
                G3[t, mu, i] = dphi(H3[t, mu, i]) * a + (lk * G3[t + 1, mu, i] if lk != 0.0 else 0.0)
                d[voff + i] += c * F3[t, mu, i]
        if lay.u_layer[t] >= 0:
            off = lay.u_off + lay.u_layer[t] * N * r
            gU = d[off:off + N * r].reshape((N, r))
            gU += lay.su * np.dot(G3[t].T, xr[:, t, :].copy())
        if lay.b_layer[t] >= 0:
            off = lay.b_off + lay.b_layer[t] * N
            for mu in range(P):
                for i in range(N):
                    d[off + i] += lay.sb[t] * G3[t, mu, i]
    # dE/dW_l = sum over steps t >= 1 in group l of g_t/sqrt(N) G_t^T phi(h_{t-1}): scale G in place, then one
    # product (K, N)^T (K, N) per run of consecutive steps of one group (K = run length x P)
    for t in range(1, T):
        G3[t] *= lay.gw[t]
    n_w = (lay.b_off - lay.w_off) // (N * N)
    written = np.zeros(n_w, dtype=np.bool_)
    t = 1
    while t < T:
        l = lay.w_layer[t]
        e = t + 1
        while e < T and lay.w_layer[e] == l:
            e += 1
        off = lay.w_off + l * N * N
        blk = d[off:off + N * N].reshape((N, N))
        Gs = G[t * P * N:e * P * N].reshape(((e - t) * P, N))
        Fs = F[(t - 1) * P * N:(e - 1) * P * N].reshape(((e - t) * P, N))
        if written[l]:
            blk += np.dot(Gs.T, Fs)
        else:
            np.dot(Gs.T, Fs, blk)
            written[l] = True
        t = e
    for l in range(n_w):
        if not written[l]:
            d[lay.w_off + l * N * N:lay.w_off + (l + 1) * N * N] = 0.0
    return Ed


@njit(cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"})
def sgld(theta, lay, xr, y, sup, kappa, eps, n_steps, rng, H, F, G, f, d):
    """n_steps Langevin steps theta <- (1 - eps) theta - eps d + sqrt(2 eps) xi (in place; d the data
    gradient, xi from the numpy Generator rng); returns E at the start of the last step."""
    s = np.sqrt(2.0 * eps)
    c = 1.0 - eps
    E = 0.0
    for k in range(n_steps):
        E = data_grad(theta, lay, xr, y, sup, kappa, H, F, G, f, d)
        for i in range(theta.size):
            th = theta[i]
            E += 0.5 * th * th
            theta[i] = c * th - eps * d[i] + s * rng.standard_normal()
    return E


@njit(cache=True)
def kernel_rows(theta, lay, xr, C, fout, H, F):
    """C[(t,mu),(s,nu)] = phi(h_t,mu).phi(h_s,nu)/N and the outputs f (T, P) from forward_rows."""
    T, N, P = lay.T, lay.N, xr.shape[0]
    forward_rows(theta, lay, xr, H, F)
    outputs_rows(theta, lay, F.reshape((T, P, N)), fout)
    Fl = F.reshape((T * P, N))
    C[:, :] = np.dot(Fl, Fl.T) / N
'''

#: The first implementation (kept as the reference of ``method="reference"`` and benchmarks/bench_langevin.py):
#: the HMC module's energy and gradient (hidden states unit-major (T, N, P), dE/dW by scalar loops) and
#: Numba's legacy normal generator, one draw per parameter.
REFERENCE_TEMPLATE = '''
@njit(cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"})
def sgld_reference(theta, lay, xr, y, sup, kappa, eps, n_steps, seed):
    """n_steps Langevin steps theta <- theta - eps dE/dtheta + sqrt(2 eps) xi (in place); returns E."""
    np.random.seed(seed)
    T, N, P = lay.T, lay.N, xr.shape[0]
    H = np.empty((T, N, P))
    F = np.empty((T, N, P))
    f = np.empty((T, P))
    g = np.empty(theta.size)
    s = np.sqrt(2.0 * eps)
    E = 0.0
    for k in range(n_steps):
        E = energy_grad(theta, lay, xr, y, sup, kappa, H, F, f, g)
        for i in range(theta.size):
            theta[i] += -eps * g[i] + s * np.random.standard_normal()
    return E
'''


def load(phi):
    """The compiled module (φ, φ', energy and gradient, HMC, SGLD) for ``phi``."""
    from .. import codegen
    src = posterior_hmc.module_source(phi, [("sgld", SGLD_TEMPLATE), ("sgld_reference", REFERENCE_TEMPLATE)],
                                      origin="symfield.simulate.langevin")
    return codegen.load_module(src, f"langevin_{phi.key}")


@dataclass
class LangevinSamples:
    """Samples of a width-N network along Langevin training (after burn-in).

    ``f``: outputs (samples, P, T); ``theta2``: mean squared standardised parameter per sample;
    ``C_mean``: the sample mean of the kernel φ(h)·φ(h)/N, (T, T, P, P)."""
    spec: object
    N: int
    f: np.ndarray = field(repr=False)
    theta2: np.ndarray = field(repr=False)
    chain: np.ndarray = field(repr=False)
    C_mean: np.ndarray = field(repr=False)
    step: float = 0.0
    seconds: float = 0.0
    seed: object = None
    burn: int = 0        #: burn-in steps per chain (after ``burn_times``)

    @property
    def samples(self) -> int:
        return self.f.shape[0]

    def observable(self, name: str) -> np.ndarray:
        if name == "f":
            return self.f
        if name == "theta2":
            return self.theta2
        from ..errors import SpecError
        raise SpecError(f"unknown observable name {name!r} (one of 'f', 'theta2')")

    def mean(self, name: str = "f") -> np.ndarray:
        return self.observable(name).mean(axis=0)

    def sem(self, name: str = "f") -> np.ndarray:
        """Standard error from the spread of per-chain means (batch means for one chain)."""
        return batch_sem(self.observable(name), self.chain, 1 if np.unique(self.chain).size > 1 else 5)


def default_step(mod, theta, lay, xr, sup, kappa, sigma_v2) -> float:
    """ε = 0.1 / (1 + σ_v² λ_max(C_SS)/κ): the data term's curvature along the readout at ``theta``
    (C_SS the kernel on the supervised sites) next to the prior's curvature 1."""
    T, P = lay.T, xr.shape[0]
    C = np.empty((T * P, T * P))
    f = np.empty((T, P))
    mod.kernel_and_outputs(theta, lay, xr, C, f)
    S = np.flatnonzero(sup.reshape(-1))
    lam = np.linalg.eigvalsh(C[np.ix_(S, S)]).max() if S.size else 0.0
    return 0.1 / (1.0 + sigma_v2 * lam / kappa)


def _chain(job, bar=None):
    """One chain from a prior draw: (outputs (samples, P, T), mean θ² per sample, summed kernel (TP, TP))."""
    ss, pr, xr, lay, size, eps, burn, samples, thin, method, blas_threads = job
    T, P, N = pr.T, pr.P, lay.N
    mod = load(pr.spec.phi_fn)
    y = np.ascontiguousarray(np.where(pr.supervised, pr.Y, 0.0).T)
    sup = np.ascontiguousarray(pr.supervised.T)
    rng = np.random.default_rng(ss)
    theta = rng.standard_normal(size)
    C_sum = np.zeros((T * P, T * P))
    C = np.empty((T * P, T * P))
    f = np.empty((T, P))
    work = (np.empty(T * P * N), np.empty(T * P * N), np.empty(T * P * N), f, np.empty(size))  # H, F, G, f, d
    fs, t2 = [], []

    def run(m):
        if method == "fast":
            mod.sgld(theta, lay, xr, y, sup, pr.kappa, eps, m, rng, *work)
        else:
            mod.sgld_reference(theta, lay, xr, y, sup, pr.kappa, eps, m, int(rng.integers(2 ** 31 - 1)))
        if bar is not None:
            bar.update(m)

    block = 10 * max(1, min(thin, 50))
    with threadpool_limits(blas_threads, user_api="blas"):
        for done in range(0, burn, block):
            run(min(block, burn - done))
        for k in range(samples):
            run(thin)
            if not np.all(np.isfinite(theta)):
                from ..errors import NonFiniteError
                raise NonFiniteError(f"Langevin dynamics diverged at step size {eps:.3g}: pass a smaller step")
            mod.kernel_rows(theta, lay, xr, C, f, work[0], work[1])
            C_sum += C
            fs.append(f.T.copy())
            t2.append(float(np.mean(theta ** 2)))
    return np.array(fs), np.array(t2), C_sum


def langevin(spec, X, Y, *, supervised=None, kappa=1.0, N: int = 256, seed=0, readout=None,
             samples: int = 100, burn: int = 1000, thin: int = 10, chains: int = 2, step: float | None = None,
             burn_times: float | None = None, method: str = "fast", blas_threads: int | None = 1, scheduler=None,
             progress=None) -> LangevinSamples:
    """Train ``chains`` width-N networks ``spec`` (μP, ``scaling='mean_field'``) by full-batch Langevin
    dynamics on targets ``Y`` (P, T) at the ``supervised`` sites (module docstring): ``burn`` steps from a
    prior draw, then ``samples`` stored states one every ``thin`` steps.  ``step``: ε (default
    :func:`default_step` at the first chain's initial draw).  ``burn_times``: if given, the burn-in is
    at least that many prior relaxation times 1/ε (burn = max(burn, ⌈burn_times/ε⌉); ε shrinks like 1/P,
    so a fixed step count equilibrates less at large P).  ``method``: 'fast' (BLAS products,
    pattern-major states, the chain's numpy Generator for the noise) or 'reference' (the first
    implementation, kept for comparison; same law, a different noise stream).  ``blas_threads``: BLAS
    threads per chain (None: the library's default).  ``scheduler``: where the chains run
    (:mod:`symfield.parallel`; results do not depend on it).  Other arguments as
    :func:`symfield.feature_learning` / :func:`symfield.simulate.posterior`."""
    pr = problem(spec, X, Y, supervised, kappa, readout)   # any inputs: singular ones live on their span
    for name, v in (("N", N), ("samples", samples), ("chains", chains), ("thin", thin)):
        check_positive_int(name, v)
    check_positive_int("burn", burn, minimum=0)
    for name, v in (("samples", samples), ("burn", burn), ("thin", thin), ("chains", chains)):
        check_steps(name, v)
    step = check_real("step", step, low=0, high=1, low_open=True, none_ok=True)
    burn_times = check_real("burn_times", burn_times, low=0, high=1e6, none_ok=True)
    check_choice(method, "method", ("fast", "reference"))
    if blas_threads is not None:
        check_positive_int("blas_threads", blas_threads)
    client = parallel.resolve(scheduler)
    root = root_seed(seed)
    spec = pr.spec
    xr, r = reduced_inputs(pr.X)
    lay, size, _ = layout(spec, int(N), pr.X.shape[2], r, pr.mask_out)
    T, P = pr.T, pr.P
    check_memory(8.0 * (3 * size + chains * samples * (T * P + 1) + 3 * (T * P) ** 2 + 4 * T * P * N),
                 f"langevin (N = {N}: {size} parameters, {chains} chains x {samples} samples)", "N, samples or chains")
    seeds = root.spawn(chains)
    eps = step
    if eps is None:
        theta = np.random.default_rng(seeds[0]).standard_normal(size)   # the first chain's initial draw
        eps = default_step(load(spec.phi_fn), theta, lay, xr, np.ascontiguousarray(pr.supervised.T), pr.kappa,
                           float(spec.sigma_v) ** 2)
    if burn_times is not None:
        burn = max(burn, int(np.ceil(burn_times / eps)))
        check_steps("burn", burn)
    check_time(chains * (burn + samples * thin) * (6.0 * T * P * N * N + 30.0 * size),
               f"langevin (N = {N}, {chains} chains x {burn + samples * thin} steps)",
               "N, burn, burn_times, samples, thin or chains")
    t0 = time.time()
    jobs = [(ss, pr, xr, lay, size, eps, burn, samples, thin, method, blas_threads) for ss in seeds]
    desc = f"langevin N={N}"
    if client is None:
        with progress_bar(chains * (burn + samples * thin), desc, progress) as bar:
            results = [_chain(job, bar) for job in jobs]
    else:
        results = parallel.map_tasks(_chain, jobs, scheduler=client, progress=progress, desc=desc + " chains")
    fs, t2, Cs = zip(*results)
    chain = np.concatenate([np.full(len(x), c) for c, x in enumerate(fs)])
    C_mean = pr.from_sites(sum(Cs) / len(chain))
    return LangevinSamples(spec, int(N), np.concatenate(fs), np.concatenate(t2), chain, C_mean, eps,
                           time.time() - t0, root.entropy if not root.spawn_key else root, burn)

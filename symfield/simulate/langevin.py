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
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..api import check_positive_int, check_real
from ..progress import progress_bar
from ..task import problem
from . import posterior_hmc
from .draws import root_seed
from .posterior import _batch_sem, layout, reduced_inputs

SGLD_TEMPLATE = '''
@njit(cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"})
def sgld(theta, lay, xr, y, sup, kappa, eps, n_steps, seed):
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
    src = posterior_hmc.module_source(phi, [("sgld", SGLD_TEMPLATE)], origin="symfield.simulate.langevin")
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
        obs = self.observable(name)
        chains = np.unique(self.chain)
        if chains.size < 2:
            return _batch_sem(obs)
        means = np.stack([obs[self.chain == c].mean(axis=0) for c in chains])
        return means.std(axis=0, ddof=1) / np.sqrt(chains.size)


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


def langevin(spec, X, Y, *, supervised=None, kappa=1.0, N: int = 256, seed=0, readout=None,
             samples: int = 100, burn: int = 1000, thin: int = 10, chains: int = 2, step: float | None = None,
             progress=None) -> LangevinSamples:
    """Train ``chains`` width-N networks ``spec`` (μP, ``scaling='mean_field'``) by full-batch Langevin
    dynamics on targets ``Y`` (P, T) at the ``supervised`` sites (module docstring): ``burn`` steps from a
    prior draw, then ``samples`` stored states one every ``thin`` steps.  ``step``: ε (default
    :func:`default_step`).  Arguments as :func:`symfield.feature_learning` / :func:`symfield.simulate.posterior`."""
    pr = problem(spec, X, Y, supervised, kappa, readout)
    for name, v in (("N", N), ("samples", samples), ("chains", chains), ("thin", thin)):
        check_positive_int(name, v)
    check_positive_int("burn", burn, minimum=0)
    step = check_real("step", step, low=0, high=1, low_open=True, none_ok=True)
    root = root_seed(seed)
    spec = pr.spec
    xr, r = reduced_inputs(pr.X)
    lay, size, _ = layout(spec, int(N), pr.X.shape[2], r, pr.mask_out)
    mod = load(spec.phi_fn)
    y = np.ascontiguousarray(pr.Y.T, dtype=float)
    y[~pr.supervised.T] = 0.0
    sup = np.ascontiguousarray(pr.supervised.T)
    T, P = pr.T, pr.P
    fs, t2, ch = [], [], []
    C_sum = np.zeros((T * P, T * P))
    C = np.empty((T * P, T * P))
    f = np.empty((T, P))
    eps = step
    t0 = time.time()
    block = max(1, min(thin, 50))
    with progress_bar(chains * (burn + samples * thin), f"langevin N={N}", progress) as bar:
        for c, ss in enumerate(root.spawn(chains)):
            rng = np.random.default_rng(ss)
            theta = rng.standard_normal(size)
            if eps is None:
                eps = default_step(mod, theta, lay, xr, sup, pr.kappa, float(spec.sigma_v) ** 2)
            done = 0
            while done < burn:
                m = min(10 * block, burn - done)
                mod.sgld(theta, lay, xr, y, sup, pr.kappa, eps, m, int(rng.integers(2 ** 31 - 1)))
                done += m
                bar.update(m)
            for k in range(samples):
                mod.sgld(theta, lay, xr, y, sup, pr.kappa, eps, thin, int(rng.integers(2 ** 31 - 1)))
                bar.update(thin)
                if not np.all(np.isfinite(theta)):
                    from ..errors import NonFiniteError
                    raise NonFiniteError(f"Langevin dynamics diverged at step size {eps:.3g}: pass a smaller step")
                mod.kernel_and_outputs(theta, lay, xr, C, f)
                C_sum += C
                fs.append(f.T.copy())
                t2.append(float(np.mean(theta ** 2)))
                ch.append(c)
    n = len(fs)
    return LangevinSamples(spec, int(N), np.array(fs), np.array(t2), np.array(ch), pr.from_sites(C_sum / n), eps,
                           time.time() - t0, root.entropy if not root.spawn_key else root)

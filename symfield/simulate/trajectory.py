"""Finite-width posterior with the hidden weights integrated out: HMC in trajectory coordinates
(theory Secs. 1.3, 8, 12).

The hidden weights enter the energy of :mod:`symfield.simulate.posterior_hmc` only through the
products they make with the states they act on.  For a W group l (standardised Z_l, iid N(0, 1))
used at the sites k = (t, μ) of its steps t, in time order, write

    s_k = (h_tμ − a_t h_{t−1,μ} − σ_u/√D U x̃_tμ − σ_t b) / (r_t g_t) = Z_l φ(h_{t−1,μ}) / √N .

Given the states, each row of S_l = [s_k] is Gaussian with covariance G_l = Φ_lᵀΦ_l/N (Φ_l = [φ(h_{t−1,μ})]):
conditioning on the rows of Z_l·Φ_l/√N fixes S_l, and the later columns of Φ_l depend on Z_l only through
the earlier columns of S_l.  So (U, b, v, h_{t≥1}) has the exact marginal density exp(−E) with

    E = ½|U|² + ½|b|² + ½|v|² + Σ_l [N/2 ln det G_l + ½ tr(S_l G_l⁻¹ S_lᵀ)] + N/(2κ) Σ_{(t,μ)∈S} (y_tμ − f_tμ)²,

O(N·T·P) per gradient instead of O(N²) (:func:`energy_grad`).  Given a sampled trajectory the weights
follow exactly (Sec. 8, nonlinear form):

    Z_l = S_l G_l⁻¹ Φ_lᵀ/√N + Ξ (1 − Φ_l G_l⁻¹ Φ_lᵀ/N),   Ξ iid N(0, 1)   (:func:`conditional_weights`),

whose learned part is H_n G_φ⁻¹ Φ_pᵀ/N.  The sampler is leapfrog HMC with a jittered step adapted in
burn-in, as :func:`symfield.simulate.posterior`; both sample the same law (tests/test_trajectory.py
compares them), this one at widths where the weight-space sampler is too slow.
"""
from __future__ import annotations

import time
from collections import namedtuple

import numpy as np

from .. import parallel
from ..errors import NotSupportedError
from ..resources import check_memory, check_time
from ..task import problem
from . import posterior_hmc
from .draws import group_scales, root_seed
from .posterior import _groups, check_chain_args, reduced_inputs, run_chains

TrajLayout = namedtuple("TrajLayout", "T P N r u_off b_off v_off h_off u_layer w_layer b_layer v_layer leak ws su sb sv")

#: Compiled energy and gradient of the module docstring (same algebra as :meth:`Model.energy_grad`, the
#: NumPy reference kept for tests/test_trajectory.py); ``lay`` a :data:`TrajLayout`, ``cols`` the (t, μ)
#: columns of the W groups in time order, group l at rows cstart[l]:cstart[l+1].
TEMPLATE = '''
@njit(cache=True)
def traj_states(x, lay, xr, h, D):
    """Drives D_t = su U x_t + sb b (T, P, N) and states h (T, P, N): h_1 = D_1, h_t (t >= 2) from x."""
    T, P, N, r = lay.T, lay.P, lay.N, lay.r
    for t in range(T):
        for mu in range(P):
            for i in range(N):
                acc = 0.0
                if lay.u_layer[t] >= 0:
                    off = lay.u_off + (lay.u_layer[t] * N + i) * r
                    for k in range(r):
                        acc += x[off + k] * xr[mu, t, k]
                    acc *= lay.su
                if lay.b_layer[t] >= 0:
                    acc += lay.sb[t] * x[lay.b_off + lay.b_layer[t] * N + i]
                D[t, mu, i] = acc
                if t == 0:
                    h[t, mu, i] = acc
                else:
                    h[t, mu, i] = x[lay.h_off + ((t - 1) * P + mu) * N + i]


@njit(cache=True)
def traj_energy_grad(x, lay, xr, y, sup, kappa, cols, cstart, h, D, F, grad, want_grad):
    """E(x) (trajectory coordinates) and, if want_grad, dE/dx into grad."""
    T, P, N, r = lay.T, lay.P, lay.N, lay.r
    traj_states(x, lay, xr, h, D)
    dh = np.zeros((T, P, N))
    dF = np.zeros((T, P, N))
    for t in range(T):
        for mu in range(P):
            for i in range(N):
                F[t, mu, i] = phi(h[t, mu, i])
    E = 0.0
    for k in range(lay.h_off):
        E += 0.5 * x[k] * x[k]
        grad[k] = x[k]
    for k in range(lay.h_off, x.size):
        grad[k] = 0.0
    for t in range(T):
        voff = lay.v_off + lay.v_layer[t] * N
        for mu in range(P):
            if sup[t, mu]:
                acc = 0.0
                for i in range(N):
                    acc += x[voff + i] * F[t, mu, i]
                res = y[t, mu] - lay.sv * acc / N
                E += 0.5 * N / kappa * res * res
                c = -lay.sv / kappa * res           # (dE/df) sv / N
                for i in range(N):
                    grad[voff + i] += c * F[t, mu, i]
                    dF[t, mu, i] += c * x[voff + i]
    for l in range(cstart.size - 1):
        K = cstart[l + 1] - cstart[l]
        S = np.empty((N, K))
        Phi = np.empty((N, K))
        for k in range(K):
            t, mu = cols[cstart[l] + k, 0], cols[cstart[l] + k, 1]
            for i in range(N):
                S[i, k] = (h[t, mu, i] - lay.leak[t] * h[t - 1, mu, i] - D[t, mu, i]) / lay.ws[t]
                Phi[i, k] = F[t - 1, mu, i]
        G = np.dot(Phi.T, Phi) / N
        L = np.linalg.cholesky(G)
        A = np.linalg.inv(G)
        R = np.dot(S, A)
        logdet = 0.0
        for k in range(K):
            logdet += 2.0 * np.log(L[k, k])
        quad = 0.0
        for i in range(N):
            for k in range(K):
                quad += R[i, k] * S[i, k]
        E += 0.5 * N * logdet + 0.5 * quad
        if want_grad:
            dPhi = np.dot(Phi, N * A - np.dot(R.T, R)) / N
            for k in range(K):
                t, mu = cols[cstart[l] + k, 0], cols[cstart[l] + k, 1]
                for i in range(N):
                    st = R[i, k] / lay.ws[t]
                    dh[t, mu, i] += st
                    dh[t - 1, mu, i] -= lay.leak[t] * st
                    dF[t - 1, mu, i] += dPhi[i, k]
                    D[t, mu, i] = -st               # D now holds dE/d(drive_t) at t >= 2
    if not want_grad:
        return E
    for t in range(T):
        for mu in range(P):
            for i in range(N):
                dh[t, mu, i] += dF[t, mu, i] * dphi(h[t, mu, i])
    for mu in range(P):
        for i in range(N):
            D[0, mu, i] = dh[0, mu, i]
    for t in range(T):
        for mu in range(P):
            for i in range(N):
                d = D[t, mu, i]
                if lay.u_layer[t] >= 0:
                    off = lay.u_off + (lay.u_layer[t] * N + i) * r
                    for k in range(r):
                        grad[off + k] += lay.su * d * xr[mu, t, k]
                if lay.b_layer[t] >= 0:
                    grad[lay.b_off + lay.b_layer[t] * N + i] += lay.sb[t] * d
                if t > 0:
                    grad[lay.h_off + ((t - 1) * P + mu) * N + i] += dh[t, mu, i]
    return E
'''


class Model:
    """The energy of the module docstring for one problem at width N (parameter layout and sites)."""

    def __init__(self, pr, N: int):
        spec, plan = pr.spec, pr.spec.plan
        self.T, self.P, self.N = pr.T, pr.P, int(N)
        if self.T < 2 or np.any(plan.W[1:] < 0) or np.any(plan.w_scale[1:] == 0):
            raise NotSupportedError("the trajectory sampler needs a hidden weight W at every step t >= 2 "
                                    "(use symfield.simulate.posterior)")
        self.xr, self.r = reduced_inputs(pr.X)
        self.phi = spec.phi_fn
        self.fn, self.dfn = self.phi.numeric_function(0), self.phi.numeric_function(1)
        self.kappa = float(pr.kappa)
        self.y = np.where(pr.supervised, pr.Y, 0.0).T.copy()      # (T, P)
        self.sup = pr.supervised.T.copy()
        self.leak = plan.leak.astype(float)
        self.ws = plan.w_scale.astype(float)
        self.su = float(spec.g_in) / np.sqrt(pr.X.shape[2])
        self.sb = plan.b_scale.astype(float)
        self.n_b = plan.n_b if np.any(self.sb > 0) else 0
        self.u, self.w, self.b = plan.U, plan.W, (plan.b if self.n_b else -np.ones(self.T, dtype=np.int64))
        mask = pr.mask_out
        self.v = plan.v if np.array_equal(mask, spec.readout_mask()) else _groups(mask)
        self.sv = float(spec.sigma_v)
        self.n_U, self.n_W, self.n_v = plan.n_U, plan.n_W, int(self.v.max()) + 1
        N, r, T, P = self.N, self.r, self.T, self.P
        sizes = [self.n_U * N * r, self.n_b * N, self.n_v * N, (T - 1) * P * N]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)])
        self.size = int(self.offsets[-1])
        #: columns (t, μ) of every W group, in time order
        self.columns = [[(t, mu) for t in range(1, T) if self.w[t] == l for mu in range(P)] for l in range(self.n_W)]
        self.cols = np.array([c for group in self.columns for c in group], dtype=np.int64).reshape(-1, 2)
        self.cstart = np.concatenate([[0], np.cumsum([len(c) for c in self.columns])]).astype(np.int64)
        o = self.offsets
        self.lay = TrajLayout(T, P, N, self.r, int(o[0]), int(o[1]), int(o[2]), int(o[3]), self.u.astype(np.int64),
                              self.w.astype(np.int64), self.b.astype(np.int64), self.v.astype(np.int64), self.leak,
                              self.ws, self.su, self.sb.astype(float), self.sv)
        self.mod = load(self.phi)
        self.work = tuple(np.empty((T, P, N)) for _ in range(3))   # h, D, F

    def parts(self, x):
        """Views U (n_U, N, r), b (n_b, N), v (n_v, N), h (T-1, P, N) of a parameter vector."""
        o, N = self.offsets, self.N
        return (x[o[0]:o[1]].reshape(self.n_U, N, self.r), x[o[1]:o[2]].reshape(self.n_b, N),
                x[o[2]:o[3]].reshape(self.n_v, N), x[o[3]:o[4]].reshape(self.T - 1, self.P, N))

    def drive(self, U, b, t):
        """σ_u/√D U x̃_t + σ_t b at step t, (P, N)."""
        out = np.zeros((self.P, self.N))
        if self.u[t] >= 0:
            out += self.su * self.xr[:, t, :] @ U[self.u[t]].T
        if self.b[t] >= 0:
            out += self.sb[t] * b[self.b[t]]
        return out

    def states(self, x):
        """All hidden states h (T, P, N) (h_1 from the inputs and bias, the others are parameters)."""
        U, b, _, hp = self.parts(x)
        return np.concatenate([self.drive(U, b, 0)[None], hp])

    def group(self, h, F, l):
        """(S_l, Φ_l) as (N, K) matrices for W group l."""
        cols = self.columns[l]
        return (np.stack([self.s_column(h, t, mu) for t, mu in cols], axis=1),
                np.stack([F[t - 1, mu] for t, mu in cols], axis=1))

    def s_column(self, h, t, mu):
        return (h[t, mu] - self.leak[t] * h[t - 1, mu] - self._drive[t][mu]) / self.ws[t]

    def energy_grad(self, x, grad=True):
        """E(x) of the module docstring and dE/dx (None with ``grad=False``), compiled (``traj_energy_grad``)."""
        g = np.empty_like(x)
        E = self.mod.traj_energy_grad(x, self.lay, self.xr, self.y, self.sup, self.kappa, self.cols, self.cstart,
                                      *self.work, g, grad)
        return E, (g if grad else None)

    def energy_grad_reference(self, x, grad=True):
        """:meth:`energy_grad` in NumPy (the first implementation, kept as the reference of the compiled one)."""
        U, b, v, _ = self.parts(x)
        N = self.N
        h = self.states(x)
        self._drive = [self.drive(U, b, t) for t in range(self.T)]
        F = self.fn(h)
        f = self.sv / N * np.einsum("tpn,tn->tp", F, v[self.v])
        res = np.where(self.sup, self.y - f, 0.0)
        o3 = self.offsets[3]
        E = 0.5 * float(x[:o3] @ x[:o3])
        E += 0.5 * N / self.kappa * float(np.sum(res ** 2))
        dh = np.zeros_like(h)
        dF = np.zeros_like(h)
        ds = np.zeros_like(h)   # dE/ds at the sites (t >= 1)
        for l in range(self.n_W):
            S, Phi = self.group(h, F, l)
            G = Phi.T @ Phi / N
            logdet = 2.0 * np.sum(np.log(np.diag(np.linalg.cholesky(G))))
            A = np.linalg.inv(G)
            R = S @ A
            E += 0.5 * N * logdet + 0.5 * float(np.sum(R * S))
            if grad:
                dPhi = Phi @ (N * A - R.T @ R) / N
                for k, (t, mu) in enumerate(self.columns[l]):
                    ds[t, mu] += R[:, k]
                    dF[t - 1, mu] += dPhi[:, k]
        if not grad:
            return E, None
        g = np.zeros_like(x)
        gU, gb, gv, gh = self.parts(g)
        delta = -N / self.kappa * res                 # dE/df
        for t in range(self.T):
            gv[self.v[t]] += self.sv / N * delta[t] @ F[t]
            dF[t] += self.sv / N * delta[t][:, None] * v[self.v[t]][None, :]
        dh += dF * self.dfn(h)
        dU_drive = np.zeros_like(h)                   # dE/d(drive_t)
        for t in range(1, self.T):
            st = ds[t] / self.ws[t]
            dh[t] += st
            dh[t - 1] -= self.leak[t] * st
            dU_drive[t] -= st
        dU_drive[0] += dh[0]
        for t in range(self.T):
            if self.u[t] >= 0:
                gU[self.u[t]] += self.su * dU_drive[t].T @ self.xr[:, t, :]
            if self.b[t] >= 0:
                gb[self.b[t]] += self.sb[t] * dU_drive[t].sum(axis=0)
        gh += dh[1:]
        g[:o3] += x[:o3]
        return E, g

    def start(self, rng):
        """Initial point: U, b, v standard normal and the states of a network with prior weights Z (a prior
        draw; above N = 4096, where Z would not be stored, the states of independent per-step weights, an
        approximate start that the burn-in relaxes)."""
        x = np.empty(self.size)
        x[:self.offsets[3]] = rng.standard_normal(self.offsets[3])
        U, b, _, hp = self.parts(x)
        h = np.zeros((self.T, self.P, self.N))
        h[0] = self.drive(U, b, 0)
        Z = [rng.standard_normal((self.N, self.N)) for _ in range(self.n_W)] if self.N <= 4096 else None
        for t in range(1, self.T):
            pre = self.fn(h[t - 1]) @ Z[self.w[t]].T / np.sqrt(self.N) if Z is not None else \
                np.sqrt(np.mean(self.fn(h[t - 1]) ** 2, axis=1))[:, None] * rng.standard_normal((self.P, self.N))
            h[t] = self.leak[t] * h[t - 1] + self.ws[t] * pre + self.drive(U, b, t)
        hp[:] = h[1:]
        return x


def load(phi):
    """The compiled module (φ, φ' generated from the SymPy expression, the weight-space HMC and
    :data:`TEMPLATE`) for ``phi``."""
    from .. import codegen
    src = posterior_hmc.module_source(phi, [("trajectory", TEMPLATE)], origin="symfield.simulate.trajectory")
    return codegen.load_module(src, f"trajectory_{phi.key}")


def conditional_weights(model: Model, x, rng) -> list:
    """One draw of every standardised W group Z_l (N, N) given the trajectory x (module docstring)."""
    N = model.N
    h = model.states(x)
    U, b, _, _ = model.parts(x)
    model._drive = [model.drive(U, b, t) for t in range(model.T)]
    F = model.fn(h)
    out = []
    for l in range(model.n_W):
        S, Phi = model.group(h, F, l)
        A = np.linalg.inv(Phi.T @ Phi / N)
        Xi = rng.standard_normal((N, N))
        Z = (S @ A) @ Phi.T / np.sqrt(N) + Xi - ((Xi @ Phi) @ A) @ Phi.T / N
        out.append(Z)
    return out


def hmc(model: Model, x, eps, n_leap, n_traj, rng):
    """n_traj HMC trajectories (leapfrog, jittered step, Metropolis) from x in place; returns accepted."""
    E, g = model.energy_grad(x)
    accepted = 0
    for _ in range(n_traj):
        h = eps * (0.8 + 0.4 * rng.random())
        p = rng.standard_normal(x.size)
        K0 = 0.5 * float(p @ p)
        q = x.copy()
        p -= 0.5 * h * g
        for k in range(n_leap):
            q += h * p
            E1, g1 = model.energy_grad(q)
            p -= (h if k < n_leap - 1 else 0.5 * h) * g1
        dH = E1 + 0.5 * float(p @ p) - E - K0
        if np.isfinite(dH) and (dH <= 0 or rng.random() < np.exp(-dH)):
            x[:] = q
            E, g = E1, g1
            accepted += 1
    return accepted


def kernel_outputs(model: Model, x):
    """Kernel C[(t,μ),(s,ν)] = φ(h_tμ)·φ(h_sν)/N on the sites (t-major) and outputs f (T, P)."""
    U, b, v, _ = model.parts(x)
    F = model.fn(model.states(x))
    Fl = F.reshape(model.T * model.P, model.N)
    return Fl @ Fl.T / model.N, model.sv / model.N * np.einsum("tpn,tn->tp", F, v[model.v])


def _chain(task, bar=None):
    """One chain from a prior draw: (kernels, outputs, top |eig| per W group, accepted, tried, step, last Ws)."""
    ss, pr, N, eps0, burn, samples, thin, leapfrog, target_accept, eig_samples, gscale = task
    model = Model(pr, N)
    rng = np.random.default_rng(ss)
    x = model.start(rng)
    eps = eps0
    done = 0
    while done < burn:
        m = min(10, burn - done)
        a = hmc(model, x, eps, leapfrog, m, rng)
        eps *= float(np.exp(0.5 * (a / m - target_accept)))
        done += m
        if bar is not None:
            bar.update(m)
    Cs, fs, tops, Ws = [], [], [], []
    acc = 0
    eig_every = max(1, samples // eig_samples) if eig_samples else 0
    for k in range(samples):
        acc += hmc(model, x, eps, leapfrog, thin, rng)
        C, f = kernel_outputs(model, x)
        Cs.append(pr.from_sites(C))
        fs.append(f.T.copy())
        if eig_every and k % eig_every == 0:
            Ws = [Z * sc for Z, sc in zip(conditional_weights(model, x, rng), gscale)]
            tops.append([float(np.abs(np.linalg.eigvals(W)).max()) for W in Ws])
        if bar is not None:
            bar.update(thin)
    return np.array(Cs), np.array(fs), tops, acc, samples * thin, eps, list(Ws)


def posterior_trajectory(spec, X, Y, *, supervised=None, kappa=1.0, N: int = 1024, seed=0, readout=None,
                         samples: int = 200, burn: int = 200, thin: int = 1, chains: int = 4, leapfrog: int = 10,
                         step: float | None = None, target_accept: float = 0.8, eig_samples: int = 0,
                         progress: bool = False, scheduler=None, checkpoint=None) -> PosteriorSamples:
    """HMC samples of the width-N posterior of ``spec`` in trajectory coordinates (module docstring):
    the same law and arguments as :func:`symfield.simulate.posterior`, O(N·T·P) per leapfrog step.
    ``eig_samples``: stored samples per chain at which every W group is drawn from its conditional law
    and diagonalised (O(N³) each; ``W_last`` holds the last draw, actual scale)."""
    pr = problem(spec, X, Y, supervised, kappa, readout)
    step, target_accept = check_chain_args(N, samples, burn, thin, chains, leapfrog, eig_samples, step, target_accept)
    TP = pr.T * pr.P
    if N <= TP:
        raise NotSupportedError(f"the trajectory sampler needs N > T·P = {TP} (the Gram matrices must be "
                                f"invertible), got N = {N}")
    n_W = pr.spec.plan.n_W
    check_memory(8.0 * chains * samples * (TP ** 2 + TP) + 8.0 * 12 * N * TP + 8.0 * N * N * n_W * (N <= 4096)
                 + (24.0 * N * N * n_W if eig_samples else 0.0),
                 f"posterior_trajectory ({chains} chains x {samples} samples, N = {N})", "samples, chains or N")
    check_time(chains * ((burn + samples * thin) * leapfrog * 60.0 * N * TP + eig_samples * 30.0 * N ** 3),
               f"posterior_trajectory (N = {N}, {chains} chains x {burn + samples * thin} trajectories)",
               "samples, burn, leapfrog, eig_samples, chains or N")
    Model(pr, N)   # raises for networks it does not cover
    client = parallel.resolve(scheduler)
    root = root_seed(seed)
    gscale = group_scales(pr.spec, int(N))
    eps0 = 0.1 if step is None else float(step)
    t0 = time.time()
    tasks = [(ss, pr, int(N), eps0, burn, samples, thin, leapfrog, target_accept, eig_samples, gscale)
             for ss in root.spawn(chains)]
    return run_chains(_chain, tasks, chains * (burn + samples * thin), f"posterior_trajectory N={N}", client,
                      checkpoint, progress, pr.spec, N, root, t0)

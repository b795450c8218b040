"""Compiled HMC for the weight posterior of finite-width μP networks (theory Secs. 1.3, 12).

Standardised parameters θ (each weight = prior standard deviation × θ), energy

    E(θ) = N/(2κ) Σ_{(t,μ)∈S} (y_tμ − f_tμ)² + ½|θ|²,   f_tμ = (σ_v/N) v_{r(t)} · φ(h_tμ),
    h_tμ = a_t h_{t−1,μ} + r_t g_t/√N · W_{w(t)} φ(h_{t−1,μ}) + [σ_u/√D · U_{u(t)} x̃_tμ] + σ_t b_{b(t)},  h_0 = 0,

with the groups w(t), u(t), b(t) (−1: absent at step t) and the readout groups v_r(t) of the weight
plan (``spec.plan``; an RNN one group each, a DNN one per step), input weights on the span of
the inputs (x̃ = coordinates in an orthonormal basis of span{x}: U x = (U Q) x̃ exactly, and U Q has
iid N(0, σ_u²/D) entries).  The gradient is back-propagation through time; HMC uses leapfrog with
a jittered step and a Metropolis test.  φ and φ' are generated from the spec's SymPy expression
through :mod:`symfield.codegen`, the sampler template is appended, and the module is cached.
"""
from __future__ import annotations

import sympy as sp

from .. import codegen
from ..gauss.registry import x as X_SYM

TEMPLATE = '''

@njit(cache=True)
def forward(theta, lay, xr, H, F):
    """Hidden states H (T, N, P) and φ(H) = F for parameters theta (layout lay)."""
    T, N, P = H.shape
    r = xr.shape[2]
    for t in range(T):
        for i in range(N):
            for mu in range(P):
                H[t, i, mu] = 0.0
        if t > 0 and lay.leak[t] != 0.0:
            H[t] += lay.leak[t] * H[t - 1]
        if lay.u_layer[t] >= 0:
            off = lay.u_off + (lay.u_layer[t] * N * r)
            U = theta[off:off + N * r].reshape((N, r))
            H[t] += lay.su * np.dot(U, xr[:, t, :].T.copy())
        if t > 0:
            off = lay.w_off + lay.w_layer[t] * N * N
            W = theta[off:off + N * N].reshape((N, N))
            H[t] += lay.gw[t] * np.dot(W, F[t - 1])
        if lay.b_layer[t] >= 0:
            off = lay.b_off + (lay.b_layer[t] * N)
            for i in range(N):
                for mu in range(P):
                    H[t, i, mu] += lay.sb[t] * theta[off + i]
        for i in range(N):
            for mu in range(P):
                F[t, i, mu] = phi(H[t, i, mu])


@njit(cache=True)
def outputs(theta, lay, F, out):
    """f[t, mu] = sigma_v/N v_r(t) . phi(h_t,mu)."""
    T, N, P = F.shape
    for t in range(T):
        off = lay.v_off + lay.v_layer[t] * N
        for mu in range(P):
            acc = 0.0
            for i in range(N):
                acc += theta[off + i] * F[t, i, mu]
            out[t, mu] = lay.sv * acc / N
    return out


@njit(cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"})
def energy_grad(theta, lay, xr, y, sup, kappa, H, F, f, grad):
    """E(theta) and dE/dtheta (back-propagation through time)."""
    T, N, P = H.shape
    r = xr.shape[2]
    forward(theta, lay, xr, H, F)
    outputs(theta, lay, F, f)
    E = 0.0
    for k in range(theta.size):
        E += 0.5 * theta[k] * theta[k]
        grad[k] = theta[k]
    delta = np.zeros((T, P))
    for t in range(T):
        for mu in range(P):
            if sup[t, mu]:
                res = y[t, mu] - f[t, mu]
                E += 0.5 * N / kappa * res * res
                delta[t, mu] = -N / kappa * res
    G = np.zeros((N, P))
    for t in range(T - 1, -1, -1):
        voff = lay.v_off + lay.v_layer[t] * N
        # dE/dphi(h_t): readout + recurrent contribution (G holds dE/dh_{t+1})
        A = np.zeros((N, P))
        for i in range(N):
            for mu in range(P):
                A[i, mu] = lay.sv / N * theta[voff + i] * delta[t, mu]
        if t < T - 1:  # A += g Wᵀ G, as (Gᵀ W)ᵀ without transposing W
            off = lay.w_off + lay.w_layer[t + 1] * N * N
            W = theta[off:off + N * N].reshape((N, N))
            WtG = np.dot(G.T.copy(), W)
            for i in range(N):
                for mu in range(P):
                    A[i, mu] += lay.gw[t + 1] * WtG[mu, i]
        for mu in range(P):
            if delta[t, mu] != 0.0:
                for i in range(N):
                    grad[voff + i] += lay.sv / N * delta[t, mu] * F[t, i, mu]
        lk = lay.leak[t + 1] if t < T - 1 else 0.0  # skip path: dE/dh_t += a_{t+1} dE/dh_{t+1}
        for i in range(N):
            for mu in range(P):
                if lk != 0.0:
                    G[i, mu] = dphi(H[t, i, mu]) * A[i, mu] + lk * G[i, mu]
                else:
                    G[i, mu] = dphi(H[t, i, mu]) * A[i, mu]
        if t > 0:  # dE/dW += g G φ(h_{t-1})ᵀ, accumulated in place (one pass over N²)
            off = lay.w_off + lay.w_layer[t] * N * N
            gw = lay.gw[t]
            for i in range(N):
                row = off + i * N
                for mu in range(P):
                    c = gw * G[i, mu]
                    if c != 0.0:
                        for j in range(N):
                            grad[row + j] += c * F[t - 1, j, mu]
        if lay.u_layer[t] >= 0:
            off = lay.u_off + lay.u_layer[t] * N * r
            gU = lay.su * np.dot(G, xr[:, t, :].copy())
            gflat = grad[off:off + N * r].reshape((N, r))
            gflat += gU
        if lay.b_layer[t] >= 0:
            off = lay.b_off + lay.b_layer[t] * N
            for i in range(N):
                acc = 0.0
                for mu in range(P):
                    acc += G[i, mu]
                grad[off + i] += lay.sb[t] * acc
    return E


@njit(cache=True, fastmath={"nsz", "arcp", "contract", "afn", "reassoc"})
def hmc(theta, lay, xr, y, sup, kappa, eps, n_leap, n_traj, seed):
    """n_traj HMC trajectories from theta (in place); returns the number accepted."""
    np.random.seed(seed)
    T, N, P = lay.T, lay.N, xr.shape[0]
    H = np.empty((T, N, P))
    F = np.empty((T, N, P))
    f = np.empty((T, P))
    g = np.empty(theta.size)
    g_new = np.empty(theta.size)
    q = np.empty(theta.size)
    E = energy_grad(theta, lay, xr, y, sup, kappa, H, F, f, g)
    accepted = 0
    for it in range(n_traj):
        h = eps * (0.8 + 0.4 * np.random.random())
        p = np.random.standard_normal(theta.size)
        K0 = 0.5 * np.dot(p, p)
        q[:] = theta
        g_new[:] = g
        p -= 0.5 * h * g_new
        for l in range(n_leap):
            q += h * p
            E_new = energy_grad(q, lay, xr, y, sup, kappa, H, F, f, g_new)
            if l < n_leap - 1:
                p -= h * g_new
        p -= 0.5 * h * g_new
        K1 = 0.5 * np.dot(p, p)
        dH = (E_new + K1) - (E + K0)
        if np.isfinite(dH) and (dH <= 0.0 or np.random.random() < np.exp(-dH)):
            theta[:] = q
            g[:] = g_new
            E = E_new
            accepted += 1
    return accepted


@njit(cache=True)
def kernel_and_outputs(theta, lay, xr, C, fout):
    """Representational kernel C[(t,mu),(s,nu)] = phi(h_t,mu).phi(h_s,nu)/N and outputs f (T, P)."""
    T, N, P = lay.T, lay.N, xr.shape[0]
    H = np.empty((T, N, P))
    F = np.empty((T, N, P))
    forward(theta, lay, xr, H, F)
    outputs(theta, lay, F, fout)
    Fl = np.empty((T * P, N))
    for t in range(T):
        for mu in range(P):
            for i in range(N):
                Fl[t * P + mu, i] = F[t, i, mu]
    C[:, :] = np.dot(Fl, Fl.T.copy()) / N
'''


def module_source(phi, extra=(), origin: str = "symfield.simulate.posterior_hmc") -> str:
    """Generated φ, φ' (from the SymPy expression) + the sampler template (+ ``extra`` (name, text)
    templates that call it, e.g. the Langevin sampler of :mod:`symfield.simulate.langevin`)."""
    expr = phi.expr
    d = sp.diff(expr, X_SYM)
    return codegen.module_text(origin, f"phi(x) = {sp.sstr(expr)}",
                               [("phi", codegen.scalar_source("phi", (X_SYM,), expr, inline=True, vectorise=False)),
                                ("dphi", codegen.scalar_source("dphi", (X_SYM,), d, inline=True, vectorise=False)),
                                ("sampler", TEMPLATE), *extra])


def load(phi):
    """The compiled sampler module for ``phi``."""
    return codegen.load_module(module_source(phi), f"posterior_hmc_{phi.key}")

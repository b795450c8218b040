"""Per-step time of full-batch Langevin training (symfield.simulate.langevin): new against the first implementation.

    python benchmarks/bench_langevin.py [--N 256 512 1024] [--steps 5] [--repeat 3] [--quick]

The setting of derivations/sequential_digits.py: linear μP RNN and DNN, T = 8 steps, D = 8 inputs per step,
P = 6 sequences (4 supervised at 4 steps).  Both methods run in this process on the same parameters, one BLAS
thread: 'fast' (``mod.sgld``: BLAS products on pattern-major states, the numpy Generator's normals) and
'reference' (``mod.sgld_reference``: the HMC module's gradient and Numba's legacy normals), the latter also with
the BLAS library's default thread count (as the first ``langevin`` ran it: on a busy machine the threads
oversubscribe the cores).  Time per step is the best of ``--repeat`` calls of ``--steps`` steps after a
warm-up; the load average is reported.  The two drifts (gradients) are compared at the same parameters (their noise streams differ, their laws do not).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

import symfield as sf
from symfield.simulate import langevin as lg
from symfield.simulate.posterior import layout, reduced_inputs
from symfield.task import problem

T, D, P, P_TRAIN = 8, 8, 6, 4


def setting(net):
    """(module, layout, size, x̃, y, supervised) of the digits-like task for ``net``."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((P, T, D))
    Y = np.tanh(rng.standard_normal((P, T)))
    sup = np.zeros((P, T), dtype=bool)
    sup[:P_TRAIN, 1::2] = True
    pr = problem(net, X, Y, sup, 1.0, None)
    xr, r = reduced_inputs(pr.X)
    y = np.ascontiguousarray(np.where(pr.supervised, pr.Y, 0.0).T)
    return pr, xr, r, y, np.ascontiguousarray(pr.supervised.T)


def per_step(fn, steps, repeat):
    fn(1)  # warm-up: compilation, page faults
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn(steps)
        best = min(best, time.perf_counter() - t0)
    return best / steps


def run(name, net, N, steps, repeat):
    pr, xr, r, y, sup = setting(net)
    lay, size, _ = layout(pr.spec, N, D, r, pr.mask_out)
    mod = lg.load(pr.spec.phi_fn)
    theta0 = np.random.default_rng(1).standard_normal(size)
    eps = 1e-3
    work = [np.empty(T * P * N) for _ in range(3)] + [np.empty((T, P)), np.empty(size)]
    rng = np.random.default_rng(2)
    th_new, th_ref = theta0.copy(), theta0.copy()
    with threadpool_limits(1, user_api="blas"):
        t_new = per_step(lambda m: mod.sgld(th_new, lay, xr, y, sup, 1.0, eps, m, rng, *work), steps, repeat)
        t_ref = per_step(lambda m: mod.sgld_reference(th_ref, lay, xr, y, sup, 1.0, eps, m, 3), steps, repeat)
        g = np.empty(size)
        E = mod.energy_grad(theta0, lay, xr, y, sup, 1.0, np.empty((T, N, P)), np.empty((T, N, P)),
                            np.empty((T, P)), g)
        Ed = mod.data_grad(theta0, lay, xr, y, sup, 1.0, *work)
    # the first langevin() set no BLAS thread limit: the reference with the library's default threads
    t_old = per_step(lambda m: mod.sgld_reference(th_ref, lay, xr, y, sup, 1.0, eps, m, 3), steps, repeat)
    diff = np.abs(g - theta0 - work[-1]).max() / np.abs(g).max()
    print(f"{name} N = {N:5d} ({size:8d} parameters): fast {1e3 * t_new:8.1f} ms/step | reference "
          f"{1e3 * t_ref:8.1f} ms/step | speed-up {t_ref / t_new:5.1f}x | reference, default BLAS threads "
          f"{1e3 * t_old:8.1f} ms/step ({t_old / t_new:4.1f}x) | drift rel. diff {diff:.1e}, "
          f"energy diff {abs(E - Ed - 0.5 * theta0 @ theta0) / abs(E):.1e} | load {os.getloadavg()[0]:.1f}",
          flush=True)
    return t_new, t_ref


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--N", type=int, nargs="+", default=[256, 512, 1024])
    ap.add_argument("--steps", type=int, default=5, help="steps per timed call")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many timed calls")
    ap.add_argument("--quick", action="store_true", help="N = 32, 64 (seconds)")
    a = ap.parse_args()
    rnn = sf.RNN(T, phi="linear", g=0.8, sigma_b2=0.1, input="every", scaling="mean_field")
    for N in ([32, 64] if a.quick else a.N):
        for name, net in (("RNN", rnn), ("DNN", sf.as_dnn(rnn))):
            run(name, net, N, a.steps, a.repeat)

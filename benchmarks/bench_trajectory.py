"""Cost of the finite-width posterior samplers against N: trajectory coordinates (hidden weights integrated
out, symfield.simulate.trajectory) against the weight-space HMC (symfield.simulate.posterior).

    python benchmarks/bench_trajectory.py [--N 256 512 1024 2048] [--repeat 3] [--quick]

Setting of derivations/feature_learning_nonlinear.py: erf RNN and DNN, T = 3, one pattern, endpoint target
y = 5.3 (about 1.3 y_c).  In this process, one BLAS thread: (1) one energy-and-gradient evaluation, compiled
(``Model.energy_grad``) against the NumPy first implementation (``Model.energy_grad_reference``), same point;
(2) one HMC trajectory of each sampler (``trajectory.hmc``, 10 leapfrog steps; the weight-space module's
``hmc``, 30 steps: their defaults) from a prior draw.  Best of ``--repeat``; the load average is reported.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np
from threadpoolctl import threadpool_limits

import symfield as sf
from symfield.simulate import posterior_hmc
from symfield.simulate import trajectory as tj
from symfield.simulate.posterior import layout, reduced_inputs
from symfield.task import problem

X1 = np.ones((1, 1))
Y = np.array([[0.0, 0.0, 5.3]])


def best(fn, repeat, inner=1):
    fn()
    out = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        out = min(out, (time.perf_counter() - t0) / inner)
    return out


def run(Ns, repeat):
    rows = []
    for make in (sf.RNN, sf.DNN):
        net = make(3, phi="erf", bias="none", scaling="mean_field")
        pr = problem(net, X1, Y, None, 1.0, None)
        xr, r = reduced_inputs(pr.X)
        for N in Ns:
            m = tj.Model(pr, N)
            x = m.start(np.random.default_rng(0))
            assert np.allclose(m.energy_grad(x)[1], m.energy_grad_reference(x)[1], rtol=1e-9, atol=1e-9)
            t_c = best(lambda: m.energy_grad(x), repeat, 20)
            t_r = best(lambda: m.energy_grad_reference(x), repeat, 5)
            rng = np.random.default_rng(1)
            traj = best(lambda: tj.hmc(m, x, 0.15, 10, 1, rng), repeat)
            lay, size, _ = layout(net, N, 1, r, pr.mask_out)
            theta = rng.standard_normal(size)
            mod = posterior_hmc.load(net.phi_fn)
            weights = best(lambda: mod.hmc(theta, lay, xr, m.y, m.sup, 1.0, 0.1, 30, 1, 3), repeat)
            rows.append((net.label, N, t_c, t_r, traj, weights))
            print(f"{net.label:<5} N={N:<5} gradient: compiled {t_c * 1e3:7.3f} ms, numpy {t_r * 1e3:7.3f} ms "
                  f"(x{t_r / t_c:5.1f});  one trajectory: trajectory sampler {traj * 1e3:8.1f} ms, "
                  f"weight HMC {weights * 1e3:8.1f} ms (x{weights / traj:6.1f})  load {os.getloadavg()[0]:.2f}",
                  flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--N", type=int, nargs="+", default=[256, 512, 1024, 2048])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args(argv)
    with threadpool_limits(1, user_api="blas"):
        return run([64, 128] if a.quick else a.N, 1 if a.quick else a.repeat)


if __name__ == "__main__":
    main()

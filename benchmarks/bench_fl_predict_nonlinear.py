"""fl.predict(X_new) for nonlinear φ against re-solving with the new pattern appended (unsupervised), with times.

    python benchmarks/bench_fl_predict_nonlinear.py [--quick]

Cases (one training pattern x = (1, 0), one new pattern (0.6, 0.8)): erf DNN T = 3 (factorised, quadrature on
both sides); erf RNN T = 3, y = 5.5 (broken phase: 3-D quadrature for the prediction, T·P = 6 Monte Carlo for
the re-solve; skipped with --quick); tanh RNN T = 4 sequential task (Monte Carlo on both sides).  Prints the
solve's time and ``fl.error``, f̄ from ``predict`` with its reported error, f̄ of the re-solve with its error,
z-scores, and the wall times of the prediction and of the re-solve (the reference, same process), with the
load average.  ``--hmc``: the broken erf RNN's new-pattern predictions (branch and branch-averaged) beside the
HMC posterior mean of the width-N network trained on the same data with the new pattern unsupervised (N = 64,
128; 8 chains from prior draws, so both mirror branches are visited in proportion to the chains' signs).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import symfield as sf

X2 = np.array([[1.0, 0.0], [0.6, 0.8]])


def cases(quick: bool):
    yield "erf DNN T=3", sf.DNN(3, phi="erf", bias="none", scaling="mean_field"), np.array([[0.0, 1.5, -2.0]]), \
        np.array([[0, 1, 1]], bool), {}
    if not quick:
        yield "erf RNN T=3 broken", sf.RNN(3, phi="erf", bias="none", scaling="mean_field"), \
            np.array([[0.0, 0.0, 5.5]]), np.array([[0, 0, 1]], bool), {}
    yield "tanh RNN T=4 sequential", sf.RNN(4, phi="tanh", bias="none", scaling="mean_field"), \
        np.array([[0.5, 1.0, 0.0, 1.0]]), np.array([[1, 1, 0, 1]], bool), dict(estimator=dict(samples=8000, seed=1))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the broken erf RNN (its re-solve takes ~20 s)")
    ap.add_argument("--hmc", action="store_true", help="also compare with HMC at N = 64, 128 (~30 s)")
    args = ap.parse_args(argv)
    print(f"load average before: {os.getloadavg()}")
    for name, net, Y, sup, kw in cases(args.quick):
        t0 = time.perf_counter()
        fl = sf.feature_learning(net, X2[:1], Y, supervised=sup, **kw)
        t_fit = time.perf_counter() - t0
        t0 = time.perf_counter()
        f, err = fl.predict(X2[1:], error=True)
        t_pred = time.perf_counter() - t0
        T = Y.shape[1]
        Yj, supj = np.zeros((2, T)), np.zeros((2, T), bool)
        Yj[0], supj[0] = Y[0], sup[0]
        t0 = time.perf_counter()
        flj = sf.feature_learning(net, X2, Yj, supervised=supj, **kw)
        t_re = time.perf_counter() - t0
        fj, errj = flj.predict(error=True)
        z = (f[0] - fj[1]) / np.maximum(np.hypot(err[0], errj[1]), 1e-300)
        print(f"{name}: solve {t_fit:.2f} s, fl.error {fl.error:.2g}; re-solve fl.error {flj.error:.2g}")
        print(f"    predict {np.round(f[0], 5)} ± {err[0]:} ({t_pred:.2f} s)\n"
              f"    re-solve {np.round(fj[1], 5)} ± {errj[1]} ({t_re:.2f} s), "
              f"|diff| max {np.abs(f[0] - fj[1]).max():.2g}, z {np.round(z, 2)}")
    if args.hmc:
        hmc()
    print(f"load average after: {os.getloadavg()}")


def hmc():
    from symfield.simulate.posterior import posterior
    net, Y = sf.RNN(3, phi="erf", bias="none", scaling="mean_field"), np.array([[0.0, 0.0, 5.5]])
    fl = sf.feature_learning(net, X2[:1], Y)
    print(f"erf RNN T=3 broken, new pattern: branch {np.round(fl.predict(X2[1:])[0], 4)}, "
          f"averaged {np.round(fl.predict(X2[1:], average_branches=True)[0], 4)}")
    Yj, supj = np.zeros((2, 3)), np.zeros((2, 3), bool)
    Yj[0], supj[0, 2] = Y[0], True
    for N in (64, 128):
        hp = posterior(net, X2, Yj, supervised=supj, N=N, seed=3, samples=150, burn=100, chains=8, leapfrog=20)
        print(f"    HMC N = {N}: {np.round(hp.mean('f')[1], 4)} ± {np.round(hp.sem('f')[1], 4)}")


if __name__ == "__main__":
    main()

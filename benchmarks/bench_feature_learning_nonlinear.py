"""μP feature learning with nonlinear φ: time of one solve at T·P = 200, and the cost of the Monte Carlo path.

    python benchmarks/bench_feature_learning_nonlinear.py [--quick] [--samples 4000]

* ``large``: erf RNN, sequential task, T = 20 steps × P = 10 sequences (T·P = 200 sites; input at t = 1,
  supervised at even steps and the last one, targets sin(0.3 t + phase)): one ``sf.feature_learning`` solve on
  the full 200-dimensional tilted measure (importance sampling, ``--samples`` points), against the linear
  solver on the same problem in the same process (reference);
* ``accuracy``: erf RNN, sequential task T = 4, P = 1 (Monte Carlo path, T·P = 4): ``fl.error`` and time against
  the number of points — what the Monte Carlo path costs for a given accuracy.

Reports wall times (one run each after a warm-up of the compiled kernels on a small problem), the ratio to the
linear solve, and the load average (``os.getloadavg()``; the machine is shared).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import symfield as sf


def large_problem(T: int, P: int, phi: str):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((P, P))
    Y = np.sin(0.3 * np.arange(1, T + 1)[None, :] + rng.uniform(0, 2 * np.pi, (P, 1)))
    sup = np.zeros(T, bool)
    sup[1::2] = True
    sup[-1] = True
    return sf.RNN(T, phi=phi, bias="none", scaling="mean_field"), X, Y, sup


def timed(fn):
    """(wall seconds, CPU seconds of this process, result): on a shared machine the CPU time is the cost."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    timed.cpu = time.process_time() - c0
    return time.perf_counter() - t0, out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="T·P = 40 instead of 200")
    ap.add_argument("--samples", type=int, default=4000)
    args = ap.parse_args(argv)
    T, P = (8, 5) if args.quick else (20, 10)
    net, X, Y, sup = large_problem(4, 2, "erf")
    sf.feature_learning(net, X, Y, supervised=sup, estimator=dict(samples=500))  # warm-up (compilation)
    print(f"load average before: {os.getloadavg()}")
    net, X, Y, sup = large_problem(T, P, "erf")
    lin = sf.RNN(T, phi="linear", bias="none", scaling="mean_field")
    t_lin, fl_lin = timed(lambda: sf.feature_learning(lin, X, Y, supervised=sup))
    c_lin = timed.cpu
    t_nl, fl = timed(lambda: sf.feature_learning(net, X, Y, supervised=sup, estimator=dict(samples=args.samples),
                                                 steps=4, progress=True))
    print(f"large: erf RNN T={T} P={P} (T·P = {T * P}), {args.samples} points: {t_nl:.1f} s wall, {timed.cpu:.1f} s "
          f"CPU (linear solver on the same task: {t_lin:.2f} s wall, {c_lin:.2f} s CPU; CPU ratio "
          f"{timed.cpu / c_lin:.0f}); error {fl.error:.3g}, phase {fl.phase}; load {os.getloadavg()}")
    net = sf.RNN(4, phi="erf", bias="none", scaling="mean_field")
    Y, sup = np.ones((1, 4)), np.array([1, 1, 0, 1], bool)
    print("accuracy: erf RNN T=4 P=1 sequential (Monte Carlo path)")
    print(f"{'points':>8} {'wall s':>8} {'CPU s':>8} {'fl.error':>9} {'f(t=3)':>8}")
    for n in ([2000, 8000] if args.quick else [2000, 8000, 32000, 128000]):
        t, fl = timed(lambda: sf.feature_learning(net, np.ones((1, 1)), Y, supervised=sup, estimator=dict(samples=n)))
        print(f"{n:8d} {t:8.1f} {timed.cpu:8.1f} {fl.error:9.2e} {fl.predict()[0, 2]:8.4f}")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

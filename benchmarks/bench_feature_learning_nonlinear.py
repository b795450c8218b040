"""μP feature learning with nonlinear φ: time of one solve at T·P = 200, and the cost of the Monte Carlo path.

    python benchmarks/bench_feature_learning_nonlinear.py [--quick] [--samples 4000] [--check]

* ``large``: erf RNN, sequential task, T = 20 steps × P = 10 sequences (T·P = 200 sites; input at t = 1,
  supervised at even steps and the last one, targets sin(0.3 t + phase)): one ``sf.feature_learning`` solve on
  the full 200-dimensional tilted measure (importance sampling, ``--samples`` points), against the linear
  solver on the same problem in the same process (reference).  Reports wall and CPU time, ``fl.error``, the
  effective sample size of the importance weights at the solution, the map evaluations, and the load.
* ``--check``: the same solve with 4× the points and another seed; z-scores (C₁ − C₂)/√(e₁² + e₂²) of the
  entries of C with the per-entry batch errors of both runs (independent check of ``fl.error``).
* ``accuracy``: erf RNN, sequential task T = 4, P = 1 (Monte Carlo path, T·P = 4): ``fl.error`` and time against
  the number of points — what the Monte Carlo path costs for a given accuracy.
* ``--quick``: T = 3, P = 2 (T·P = 6) and two accuracy rows (run by tests/test_feature_learning_nonlinear.py).

Measured (2-core machine shared by five sessions; numbers as seen, with the load average):

    T·P = 200 (T = 20, P = 10): not solved within 5 minutes (docs/scaling.md, "Nonlinear feature learning at
    T·P = 200"): one map evaluation 0.70 s with 4000 points (load 6); ESS 2000 / 2000 at the prior kernel and
    ≈ 1980 / 2000 at s = 0.25 (2000 points); Newton–Krylov at s = 0.25 reduced the residual 0.31 -> 0.055 in
    350 evaluations (280 s, load 10) and was stopped.
    --quick (T·P = 6, 2000 points, load 10): 21 s wall / 3.3 s CPU, linear solver 1.3 s / 0.2 s; ESS 1977 of
    2000; accuracy rows 2000 points: fl.error 2.4e-2 (9.1 s wall, 1.5 s CPU), 8000: 1.4e-2 (17.7 s, 2.9 s).
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import symfield as sf
from symfield.theory.feature_learning.nonlinear import batch_error


def large_problem(T: int, P: int, phi: str):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((P, P))
    Y = np.sin(0.3 * np.arange(1, T + 1)[None, :] + rng.uniform(0, 2 * np.pi, (P, 1)))
    sup = np.zeros(T, bool)
    sup[1::2] = True
    sup[-1] = True
    return sf.RNN(T, phi=phi, bias="none", scaling="mean_field"), X, Y, sup


def timed(fn):
    """(wall seconds, result); ``timed.cpu``: CPU seconds of this process (on a shared machine, the cost)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    timed.cpu = time.process_time() - c0
    return time.perf_counter() - t0, out


def entry_errors(fl) -> np.ndarray:
    """Per-entry standard errors of C (site layout) from the batch deviations of the solution."""
    return batch_error(fl.selected.deviations)[0]


def z_scores(fl1, fl2) -> np.ndarray:
    """(C₁ − C₂)/√(e₁² + e₂²) over the upper triangle of the site kernels."""
    i, j = np.triu_indices(fl1.selected.C.shape[0])
    e = np.hypot(entry_errors(fl1), entry_errors(fl2))[i, j]
    return (fl1.selected.C - fl2.selected.C)[i, j] / np.maximum(e, 1e-300)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="T·P = 6 instead of 200")
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--check", action="store_true", help="also solve with 4x the points and another seed")
    args = ap.parse_args(argv)
    T, P = (3, 2) if args.quick else (20, 10)
    net, X, Y, sup = large_problem(4, 2, "erf")
    sf.feature_learning(net, X, Y, supervised=sup, estimator=dict(samples=500))  # warm-up (compilation)
    print(f"load average before: {os.getloadavg()}")
    net, X, Y, sup = large_problem(T, P, "erf")
    lin = sf.RNN(T, phi="linear", bias="none", scaling="mean_field")
    t_lin, fl_lin = timed(lambda: sf.feature_learning(lin, X, Y, supervised=sup))
    c_lin = timed.cpu

    def solve(samples, seed):
        return sf.feature_learning(net, X, Y, supervised=sup, estimator=dict(samples=samples, seed=seed),
                                   steps=args.steps, progress=not args.quick)
    t_nl, fl = timed(lambda: solve(args.samples, 0))
    c_nl = timed.cpu
    print(f"large: erf RNN T={T} P={P} (T·P = {T * P}), {args.samples} points: {t_nl:.1f} s wall, {c_nl:.1f} s "
          f"CPU (linear solver on the same task: {t_lin:.2f} s wall, {c_lin:.2f} s CPU; CPU ratio "
          f"{c_nl / max(c_lin, 1e-9):.0f}); error {fl.error:.3g}, ESS {fl.selected.moments.ess:.0f} of "
          f"{args.samples}, {fl.evaluations} corrector map evaluations, branch {fl.selected.name}, "
          f"load {os.getloadavg()}")
    if args.check:
        t4, fl4 = timed(lambda: solve(4 * args.samples, 1))
        z = z_scores(fl, fl4)
        print(f"check: {4 * args.samples} points, seed 1: {t4:.1f} s wall, error {fl4.error:.3g}, ESS "
              f"{fl4.selected.moments.ess:.0f}; z-scores of C: rms {np.sqrt(np.mean(z ** 2)):.2f}, "
              f"max |z| {np.abs(z).max():.2f} over {z.size} entries; max |ΔC| / max |C| "
              f"{np.abs(fl.selected.C - fl4.selected.C).max() / np.abs(fl4.selected.C).max():.3g}")
    net = sf.RNN(4, phi="erf", bias="none", scaling="mean_field")
    Y, sup = np.ones((1, 4)), np.array([1, 1, 0, 1], bool)
    print("accuracy: erf RNN T=4 P=1 sequential (Monte Carlo path)")
    print(f"{'points':>8} {'wall s':>8} {'CPU s':>8} {'fl.error':>9} {'f(t=3)':>8}")
    table = []
    for n in ([1000, 4000] if args.quick else [2000, 8000, 32000, 128000]):
        t, fl_n = timed(lambda: sf.feature_learning(net, np.ones((1, 1)), Y, supervised=sup,
                                                    estimator=dict(samples=n)))
        table.append((n, t, timed.cpu, fl_n.error))
        print(f"{n:8d} {t:8.1f} {timed.cpu:8.1f} {fl_n.error:9.2e} {fl_n.predict()[0, 2]:8.4f}")
    print(f"load average after: {os.getloadavg()}")
    return fl, table


if __name__ == "__main__":
    main()

"""μP feature learning with nonlinear φ: solve time at T·P = 40 and 200, and the cost of the Monte Carlo path.

    python benchmarks/bench_feature_learning_nonlinear.py [--quick] [--samples 4000] [--repeat k] [--sizes 8x5,20x10] [--check]
        [--task random|orthonormal] [--dnn 20x10 [--signal 0.3]]

* sizes (default T = 8, P = 5 and T = 20, P = 10): erf RNN, sequential task (input at t = 1, supervised at even
  steps and the last one, targets sin(0.3 t + phase)), one ``sf.feature_learning`` solve on the full T·P-dimensional
  tilted measure (importance sampling, ``--samples`` points), against the linear solver on the same problem in
  the same process (reference).  Reports best-of-``--repeat`` wall and its CPU time, the CPU ratio to the linear
  solver, ``fl.error``, the effective sample size at the solution, the corrector's map evaluations, the load.
* ``--check``: the largest size again with 4× the points and another seed; z-scores (C₁ − C₂)/√(e₁² + e₂²) of the
  entries of C with the per-entry batch errors of both runs (independent check of ``fl.error``).
* ``accuracy``: erf RNN, sequential task T = 4, P = 1 (Monte Carlo path, T·P = 4): ``fl.error`` and time against
  the number of points — what the Monte Carlo path costs for a given accuracy.
* ``--quick``: T = 3, P = 2 (T·P = 6) and two accuracy rows (run by tests/test_feature_learning_nonlinear.py).
* ``--task orthonormal``: the sequential task of bench_fl_scale (orthonormal inputs, κ = 0.5) instead of the random
  inputs above, whose input kernel is so ill-conditioned that the linear solver itself needs more than 15 minutes at
  20x10 (it takes 1.3 s on the orthonormal task).  Orthonormal, T·P = 40: 43.6 s, fl.error 0.077, ESS 978 of 4000,
  1597 map evaluations (load 1.7–2.4); T·P = 200: the first continuation step 167 s (968 evaluations), see
  docs/scaling.md.

* ``--dnn TxP``: erf DNN on the orthonormal task (a factorised measure: time blocks of P dimensions) at
  ``--signal`` × Y, with the Newton–Krylov preconditioner on the time blocks and with the previous rule
  (``nonlinear.BLOCK_PRECONDITIONER = False``: the full-space preconditioner up to T·P = 41, none above) in the same
  process: wall time, map evaluations, ``fl.error`` and the largest difference of C.

Reports the corrector's map evaluations and, of them, the J·v products (``fl.products``), the effective sample size at
the solution and ``fl.error``.  The previous corrector (J·v by forward differences on a quarter of the points,
left-preconditioned GMRES) is not kept as a reference: it did not finish either size (GMRES stagnation at T·P = 200,
Newton stalls from s ≈ 0.9 at T·P = 40), so there is no ratio to take.  Measured (2-core machine shared by four
sessions; numbers as seen, with the load average): docs/scaling.md, "Nonlinear feature learning at T·P = 200".
T·P = 200 is not reached in 5 minutes.  T·P = 40 (``--sizes 8x5 --check``, steps 4, idle machine, load 0.4–1.0):
83.7 s wall and CPU, fl.error 0.107, ESS 910 of 4000, 2233 map evaluations (3015 J·v), linear solver 1.70 s (CPU
ratio 49); check with 16000 points, seed 1: 246 s, error 0.0124, z-scores of C rms 0.60, max |z| 4.10 over 820
entries.  (Before the continuation kept to one sampled map and the saddle test counted real eigenvalues: 347 s
once, > 900 s another time.)  --quick (T·P = 6): see the commit log of this file.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import symfield as sf
from symfield.theory.feature_learning import nonlinear as nl
from symfield.theory.feature_learning.nonlinear import batch_error

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_fl_scale import sequential_problem  # noqa: E402


def orthonormal_problem(T: int, P: int, phi: str):
    """(net, X, Y, supervised, kappa): the sequential task of bench_fl_scale (orthonormal inputs, κ = 0.5) with ``phi``."""
    _, X, Y, sup, kappa = sequential_problem(T, P, "rnn")
    return sf.RNN(T, phi=phi, bias="none", scaling="mean_field"), X, Y, sup, kappa


def task_problem(task: str, T: int, P: int, phi: str):
    """(net, X, Y, supervised, kappa) of ``task``: "random" (:func:`large_problem`, κ = 1) or "orthonormal"."""
    if task == "orthonormal":
        return orthonormal_problem(T, P, phi)
    return large_problem(T, P, phi) + (1.0,)


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


def best_of(k: int, fn):
    """(best wall seconds, its CPU seconds, result of the last run) over k runs."""
    best = None
    for _ in range(k):
        t, out = timed(fn)
        if best is None or t < best[0]:
            best = (t, timed.cpu)
    return best[0], best[1], out


def size_row(T: int, P: int, samples: int, steps: int, repeat: int, progress: bool, task: str = "random"):
    """One erf RNN sequential problem: the nonlinear solve against the linear solver on the same task."""
    net, X, Y, sup, kappa = task_problem(task, T, P, "erf")
    lin = sf.RNN(T, phi="linear", bias="none", scaling="mean_field")
    t_lin, c_lin, _ = best_of(repeat, lambda: sf.feature_learning(lin, X, Y, supervised=sup, kappa=kappa))
    load0 = os.getloadavg()[0]
    t_nl, c_nl, fl = best_of(repeat, lambda: sf.feature_learning(
        net, X, Y, supervised=sup, kappa=kappa, estimator=dict(samples=samples, seed=0), steps=steps,
        progress=progress))
    print(f"erf RNN T={T} P={P} (T·P = {T * P}), {samples} points, best of {repeat}: {t_nl:.1f} s wall, "
          f"{c_nl:.1f} s CPU; linear solver {t_lin:.2f} s wall, {c_lin:.2f} s CPU (CPU ratio "
          f"{c_nl / max(c_lin, 1e-9):.0f}); fl.error {fl.error:.3g}, ESS {fl.selected.moments.ess:.0f} of {samples}, "
          f"{fl.evaluations} map evaluations ({fl.products} of them J·v), branch {fl.selected.name}; load {load0:.1f} -> "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    return fl, dict(T=T, P=P, wall=t_nl, cpu=c_nl, wall_linear=t_lin, error=fl.error,
                    evaluations=fl.evaluations, products=fl.products, ess=fl.selected.moments.ess, load=load0)


def factorised_row(T: int, P: int, samples: int, steps: int, signal: float) -> dict:
    """The erf DNN of ``--dnn``, solved with the block preconditioner and with the previous rule (reference)."""
    _, X, Y, sup, kappa = sequential_problem(T, P, "dnn")
    net = sf.DNN(T, phi="erf", bias="none", scaling="mean_field")
    out = {}
    for blocks in (False, True):
        nl.BLOCK_PRECONDITIONER = blocks
        try:
            t, fl = timed(lambda: sf.feature_learning(net, X, signal * Y, supervised=sup, kappa=kappa, steps=steps,
                                                      estimator=dict(samples=samples, seed=0)))
        finally:
            nl.BLOCK_PRECONDITIONER = True
        out[blocks] = dict(wall=t, evaluations=fl.evaluations, error=fl.error, C=fl.C_sites)
        print(f"erf DNN T={T} P={P} at {signal:g}·Y, {samples} points, preconditioner on "
              f"{'the time blocks' if blocks else 'the full space up to T·P = 41 (previous rule)'}: {t:.1f} s, "
              f"{fl.evaluations} map evaluations, fl.error {fl.error:.3g}; load {os.getloadavg()[0]:.2f}", flush=True)
    diff = np.abs(out[True]["C"] - out[False]["C"]).max() / np.abs(out[False]["C"]).max()
    print(f"  ratio {out[False]['wall'] / out[True]['wall']:.2f} (wall), max |ΔC| / max |C| {diff:.2g}")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="T·P = 6 instead of 40 and 200")
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--repeat", type=int, default=1, help="best of this many solves")
    ap.add_argument("--sizes", default=None, help="comma-separated TxP, e.g. 8x5,20x10")
    ap.add_argument("--check", action="store_true", help="also solve the largest with 4x the points and another seed")
    ap.add_argument("--task", choices=("random", "orthonormal"), default="random",
                    help="random: X a random P x P Gaussian matrix, κ = 1 (ill-conditioned: the linear solver needs > 15 "
                         "min at 20x10); orthonormal: the sequential task of bench_fl_scale (κ = 0.5)")
    ap.add_argument("--dnn", default=None, help="TxP: also the factorised erf DNN row (see the module docstring)")
    ap.add_argument("--signal", type=float, default=1.0, help="--dnn: the targets' multiple of Y")
    args = ap.parse_args(argv)
    if args.dnn:
        factorised_row(*(int(v) for v in args.dnn.split("x")), args.samples, args.steps, args.signal)
    sizes = [(3, 2)] if args.quick else [(8, 5), (20, 10)]
    if args.sizes:
        sizes = [tuple(int(v) for v in item.split("x")) for item in args.sizes.split(",")]
    net, X, Y, sup = large_problem(4, 2, "erf")
    sf.feature_learning(net, X, Y, supervised=sup, estimator=dict(samples=500))  # warm-up (compilation)
    print(f"load average before: {os.getloadavg()}")
    rows = []
    for T, P in sizes:
        fl, row = size_row(T, P, args.samples, args.steps, args.repeat, not args.quick, args.task)
        rows.append(row)
    if args.check:
        net, X, Y, sup, kappa = task_problem(args.task, *sizes[-1], "erf")
        t4, fl4 = timed(lambda: sf.feature_learning(net, X, Y, supervised=sup, kappa=kappa, steps=args.steps,
                                                    estimator=dict(samples=4 * args.samples, seed=1)))
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

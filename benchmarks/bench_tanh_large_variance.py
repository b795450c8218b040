"""tanh mean-field kernels at pre-activation variances 16 ... 4096, where 640 Gauss–Hermite nodes alias tanh(√v x).

Reference (same process): ``gauss.dual.RETABULATE = False`` — every pair at such a variance goes to the 2-D graded
panel rule (~70 ms a pair); now: the Hermite coefficients of those variances are tabulated by panels once per
variance (kept per (φ, order)) and the pairs stay on the Mehler sum.  Caches are emptied before every call.

Run:  python benchmarks/bench_tanh_large_variance.py [--repeat 3] [--quick]
"""
import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import best_time  # noqa: E402

import symfield as sf  # noqa: E402
from symfield.gauss import dual  # noqa: E402

CASES = {"RNN tanh g=5, T=20, P=2": (lambda: sf.RNN(20, phi="tanh", g=5.0), np.array([[1.0, 0.3], [-0.5, 0.2]])),
         "DNN tanh T=2, P=30, |x|²/D ≈ 100": (lambda: sf.DNN(2, phi="tanh"),
                                               10 * np.random.default_rng(0).standard_normal((30, 10)))}
QUICK = {"RNN tanh g=5, T=6, P=2": (lambda: sf.RNN(6, phi="tanh", g=5.0), np.array([[1.0, 0.3], [-0.5, 0.2]]))}


def run(make, X, retabulate: bool):
    dual.RETABULATE = retabulate
    dual.DualKernel._instances.clear()
    try:
        return sf.mean_field(make(), X).C
    finally:
        dual.RETABULATE = True


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    rows = []
    for name, (make, X) in (QUICK if args.quick else CASES).items():
        old, C_old = best_time(lambda: run(make, X, False), 1 if args.quick else args.repeat)
        new, C_new = best_time(lambda: run(make, X, True), 1 if args.quick else args.repeat)
        diff = float(np.max(np.abs(C_new - C_old)) / np.max(np.abs(C_old)))
        rows.append((name, old, new, diff))
        print(f"{name}: reference {old:.2f} s, now {new:.2f} s, ratio {old / new:.1f}x, "
              f"max |ΔC| / max |C| = {diff:.1e}  (best of {args.repeat}, load {os.getloadavg()[0]:.1f})", flush=True)
    return rows


if __name__ == "__main__":
    main()

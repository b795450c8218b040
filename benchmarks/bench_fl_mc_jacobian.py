"""How many Monte Carlo points the full tilted measure needs before its sampled map's Jacobian is the theory's.

    python benchmarks/bench_fl_mc_jacobian.py [--size 8x5] [--points 500,1000,4000,16000] [--s 0.25] [--k 6]
    python benchmarks/bench_fl_mc_jacobian.py --size 20x10 --cost 4000,40200

erf RNN, the orthonormal sequential task of ``bench_fl_scale.sequential_problem`` (n = T·P sites).  For each number
of points M: the continued solution at signal scale s (``NonlinearSolver``: the prior kernel, one continuation step),
then the k eigenvalues of largest real part of the Jacobian J of the map on the points frozen there
(``nonlinear.jacobian_operator``, ARPACK, tol 1e-3), and the J·v products and seconds that took.  The ratio
M / (n(n+1)/2) — points per entry of ⟨φφᵀ⟩ — decides it: J·v's Ĉ-derivative of ⟨φφᵀ⟩ is the weighted covariance of
the n(n+1)/2 statistics φφᵀ estimated from M points, whose spectrum is inflated while M is not well above
n(n+1)/2 (``nonlinear.MC_JACOBIAN_FACTOR``).

Measured (idle 2-core machine, one BLAS thread), T = 8, P = 5 (n(n+1)/2 = 820), s = 0.25, top of the spectrum:
500 points 1.42 ± 0.32i, 1.34 ± 0.06i; 1000: 1.08 ± 0.35i and a real 1.076 (a false saddle); 4000: 1.039 ± 0.394i,
0.908 ± 0.310i; 16000: 1.034 ± 0.383i, 0.893 ± 0.314i.  T = 20, P = 10 (n(n+1)/2 = 20,100), 4000 points: the solve to
s = 0.25 170.6 s (968 map evaluations), then a real 2.413 and a cluster of complex pairs near 2.40 (342 products,
26 s at tol 1e-3) — the saddle check used to double k through that cluster (> 8 min) before UNSTABLE_MAX_K.
``--cost`` (T = 20, P = 10, one BLAS thread, the other core busy): 0.20 s per map evaluation with 4000 points, 1.69 s
with 2 × n(n+1)/2 = 40,200.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigs

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_feature_learning_nonlinear import orthonormal_problem  # noqa: E402

from symfield.theory.feature_learning import nonlinear as nl  # noqa: E402
from symfield.theory.feature_learning.problem import problem  # noqa: E402


def erf_problem(T: int, P: int):
    return problem(*orthonormal_problem(T, P, "erf"), None)


def spectrum_row(pr, samples: int, s: float, k: int, seed: int = 0) -> dict:
    """Continued solution at s with ``samples`` points, then the top-k eigenvalues of the frozen-sample J."""
    sv = nl.NonlinearSolver(pr, samples=samples, seed=seed)
    t0 = time.perf_counter()
    x0, _ = sv.solve(0.0, sv.start(), sv.full, label="prior kernel", final=False)
    x = sv.path([s], x0, sv.full).x[-1]
    t_solve = time.perf_counter() - t0
    fp = nl.FixedPoint(pr, s, sv.full)
    sv._freeze(fp, x)
    op = nl.jacobian_operator(fp, x)
    count = [0]

    def jv(v):
        count[0] += 1
        return v - op.matvec(v)

    J = LinearOperator(op.shape, matvec=jv, dtype=float)
    t0 = time.perf_counter()
    try:
        vals = eigs(J, k=k, which="LR", ncv=max(3 * k, 30), tol=1e-3, return_eigenvectors=False,
                    v0=np.random.default_rng(0).standard_normal(x.size))
    except ArpackNoConvergence as err:
        vals = err.eigenvalues
    vals = np.array(sorted(vals, key=lambda z: -z.real))
    return dict(samples=samples, ratio=samples / (pr.n * (pr.n + 1) / 2), solve=t_solve, evaluations=sv.evaluations,
                products=count[0], seconds=time.perf_counter() - t0, top=vals)


def evaluation_cost(pr, samples: int, repeat: int = 3) -> float:
    """Best-of-``repeat`` seconds of one map evaluation with ``samples`` points at the prior kernel (s = 0.25)."""
    from symfield.theory.feature_learning.action import gp_kernel
    from symfield.theory.feature_learning.tilted_mc import TiltedMC
    C0 = gp_kernel(pr)
    x = np.stack([C0, np.zeros_like(C0)])
    fp = nl.FixedPoint(pr, 0.25, TiltedMC(pr.spec.phi_fn, samples=samples, seed=0))
    fp.evaluate(x)
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fp.evaluate(x)
        best = min(best, time.perf_counter() - t0)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="8x5", help="TxP")
    ap.add_argument("--points", default="500,1000,4000,16000", help="comma-separated numbers of points")
    ap.add_argument("--s", type=float, default=0.25, help="signal scale of the checked solution")
    ap.add_argument("--k", type=int, default=6, help="eigenvalues of largest real part")
    ap.add_argument("--cost", default=None, help="comma-separated numbers of points: only the seconds of one map "
                                                 "evaluation with each (best of 3)")
    args = ap.parse_args(argv)
    T, P = (int(v) for v in args.size.split("x"))
    pr = erf_problem(T, P)
    print(f"erf RNN T={T} P={P}: n(n+1)/2 = {pr.n * (pr.n + 1) // 2}; load {os.getloadavg()[0]:.1f}", flush=True)
    if args.cost:
        for M in (int(v) for v in args.cost.split(",")):
            print(f"{M:7d} points: {evaluation_cost(pr, M):.3f} s per map evaluation (best of 3)", flush=True)
        return []
    rows = []
    for M in (int(v) for v in args.points.split(",")):
        row = spectrum_row(pr, M, args.s, args.k)
        rows.append(row)
        top = ", ".join(f"{z.real:.4g}{z.imag:+.3g}i" if abs(z.imag) > 1e-9 else f"{z.real:.4g}" for z in row["top"])
        print(f"{M:7d} points ({row['ratio']:.2f} per entry): solve {row['solve']:.1f} s ({row['evaluations']} "
              f"evaluations); top of J: {top} ({row['products']} products, {row['seconds']:.1f} s)", flush=True)
    print(f"load after {os.getloadavg()[0]:.1f}")
    return rows


if __name__ == "__main__":
    main()

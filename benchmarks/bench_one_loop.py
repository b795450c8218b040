"""One-loop corrections: the current path against the reference implementation, in one run.

    python benchmarks/bench_one_loop.py            # issue-12 cases (several minutes for the reference)
    python benchmarks/bench_one_loop.py --quick    # small cases (seconds)
    python benchmarks/bench_one_loop.py --large    # also T = 30, P = 4 (new path only)
    python benchmarks/bench_one_loop.py --cases 15x4 -k 1
    python benchmarks/bench_one_loop.py --quick --phi tanh   # tanh: its erf sum against Gauss-Hermite of tanh
    python benchmarks/bench_one_loop.py --cases 50x4 -k 1 --no-reference   # T·P = 200 (~15 GiB, tens of minutes)

``method="reference"`` is the implementation before issue 12: Gauss–Hermite four-point moments with
``nodes_for`` node counts for every φ, dense products J⁻¹ K J⁻ᵀ.  The default ("causal") takes
closed-form four-point moments (erf, linear: ``symfield.gauss.moments``) once per distinct site
multiset, the compiled pair-pair loops of ``symfield.theory.assembly`` and in-place forward
substitutions.  Time: wall clock, best of k runs after a warm-up (compilation excluded), and the
process CPU time of that run (all threads); memory: tracemalloc peak of that run (numpy arrays;
the compiled loops' small per-thread buffers are not traced); load: os.getloadavg() at the start
and the end of each case.  The largest |ΔNΔ| / max|NΔ| between the two paths is the reference's
quadrature error (the closed form is exact to ~1e-12; tests/test_one_loop.py checks both against
mpmath and high-order quadrature).
"""
from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import numpy as np

import symfield as sf
from symfield.theory.one_loop import one_loop


def timed(fn, k):
    """Best of k runs (wall, cpu) with the tracemalloc peak of the best run, and the last result."""
    best = None
    for _ in range(k):
        tracemalloc.start()
        w, c = time.perf_counter(), time.process_time()
        out = fn()
        run = (time.perf_counter() - w, time.process_time() - c, tracemalloc.get_traced_memory()[1] / 2 ** 20)
        tracemalloc.stop()
        best = run if best is None or run[0] < best[0] else best
    return best, out


def case(T, P, k, reference=True, phi="erf"):
    net = sf.RNN(T, phi=phi, g=1.2, sigma_b2=0.1)
    X = np.random.default_rng(0).standard_normal((P, 10))
    one_loop(sf.RNN(3, phi=phi, g=1.2, sigma_b2=0.1), X[:1])                      # warm-up: compile / load
    one_loop(sf.RNN(3, phi=phi, g=1.2, sigma_b2=0.1), X[:1], method="reference")
    load = os.getloadavg()[0]
    (w_new, c_new, m_new), a = timed(lambda: one_loop(net, X), k)
    line = (f"RNN {phi} T={T:3d} P={P}  pairs {a.ps.n:5d}  load {load:5.1f}   new {w_new:7.2f} s (cpu {c_new:7.2f} s, "
            f"{m_new:7.1f} MiB)")
    if reference:
        (w_ref, c_ref, m_ref), b = timed(lambda: one_loop(net, X, method="reference"), 1)
        diff = np.max(np.abs(a.NDelta - b.NDelta)) / np.max(np.abs(b.NDelta))
        line += (f"   reference {w_ref:7.2f} s (cpu {c_ref:7.2f} s, {m_ref:7.1f} MiB)   wall ratio {w_ref / w_new:6.1f}x"
                 f"  cpu ratio {c_ref / c_new:6.1f}x   max|dNΔ|/max|NΔ| {diff:.1e}")
    print(line + f"   load at end {os.getloadavg()[0]:5.1f}", flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small cases only")
    ap.add_argument("--large", action="store_true", help="also T = 30, P = 4 without the reference")
    ap.add_argument("-k", type=int, default=2, help="best of k runs of the new path")
    ap.add_argument("--phi", default="erf", help="erf (default) or tanh (its erf sum)")
    ap.add_argument("--no-reference", action="store_true", help="the new path only")
    ap.add_argument("--cases", default=None, help="comma-separated TxP, e.g. 40x1,15x4 (default: the issue's)")
    args = ap.parse_args(argv)
    cases = [(6, 1), (4, 2)] if args.quick else [(40, 1), (20, 2), (15, 4)]
    if args.cases:
        cases = [tuple(int(v) for v in c.split("x")) for c in args.cases.split(",")]
    for T, P in cases:
        case(T, P, args.k, reference=not args.no_reference, phi=args.phi)
    if args.large:
        case(30, 4, 1, reference=False, phi=args.phi)


if __name__ == "__main__":
    main()

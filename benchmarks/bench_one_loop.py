"""One-loop corrections: causal forward substitution against a dense-inverse reference, in one run.

    python benchmarks/bench_one_loop.py

Cases (issue 3): RNN erf, one input, T = 30; RNN erf, T = 10, P = 4.  The reference inverts the
full (2n x 2n) Hessian of the quadratic action densely (``method="dense"``); everything else
(mean field, four-point moments, vertices) is shared.  Time is wall clock after a warm-up run
(compilation excluded); memory is the tracemalloc peak of one run.  The split of the causal
run shows where the time goes.
"""
from __future__ import annotations

import time
import tracemalloc

import numpy as np

import symfield as sf
from symfield.theory.one_loop import one_loop


def measure(fn):
    tracemalloc.start()
    t0 = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return seconds, peak / 2 ** 20, out


def case(name, net, X):
    one_loop(net, X[:1] if X.shape[0] > 1 else X)  # warm-up: compile / load generated modules
    t_c, m_c, a = measure(lambda: one_loop(net, X))
    t_d, m_d, b = measure(lambda: one_loop(net, X, method="dense"))
    diff = np.max(np.abs(a.NDelta - b.NDelta))
    print(f"{name:26s} pairs {a.ps.n:5d}   causal {t_c:7.2f} s {m_c:8.1f} MiB   dense {t_d:7.2f} s {m_d:8.1f} MiB"
          f"   time ratio {t_d / t_c:5.2f}x   memory ratio {m_d / m_c:5.2f}x   max |dNΔ| {diff:.1e}", flush=True)


def main():
    case("RNN erf T=30, P=1", sf.RNN(30, phi="erf", g=1.2, sigma_b2=0.1), np.ones((1, 1)))
    X = np.random.default_rng(0).standard_normal((4, 10))
    case("RNN erf T=10, P=4", sf.RNN(10, phi="erf", g=1.2, sigma_b2=0.1), X)
    t0 = time.perf_counter()
    one_loop(sf.RNN(30, phi="erf", g=1.2, sigma_b2=0.1), np.ones((1, 1)), progress=True)
    print(f"(stages of the T=30 case above, total {time.perf_counter() - t0:.2f} s)")


if __name__ == "__main__":
    main()

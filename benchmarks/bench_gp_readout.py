"""Memory-aware GP kernel (issue 11, part 2): one readout time computes only the blocks it needs.

    python benchmarks/bench_gp_readout.py [--P 800 2000] [--T 28] [--repeat 1] [--quick]

Digits-style inputs (row sequences: input at every step, D = 28), RNN tanh.  New: gp.output_kernel
(needed blocks only, two shells held).  Reference (the previous implementation, kept here): the full
mean field, then the φ expectation of its last block.  Peak memory by tracemalloc (NumPy allocations)
and the process's maximum RSS; wall time best of ``--repeat`` after a warm-up; load average reported.
"""
from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc

import numpy as np

import symfield as sf
from symfield.theory.kernel_map import kernel_map


def reference_kernel(spec, X):
    """The previous gp.output_kernel: every block of mean_field, then the readout of the last one."""
    mf = sf.mean_field(spec, X)
    C = mf.block(spec.T - 1, spec.T - 1)
    d = np.diag(C)
    return spec.sigma_out2 + spec.g_out ** 2 * kernel_map(spec.phi_fn).expect(d, d, C, symmetric=True)


def measure(fn, repeat):
    fn()  # warm-up (compilation)
    best, peak, out = np.inf, 0.0, None
    for _ in range(repeat):
        tracemalloc.start()
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
        peak = max(peak, tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
    return best, peak, out


def run(P, T, repeat, reference=True):
    X = np.random.default_rng(0).standard_normal((P, T, 28)) * 0.5
    net = sf.RNN(T, phi="tanh", g=1.5, sigma_b2=0.1, input="every")
    t_new, m_new, K = measure(lambda: sf.gp.output_kernel(net, X), repeat)
    line = f"P={P} T={T}: needed blocks {t_new:.2f} s, peak {m_new / 2**30:.3f} GiB"
    if reference:
        t_ref, m_ref, K_ref = measure(lambda: reference_kernel(net, X), repeat)
        line += (f" | full mean field {t_ref:.2f} s, peak {m_ref / 2**30:.3f} GiB | speed-up {t_ref / t_new:.2f}x, "
                 f"max |diff| {np.abs(K - K_ref).max():.1e}")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(line + f" | max RSS so far {rss:.2f} GiB | load {os.getloadavg()[0]:.1f}", flush=True)
    return m_new


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--P", type=int, nargs="+", default=[800, 2000])
    ap.add_argument("--T", type=int, default=28)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="P = 100, T = 8 (seconds)")
    ap.add_argument("--no-reference", action="store_true", help="skip the full-mean-field reference")
    a = ap.parse_args()
    for P in ([100] if a.quick else a.P):
        run(P, 8 if a.quick else a.T, a.repeat, reference=not a.no_reference and P <= 1000)

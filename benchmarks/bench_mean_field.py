"""Mean-field kernels: symfield against plain vectorised NumPy references, and threads, in one run.

    python benchmarks/bench_mean_field.py [--repeat 5] [--threads-only] [--crossover]

Threads (issue 12): each case on the block-by-block reference path as it was (Σdet, BLAS limit and
hoisted factors per block, two Numba threads) and on the current path with 1 and 2 Numba threads forced
and with the per-call choice (``threads=None``), side by side, with the load average.

``--crossover``: 1 against 2 forced threads over a range of sizes, with the work per parallel region
(``mean_field._region_work``) that ``thread_count`` compares with ``THREADS_MIN_WORK``; run it on an idle
machine to place that threshold.

Cases (issue 2): DNN erf T=10 P=2000; RNN erf T=30 P=100; DNN tanh T=3 P=1000 (reference:
25-point bivariate Gauss-Hermite). Times are the best of ``--repeat`` runs after one warm-up
(compilation excluded). Accuracy of the tanh case: the largest error on a subset of 12
patterns against a 200-point Gauss-Hermite recursion of the same subset (in a DNN, an entry
depends only on its own pattern pair, so the subset recursion is exact).
"""
from __future__ import annotations

import argparse
import os

import numba
import numpy as np

import symfield as sf
from timing import best_time

G, S2 = 1.2, 0.1




# ------------------------------------------------------------------ NumPy references
def erf_pair_np(d1, d2, c12):
    return 2 / np.pi * np.arcsin(2 * c12 / np.sqrt(np.outer(1 + 2 * d1, 1 + 2 * d2)))


def dnn_erf_np(X, T):
    C = S2 + X @ X.T / X.shape[1]
    for _ in range(T - 1):
        d = np.diag(C)
        C = S2 + G ** 2 * erf_pair_np(d, d, C)
    return C


def rnn_erf_np(X, T):
    P = X.shape[0]
    C = np.zeros((T, T, P, P))
    C[0, :] = S2
    C[:, 0] = S2
    C[0, 0] += X @ X.T / X.shape[1]
    for hi in range(1, T):  # shells of max(a, b)
        for a in range(1, hi + 1):
            blk = S2 + G ** 2 * erf_pair_np(np.diag(C[a - 1, a - 1]), np.diag(C[hi - 1, hi - 1]), C[a - 1, hi - 1])
            C[a, hi] = blk
            C[hi, a] = blk.T
    return C


def gh_pair_np(f, d, C, n, chunk=20000):
    """<f(u) f(v)> for all pairs by an n x n bivariate Gauss-Hermite rule (upper triangle)."""
    x, w = np.polynomial.hermite_e.hermegauss(n)
    w = w / np.sqrt(2 * np.pi)
    W2 = np.outer(w, w).ravel()
    X1 = np.repeat(x, n)
    X2 = np.tile(x, n)
    iu, ju = np.triu_indices(len(d))
    out = np.empty(len(iu))
    for k in range(0, len(iu), chunk):
        i, j = iu[k:k + chunk], ju[k:k + chunk]
        a = np.sqrt(d[i])
        rho_b = C[i, j] / a
        b = np.sqrt(np.maximum(d[j] - rho_b ** 2, 0.0))
        u = f(a[:, None] * X1)
        v = f(rho_b[:, None] * X1 + b[:, None] * X2)
        out[k:k + chunk] = (u * v) @ W2
    E = np.zeros_like(C)
    E[iu, ju] = out
    E[ju, iu] = out
    return E


def dnn_gh_np(X, T, n):
    C = S2 + X @ X.T / X.shape[1]
    for _ in range(T - 1):
        C = S2 + G ** 2 * gh_pair_np(np.tanh, np.diag(C).copy(), C, n)
    return C


# ------------------------------------------------------------------ cases
def case(name, fn_sf, fn_ref, repeat, accuracy=None):
    t_sf, out_sf = best_time(fn_sf, repeat)
    t_ref, out_ref = best_time(fn_ref, repeat)
    line = f"{name:28s} symfield {t_sf:8.3f} s   numpy {t_ref:8.3f} s   ratio {t_ref / t_sf:7.1f}x"
    if accuracy is not None:
        err_sf, err_ref = accuracy(out_sf, out_ref)
        line += f"   max error: symfield {err_sf:.1e}, numpy {err_ref:.1e}"
    else:
        line += f"   max |diff| {np.max(np.abs(out_sf - out_ref)):.1e}"
    print(line, flush=True)
    return t_sf, t_ref


def thread_cases(rng):
    return [("DNN erf T=10 P=500", sf.DNN(10, phi="erf", g=G, sigma_b2=S2), rng.standard_normal((500, 50))),
            ("DNN erf T=10 P=2000", sf.DNN(10, phi="erf", g=G, sigma_b2=S2), rng.standard_normal((2000, 50))),
            ("RNN erf first T=30 P=100", sf.RNN(30, phi="erf", g=G, sigma_b2=S2), rng.standard_normal((100, 50))),
            ("RNN erf every T=100 P=100", sf.RNN(100, phi="erf", g=G, sigma_b2=S2, input="every"),
             rng.standard_normal((100, 100, 50))),
            ("DNN tanh T=3 P=300", sf.DNN(3, phi="tanh", g=G, sigma_b2=S2), rng.standard_normal((300, 50)))]


def with_threads(n, fn):
    def run():
        old = numba.get_num_threads()
        numba.set_num_threads(n)
        try:
            return fn()
        finally:
            numba.set_num_threads(old)
    return run


def threads_table(repeat, rng):
    from symfield.theory.mean_field import reference_mean_field
    top = numba.get_num_threads()
    print(f"threads (load average before: {os.getloadavg()[0]:.1f}, {os.cpu_count()} CPUs, best of {repeat}; "
          f"ms)", flush=True)
    print(f"{'case':28s} {'reference':>10s} {'1 thread':>10s} {'2 threads':>10s} {'auto':>10s}   "
          f"{'ref/auto':>8s} {'2t/1t':>6s} max|new-ref|")
    for name, net, X in thread_cases(rng):
        t_ref, ref = best_time(with_threads(min(2, top), lambda: reference_mean_field(net, X).diagonal()), repeat)
        t1, one = best_time(lambda: sf.mean_field(net, X, threads=1).diagonal(), repeat)
        t2, _ = best_time(lambda: sf.mean_field(net, X, threads=min(2, top)).diagonal(), repeat)
        ta, _ = best_time(lambda: sf.mean_field(net, X).diagonal(), repeat)
        print(f"{name:28s} {t_ref * 1e3:10.1f} {t1 * 1e3:10.1f} {t2 * 1e3:10.1f} {ta * 1e3:10.1f}   "
              f"{t_ref / ta:8.2f} {t2 / t1:6.2f} {np.max(np.abs(one - ref)):.1e}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def crossover(repeat, rng):
    from symfield.theory.kernel_map import kernel_map
    from symfield.theory.mean_field import THREADS_MIN_WORK, _region_work, _shells_apply
    print(f"crossover (load average before: {os.getloadavg()[0]:.1f}, best of {repeat}; ms; "
          f"THREADS_MIN_WORK = {THREADS_MIN_WORK:.0e})", flush=True)
    cases = [("DNN erf T=10", lambda P: sf.DNN(10), lambda P: rng.standard_normal((P, 8)), [50, 100, 200, 500, 1000]),
             ("RNN erf first T=30", lambda P: sf.RNN(30), lambda P: rng.standard_normal((P, 8)), [5, 10, 20, 40, 100]),
             ("DNN tanh T=3", lambda P: sf.DNN(3, phi="tanh"), lambda P: rng.standard_normal((P, 8)), [10, 40, 80])]
    for name, make, inputs, Ps in cases:
        for P in Ps:
            net, X = make(P), inputs(P)
            km = kernel_map(net.phi_fn)
            work = _region_work(net, P, km, not net.has_skip and _shells_apply(net, km, "all", P))
            t1, _ = best_time(lambda: sf.mean_field(net, X, threads=1).diagonal(), repeat)
            t2, _ = best_time(lambda: sf.mean_field(net, X, threads=2).diagonal(), repeat)
            ta, _ = best_time(lambda: sf.mean_field(net, X).diagonal(), repeat)
            print(f"{name:20s} P={P:5d}  work {work:9.2e}  1 thread {t1 * 1e3:8.2f}  2 threads {t2 * 1e3:8.2f}  "
                  f"auto {ta * 1e3:8.2f}  2t/1t {t2 / t1:5.2f}", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads-only", action="store_true", help="only the thread table")
    parser.add_argument("--crossover", action="store_true", help="only the 1- against 2-thread crossover")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    if args.crossover:
        return crossover(args.repeat, rng)
    threads_table(args.repeat, rng)
    if args.threads_only:
        return

    X = rng.standard_normal((2000, 50))
    dnn = sf.DNN(10, phi="erf", g=G, sigma_b2=S2)
    case("DNN erf T=10 P=2000", lambda: sf.mean_field(dnn, X).block(9, 9), lambda: dnn_erf_np(X, 10), args.repeat)

    X = rng.standard_normal((100, 50))
    rnn = sf.RNN(30, phi="erf", g=G, sigma_b2=S2)
    case("RNN erf T=30 P=100", lambda: sf.mean_field(rnn, X).C, lambda: rnn_erf_np(X, 30), args.repeat)

    X = rng.standard_normal((1000, 50))
    tanh = sf.DNN(3, phi="tanh", g=G, sigma_b2=S2)
    sub = rng.choice(1000, 12, replace=False)
    exact = dnn_gh_np(X[sub], 3, 200)

    def accuracy(out_sf, out_ref):
        ix = np.ix_(sub, sub)
        return np.max(np.abs(out_sf[ix] - exact)), np.max(np.abs(out_ref[ix] - exact))
    case("DNN tanh T=3 P=1000", lambda: sf.mean_field(tanh, X).block(2, 2), lambda: dnn_gh_np(X, 3, 25), 1,
         accuracy)


if __name__ == "__main__":
    main()

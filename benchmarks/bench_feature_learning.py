"""μP feature learning: saddle-point theory against the finite-width posterior sampler, in one run.

    python benchmarks/bench_feature_learning.py [--N 1024] [--accuracy 0.01] [--quick]

Two problems (linear φ, g = g_in = σ_v = κ = 1, endpoint targets, broken phase):

* ``large``: RNN with T = 10 hidden states and P = 10 orthonormal patterns (T·P = 100 sites), |y| = 1.5 y_c;
  timed: one saddle-point solve (``feature_learning``: continuation from the GP kernel, both branches) and a
  100-point signal scan (``signal_scan``: symmetric and broken branches over |y| in (0, 1.5 y_c]);
* ``small``: RNN with T = 3, P = 1 at y = 4.5 (the reference task of the theory notes).

For each, the HMC sampler at width N runs independent chains from prior draws; the time to reach a relative
standard error ``--accuracy`` on the pattern-averaged kernel diagonal c_T and on |corr(T-1, T)| is
burn-in + per-sample cost × samples needed, samples needed = n (SEM_n / target)² with SEM_n from batch means
(five batches per chain).  Reported: the sampled values against the theory (a deviation much larger than
b/N ~ 1/N signals a chain that has not equilibrated; its time is then a lower bound) and the ratios
sampler time / solve time.  Solves are timed after one warm-up (compilation excluded).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import symfield as sf
from timing import best_time
from symfield.theory.feature_learning import closed_form_threshold, feature_learning, signal_scan


def large_problem():
    T = P = 10
    rng = np.random.default_rng(0)
    X = np.linalg.qr(rng.standard_normal((P, P)))[0] * np.sqrt(P)  # orthonormal, |x|²/D = 1
    net = sf.RNN(T, phi="linear", bias="none", scaling="mean_field")
    Y = np.zeros((P, T))
    Y[:, -1] = rng.standard_normal(P)
    Y *= 1.5 * closed_form_threshold(net, X, Y) / np.linalg.norm(Y)
    return net, X, Y


def small_problem():
    Y = np.zeros((1, 3))
    Y[0, -1] = 4.5
    return sf.RNN(3, phi="linear", bias="none", scaling="mean_field"), np.ones((1, 1)), Y


def observables(C):
    """Pattern-averaged c_T and |corr(T-1, T)| from kernels (..., T, T, P, P)."""
    d = np.einsum("...ttmm->...tm", C)
    cT = d[..., -1, :].mean(-1)
    cross = np.einsum("...mm->...m", C[..., -2, -1, :, :])
    corr = (np.abs(cross) / np.sqrt(d[..., -2, :] * d[..., -1, :])).mean(-1)
    return cT, corr


def sampler_time(net, X, Y, fl, N, chains, burn, samples, accuracy, label):
    """Seconds the sampler needs for the target relative SEM (see the module docstring) and its values."""
    th_cT, th_corr = observables(fl.C)
    t0 = time.perf_counter()
    post = sf.simulate.posterior(net, X, Y, N=N, seed=1, samples=samples, burn=burn, chains=chains, leapfrog=20,
                                 progress=True)
    t_run = time.perf_counter() - t0
    cT, corr = observables(post.C)
    need = 0.0
    for name, v, th in (("c_T", cT, th_cT), ("|corr|", corr, th_corr)):
        batches = [b for c in np.unique(post.chain) for b in np.array_split(v[post.chain == c], 5)]
        means = np.array([b.mean() for b in batches])
        sem = means.std(ddof=1) / np.sqrt(means.size)
        need = max(need, post.samples * (sem / (accuracy * abs(v.mean()))) ** 2)
        print(f"  {label} sampler N={N}: {name} = {v.mean():.4f} ± {sem:.4f} (theory {th:.4f}, "
              f"deviation {(v.mean() - th) / th:+.2%})")
    per_sample = t_run * samples / (burn + samples) / post.samples
    t_burn = t_run - per_sample * post.samples
    need = max(need, 10.0 * np.unique(post.chain).size)  # at least the batches the SEM was measured with
    t = t_burn + per_sample * need
    print(f"  {label} sampler: {t_run:.1f} s for {post.samples} samples (acceptance {post.acceptance:.2f}); "
          f"time to {accuracy:.0%} relative SEM: {t:.1f} s (burn-in {t_burn:.1f} s + {need:.0f} samples)")
    return t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--N", type=int, default=1024)
    ap.add_argument("--accuracy", type=float, default=0.01)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="N = 256, few samples (a smoke run)")
    args = ap.parse_args(argv)
    q = args.quick
    N = 256 if q else args.N
    out = {}
    net, X, Y = large_problem()
    t_solve, fl = best_time(lambda: feature_learning(net, X, Y), args.repeat)
    print(f"large: T=10, P=10 (T·P = 100), |y| = 1.5 y_c: phase {fl.phase}, action {fl.action:.6f}")
    print(f"  one saddle-point solve:  {t_solve:8.3f} s")
    scales = np.linspace(0.01, 1.0, 100)
    signal_scan(net, X, Y, scales[:3])  # warm-up
    t0 = time.perf_counter()
    scan = signal_scan(net, X, Y, scales)
    t_scan = time.perf_counter() - t0
    print(f"  100-point signal scan:   {t_scan:8.3f} s ({sum(b is not None for b in scan.broken)} points with a broken "
          f"branch)")
    sf.simulate.posterior(net, X, Y, N=8, samples=1, burn=1, chains=1)  # compile the sampler
    t_s = sampler_time(net, X, Y, fl, N, 2, 20 if q else 60, 10 if q else 40, args.accuracy, "large")
    print(f"  ratio sampler / one solve: {t_s / t_solve:10.1f};  sampler / 100-point scan: {t_s / t_scan:8.2f}")
    out["large"] = {"t_solve": t_solve, "t_scan": t_scan, "t_sampler": t_s}
    net, X, Y = small_problem()
    t_solve, fl = best_time(lambda: feature_learning(net, X, Y), max(args.repeat, 3))
    print(f"small: T=3, P=1, y=4.5: phase {fl.phase}; one saddle-point solve: {t_solve:.4f} s")
    t_s = sampler_time(net, X, Y, fl, N, 4, 40 if q else 100, 40 if q else 150, args.accuracy, "small")
    print(f"  ratio sampler / one solve: {t_s / t_solve:10.1f}")
    out["small"] = {"t_solve": t_solve, "t_sampler": t_s}
    return out


if __name__ == "__main__":
    main()

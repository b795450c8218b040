"""μP feature learning: saddle-point theory against the finite-width posterior sampler, in one run.

    python benchmarks/bench_feature_learning.py [--N 1024] [--samples 40] [--chains 2] [--quick]

Problem: RNN, T = 10 hidden states, P = 10 orthonormal patterns (T·P = 100 sites), linear φ, g = g_in = σ_v = κ = 1,
endpoint targets with |y| = 1.5 y_c (broken phase).  Timed, each after one warm-up (compilation excluded):

* one saddle-point solve (``feature_learning``: continuation from the GP kernel, both branches);
* a 100-point signal scan (``signal_scan``: symmetric and broken branches over |y| in (0, 1.5 y_c]);
* the HMC sampler at width N: the time to reach a relative standard error ``--accuracy`` (default 1 %) on the
  pattern-averaged kernel diagonal c_T and on |corr(T-1, T)|, measured from one run with independent chains
  (time = burn-in + per-sample cost × samples needed, samples needed = n (SEM_n / target)², SEM_n from
  batch means, five batches per chain).
Reports the ratio sampler time / solve time and the deviation of the sampled values from the theory.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import symfield as sf
from timing import best_time
from symfield.theory.feature_learning import closed_form_threshold, feature_learning, signal_scan

T, P = 10, 10


def setup():
    rng = np.random.default_rng(0)
    X = np.linalg.qr(rng.standard_normal((P, P)))[0] * np.sqrt(P)  # orthonormal, |x|²/D = 1
    net = sf.RNN(T, phi="linear", bias="none", scaling="mean_field")
    Y = np.zeros((P, T))
    Y[:, -1] = rng.standard_normal(P)
    Y *= 1.5 * closed_form_threshold(net, X, Y) / np.linalg.norm(Y)
    return net, X, Y


def observables(C):
    """Pattern-averaged c_T and |corr(T-1, T)| from kernels (..., T, T, P, P)."""
    d = np.einsum("...ttmm->...tm", C)
    cT = d[..., -1, :].mean(-1)
    cross = np.einsum("...mm->...m", C[..., -2, -1, :, :])
    corr = (np.abs(cross) / np.sqrt(d[..., -2, :] * d[..., -1, :])).mean(-1)
    return cT, corr




def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--N", type=int, default=1024)
    ap.add_argument("--samples", type=int, default=40, help="stored samples per chain")
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--burn", type=int, default=60)
    ap.add_argument("--accuracy", type=float, default=0.01)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--quick", action="store_true", help="N = 256, fewer samples (a smoke run)")
    args = ap.parse_args(argv)
    if args.quick:
        args.N, args.samples, args.burn, args.chains = 256, 20, 40, 2
    net, X, Y = setup()
    t_solve, fl = best_time(lambda: feature_learning(net, X, Y), args.repeat)
    th_cT, th_corr = observables(fl.C)
    print(f"T={T}, P={P} (T·P = {T * P}), |y| = 1.5 y_c: phase {fl.phase}, action {fl.action:.6f}")
    print(f"one saddle-point solve:        {t_solve:8.3f} s")
    scales = np.linspace(0.01, 1.0, 100)
    signal_scan(net, X, Y, scales[:3])  # warm-up
    t0 = time.perf_counter()
    scan = signal_scan(net, X, Y, scales)
    t_scan = time.perf_counter() - t0
    n_broken = sum(b is not None for b in scan.broken)
    print(f"100-point signal scan:         {t_scan:8.3f} s ({n_broken} points with a broken branch)")
    sf.simulate.posterior(net, X, Y, N=16, samples=1, burn=1, chains=1)  # compile the sampler
    t0 = time.perf_counter()
    post = sf.simulate.posterior(net, X, Y, N=args.N, seed=1, samples=args.samples, burn=args.burn,
                                 chains=args.chains, leapfrog=20, progress=True)
    t_run = time.perf_counter() - t0
    cT, corr = observables(post.C)
    chains = np.unique(post.chain)
    need = 0.0
    for name, v, th in (("c_T", cT, th_cT), ("|corr|", corr, th_corr)):
        # batch means: 5 consecutive batches per chain
        means = np.concatenate([np.array_split(v[post.chain == c], 5) for c in chains], axis=0)
        means = np.array([b.mean() for b in means])
        sem = means.std(ddof=1) / np.sqrt(means.size)
        target = args.accuracy * abs(v.mean())
        need = max(need, post.samples * (sem / target) ** 2)
        print(f"sampler N={args.N}: {name} = {v.mean():.4f} ± {sem:.4f} (theory {th:.4f}, "
              f"deviation {(v.mean() - th) / th:+.2%})")
    per_sample = t_run * (1 - args.burn / (args.burn + args.samples)) / post.samples
    t_burn = t_run - per_sample * post.samples
    t_sampler = t_burn + per_sample * max(need, post.samples)
    print(f"sampler: {t_run:.1f} s for {post.samples} samples (acceptance {post.acceptance:.2f}); "
          f"time to {args.accuracy:.0%} relative SEM: {t_sampler:.1f} s ({max(need, post.samples):.0f} samples)")
    print(f"ratio sampler / one solve:     {t_sampler / t_solve:8.1f}")
    print(f"ratio sampler / 100-point scan: {t_sampler / t_scan:8.2f}")
    return {"t_solve": t_solve, "t_scan": t_scan, "t_sampler": t_sampler, "ratio_solve": t_sampler / t_solve,
            "ratio_scan": t_sampler / t_scan}


if __name__ == "__main__":
    main()

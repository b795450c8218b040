"""Ensembles and chains on Dask workers against the serial run, in one run (issue 12, part 3).

    python benchmarks/bench_parallel.py [--repeat 2] [--workers 2] [--quick]
    python benchmarks/bench_parallel.py --scaling      # cost models of docs/scaling.md: times against N, T, P

Two workloads, each serial (in-process) and on a LocalCluster of ``--workers`` processes started
before the clock (``scheduler="local:2"``; the first call of each, which imports symfield and loads
the compiled modules on the workers, is a warm-up outside the best-of-k):

    prior    sf.simulate.prior(RNN erf T=10, P=4, N=256, samples=480): the ensemble mean against the
             mean-field kernel (largest |sim - theory| / sem), serial and parallel bit-identical
    hmc      sf.simulate.posterior at widths N = 32, 64, 96 (4 chains each): a width scan

Reported: best-of-k wall times, the speed-up, the load average (os.getloadavg) before and after, and
the time the workload would take on k = 1, 2, 4, 8, 16 workers, predicted from the task times measured
serially (greedy longest-task-first schedule plus the measured per-task overhead of the cluster).
Also the cores the *serial* run already keeps busy (its process CPU time / wall time): the serial prior
ensemble draws the next weights in a background thread while the current ones are applied, so it uses
up to two cores by itself, and ``cores / that`` bounds what any number of workers can gain on this machine.
``--prior-N`` / ``--prior-samples`` / ``--prior-P`` set the ensemble.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import symfield as sf
from symfield import parallel
from symfield.validation import loglog_slope
from timing import best_time


def makespan(durations, k: int) -> float:
    """Wall time of independent tasks on k workers, longest task first to the least loaded worker."""
    load = np.zeros(k)
    for d in sorted(durations, reverse=True):
        load[np.argmin(load)] += d
    return float(load.max())


def task_times(fn, tasks) -> list:
    out = []
    for t in tasks:
        t0 = time.perf_counter()
        fn(t)
        out.append(time.perf_counter() - t0)
    return out


class Capture:
    """Record the tasks a public function hands to parallel.run_tasks (to time them one by one)."""

    def __init__(self):
        self.calls = []

    def __enter__(self):
        self.orig = parallel.run_tasks

        def spy(fn, tasks, **kw):
            tasks = list(tasks)
            self.calls.append((fn, tasks))
            return self.orig(fn, tasks, **kw)
        parallel.run_tasks = spy
        return self

    def __exit__(self, *exc):
        parallel.run_tasks = self.orig


def serial_cores(fn) -> float:
    """Cores a call keeps busy on average: process CPU time over wall time of one run."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return (time.process_time() - c) / (time.perf_counter() - w)


def report(name, t_serial, t_par, durations, overhead, workers):
    print(f"{name}: serial {t_serial:7.2f} s   {workers} workers {t_par:7.2f} s   speed-up {t_serial / t_par:5.2f}x  "
          f"({len(durations)} tasks, {sum(durations):.2f} s of task time, per-task overhead {overhead * 1e3:.0f} ms)")
    pred = ", ".join(f"k={k}: {makespan(durations, k) + overhead * len(durations) / k:.2f} s"
                     for k in (1, 2, 4, 8, 16))
    print(f"  predicted from the task times: {pred}")


def fit(name, xs, fn, repeat):
    """Best-of-``repeat`` times of ``fn(x)`` and the fitted exponent of time ~ x^a (log-log least squares)."""
    times = [best_time(lambda: fn(x), repeat)[0] for x in xs]
    slope, err = loglog_slope(xs, times, np.full(len(xs), 1.0))
    last = np.log(times[-1] / times[-2]) / np.log(xs[-1] / xs[-2])
    cells = "  ".join(f"{x}: {t * 1e3:.1f} ms" for x, t in zip(xs, times))
    print(f"{name:52s} {cells}   exponent {slope:.2f} (last pair {last:.2f})", flush=True)


def scaling(repeat):
    """Time against N, T, P of the unit of work of each entry point, serial, one thread."""
    print(f"cost models (load average {os.getloadavg()[0]:.1f}, best of {repeat})", flush=True)
    rng = np.random.default_rng(0)
    X4 = rng.standard_normal((4, 8))
    fit("prior, 8 samples, T=10 P=4: N", [256, 512, 1024],
        lambda N: sf.simulate.prior(sf.RNN(10), X4, N=N, samples=8, seed=1), repeat)
    fit("prior, 8 samples, N=256 P=4: T", [10, 20, 40],
        lambda T: sf.simulate.prior(sf.RNN(T), X4, N=256, samples=8, seed=1), repeat)
    fit("prior, 8 samples, N=256 T=10: P", [16, 64, 256],
        lambda P: sf.simulate.prior(sf.RNN(10), rng.standard_normal((P, 8)), N=256, samples=8, seed=1), repeat)
    fit("kernel_moments, 64 networks, T=10 P=1: N", [256, 512, 1024],
        lambda N: sf.simulate.kernel_moments(sf.RNN(10), X4[:1], N, 64, seed=1), repeat)
    fit("kernel_moments, 64 networks, N=128 P=1: T", [10, 20, 40],
        lambda T: sf.simulate.kernel_moments(sf.RNN(T), X4[:1], 128, 64, seed=1), repeat)
    mup = sf.RNN(3, phi="tanh", bias="none", scaling="mean_field")
    Y = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    fit("posterior, 1 chain 20+20 trajectories, T=3 P=2: N", [64, 128, 256],
        lambda N: sf.simulate.posterior(mup, X4[:2, :3], Y, supervised=[False, False, True], N=N, samples=20,
                                        burn=20, chains=1, leapfrog=20, seed=1), repeat)
    fit("mean_field DNN erf T=10, 1 thread: P", [500, 1000, 2000],
        lambda P: sf.mean_field(sf.DNN(10), rng.standard_normal((P, 8)), threads=1).diagonal(), repeat)
    fit("mean_field RNN erf input first P=100, 1 thread: T", [20, 40, 80],
        lambda T: sf.mean_field(sf.RNN(T), rng.standard_normal((100, 8)), threads=1).diagonal(), repeat)
    fit("mean_field RNN erf input every P=50, 1 thread: T", [20, 40, 80],
        lambda T: sf.mean_field(sf.RNN(T, input="every"), rng.standard_normal((50, T, 8)), threads=1).diagonal(),
        repeat)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="smaller workloads")
    parser.add_argument("--scaling", action="store_true", help="only the cost models (serial)")
    parser.add_argument("--prior-N", type=int, default=256, help="width of the prior ensemble")
    parser.add_argument("--prior-samples", type=int, default=None, help="networks (default 480, --quick 96)")
    parser.add_argument("--prior-P", type=int, default=4, help="patterns of the prior ensemble")
    args = parser.parse_args(argv)
    if args.scaling:
        return scaling(max(args.repeat, 3))
    sched = f"local:{args.workers}"
    load0 = os.getloadavg()
    print(f"load average before: {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f} ({os.cpu_count()} CPUs)", flush=True)
    t0 = time.perf_counter()
    parallel.resolve(sched)
    print(f"LocalCluster with {args.workers} workers started in {time.perf_counter() - t0:.1f} s", flush=True)

    rng = np.random.default_rng(0)
    X = rng.standard_normal((args.prior_P, 8))
    net = sf.RNN(10, phi="erf", g=1.2, sigma_b2=0.1)
    S = args.prior_samples or (96 if args.quick else 480)
    NP = args.prior_N
    run_prior = lambda s: sf.simulate.prior(net, X, N=NP, samples=S, seed=1, scheduler=s)  # noqa: E731
    t_s, ens_s = best_time(lambda: run_prior(None), args.repeat)
    busy = serial_cores(lambda: run_prior(None))
    t_p, ens_p = best_time(lambda: run_prior(sched), args.repeat)
    assert np.array_equal(ens_s.emp, ens_p.emp) and np.array_equal(ens_s.aux, ens_p.aux), "not bit-identical"
    C = sf.mean_field(net, X).C
    z = np.max(np.abs(ens_p.mean("emp") - C) / np.maximum(ens_p.sem("emp"), 1e-300))
    with Capture() as cap:
        run_prior(sched)
    durations = task_times(*cap.calls[0])
    overhead = max(0.0, (t_p - makespan(durations, args.workers)) / (len(durations) / args.workers))
    report(f"prior ensemble (N={NP}, {S} samples, T=10, P={args.prior_P}; max |sim-theory|/sem = {z:.2f}; "
           "bit-identical)", t_s, t_p, durations, overhead, args.workers)
    cores = os.cpu_count() or 1
    print(f"  the serial run keeps {busy:.2f} cores busy (weights drawn in a background thread): on {cores} cores "
          f"no number of workers can beat it by more than {cores / busy:.2f}x")

    mup = sf.RNN(3, phi="tanh", bias="none", scaling="mean_field", g=1.2)
    Xh = rng.standard_normal((2, 3))
    Y = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, -1.0]])
    widths = (32, 64) if args.quick else (32, 64, 96)
    kw = dict(samples=40 if args.quick else 150, burn=40 if args.quick else 150, chains=4, leapfrog=20, seed=2)
    scan = lambda s: [sf.simulate.posterior(mup, Xh, Y, supervised=[False, False, True], N=N, scheduler=s, **kw)  # noqa: E731
                      for N in widths]
    t_s, hs = best_time(lambda: scan(None), args.repeat)
    t_p, hp = best_time(lambda: scan(sched), args.repeat)
    assert all(np.array_equal(a.C, b.C) for a, b in zip(hs, hp)), "not bit-identical"
    with Capture() as cap:
        scan(sched)
    per_width = [task_times(fn, tasks) for fn, tasks in cap.calls]
    durations = [d for ds in per_width for d in ds]
    ideal = sum(makespan(ds, args.workers) for ds in per_width)
    overhead = max(0.0, (t_p - ideal) / (len(durations) / args.workers))
    report(f"HMC width scan (N = {widths}, 4 chains each, {kw['burn']} + {kw['samples']} trajectories; "
           "bit-identical)", t_s, t_p, durations, overhead, args.workers)
    print("  (the scan runs one width after the other: k > 4 workers idle beyond the 4 chains of a width; "
          "the prediction above pools all chains)")
    load1 = os.getloadavg()
    print(f"load average after: {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f}")
    parallel.close()


if __name__ == "__main__":
    main()

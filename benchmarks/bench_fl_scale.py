"""Scale of the linear μP solver: wall times of ``feature_learning`` and ``signal_scan`` against the reference.

    python benchmarks/bench_fl_scale.py [--methods reference,matrix] [--cap 420] [--out results/fl_scale.json]

Cases (linear φ, g = g_in = σ_v = 1):

* ``seq-{rnn,dnn}-T{T}-P{P}``: sequential task — P orthonormal inputs (|x|²/D = 1, input at t = 1), a
  sinusoidal teacher y_t = (x·a cos ωt + x·b sin ωt)/√D, ω = 2π/6, every step supervised except steps
  ⌊T/3⌋, ⌊T/3⌋+1 (held out), κ = 0.5;
* ``endpoint-T10-P10``: the RNN of bench_feature_learning.large_problem (broken phase, |y| = 1.5 y_c):
  one solve and the 100-point signal scan over |y| in (0, 1.5 y_c].

``--properties 20x100``: time and peak traced memory (tracemalloc: NumPy buffers included) of the solve and of
every public property and method of the result of the sequential RNN task at that size, each after the solve,
best of ``--repeat``, each capped at ``--cap`` seconds (:func:`property_costs`); ``stable``, ``top_eigenvalue``
(of the selected branch) and ``learned_eigenvalues`` also by the implementations they replaced
(:data:`REFERENCES`: Lanczos, Lanczos, dense eig; once), with the agreement.  ``--variant grouped``: the RNN with
two W groups {1..⌊T/2⌋−1}, {⌊T/2⌋..T−1}; ``--variant singular``: the inputs cut to D = P/2 columns (a singular input
kernel, n' = T·P/2); ``--only stable,top_eigenvalue``: those properties only.

``--climb 4x500``: ``feature_learning`` of the sequential RNN task at that size where its continued branch is a saddle
(T = 4): above CLIMB_MAX_N sites the saddle is left in the subspace solver (:func:`climb_costs`); up to
``--climb-reference-max-n`` sites also by the dense maximiser (CLIMB_MAX_N raised), in the same process.

``--hmc N``: the order parameter |corr(T-1, T)| and c_T of the small problem of bench_feature_learning
(RNN T = 3, P = 1, y = 4.5) from the HMC sampler at width N (one chain) against the theory.
``--sizes 20x100`` is the issue's target size (T·P = 2000); ``--reference-max-n`` skips the reference there.
Each row also records the CPU seconds of the process (the machine is shared) and the solver's ``error``.

Each timing is one call (after a warm-up call on a small problem); a call that exceeds ``--cap`` seconds
is stopped (SIGALRM) and recorded as ``> cap``.  Both methods run in this one process, so the ratios are
under the same load (reported: os.getloadavg() before and after).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

import symfield as sf
from symfield.theory.feature_learning import feature_learning, signal_scan

sys.path.insert(0, str(Path(__file__).parent))
from bench_feature_learning import large_problem  # noqa: E402


def sequential_problem(T: int, P: int, arch: str, seed: int = 0):
    """(net, X, Y, supervised, kappa) of the sequential task in the module docstring."""
    rng = np.random.default_rng(seed)
    D = P
    X = np.linalg.qr(rng.standard_normal((D, P)))[0].T * np.sqrt(D)
    a, b = rng.standard_normal((2, D))
    t = np.arange(1, T + 1)
    w = 2 * np.pi / 6
    Y = (np.outer(X @ a, np.cos(w * t)) + np.outer(X @ b, np.sin(w * t))) / np.sqrt(D)
    held = np.zeros(T, bool)
    held[T // 3:T // 3 + 2] = True
    maker = sf.RNN if arch == "rnn" else sf.DNN
    net = maker(T, phi="linear", bias="none", scaling="mean_field")
    return net, X, Y, np.broadcast_to(~held, (P, T)).copy(), 0.5


#: the --properties variants of the sequential RNN task (:func:`variant_problem`)
VARIANTS = ("sequential", "grouped", "singular")


def variant_problem(T: int, P: int, variant: str = "sequential"):
    """The sequential RNN task, with two W groups {1..⌊T/2⌋−1}, {⌊T/2⌋..T−1} ('grouped') or its inputs cut to
    D = P/2 columns ('singular': a singular input kernel)."""
    net, X, Y, sup, kappa = sequential_problem(T, P, "rnn")
    if variant == "grouped":
        h = T // 2
        net = sf.NetworkSpec(T=T, phi="linear", bias="none", scaling="mean_field",
                             share={"W": [list(range(1, h)), list(range(h, T))], "U": "shared", "v": "shared"})
    elif variant == "singular":
        X = X[:, :max(P // 2, 1)]
    return net, X, Y, sup, kappa


class Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise Timeout()


def timed(fn, cap: float):
    """(wall seconds, result, CPU seconds of this process) of one call; (inf, None, cpu) beyond ``cap``."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(int(cap))
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        out = fn()
    except Timeout:
        return float("inf"), None, time.process_time() - c0
    finally:
        signal.alarm(0)
    return time.perf_counter() - t0, out, time.process_time() - c0


def traced(fn, cap: float):
    """(wall seconds, result, peak traced MiB) of one call, (inf, None, peak) beyond ``cap``."""
    import tracemalloc
    tracemalloc.start()
    try:
        t, out, _ = timed(fn, cap)
        peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    finally:
        tracemalloc.stop()
    return t, out, peak


#: the public properties and methods of a FeatureLearning result timed by :func:`property_costs`
PROPERTIES = {
    "C": lambda fl, Xn: fl.C, "Chat": lambda fl, Xn: fl.Chat, "Sigma": lambda fl, Xn: fl.Sigma,
    "action": lambda fl, Xn: fl.action, "phase": lambda fl, Xn: fl.phase, "stable": lambda fl, Xn: fl.stable,
    "error": lambda fl, Xn: fl.error, "fixed_point_residual": lambda fl, Xn: fl.fixed_point_residual(),
    "predict()": lambda fl, Xn: fl.predict(), "predict(X_new)": lambda fl, Xn: fl.predict(Xn),
    "predictive_variance": lambda fl, Xn: fl.predictive_variance(),
    "top_eigenvalue": lambda fl, Xn: fl.selected.top_eigenvalue,
    "learned_eigenvalues": lambda fl, Xn: fl.learned_eigenvalues(), "outliers": lambda fl, Xn: fl.outliers(),
    "correlation": lambda fl, Xn: fl.correlation(), "order_parameter": lambda fl, Xn: fl.order_parameter(),
    "path": lambda fl, Xn: [fl.path.x[i] for i in range(len(fl.path.x))],
    "to_xarray": lambda fl, Xn: fl.to_xarray(),
}


def _reference_stable(fl):
    """``fl.stable`` before the Schur certificate: Lanczos on the coupled block (reduced_spectrum.stability)."""
    from symfield.theory.feature_learning.reduced_spectrum import stability, top_eigen
    from symfield.theory.feature_learning.result import UNSTABLE_TOL
    r = fl.selected.reduced
    cert = stability(r.red, r.sub, r.N, r.s)
    return max(cert if cert is not None else top_eigen(r.red, r.sub, r.N, r.s)[:1]) <= UNSTABLE_TOL


def _reference_learned(fl):
    """``fl.learned_eigenvalues()`` before the companion matrix: the dense eig of C_pp⁻¹C_px."""
    from symfield.theory.feature_learning.spectrum import learned_eigenvalues
    return learned_eigenvalues(fl.problem, fl.C_sites)[0]


def _reference_top(fl):
    """``top_eigenvalue`` before the inertia counts (reduced_top): Lanczos on the coupled block when it holds the
    top, else on the whole Hessian (reduced_spectrum.stability, top_eigen)."""
    from symfield.theory.feature_learning.reduced_spectrum import stability, top_eigen
    r = fl.selected.reduced
    blk = stability(r.red, r.sub, r.N, r.s)
    return blk[0] if blk is not None and blk[0] >= blk[1] else top_eigen(r.red, r.sub, r.N, r.s)[0]


#: the implementations replaced, timed beside the new ones in the same process
REFERENCES = {"stable": _reference_stable, "top_eigenvalue": _reference_top, "learned_eigenvalues": _reference_learned}


def _reset(fl) -> None:
    """Forget the cached observables of a result (so that a repeat times the computation again)."""
    for br in fl.branches:
        br._certificate, br._top = None, None
    fl._learned_cache = None  # (fl._error is set by the solve itself)


def _compare(name: str, new, ref) -> dict:
    """How the new value agrees with the reference one."""
    if name == "stable":
        return {"agree": bool(new == ref)}
    if name == "top_eigenvalue":
        return {"value": float(new), "reference_value": float(ref), "abs_diff": float(abs(new - ref))}
    # the eigenvalues above half the largest (the outliers; the dense eig spreads each chain of exact zeros to a
    # ring of radius ~ε^{1/(T-1)}, 0.14-0.33 at T = 20, and the small ones are near-Jordan rings in both)
    cut = 0.5 * np.abs(ref).max()
    top, top_ref = new[np.abs(new) > cut], ref[np.abs(ref) > cut]
    err = max(np.abs(top_ref - v).min() for v in top) if top.size == top_ref.size else float("inf")
    return {"top_eigenvalues": int(top_ref.size), "max_diff_top": float(err), "exact_zeros": int(np.sum(new == 0))}


def property_costs(T: int, P: int, cap: float, P_new: int = 10, blas_threads: int = 1, repeat: int = 1,
                   variant: str = "sequential", only=None) -> dict:
    """{name: {seconds, peak_mib}} of the solve and of every entry of :data:`PROPERTIES` (or those in ``only``;
    sequential RNN task of ``variant``, :func:`variant_problem`, T steps, P sequences; ``predict(X_new)`` with P_new
    new sequences), each timed after the solve, best of ``repeat`` (caches cleared between repeats); the
    :data:`REFERENCES` beside the entries they replaced."""
    from threadpoolctl import threadpool_limits
    net, X, Y, sup, kappa = variant_problem(T, P, variant)
    Xn = np.random.default_rng(1).standard_normal((P_new, X.shape[1]))
    out = {"variant": variant}
    if T * P > 30:  # warm-up: imports (xarray) and compiled caches
        property_costs(4, 4, cap, 2, blas_threads, variant=variant, only=only)
        print("(warm-up above)", flush=True)
    t, fl, peak = traced(lambda: feature_learning(net, X, Y, supervised=sup, kappa=kappa,
                                                  blas_threads=blas_threads), cap)
    out["solve"] = {"seconds": t, "peak_mib": peak, "load": os.getloadavg()[0]}
    if fl is not None:  # what the continuation path keeps: dense kernels, or (subspace, N) per step
        xs = getattr(fl.path.x, "states", fl.path.x)
        out["solve"]["path_steps"] = len(xs)
        out["solve"]["path_stored_mib"] = sum(
            x.nbytes if isinstance(x, np.ndarray) else 0 if x is None else x[0].U.nbytes + x[0].Phi.nbytes + x[1].nbytes
            for x in xs) / 2 ** 20
    print(f"{'solve':22s} {t:9.2f} s  peak {peak:9.1f} MiB  path {out['solve'].get('path_stored_mib', 0):.1f} MiB",
          flush=True)
    if fl is None:
        return out
    # the properties of the subspace solver's point (a branch climbed from it when it is a saddle is a dense one)
    fl.selected = next(b for b in fl.branches if b.name == "continued")
    with threadpool_limits(blas_threads, user_api="blas"):
        for name, fn in PROPERTIES.items():
            if only and name not in only:
                continue
            runs = []
            for _ in range(repeat):
                _reset(fl)
                runs.append(traced(lambda: fn(fl, Xn), cap))
            t, value, peak = min(runs, key=lambda r: r[0])
            out[name] = {"seconds": t, "peak_mib": peak, "load": os.getloadavg()[0], "repeats": repeat}
            if isinstance(value, (bool, float, np.floating, np.bool_)):
                out[name]["value"] = value.item() if hasattr(value, "item") else value
            print(f"{name:22s} {t:9.2f} s  peak {peak:9.1f} MiB", flush=True)
            if name in REFERENCES and fl.selected.reduced is not None:
                t_ref, ref, peak_ref = traced(lambda: REFERENCES[name](fl), cap)  # once: the slow one
                row = {"seconds": t_ref, "peak_mib": peak_ref, "load": os.getloadavg()[0]}
                if ref is not None:
                    row.update(_compare(name, value, ref))
                out[name + " (reference)"] = row
                print(f"{name + ' (reference)':22s} {t_ref:9.2f} s  peak {peak_ref:9.1f} MiB  "
                      f"{({k: v for k, v in row.items() if k not in ('seconds', 'peak_mib', 'load')})}", flush=True)
    return out


def climb_costs(T: int, P: int, cap: float, reference_max_n: int = 600) -> dict:
    """{'subspace': …, 'dense': …} for ``feature_learning`` of the sequential RNN task (T, P): seconds, load, the
    branches' actions, the selected branch, its stability and error; the dense climb only up to ``reference_max_n``
    sites, with max |ΔC| / max |C| against the subspace climb."""
    from symfield.theory.feature_learning import branches
    net, X, Y, sup, kappa = sequential_problem(T, P, "rnn")
    wnet, wX, wY, wsup, _ = sequential_problem(4, 7, "rnn")
    feature_learning(wnet, wX, wY, supervised=wsup, kappa=kappa)  # warm-up (a saddle at T·P = 28: the dense climb)
    out = {}
    limit = branches.CLIMB_MAX_N
    for name in ("subspace", "dense"):
        if name == "dense":
            if T * P > reference_max_n:
                break
            branches.CLIMB_MAX_N = 10 ** 9
        try:
            t, fl, cpu = timed(lambda: feature_learning(net, X, Y, supervised=sup, kappa=kappa), cap)
        finally:
            branches.CLIMB_MAX_N = limit
        row = {"seconds": t, "cpu_seconds": cpu, "load": os.getloadavg()[0]}
        if fl is not None:
            row.update(branches={b.name: b.action for b in fl.branches}, selected=fl.selected.name,
                       stable=bool(fl.stable), continued_stable=bool(fl.branches[0].stable), error=float(fl.error),
                       fixed_point_residual=fl.fixed_point_residual(), C=fl.C_sites)
        out[name] = row
        print(f"climb {name:9s} T{T}-P{P} {t:9.2f} s  " + (f"{row['branches']}  selected {row['selected']}, "
              f"stable {row['stable']}, error {row['error']:.1e}, residual {row['fixed_point_residual']:.1e}"
                                                             if fl is not None else "(capped)"), flush=True)
    if "C" in out.get("dense", {}) and "C" in out["subspace"]:
        C0 = out["dense"]["C"]
        out["dense"]["max_rel_diff_C"] = float(np.abs(out["subspace"]["C"] - C0).max() / np.abs(C0).max())
        print(f"dense vs subspace climb: max |ΔC|/max|C| = {out['dense']['max_rel_diff_C']:.2e}", flush=True)
    for row in out.values():
        row.pop("C", None)
    return out


def cases(sizes, archs=("rnn", "dnn")):
    for T, P in sizes:
        for arch in archs:
            yield f"seq-{arch}-T{T}-P{P}", sequential_problem(T, P, arch)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--methods", default="reference,matrix")
    ap.add_argument("--sizes", default="10x20,10x40,20x20")
    ap.add_argument("--cap", type=float, default=420.0)
    ap.add_argument("--blas-threads", type=int, default=1)
    ap.add_argument("--no-scan", action="store_true")
    ap.add_argument("--scan-cap", type=float, default=None, help="cap of the scan (default --cap)")
    ap.add_argument("--scan-repeat", type=int, default=1, help="best of this many scans per method")
    ap.add_argument("--archs", default="rnn,dnn")
    ap.add_argument("--reference-max-n", type=int, default=10 ** 9,
                    help="skip method 'reference' above this T·P (recorded as skipped)")
    ap.add_argument("--no-endpoint", action="store_true")
    ap.add_argument("--hmc", type=int, default=0, help="width N of the HMC check (0: skip)")
    ap.add_argument("--properties", default="", help="TxP: time the result's properties at that size")
    ap.add_argument("--repeat", type=int, default=1, help="best of this many timings per property")
    ap.add_argument("--variant", default="sequential", choices=VARIANTS, help="the task of --properties")
    ap.add_argument("--only", default="", help="comma-separated properties of --properties (default: all)")
    ap.add_argument("--climb", default="", help="TxP: leaving the saddle of the sequential task at that size")
    ap.add_argument("--climb-reference-max-n", type=int, default=600, help="largest T·P of the dense climb")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "fl_scale.json"))
    args = ap.parse_args(argv)
    methods = args.methods.split(",")
    sizes = [tuple(int(v) for v in s.split("x")) for s in args.sizes.split(",") if s]
    out = {"load_before": os.getloadavg(), "cap_s": args.cap, "blas_threads": args.blas_threads, "cases": {}}
    if args.climb:
        T, P = (int(v) for v in args.climb.split("x"))
        out["climb"] = {f"T{T}-P{P}": climb_costs(T, P, args.cap, args.climb_reference_max_n)}
        out["load_after"] = os.getloadavg()
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1, default=float))
        print(f"load {out['load_before']} -> {out['load_after']}; written {args.out}")
        return out
    if args.properties:
        T, P = (int(v) for v in args.properties.split("x"))
        out["properties"] = {f"T{T}-P{P}": property_costs(T, P, args.cap, blas_threads=args.blas_threads,
                                                                repeat=args.repeat, variant=args.variant,
                                                                only=[o for o in args.only.split(",") if o])}
        out["load_after"] = os.getloadavg()
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1, default=float))
        print(f"load {out['load_before']} -> {out['load_after']}; written {args.out}")
        return out
    for m in methods:  # warm-up (imports, caches)
        net, X, Y, sup, kappa = sequential_problem(4, 2, "rnn")
        feature_learning(net, X, Y, supervised=sup, kappa=kappa, method=m)
    todo = list(cases(sizes, args.archs.split(",")))
    net, X, Y = large_problem()
    if not args.no_endpoint:
        todo.append(("endpoint-T10-P10", (net, X, Y, None, 1.0)))
    for name, (net, X, Y, sup, kappa) in todo:
        row = {}
        for m in methods:
            if m == "reference" and X.shape[0] * net.T > args.reference_max_n:
                row[m] = {"seconds": None, "skipped": f"T·P > {args.reference_max_n}"}
                print(f"{name:22s} {m:10s}   skipped", flush=True)
                continue
            t, fl, cpu = timed(lambda: feature_learning(net, X, Y, supervised=sup, kappa=kappa, method=m,
                                                        blas_threads=args.blas_threads), args.cap)
            row[m] = {"seconds": t, "cpu_seconds": cpu, "load": os.getloadavg()[0]}
            if fl is not None:
                row[m].update(action=fl.action, phase=fl.phase, C=fl.C_sites, error=fl.error)
            print(f"{name:22s} {m:10s} {t:9.2f} s (cpu {cpu:8.2f} s)" +
                  (f"  action {fl.action:.12g}  error {fl.error:.1e}" if fl is not None else "  (capped)"), flush=True)
        if len(methods) > 1 and all(row[m].get("C") is not None for m in methods):
            C0 = row[methods[0]]["C"]
            for m in methods[1:]:
                row[m]["max_rel_diff_C"] = float(np.abs(row[m]["C"] - C0).max() / np.abs(C0).max())
                print(f"{'':22s} {m} vs {methods[0]}: max |ΔC|/max|C| = {row[m]['max_rel_diff_C']:.2e}, "
                      f"speed-up {row[methods[0]]['seconds'] / row[m]['seconds']:.1f}×", flush=True)
        for m in methods:
            row[m].pop("C", None)
        out["cases"][name] = row
    if not args.no_scan:
        net, X, Y = large_problem()
        scales = np.linspace(0.01, 1.0, 100)
        row = {}
        for m in methods:
            runs = [timed(lambda: signal_scan(net, X, Y, scales, **({} if m == "matrix" else {"method": m})),
                          args.scan_cap or args.cap) for _ in range(args.scan_repeat)]
            t, scan, cpu = min(runs, key=lambda r: r[0])  # best of k
            row[m] = {"seconds": t, "cpu_seconds": cpu, "load": os.getloadavg()[0], "repeats": args.scan_repeat,
                      "all_seconds": [r[0] for r in runs]}
            if scan is not None:
                row[m]["threshold_scale"] = scan.threshold_scale
                row[m]["actions"] = [b.action for b in scan.selected()]
            print(f"{'scan-100-endpoint':22s} {m:10s} {t:9.2f} s (cpu {cpu:8.2f} s)", flush=True)
        if len(methods) > 1 and all("actions" in row[m] for m in methods):
            a0 = np.array(row[methods[0]]["actions"])
            for m in methods[1:]:
                row[m]["max_abs_diff_action"] = float(np.abs(np.array(row[m]["actions"]) - a0).max())
                print(f"{'':22s} speed-up {row[methods[0]]['seconds'] / row[m]['seconds']:.1f}×, "
                      f"max |Δaction| = {row[m]['max_abs_diff_action']:.2e}", flush=True)
        out["scan"] = row
    if args.hmc:
        from bench_feature_learning import observables, sampler_time, small_problem
        net, X, Y = small_problem()
        fl = feature_learning(net, X, Y)
        sf.simulate.posterior(net, X, Y, N=8, samples=1, burn=1, chains=1)  # compile
        sampler_time(net, X, Y, fl, args.hmc, 1, 40, 60, 0.01, "small")
        out["hmc_theory"] = {"c_T": float(observables(fl.C)[0]), "abs_corr": float(observables(fl.C)[1])}
    out["load_after"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print(f"load {out['load_before']} -> {out['load_after']}; written {args.out}")
    return out


if __name__ == "__main__":
    main()

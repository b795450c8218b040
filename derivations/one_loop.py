"""One-loop (1/N) corrections: where DNNs and RNNs differ at finite width (arXiv:2112.05589, Fig. 3 content).

Run:  python derivations/one_loop.py [--out DIR] [--quick]   (or: symfield reproduce one-loop)

1. the derived vertices: the quadratic form (J, K) and the cubic vertices (F'', K') of the action;
2. the normalised kernel variance Var C(T,T)/C̄² against N = 300..1000 for DNN and RNN: theory line
   NΔ/(N C̄²) and simulated networks (erf, g = 1.2, σ² = 0.1, T = 10, static bias);
3. N Var C(t,t) against t in the ordered (g = 0.8), near-critical (1.2) and chaotic (2.0) regimes;
4. the mean shift N(<C> - C̄) by vertex (F'' tadpole, weight-sharing K') against t, with the
   simulation extrapolated to N -> ∞;
5. the validation table: N Var C(T,T) and N(<C(T,T)> - C̄) extrapolated linearly in 1/N (widths 32, 64,
   128 at T = 10; 256, 512, 1024 at T = 30) against theory for g in {0.8, 1.2, 2.0}, T in {10, 30},
   RNN static / RNN fresh / DNN.
Writes one_loop.png and one_loop.json into the output directory.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import symfield as sf
from symfield.plotting import pyplot, save, write_results
from symfield.simulate import kernel_moments
from symfield.simulate.extrapolate import extrapolate
from symfield.validation import one_loop_measurements
from symfield.theory.one_loop import one_loop

SIGMA_B2 = 0.1
X1 = np.ones((1, 1))  # one input, |x|²/D = 1
REGIMES = {"ordered": 0.8, "near-critical": 1.2, "chaotic": 2.0}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def nets(g: float, T: int) -> dict:
    kw = dict(phi="erf", g=g, sigma_b2=SIGMA_B2)
    return {"RNN static": sf.RNN(T, bias="static", **kw), "RNN fresh": sf.RNN(T, bias="fresh", **kw),
            "DNN": sf.DNN(T, **kw)}


def vertices_section() -> dict:
    d = sf.action(sf.RNN(10, phi="erf", g=1.2, sigma_b2=SIGMA_B2)).derivatives()
    print("--- derived one-loop vertices (pair template, phi = erf) ---")
    for i, e in enumerate(d["Fp"]):
        print(f"F'_{['c11', 'c22', 'c12'][i]} = {e}")
    print(f"K = 4 d2S/dCt_u dCt_v = {d['K']}   (Q = Cov(Phi_u, Phi_v), four-point moments)")
    print(f"F'' has {len(d['Fpp'])} independent entries, e.g. F''_(c12,c12) = {d['Fpp'][(2, 2)]}\n")
    return {"Fp": [str(e) for e in d["Fp"]], "Fpp": {str(k): str(v) for k, v in d["Fpp"].items()}, "K": str(d["K"])}


def variance_vs_N(widths, samples, seed) -> dict:
    out = {}
    for name, net in (("DNN", sf.DNN(10, phi="erf", g=1.2, sigma_b2=SIGMA_B2)),
                      ("RNN", sf.RNN(10, phi="erf", g=1.2, sigma_b2=SIGMA_B2))):
        nl = one_loop(net, X1)
        C = nl.mf.block(9, 9)[0, 0]
        theory = nl.variance()[9, 9, 0, 0] / C ** 2
        sims, errs = [], []
        for k, N in enumerate(widths):
            km = kernel_moments(net, X1, N, samples, seed=(seed, k), progress=True)
            v = km.var("aux")[9, 9, 0, 0] / C ** 2
            sims.append(v)
            errs.append(v * np.sqrt(2 / (samples - 1)))
        out[name] = {"theory_N_var_over_C2": theory, "N": list(widths), "var_over_C2": sims, "err": errs}
        print(f"{name}: N Var C(T,T)/C^2 theory {theory:.4f}; simulation N*Var/C^2 at N={list(widths)}: "
              + " ".join(f"{N * v:.4f}±{N * e:.4f}" for N, v, e in zip(widths, sims, errs)))
    return out


def regimes_section(N, samples, seed) -> dict:
    out = {}
    for regime, g in REGIMES.items():
        out[regime] = {"g": g}
        for name, net in nets(g, 10).items():
            nl = one_loop(net, X1)
            km = kernel_moments(net, X1, N, samples, seed=(seed, int(10 * g)), progress=True)
            out[regime][name] = {"theory": np.diag(nl.variance()[:, :, 0, 0]).tolist(),
                                 "sim": (N * np.diag(km.var("aux")[:, :, 0, 0])).tolist(),
                                 "chi1": sf.fixed_point(net).chi1}
        r, d = out[regime]["RNN static"]["theory"][-1], out[regime]["DNN"]["theory"][-1]
        print(f"{regime:13s} (g={g}, chi1={out[regime]['DNN']['chi1']:.3f}): N Var C(10,10): RNN static {r:.4f}, "
              f"DNN {d:.4f}, ratio {r / d:.2f}")
    return out


def shift_section(widths, samples, seed) -> dict:
    net = sf.RNN(10, phi="erf", g=1.2, sigma_b2=SIGMA_B2)
    nl = one_loop(net, X1)
    C_bar = nl.mf.diagonal()[:, 0]
    shifts = {N: None for N in widths}
    errs = {}
    for k, N in enumerate(widths):
        km = kernel_moments(net, X1, N, samples, seed=(seed, 100 + k), progress=True)
        shifts[N] = N * (np.diag(km.mean("aux")[:, :, 0, 0]) - C_bar)
        errs[N] = N * np.sqrt(np.diag(km.var("aux")[:, :, 0, 0]) / samples)
    ext, ext_err = [], []
    for t in range(net.T):
        if errs[widths[0]][t] == 0:
            ext.append(0.0)
            ext_err.append(0.0)
            continue
        e = extrapolate(widths, [shifts[N][t] for N in widths], [errs[N][t] for N in widths])
        ext.append(e.value)
        ext_err.append(e.error)
    dnn = one_loop(sf.DNN(10, phi="erf", g=1.2, sigma_b2=SIGMA_B2), X1)
    out = {"tadpole": np.diag(nl.terms["tadpole"][:, :, 0, 0]).tolist(),
           "weight_sharing": np.diag(nl.terms["weight_sharing"][:, :, 0, 0]).tolist(),
           "total": np.diag(nl.mean_shift[:, :, 0, 0]).tolist(),
           "dnn_total": np.diag(dnn.mean_shift[:, :, 0, 0]).tolist(),
           "sim_extrapolated": ext, "sim_error": ext_err, "widths": list(widths), "samples": samples}
    print("mean shift N(<C(t,t)> - C): t, tadpole, weight sharing, total, simulation (extrapolated)")
    for t in range(net.T):
        print(f"  {t + 1:2d} {out['tadpole'][t]:+.4f} {out['weight_sharing'][t]:+.4f} {out['total'][t]:+.4f}"
              f"   {ext[t]:+.4f} ± {ext_err[t]:.4f}")
    return out


def table_section(plan, seed) -> list:
    """``plan``: {T: (widths, samples per width)}.  At T = 30 near criticality the corrections beyond
    one loop grow like T/N, so the long chains are measured at larger widths (with fewer networks)."""
    rows = []
    print("\nvalidation: N Var C(T,T) and N(<C(T,T)> - C) extrapolated linearly in 1/N")
    print(f"{'case':28s} {'widths':>15s} {'var theory':>10s} {'var sim':>17s} {'z':>5s}   "
          f"{'shift theory':>12s} {'shift sim':>17s} {'z':>5s}")
    for T, (widths, samples) in plan.items():
        for g in REGIMES.values():
            for name, net in nets(g, T).items():
                t0 = time.time()
                nl = one_loop(net, X1)
                m = {k: [] for k in ("N", "var", "var_err", "shift", "shift_err")}
                for k, (N, S) in enumerate(zip(widths, samples)):
                    one = one_loop_measurements(net, X1, [N], S, seed=(seed, T, int(10 * g), len(rows), k))
                    for key in m:
                        m[key].append(float(one[key][0]))
                v = extrapolate(m["N"], m["var"], m["var_err"])
                s = extrapolate(m["N"], m["shift"], m["shift_err"])
                th_v, th_s = nl.variance()[T - 1, T - 1, 0, 0], nl.mean_shift[T - 1, T - 1, 0, 0]
                row = {"case": f"{name}, g={g}, T={T}", "widths": list(widths), "samples": list(samples),
                       "measured": m, "var_theory": th_v, "var_sim": v.value, "var_err": v.error,
                       "var_z": (v.value - th_v) / v.error, "shift_theory": th_s, "shift_sim": s.value,
                       "shift_err": s.error, "shift_z": (s.value - th_s) / s.error,
                       "tadpole_only": nl.terms["tadpole"][T - 1, T - 1, 0, 0], "seconds": time.time() - t0}
                rows.append(row)
                print(f"{row['case']:28s} {str(list(widths)):>15s} {th_v:10.4f} {v.value:9.4f}±{v.error:.4f} "
                      f"{row['var_z']:5.1f}   {th_s:+12.4f} {s.value:+9.4f}±{s.error:.4f} {row['shift_z']:5.1f}",
                      flush=True)
    return rows


def figure(data: dict, path: Path) -> bool:
    plt = pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    vn = data["variance_vs_N"]
    for name, color in (("DNN", "C0"), ("RNN", "C3")):
        d = vn[name]
        N = np.array(d["N"], dtype=float)
        Ns = np.linspace(N.min() * 0.9, N.max() * 1.1, 50)
        ax[0].plot(Ns, d["theory_N_var_over_C2"] / Ns, color=color, label=f"{name} theory")
        ax[0].errorbar(N, d["var_over_C2"], yerr=d["err"], fmt="o", color=color, label=f"{name} simulation")
    ax[0].set(xscale="log", yscale="log", xlabel="width N", ylabel=r"Var $C(T,T)/\bar C^2$",
              title="kernel variance, T=10, g=1.2 (static bias)")
    ax[0].legend(fontsize=8)
    t = np.arange(1, 11)
    for (regime, d), ls in zip(data["regimes"].items(), ("-", "--", ":")):
        for name, color in (("RNN static", "C3"), ("RNN fresh", "C2"), ("DNN", "C0")):
            ax[1].plot(t[1:], d[name]["theory"][1:], ls=ls, color=color, label=f"{name}, {regime} (g={d['g']})")
            ax[1].plot(t[1:], d[name]["sim"][1:], "o", ms=3, color=color)
    ax[1].set(xlabel="time / layer t", ylabel=r"$N\,$Var $C(t,t)$", yscale="log",
              title="variance vs time (lines theory, dots N=256)")
    ax[1].legend(fontsize=6)
    sh = data["mean_shift"]
    ax[2].plot(t, sh["tadpole"], "--", color="C1", label="RNN F'' tadpole")
    ax[2].plot(t, sh["weight_sharing"], ":", color="C4", label="RNN weight-sharing vertex")
    ax[2].plot(t, sh["total"], color="C3", label="RNN total")
    ax[2].plot(t, sh["dnn_total"], color="C0", label="DNN total")
    ax[2].errorbar(t, sh["sim_extrapolated"], yerr=sh["sim_error"], fmt="o", color="k",
                   label=f"RNN simulation, N={sh['widths']}→∞")
    ax[2].axhline(0, color="grey", lw=0.5)
    ax[2].set(xlabel="time t", ylabel=r"$N(\langle C\rangle-\bar C)(t,t)$", title="mean shift by vertex (g=1.2)")
    ax[2].legend(fontsize=7)
    save(fig, path)
    return True


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/one-loop")
    parser.add_argument("--quick", action="store_true", help="few samples, T=10 only in the table")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--scheduler", default=None, help=sf.parallel.SCHEDULER_HELP)
    args = parser.parse_args(argv)
    sf.parallel.set_default(args.scheduler)  # ensembles, chains and widths below run there
    q = args.quick
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    data = {"parameters": {"phi": "erf", "sigma_b2": SIGMA_B2, "input": "first, |x|^2/D = 1", "quick": q}}
    data["vertices"] = vertices_section()
    log("[1/4] variance against N")
    data["variance_vs_N"] = variance_vs_N([300, 500, 700, 1000], 300 if q else 4000, args.seed)
    log("[2/4] variance against time in three regimes")
    data["regimes"] = regimes_section(256, 300 if q else 4000, args.seed)
    log("[3/4] mean shift by vertex")
    data["mean_shift"] = shift_section([32, 64, 128], 2000 if q else 150000, args.seed)
    log("[4/4] validation table")
    plan = {10: ([32, 64, 128], [2000] * 3)} if q else \
        {10: ([32, 64, 128], [60000] * 3), 30: ([256, 512, 1024], [24000, 12000, 6000])}
    data["table"] = table_section(plan, args.seed)
    data["seconds"] = time.time() - t0
    write_results(out, "one_loop", data, lambda path: figure(data, path))
    return data


if __name__ == "__main__":
    main()

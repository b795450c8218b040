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

import sys
import time
from pathlib import Path

import numpy as np

import symfield as sf
from symfield.cli import Param, derivation_args, phi_name
from symfield.plotting import LINESTYLES, PALETTE, caption, colors, legend_outside, panel_letters, pyplot, save, write_results
from symfield.progress import progress_bar
from symfield.simulate import kernel_moments
from symfield.simulate.extrapolate import extrapolate
from symfield.validation import one_loop_measurements
from symfield.theory.one_loop import one_loop

PARAMETERS = {
    "phi": Param("erf", "nonlinearity: a registered name or an expression in x"),
    "sigma_b2": Param(0.1, "bias variance sigma_b^2"),
    "g": Param(1.2, "weight gain g of the variance-against-N and mean-shift sections"),
    "T": Param(10, "time steps / layers of sections 2-4"),
    "widths": Param((300, 500, 700, 1000), "widths N of the variance-against-N section"),
    "samples": Param(4000, "networks per width (variance sections)", quick=300),
    "N_regimes": Param(256, "width of the variance-against-time section"),
    "shift_widths": Param((32, 64, 128), "widths extrapolated to N -> infinity for the mean shift"),
    "shift_samples": Param(150000, "networks per width for the mean shift", quick=2000),
    "seed": Param(3, "random seed"),
}
SIGMA_B2 = PARAMETERS["sigma_b2"].default
X1 = np.ones((1, 1))  # one input, |x|²/D = 1
REGIMES = {"ordered": 0.8, "near-critical": 1.2, "chaotic": 2.0}
MODEL = {"phi": "erf", "sigma_b2": SIGMA_B2}   # the defaults of ``model`` below


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def nets(g: float, T: int, model=MODEL) -> dict:
    kw = dict(g=g, **model)
    return {"RNN static": sf.RNN(T, bias="static", **kw), "RNN fresh": sf.RNN(T, bias="fresh", **kw),
            "DNN": sf.DNN(T, **kw)}


def vertices_section(model=MODEL) -> dict:
    d = sf.action(sf.RNN(10, g=1.2, **model)).derivatives()
    print(f"--- derived one-loop vertices (pair template, phi = {model['phi']}) ---")
    for i, e in enumerate(d["Fp"]):
        print(f"F'_{['c11', 'c22', 'c12'][i]} = {e}")
    print(f"K = 4 d2S/dCt_u dCt_v = {d['K']}   (Q = Cov(Phi_u, Phi_v), four-point moments)")
    print(f"F'' has {len(d['Fpp'])} independent entries, e.g. F''_(c12,c12) = {d['Fpp'][(2, 2)]}\n")
    return {"Fp": [str(e) for e in d["Fp"]], "Fpp": {str(k): str(v) for k, v in d["Fpp"].items()}, "K": str(d["K"])}


def variance_vs_N(widths, samples, seed, model=MODEL, g=1.2, T=10, progress=None) -> dict:
    out = {}
    for name, net in (("DNN", sf.DNN(T, g=g, **model)), ("RNN", sf.RNN(T, g=g, **model))):
        nl = one_loop(net, X1)
        C = nl.mf.block(T - 1, T - 1)[0, 0]
        theory = nl.variance()[T - 1, T - 1, 0, 0] / C ** 2
        sims, errs = [], []
        for k, N in enumerate(widths):
            km = kernel_moments(net, X1, N, samples, seed=(seed, k), progress=progress)
            v = km.var("aux")[T - 1, T - 1, 0, 0] / C ** 2
            sims.append(v)
            errs.append(v * np.sqrt(2 / (samples - 1)))
        out[name] = {"theory_N_var_over_C2": theory, "N": list(widths), "var_over_C2": sims, "err": errs}
        print(f"{name}: N Var C(T,T)/C^2 theory {theory:.4f}; simulation N*Var/C^2 at N={list(widths)}: "
              + " ".join(f"{N * v:.4f}±{N * e:.4f}" for N, v, e in zip(widths, sims, errs)))
    return out


def regimes_section(N, samples, seed, model=MODEL, T=10, progress=None) -> dict:
    out = {}
    for regime, g in REGIMES.items():
        out[regime] = {"g": g}
        for name, net in nets(g, T, model).items():
            nl = one_loop(net, X1)
            km = kernel_moments(net, X1, N, samples, seed=(seed, int(10 * g)), progress=progress)
            out[regime][name] = {"theory": np.diag(nl.variance()[:, :, 0, 0]).tolist(),
                                 "sim": (N * np.diag(km.var("aux")[:, :, 0, 0])).tolist(),
                                 "chi1": sf.fixed_point(net).chi1}
        r, d = out[regime]["RNN static"]["theory"][-1], out[regime]["DNN"]["theory"][-1]
        print(f"{regime:13s} (g={g}, chi1={out[regime]['DNN']['chi1']:.3f}): N Var C(10,10): RNN static {r:.4f}, "
              f"DNN {d:.4f}, ratio {r / d:.2f}")
    return out


def shift_section(widths, samples, seed, model=MODEL, g=1.2, T=10, progress=None) -> dict:
    net = sf.RNN(T, g=g, **model)
    nl = one_loop(net, X1)
    C_bar = nl.mf.diagonal()[:, 0]
    shifts = {N: None for N in widths}
    errs = {}
    for k, N in enumerate(widths):
        km = kernel_moments(net, X1, N, samples, seed=(seed, 100 + k), progress=progress)
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
    dnn = one_loop(sf.DNN(T, g=g, **model), X1)
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


def table_section(plan, seed, model=MODEL, progress=None) -> list:
    """``plan``: {T: (widths, samples per width)}.  At T = 30 near criticality the corrections beyond
    one loop grow like T/N, so the long chains are measured at larger widths (with fewer networks)."""
    rows = []
    print("\nvalidation: N Var C(T,T) and N(<C(T,T)> - C) extrapolated linearly in 1/N")
    print(f"{'case':28s} {'widths':>15s} {'var theory':>10s} {'var sim':>17s} {'z':>5s}   "
          f"{'shift theory':>12s} {'shift sim':>17s} {'z':>5s}")
    cases = [(T, g, name, net) for T in plan for g in REGIMES.values() for name, net in nets(g, T, model).items()]
    with progress_bar(len(cases), "one-loop validation table", progress) as bar:
        for T, g, name, net in cases:
                widths, samples = plan[T]
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
                bar.update(1)
    return rows


def figure(data: dict, path: Path) -> bool:
    plt = pyplot()
    if plt is None:
        return False
    p = data["parameters"]
    fig = plt.figure(figsize=(11.5, 6.6))
    grid = fig.add_gridspec(2, 3)
    ax_n, ax_shift = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1:])
    ax_reg = [fig.add_subplot(grid[1, k]) for k in range(3)]
    for ax in ax_reg[1:]:
        ax.sharey(ax_reg[0])
    # one colour, line style and marker per network, the same in every panel (the fresh-bias RNN and
    # the DNN nearly coincide: dashes over the solid line, markers offset in t)
    style = {name: dict(color=c, ls=ls, marker=m, dt=dt, lw=lw, alpha=a) for name, c, ls, m, dt, lw, a in
             zip(("DNN", "RNN static", "RNN fresh"), colors(3), LINESTYLES, ("s", "o", "^"), (-0.15, 0.0, 0.15),
                 (3.5, 1.6, 1.8), (0.45, 1.0, 1.0))}
    style["RNN"] = style["RNN static"]
    vn = data["variance_vs_N"]
    for name in ("DNN", "RNN"):
        d, st = vn[name], style[name]
        N = np.array(d["N"], dtype=float)
        Ns = np.linspace(N.min() * 0.9, N.max() * 1.1, 50)
        ax_n.plot(Ns, d["theory_N_var_over_C2"] / Ns, color=st["color"], ls=st["ls"], lw=st["lw"], alpha=st["alpha"],
                  label=f"{name}: theory")
        ax_n.errorbar(N, d["var_over_C2"], yerr=d["err"], fmt=st["marker"], mfc="none", color=st["color"],
                      label=f"{name}: simulation")
    ax_n.set(xscale="log", yscale="log", xlabel="width N", ylabel=r"Var $C(T,T)/\bar C^2$",
             title=f"kernel variance, T = {p['T']}, g = {p['g']}")
    legend_outside(ax_n, where="below", ncol=2)
    sh = data["mean_shift"]
    t = np.arange(1, len(sh["total"]) + 1)
    ax_shift.plot(t, sh["tadpole"], ls=LINESTYLES[1], color=colors(5)[3], label="RNN: F'' tadpole")
    ax_shift.plot(t, sh["weight_sharing"], ls=LINESTYLES[2], color=colors(5)[4], label="RNN: weight-sharing vertex")
    ax_shift.plot(t, sh["total"], color=style["RNN"]["color"], label="RNN: total")
    ax_shift.plot(t, sh["dnn_total"], color=style["DNN"]["color"], ls=LINESTYLES[3], label="DNN: total")
    ax_shift.errorbar(t, sh["sim_extrapolated"], yerr=sh["sim_error"], fmt="o", color=PALETTE["black"], mfc="none",
                      label=f"RNN simulation, N = {', '.join(map(str, sh['widths']))} → ∞")
    ax_shift.axhline(0, color="0.6", lw=0.5)
    ax_shift.set(xlabel="time t", ylabel=r"$N(\langle C\rangle-\bar C)(t,t)$",
                 title=f"mean shift by vertex (RNN, static bias, g = {p['g']})")
    legend_outside(ax_shift)
    for ax, (regime, d) in zip(ax_reg, data["regimes"].items()):
        tt = np.arange(1, len(d["DNN"]["theory"]) + 1)
        for name in ("DNN", "RNN static", "RNN fresh"):
            st = style[name]
            ax.plot(tt[1:], d[name]["theory"][1:], color=st["color"], ls=st["ls"], lw=st["lw"], alpha=st["alpha"],
                    label=f"{name}: theory")
            ax.plot(tt[1:] + st["dt"], d[name]["sim"][1:], st["marker"], mfc="none", color=st["color"],
                    label=f"{name}: simulation")
        ax.set(xlabel="time / layer t", yscale="log",
               title=f"{regime}: g = {d['g']}, $\\chi_1$ = {d['DNN']['chi1']:.2f}")
    ax_reg[0].set_ylabel(r"$N\,$Var $C(t,t)$")
    legend_outside(ax_reg[-1])
    panel_letters([ax_n, ax_shift] + ax_reg)
    save(fig, path, note=data["caption"])
    return True


def main(argv=None) -> dict:
    args, v = derivation_args(__doc__, "out/one-loop", PARAMETERS, argv)
    q = args.quick
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    model = {"phi": v["phi"], "sigma_b2": v["sigma_b2"]}
    data = {"parameters": {**v, "phi": phi_name(v["phi"]), "input": "first, |x|^2/D = 1", "quick": q}}
    data["vertices"] = vertices_section(model)
    log("[1/4] variance against N")
    data["variance_vs_N"] = variance_vs_N(v["widths"], v["samples"], v["seed"], model, v["g"], v["T"], args.progress)
    log("[2/4] variance against time in three regimes")
    data["regimes"] = regimes_section(v["N_regimes"], v["samples"], v["seed"], model, v["T"], args.progress)
    log("[3/4] mean shift by vertex")
    data["mean_shift"] = shift_section(list(v["shift_widths"]), v["shift_samples"], v["seed"], model, v["g"], v["T"],
                                       args.progress)
    log("[4/4] validation table")
    plan = {10: ([32, 64, 128], [2000] * 3)} if q else \
        {10: ([32, 64, 128], [60000] * 3), 30: ([256, 512, 1024], [24000, 12000, 6000])}
    data["table"] = table_section(plan, v["seed"], model, args.progress)
    data["seconds"] = time.time() - t0
    table = "; ".join(f"T = {T}: N = {', '.join(map(str, w))} with {', '.join(map(str, S))} networks"
                      for T, (w, S) in plan.items())
    note = (f"(a) N = {', '.join(map(str, v['widths']))}, {v['samples']} networks each; "
            f"(b) N = {', '.join(map(str, v['shift_widths']))}, {v['shift_samples']} networks each, extrapolated in 1/N; "
            f"(c-e) {caption(N=v['N_regimes'], samples=v['samples'])}; seed {v['seed']}. "
            f"Validation table (JSON): {table}. Errors: one standard error.")
    write_results(out, "one_loop", data, lambda path: figure(data, path), caption=note)
    return data


if __name__ == "__main__":
    main()

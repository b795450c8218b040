"""Gaussian-process kernels of DNNs and RNNs from one action (arXiv:2112.05589, content of Fig. 1).

Run:  python derivations/gp_kernels.py [--out DIR] [--quick]   (or: symfield reproduce gp-kernels)

1. prints the action and the saddle-point equations derived from it (RNN and DNN, erf);
2. the single-input length map, its fixed point and χ1 (erf, C1 = 1.1, g = 1.2, σ² = 0.1);
3. the RNN cross-time kernel C̄(t, s) against t for s = 10 and s = 30 over T = 30 steps, theory vs a
   finite-width simulation, with the DNN (zero cross-layer kernel) beside it, for static and fresh bias;
writes gp_kernels.png and gp_kernels.json into the output directory.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import symfield as sf
from symfield.cli import Param, derivation_args, phi_name
from symfield.plotting import LINESTYLES, caption, colors, legend_outside, panel_letters, pyplot, save, write_results
from symfield.progress import progress_bar

PARAMETERS = {
    "phi": Param("erf", "nonlinearity: a registered name or an expression in x"),
    "g": Param(1.2, "weight gain g"), "sigma_b2": Param(0.1, "bias variance sigma_b^2"),
    "g_in": Param(1.0, "input gain g_in"), "T": Param(30, "time steps / layers"),
    "s": Param((10, 30), "the times s of the cross-time kernel C(t, s) shown"),
    "N": Param(512, "width of the simulated networks", quick=256),
    "samples": Param(150, "networks per ensemble", quick=40), "seed": Param(1, "random seed"),
}
PHI, G, SIGMA_B2, G_IN, T = (PARAMETERS[k].default for k in ("phi", "g", "sigma_b2", "g_in", "T"))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def derived_equations(phi=PHI, g=G, sigma_b2=SIGMA_B2, T=T) -> dict:
    out = {}
    for arch in ("rnn", "dnn"):
        act = sf.action(sf.NetworkSpec(arch, T, phi=phi, g=g, sigma_b2=sigma_b2))
        sp_eq = act.saddle_point()
        print(f"--- {arch.upper()} action ---\n{act}\n--- derived saddle point ---\n{sp_eq}\n")
        out[arch] = {"action_latex": act.latex(), "equations": [str(e) for e in sp_eq.equations()]}
    return out


def length_map_section(phi=PHI, g=G, sigma_b2=SIGMA_B2, g_in=G_IN, T=T) -> dict:
    net = sf.RNN(T, phi=phi, g=g, sigma_b2=sigma_b2, g_in=g_in)
    q = sf.length_map(net, g_in ** 2 + sigma_b2, 10)
    fp = sf.fixed_point(net)
    print("length map C(a), a = 1..10:", " ".join(f"{v:.4f}" for v in q))
    print(f"fixed point C* = {fp.q:.5f}, slope F'(C*) = {fp.slope:.4f}, chi_1 = {fp.chi1:.4f} ({fp.phase})\n")
    return {"length_map": q.tolist(), "fixed_point": fp.q, "slope": fp.slope, "chi1": fp.chi1, "phase": fp.phase}


def networks(phi=PHI, g=G, sigma_b2=SIGMA_B2, g_in=G_IN, T=T) -> dict:
    """The three compared networks; labels and keys are read from each spec."""
    kw = dict(phi=phi, g=g, sigma_b2=sigma_b2, g_in=g_in)
    nets = [sf.RNN(T, bias="static", **kw), sf.RNN(T, bias="fresh", **kw)]
    nets.append(sf.as_dnn(nets[0]))
    return {f"{n.label.lower()}_{n.bias}": n for n in nets}


def spec_label(net: sf.NetworkSpec) -> str:
    return f"{net.label}, {net.bias} bias"


def cross_time_section(nets: dict, s_values, N: int, samples: int, seed: int, progress=None) -> dict:
    """C̄(t, s) of each network against t for the given s: mean-field theory and a finite-width ensemble
    (mean and standard error of the empirical kernel)."""
    X = np.ones((1, 1))  # one input with |x|²/D = 1
    result = {}
    with progress_bar(len(nets), "gp-kernels ensembles", progress) as bar:
        for key, net in nets.items():
            t0 = time.time()
            theory = sf.mean_field(net, X).C[:, :, 0, 0]
            sim = sf.simulate.prior(net, X, N=N, samples=samples, seed=seed, progress=progress)
            mean, sem = sim.mean("emp")[:, :, 0, 0], sim.sem("emp")[:, :, 0, 0]
            entry = {"label": spec_label(net), "theory": {}, "sim": {}, "sem": {}}
            for s in s_values:
                entry["theory"][s], entry["sim"][s], entry["sem"][s] = (a[:, s - 1].tolist() for a in (theory, mean, sem))
                z = (mean[:, s - 1] - theory[:, s - 1]) / np.maximum(sem[:, s - 1], 1e-300)
                print(f"{entry['label']:20s} s={s:2d}: C(t,s) theory at t=1,s-1,s: {theory[0, s - 1]:.4f} "
                      f"{theory[s - 2, s - 1]:.4f} {theory[s - 1, s - 1]:.4f}; "
                      f"max |sim - theory|/sem over t = {np.max(np.abs(z)):.2f}")
            log(f"  {entry['label']}: N={N}, {samples} networks in {time.time() - t0:.1f} s")
            result[key] = entry
            bar.update(1)
    return result


def figure(data: dict, path: Path) -> bool:
    plt = pyplot()
    if plt is None:
        return False
    cross = data["cross_time"]
    s_values = [int(s) for s in next(iter(cross.values()))["theory"]]
    fig, axes = plt.subplots(1, len(s_values), figsize=(9.5, 3.4), sharey=True)
    # coinciding theory lines (fresh-bias RNN and DNN) stay visible: distinct dashes, markers offset in t
    styles = dict(zip(cross, zip(colors(len(cross)), ("o", "s", "^", "D"), LINESTYLES, (-0.2, 0.0, 0.2, 0.4))))
    for ax, s in zip(axes, s_values):
        for key, d in cross.items():
            color, marker, ls, dt = styles[key]
            t = np.arange(1, len(d["theory"][s]) + 1)
            ax.plot(t, d["theory"][s], color=color, ls=ls, label=f"{d['label']}: theory", zorder=2)
            ax.errorbar(t + dt, d["sim"][s], yerr=d["sem"][s], fmt=marker, ms=3.5, mfc="none", color=color,
                        lw=0.8, label=f"{d['label']}: simulation", zorder=3)
        ax.axvline(s, color="0.6", lw=0.6, ls=":", zorder=1)
        ax.set(title=f"cross-time kernel at s = {s}", xlabel="time (RNN) / layer (DNN) t")
    axes[0].set_ylabel(r"$\bar C(t, s)$")
    legend_outside(axes[-1])
    panel_letters(axes)
    p = data["parameters"]
    fig.suptitle(f"$\\phi$ = {p['phi']}, $g$ = {p['g']}, $\\sigma_b^2$ = {p['sigma_b2']}, $T$ = {p['T']}, one input",
                 fontsize=9)
    save(fig, path, note=data["caption"])
    return True


def main(argv=None) -> dict:
    args, v = derivation_args(__doc__, "out/gp-kernels", PARAMETERS, argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    data = {"parameters": {**v, "phi": phi_name(v["phi"]), "s": list(v["s"]), "input": "first, |x|^2/D = 1"}}
    data["derivation"] = derived_equations(v["phi"], v["g"], v["sigma_b2"], v["T"])
    data["length_map"] = length_map_section(v["phi"], v["g"], v["sigma_b2"], v["g_in"], v["T"])
    nets = networks(v["phi"], v["g"], v["sigma_b2"], v["g_in"], v["T"])
    data["cross_time"] = cross_time_section(nets, v["s"], v["N"], v["samples"], v["seed"], args.progress)
    data["seconds"] = time.time() - t0
    note = caption(N=v["N"], samples=v["samples"], seed=v["seed"]) + \
        "; simulation: mean ± standard error of the empirical kernel over the ensemble"
    write_results(out, "gp_kernels", data, lambda path: figure(data, path), caption=note)
    return data


if __name__ == "__main__":
    main()

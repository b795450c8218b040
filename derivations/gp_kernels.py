"""Gaussian-process kernels of DNNs and RNNs from one action (arXiv:2112.05589, content of Fig. 1).

Run:  python derivations/gp_kernels.py [--out DIR] [--quick]   (or: symfield reproduce gp-kernels)

1. prints the action and the saddle-point equations derived from it (RNN and DNN, erf);
2. the single-input length map, its fixed point and χ1 (erf, C1 = 1.1, g = 1.2, σ² = 0.1);
3. the RNN cross-time kernel C̄(t, s) against t for s = 10 and s = 30 over T = 30 steps, theory vs a
   finite-width simulation, with the DNN (zero cross-layer kernel) beside it, for static and fresh bias;
writes gp_kernels.png and gp_kernels.json into the output directory.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import symfield as sf
from symfield.plotting import pyplot, save, write_results

G, SIGMA_B2, G_IN, T = 1.2, 0.1, 1.0, 30
S_VALUES = (10, 30)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def derived_equations() -> dict:
    out = {}
    for arch in ("rnn", "dnn"):
        act = sf.action(sf.NetworkSpec(arch, T, phi="erf", g=G, sigma_b2=SIGMA_B2))
        sp_eq = act.saddle_point()
        print(f"--- {arch.upper()} action ---\n{act}\n--- derived saddle point ---\n{sp_eq}\n")
        out[arch] = {"action_latex": act.latex(), "equations": [str(e) for e in sp_eq.equations()]}
    return out


def length_map_section() -> dict:
    net = sf.RNN(T, phi="erf", g=G, sigma_b2=SIGMA_B2, g_in=G_IN)
    q = sf.length_map(net, G_IN ** 2 + SIGMA_B2, 10)
    fp = sf.fixed_point(net)
    print("length map C(a), a = 1..10:", " ".join(f"{v:.4f}" for v in q))
    print(f"fixed point C* = {fp.q:.5f}, slope F'(C*) = {fp.slope:.4f}, chi_1 = {fp.chi1:.4f} ({fp.phase})\n")
    return {"length_map": q.tolist(), "fixed_point": fp.q, "slope": fp.slope, "chi1": fp.chi1, "phase": fp.phase}


def cross_time_section(N: int, samples: int, seed: int) -> dict:
    X = np.ones((1, 1))  # one input with |x|²/D = 1
    result = {}
    for bias in ("static", "fresh"):
        rnn = sf.RNN(T, phi="erf", g=G, sigma_b2=SIGMA_B2, g_in=G_IN, bias=bias)
        dnn = sf.as_dnn(rnn)
        theory = sf.mean_field(rnn, X).C[:, :, 0, 0]
        entry = {"theory_rnn": {}, "sim_rnn": {}, "sem_rnn": {}, "sim_dnn": {}, "sem_dnn": {}}
        sims = {}
        for name, net in (("rnn", rnn), ("dnn", dnn)):
            t0 = time.time()
            log(f"simulating {name.upper()} ({bias} bias): N={N}, {samples} networks")
            sims[name] = sf.simulate.prior(net, X, N=N, samples=samples, seed=seed, progress=True)
            log(f"  done in {time.time() - t0:.1f} s")
        for s in S_VALUES:
            entry["theory_rnn"][s] = theory[:, s - 1].tolist()
            for name in ("rnn", "dnn"):
                entry[f"sim_{name}"][s] = sims[name].mean("emp")[:, s - 1, 0, 0].tolist()
                entry[f"sem_{name}"][s] = sims[name].sem("emp")[:, s - 1, 0, 0].tolist()
            z = (np.array(entry["sim_rnn"][s]) - theory[:, s - 1]) / np.maximum(np.array(entry["sem_rnn"][s]), 1e-300)
            print(f"{bias:6s} bias, s={s:2d}: C(t,s) theory at t=1,s-1,s: {theory[0, s - 1]:.4f} "
                  f"{theory[s - 2, s - 1]:.4f} {theory[s - 1, s - 1]:.4f}; "
                  f"max |sim - theory|/sem over t = {np.max(np.abs(z)):.2f}")
        result[bias] = entry
    return result


def figure(data: dict, path: Path) -> bool:
    plt = pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    t = np.arange(1, T + 1)
    for ax, bias in zip(axes, ("static", "fresh")):
        d = data[bias]
        for s, color in zip(S_VALUES, ("C0", "C1")):
            ax.plot(t, d["theory_rnn"][s], color=color, label=f"RNN theory, s={s}")
            ax.errorbar(t, d["sim_rnn"][s], yerr=d["sem_rnn"][s], fmt="o", ms=3, color=color,
                        label=f"RNN simulation, s={s}")
            ax.errorbar(t, d["sim_dnn"][s], yerr=d["sem_dnn"][s], fmt="x", ms=4, color=color, alpha=0.6,
                        label=f"DNN simulation, s={s}")
        ax.axhline(0.0, color="k", lw=1, ls="--", label="DNN theory (0 for t≠s)")
        ax.set_title(f"{bias} bias")
        ax.set_xlabel("time / layer t")
    axes[0].set_ylabel(r"$\bar C(t, s)$")
    axes[1].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"cross-time kernel, erf, g={G}, $\\sigma^2$={SIGMA_B2}")
    save(fig, path)
    return True


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/gp-kernels")
    parser.add_argument("--quick", action="store_true", help="smaller simulation (N=256, 40 networks)")
    parser.add_argument("--N", type=int, default=None, help="width of the simulated networks")
    parser.add_argument("--samples", type=int, default=None, help="networks per ensemble")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scheduler", default=None, help=sf.parallel.SCHEDULER_HELP)
    args = parser.parse_args(argv)
    sf.parallel.set_default(args.scheduler)  # ensembles, chains and widths below run there
    N = args.N or (256 if args.quick else 512)
    samples = args.samples or (40 if args.quick else 150)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = {"parameters": {"phi": "erf", "g": G, "sigma_b2": SIGMA_B2, "g_in": G_IN, "T": T, "N": N,
                           "samples": samples, "seed": args.seed, "input": "first, |x|^2/D = 1"}}
    data["derivation"] = derived_equations()
    data["length_map"] = length_map_section()
    data["cross_time"] = cross_time_section(N, samples, args.seed)
    write_results(out, "gp_kernels", data, lambda path: figure(data["cross_time"], path))
    return data


if __name__ == "__main__":
    main()

"""Feature learning in the μP regime for nonlinear φ (erf, tanh): thresholds, order parameter, phase diagram,
finite-width check (arXiv:2602.15593; theory Secs. 4, 6, 7, 12).

Run:  python derivations/feature_learning_nonlinear.py [--out DIR] [--quick] [--no-progress]
      (also part of: symfield reproduce feature-learning)

1. threshold y_c against T for linear (closed form), erf and tanh RNNs (endpoint task, lag-sector Hessian
   of the symmetric branch from per-step pair expectations, ``sf.critical_signal``);
2. order parameter |corr(T-1, T)| and c_T against the signal y for the erf RNN and DNN (T = 3): theory lines
   (forward–backward solver, exact quadrature) and HMC points of the finite-width posterior;
3. phase diagram of the erf RNN in (g, y): the threshold line y_c(g);
4. finite-width check: c_T, C12·C23, f̄_T and the learned eigenvalue of erf and tanh RNNs/DNNs (T = 3, one point
   below and two above threshold) and one sequential task, sampled at several N, extrapolated linearly in 1/N
   and compared with the theory (z-scores);
writes feature_learning_nonlinear.{json,png,pdf,svg} into the output directory.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

import symfield as sf
from symfield.cli import Param, derivation_args
from symfield.plotting import caption, colors, legend_outside, panel_letters, pyplot, save, write_results
from symfield.progress import progress_bar
from symfield.simulate.extrapolate import extrapolate
from symfield.theory.feature_learning import closed_form_threshold

X1 = np.ones((1, 1))
MODEL = {"g": 1.0, "g_in": 1.0, "sigma_v": 1.0, "kappa": 1.0, "input": "first, |x|^2/D = 1", "bias": "none"}


def net(kind, T, phi, g=1.0):
    make = sf.RNN if kind == "rnn" else sf.DNN
    return make(T, phi=phi, g=g, bias="none", scaling="mean_field")


def endpoint(T, y):
    Y = np.zeros((1, T))
    Y[0, -1] = y
    return Y


# ------------------------------------------------------------------------------------------ 1. thresholds
def thresholds(Ts, progress) -> dict:
    out = {"T": list(Ts), "linear": [], "erf": [], "tanh": []}
    with progress_bar(3 * len(Ts), "thresholds y_c(T)", progress) as bar:
        for T in Ts:
            out["linear"].append(closed_form_threshold(net("rnn", T, "linear"), X1))
            bar.update()
            for phi in ("erf", "tanh"):
                out[phi].append(sf.critical_signal(net("rnn", T, phi), X1, endpoint(T, 1.0)))
                bar.update()
    return out


# ------------------------------------------------------------------------------------------ 2. order parameter
def theory_point(kind, T, phi, y, g=1.0, supervised=None, Y=None):
    fl = sf.feature_learning(net(kind, T, phi, g), X1, endpoint(T, y) if Y is None else Y, supervised=supervised)
    C = fl.C[:, :, 0, 0]
    out = {"abs_corr": fl.order_parameter(), "cT": float(C[-1, -1]), "C12C23": float(C[-3, -2] * C[-2, -1]),
           "f": float(fl.predict()[0, -1]), "action": fl.action, "phase": fl.phase, "error": fl.error}
    if kind == "rnn":  # the sampler's observable: eig(C_pp⁻¹ C_pn) of the φ kernel; and the learned part of W
        out["learned"] = float(np.abs(np.linalg.eigvals(np.linalg.solve(C[:-1, :-1], C[:-1, 1:]))).max())
        out["learned_W"] = float(np.abs(fl.learned_eigenvalues()).max())
    return out


def order_parameter(phi, ys, hmc_ys, N, samples, burn, chains, seed, progress) -> dict:
    out = {"y": list(ys), "yc": sf.critical_signal(net("rnn", 3, phi), X1, endpoint(3, 1.0)),
           "hmc": {"y": list(hmc_ys), "N": N}}
    with progress_bar(2 * (len(ys) + len(hmc_ys)), f"order parameter ({phi})", progress) as bar:
        for kind in ("rnn", "dnn"):
            pts = []
            for y in ys:
                pts.append(theory_point(kind, 3, phi, y))
                bar.update()
            out[kind] = {k: [p[k] for p in pts] for k in ("abs_corr", "cT", "action")}
            sim = {"abs_corr": [], "abs_corr_sem": [], "cT": [], "cT_sem": []}
            for y in hmc_ys:
                post = sf.simulate.posterior(net(kind, 3, phi), X1, endpoint(3, y), N=N, seed=seed, samples=samples,
                                             burn=burn, chains=chains)
                sim["abs_corr"].append(float(post.mean("abs_corr")[1, 2, 0, 0]))
                sim["abs_corr_sem"].append(float(post.sem("abs_corr")[1, 2, 0, 0]))
                sim["cT"].append(float(post.mean("diag")[2, 0]))
                sim["cT_sem"].append(float(post.sem("diag")[2, 0]))
                bar.update()
            out["hmc"][kind] = sim
    return out


# ------------------------------------------------------------------------------------------ 3. phase diagram
def phase_diagram(gs, progress) -> dict:
    out = {"g": list(gs), "yc": []}
    with progress_bar(len(gs), "phase diagram y_c(g), erf RNN", progress) as bar:
        for g in gs:
            out["yc"].append(sf.critical_signal(net("rnn", 3, "erf", g), X1, endpoint(3, 1.0)))
            bar.update()
    return out


# ------------------------------------------------------------------------------------------ 4. finite N
OBSERVABLES = ("cT", "C12C23", "f", "learned")


def _sampled(post, kind):
    """Sample means and standard errors of the observables (sign-invariant C12·C23)."""
    m = {"cT": (post.mean("diag")[-1, 0], post.sem("diag")[-1, 0]),
         "C12C23": (post.mean("C12C23")[0], post.sem("C12C23")[0]),
         "f": (post.mean("f")[0, -1], post.sem("f")[0, -1])}
    if kind == "rnn":
        lam = np.abs(post.observable("learned")[:, 0])
        chains = np.unique(post.chain)
        means = np.array([lam[post.chain == c].mean() for c in chains])
        m["learned"] = (lam.mean(), means.std(ddof=1) / np.sqrt(len(chains)))
    return {k: (float(a), float(b)) for k, (a, b) in m.items()}


def finite_n(cells, Ns, samples, burn, chains, seed, progress) -> list:
    rows = []
    with progress_bar(len(cells) * len(Ns), "finite-N posterior (HMC)", progress) as bar:
        for cell in cells:
            kind, phi, y, sup, Y = cell["kind"], cell["phi"], cell["y"], cell.get("supervised"), cell.get("Y")
            T = 3 if Y is None else Y.shape[1]
            theory = theory_point(kind, T, phi, y, supervised=sup, Y=Y)
            sims = []
            for N in Ns:
                post = sf.simulate.posterior(net(kind, T, phi), X1, endpoint(T, y) if Y is None else Y,
                                             supervised=sup, N=N, seed=seed + N, samples=samples, burn=burn,
                                             chains=chains)
                sims.append(_sampled(post, kind))
                bar.update()
            for obs in OBSERVABLES:
                if obs not in sims[0] or obs not in theory:
                    continue
                vals = [s[obs][0] for s in sims]
                errs = [max(s[obs][1], 1e-12) for s in sims]
                ext = extrapolate(Ns, vals, errs)
                err_th = abs(theory["error"] * theory[obs])
                z = (ext.value - theory[obs]) / np.hypot(ext.error, err_th)
                rows.append({"kind": kind, "phi": phi, "y": y, "task": cell.get("task", "endpoint"), "observable": obs,
                             "theory": theory[obs], "N": list(Ns), "values": vals, "errors": errs,
                             "extrapolated": ext.value, "extrapolated_error": ext.error, "z": float(z)})
    return rows


def cells_for(phis, kinds, y_factors, sequential: bool) -> list:
    cells = []
    for phi in phis:
        yc = sf.critical_signal(net("rnn", 3, phi), X1, endpoint(3, 1.0))
        for kind in kinds:
            for fac in y_factors:
                cells.append({"kind": kind, "phi": phi, "y": round(float(fac * yc), 4)})
    if sequential:
        cells.append({"kind": "rnn", "phi": phis[0], "y": 1.0, "task": "sequential T=4, S={1,2,4}",
                      "supervised": np.array([1, 1, 0, 1], bool), "Y": np.ones((1, 4))})
    return cells


def print_table(rows):
    print(f"{'cell':<34} {'obs':<8} {'theory':>9} {'N->inf':>9} {'±':>7} {'z':>6}")
    for r in rows:
        cell = f"{r['kind']} {r['phi']} y={r['y']:g} {r['task'] if r['task'] != 'endpoint' else ''}"
        print(f"{cell:<34} {r['observable']:<8} {r['theory']:9.4f} {r['extrapolated']:9.4f} "
              f"{r['extrapolated_error']:7.4f} {r['z']:6.2f}")


# ------------------------------------------------------------------------------------------ figure
def _labels(a, x, y, title):
    a.set_xlabel(x)
    a.set_ylabel(y)
    a.set_title(title)
    legend_outside(a)


def figure(data: dict, path: Path) -> bool:
    plt = pyplot()
    if plt is None:
        return False
    c = colors()
    fig, ax = plt.subplots(2, 2, figsize=(9.5, 6.6))
    a = ax[0, 0]
    t = data["thresholds"]
    for phi, col in zip(("linear", "erf", "tanh"), c):
        a.plot(t["T"], t[phi], "o-", color=col, ms=3, label=phi)
    a.set_yscale("log")
    _labels(a, "T (hidden states)", "threshold $y_c$", "threshold against T (RNN, endpoint task)")
    a = ax[0, 1]
    op = data["order_parameter"]
    for kind, col, ls in (("rnn", c[0], "-"), ("dnn", c[1], (0, (5, 2)))):
        a.plot(op["y"], op[kind]["abs_corr"], color=col, ls=ls, label=f"{kind.upper()} theory")
        h = op["hmc"][kind]
        a.errorbar(op["hmc"]["y"], h["abs_corr"], yerr=h["abs_corr_sem"], fmt="o", color=col, ms=3,
                   label=f"{kind.upper()} HMC, N = {op['hmc']['N']}")
    a.axvline(op["yc"], color="0.5", lw=0.8, ls=":", label="$y_c$")
    _labels(a, "signal y", r"$|\mathrm{corr}(h_{T-1}, h_T)|$ of $\phi$", "order parameter, erf, T = 3")
    a = ax[1, 0]
    pd = data["phase_diagram"]
    a.plot(pd["g"], pd["yc"], "o-", color=c[0], ms=3, label="$y_c(g)$")
    top = max(pd["yc"]) * 1.3
    a.fill_between(pd["g"], pd["yc"], top, color=c[0], alpha=0.15, label="broken (Z2)")
    a.fill_between(pd["g"], 0, pd["yc"], color=c[2], alpha=0.12, label="symmetric")
    a.set_ylim(0, top)
    _labels(a, "g", "signal y", "phase diagram, erf RNN, T = 3")
    a = ax[1, 1]
    rows = data["finite_n"]
    labels = [f"{r['kind']} {r['phi']} y={r['y']:g} {r['observable']}" for r in rows]
    z = [r["z"] for r in rows]
    a.barh(np.arange(len(z)), z, color=[c[0] if abs(v) < 2 else c[1] for v in z])
    a.axvline(0, color="k", lw=0.8)
    for v in (-2, 2):
        a.axvline(v, color="0.5", lw=0.8, ls=":")
    a.set_yticks(np.arange(len(z)))
    a.set_yticklabels(labels, fontsize=5.5)
    a.set_xlabel("z = (HMC extrapolated − theory) / error")
    a.set_title(f"finite N → theory (N = {', '.join(map(str, rows[0]['N'])) if rows else ''})")
    panel_letters(ax)
    save(fig, path, note=data.get("caption"))
    return True


# ------------------------------------------------------------------------------------------ main
def run(out: Path, quick: bool, seed: int, progress) -> dict:
    t0 = time.time()
    q = quick
    data = {"parameters": {**MODEL, "quick": q, "seed": seed}}
    data["thresholds"] = thresholds(list(range(3, 7 if q else 21)), progress)
    print("T   y_c linear   y_c erf    y_c tanh")
    for T, a, b, c_ in zip(*(data["thresholds"][k] for k in ("T", "linear", "erf", "tanh"))):
        print(f"{T:<3} {a:10.6f} {b:10.6f} {c_:10.6f}")
    hmc = dict(N=32 if q else 512, samples=20 if q else 150, burn=20 if q else 150, chains=2 if q else 4)
    data["order_parameter"] = order_parameter("erf", list(np.linspace(0.5, 9.0, 8 if q else 30)),
                                              [2.0, 6.0] if q else [2.0, 3.5, 5.0, 6.5, 8.0], seed=seed,
                                              progress=progress, **hmc)
    data["phase_diagram"] = phase_diagram(list(np.linspace(0.7, 1.3, 3 if q else 13)), progress)
    Ns = [16, 32] if q else [256, 512, 1024, 2048]
    cells = cells_for(["erf"] if q else ["erf", "tanh"], ["rnn"] if q else ["rnn", "dnn"],
                      [1.5] if q else [0.7, 1.3, 1.8], sequential=not q)
    fin = dict(samples=10 if q else 200, burn=10 if q else 150, chains=2 if q else 4)
    data["finite_n"] = finite_n(cells, Ns, seed=seed, progress=progress, **fin)
    print_table(data["finite_n"])
    data["seconds"] = time.time() - t0
    cap = caption(N=Ns, samples=fin["samples"] * fin["chains"], seed=seed, HMC_order_parameter_N=hmc["N"],
                  quick=q)
    write_results(out, "feature_learning_nonlinear", data, lambda path: figure(data, path), caption=cap)
    return data


#: command-line options (the sizes follow --quick; the model is MODEL)
PARAMETERS = {"seed": Param(1, "random seed of the HMC chains")}


def main(argv=None) -> dict:
    args, v = derivation_args(__doc__, "out/feature-learning", PARAMETERS, argv)
    return run(args.out, args.quick, v["seed"], args.progress)


if __name__ == "__main__":
    main()

"""Sequential digits: RNN against DNN on real data, GP theory against trained finite networks.

Run:  python derivations/sequential_digits.py [--out DIR] [--quick]   (or: symfield reproduce sequential-digits)

scikit-learn's 8×8 digits read row by row: T = 8 steps of D = 8 pixels (centred, scaled to |x_t|²/D ≈ 1
on average), input at every step; two classes (default 3 and 8) with label y = ±1.  Two tasks:

* ``class``: y at the last step only;
* ``evidence``: the running class evidence y_t = y (t+1)/T, supervised at the odd steps t = 2, 4, 6, 8
  only; predictions are scored at every step (the unsupervised ones included).

1. GP (wide networks, φ = tanh): test MSE and accuracy against the number P of training digits for RNN
   and DNN with the last-step and the pooled readout (:func:`symfield.gp.predict`); the evidence task with
   readouts at all 8 steps (NaN targets at unsupervised steps): per-step test error.  A DNN's readouts are
   untied, so it predicts 0 at a step it was never trained on; the RNN's shared readout interpolates.
2. μP feature learning, linear φ (:func:`symfield.feature_learning`): the predictions of the learned kernel
   on the evidence task.
3. Finite networks of width N trained by Langevin dynamics (:func:`symfield.simulate.langevin.langevin`,
   MSE loss, weight decay from the prior, temperature κ/N): their mean outputs against the theory of 2 at
   N = 256, 512, 1024, the deviation against N (rms over all outputs, its sampling error, and the bias left
   after removing the sampling error, expected ∝ 1/N), and their test MSE.
4. Test error against the number P of training digits: Langevin-trained networks of width N_sweep on P
   digits (any P: the sampler needs no theory), scored on P_sweep_test held-out digits, beside the μP theory
   where its solver accepts the patterns (P <= P_fl + P_fl_test; test digits by fl.predict(X_new)).  The
   default step ε (:func:`symfield.simulate.langevin.default_step`) shrinks like 1/P, so the burn-in is at
   least ``burn_times`` prior relaxation times 1/ε (``langevin(burn_times=)``: 3,600 steps at P = 24, where
   a fixed 500 covered 0.7 relaxation times); the steps used are stored per point.
   Cost: one full-batch step takes 3 / 15 / 54 ms (RNN) and 18 / 45 / 181 ms (DNN) at N = 256 / 512 / 1024
   (the first implementation: 8 / 33 / 143 and 36 / 130 / 591 ms with one BLAS thread, 8 / 77 / 384 and
   41 / 357 / 976 ms with the default two as it ran; benchmarks/bench_langevin.py, load 4.5 on 2 cores).
   ``--scheduler local:2 --burn 500 --samples 25`` (the README figure)
   took 17 min on 2 cores shared with other jobs (load 8-11).
Writes sequential_digits.{png,pdf,svg,json,nc} into the output directory.
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
from symfield.simulate.langevin import langevin

PARAMETERS = {
    "phi": Param("tanh", "nonlinearity of the GP section: a registered name or an expression in x"),
    "g": Param(1.5, "weight gain g"), "sigma_b2": Param(0.1, "bias variance sigma_b^2"),
    "classes": Param((3, 8), "the two digit classes (label +1, -1)"),
    "P": Param((25, 50, 100, 200), "training-set sizes of the GP section", quick=(20, 40, 80)),
    "P_test": Param(150, "test digits (P + P_test <= 357 digits of two classes)", quick=100),
    "noise": Param(0.01, "GP noise variance (alpha of GaussianProcessRegressor)"),
    "P_fl": Param(4, "training digits of the feature-learning and Langevin sections"),
    "P_fl_test": Param(2, "test digits of the feature-learning and Langevin sections (P_fl + P_fl_test <= 7: "
                          "the mu-P solver needs a nonsingular input covariance at t = 1, rank <= D + 1)"),
    "kappa": Param(1.0, "likelihood variance kappa (posterior temperature kappa/N)"),
    "g_fl": Param(0.8, "weight gain of the linear mu-P networks"),
    "widths": Param((256, 512, 1024), "widths N of the trained networks", quick=(32, 64)),
    "P_sweep": Param((2, 4, 6, 12, 24), "training digits of the trained networks' test error against P", quick=(2, 4)),
    "P_sweep_test": Param(10, "held-out test digits of the test error against P (the last digits)", quick=4),
    "N_sweep": Param(256, "width of the trained networks of the test error against P", quick=32),
    "samples": Param(40, "stored Langevin states per chain"),
    "burn": Param(1000, "Langevin burn-in steps per chain (test error against P: at least burn_times / step)"),
    "burn_times": Param(5.0, "burn-in of the test error against P: at least this many prior relaxation times "
                              "1/step (the step ~ 1/P)",
                        quick=2.0),
    "thin": Param(10, "Langevin steps between stored states"),
    "chains": Param(2, "independent Langevin chains per width"),
    "seed": Param(0, "random seed (data split, Langevin chains)"),
}
T_STEPS = 8
SUPERVISED_STEPS = (1, 3, 5, 7)     # 0-based: rows 2, 4, 6, 8


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_digits_rows(classes, seed):
    """Digits of the two classes as row sequences X (P, 8, 8), labels ±1, shuffled with ``seed``."""
    from sklearn.datasets import load_digits
    d = load_digits()
    keep = np.isin(d.target, classes)
    X = d.images[keep] / 16.0
    y = np.where(d.target[keep] == classes[0], 1.0, -1.0)
    X = X - X.mean(axis=0)
    X = X / np.sqrt(np.mean(np.sum(X ** 2, axis=2) / X.shape[2]))   # |x_t|²/D = 1 on average
    order = np.random.default_rng(seed).permutation(len(y))
    return X[order], y[order]


def evidence_targets(y):
    """Running class evidence y_t = y (t+1)/T, shape (P, T)."""
    return y[:, None] * (np.arange(1, T_STEPS + 1) / T_STEPS)[None, :]


def gp_nets(phi, g, sigma_b2, **kw) -> dict:
    rnn = sf.RNN(T_STEPS, phi=phi, g=g, sigma_b2=sigma_b2, input="every", **kw)
    return {rnn.label: rnn, "DNN": sf.as_dnn(rnn)}


def gp_section(v, X, y, progress) -> dict:
    """Test MSE / accuracy against P (class task) and the per-step error of the evidence task."""
    nets = gp_nets(v["phi"], v["g"], v["sigma_b2"])
    Pt = v["P_test"]
    Xte, yte = X[-Pt:], y[-Pt:]
    out = {"P": list(v["P"]), "class": {}, "evidence": {}}
    runs = [(name, ro) for name in nets for ro in ("last", "pooled")]
    with progress_bar(len(runs) * len(v["P"]) + len(nets), "digits GP", progress) as bar:
        for name, ro in runs:
            mse, acc = [], []
            for P in v["P"]:
                pred = sf.gp.predict(nets[name], X[:P], y[:P], Xte, noise=v["noise"], readout=ro)
                mse.append(float(np.mean((pred.mean - yte) ** 2)))
                acc.append(float(np.mean(np.sign(pred.mean) == yte)))
                bar.update(1)
            out["class"][f"{name} {ro}"] = {"mse": mse, "accuracy": acc}
            print(f"GP class task, {name:3s} readout {ro:6s}: test MSE " + " ".join(f"{m:.3f}" for m in mse)
                  + "; accuracy " + " ".join(f"{a:.3f}" for a in acc) + f" at P = {list(v['P'])}")
        P = v["P"][-1]
        Ytr = evidence_targets(y[:P])
        Ytr[:, [t for t in range(T_STEPS) if t not in SUPERVISED_STEPS]] = np.nan
        for name, net in nets.items():
            pred = sf.gp.predict(net, X[:P], Ytr, Xte, noise=v["noise"], readout=list(range(T_STEPS)))
            err = np.mean((pred.mean - evidence_targets(yte)) ** 2, axis=0)
            out["evidence"][name] = {"mse_per_step": err.tolist(), "P": P}
            print(f"GP evidence task, {name}, P = {P}: test MSE per step " + " ".join(f"{e:.3f}" for e in err))
            bar.update(1)
    return out


def mup_nets(v) -> dict:
    return gp_nets("linear", v["g_fl"], v["sigma_b2"], scaling="mean_field")


def trained_section(v, X, y, progress) -> dict:
    """μP linear networks on the evidence task: learned-kernel predictions and Langevin-trained networks."""
    Ptr, Pte = v["P_fl"], v["P_fl_test"]
    Xs, Y, sup, target = split(X, y, np.arange(Ptr), np.arange(Ptr, Ptr + Pte))
    out = {"P_train": Ptr, "P_test": Pte, "kappa": v["kappa"], "widths": list(v["widths"]), "nets": {}}
    for name, net in mup_nets(v).items():
        t0 = time.time()
        fl = sf.feature_learning(net, Xs, Y, supervised=sup, kappa=v["kappa"])
        f_th = fl.predict()[Ptr:]
        entry = {"theory_f": f_th.tolist(), "theory_mse_per_step": np.mean((f_th - target) ** 2, 0).tolist(),
                 "theory_seconds": time.time() - t0, "trained": []}
        log(f"feature learning {name}: {time.time() - t0:.1f} s")
        print(f"mu-P theory, {name}: test MSE per step " + " ".join(f"{e:.3f}" for e in entry["theory_mse_per_step"]))
        for k, N in enumerate(v["widths"]):
            lg = langevin(net, Xs, Y, supervised=sup, kappa=v["kappa"], N=N, seed=(v["seed"] * 1000 + 10 * k),
                          samples=v["samples"], burn=v["burn"], thin=v["thin"], chains=v["chains"], progress=progress)
            f_all, sem_all = lg.mean("f"), lg.sem("f")
            f = f_all[Ptr:]
            dev = f_all - fl.predict()               # every site, training digits included
            entry["trained"].append({
                "N": N, "f": f.tolist(), "sem": lg.sem("f")[Ptr:].tolist(), "step": lg.step, "burn": lg.burn,
                "seconds": lg.seconds,
                "mse_per_step": np.mean((f - target) ** 2, 0).tolist(), "mse": float(np.mean((f - target) ** 2)),
                "rms_dev_from_theory": float(np.sqrt(np.mean(dev ** 2))),
                "rms_sem": float(np.sqrt(np.mean(sem_all ** 2))),
                # finite-width bias with the sampling noise removed: mean dev² = bias² + sem² (0 if unresolved)
                "rms_bias": float(np.sqrt(max(np.mean(dev ** 2) - np.mean(sem_all ** 2), 0.0)))})
            tr = entry["trained"][-1]
            print(f"Langevin {name}, N = {N}: test MSE {tr['mse']:.4f} (theory {np.mean((f_th - target) ** 2):.4f}); "
                  f"rms |f - f_theory| = {tr['rms_dev_from_theory']:.4f} (sampling error {tr['rms_sem']:.4f}, "
                  f"bias {tr['rms_bias']:.4f}, N x bias {N * tr['rms_bias']:.2f}); step {lg.step:.3g}, "
                  f"{lg.seconds:.1f} s")
        out["nets"][name] = entry
    return out


def split(X, y, idx_train, idx_test):
    """Inputs (train then test), evidence targets supervised at SUPERVISED_STEPS of the training digits (0
    elsewhere), the mask and the test targets."""
    idx = np.concatenate([idx_train, idx_test]).astype(int)
    Xs, Y = X[idx], evidence_targets(y[idx])
    sup = np.zeros_like(Y, dtype=bool)
    sup[:len(idx_train), list(SUPERVISED_STEPS)] = True
    Y[~sup] = 0.0
    return Xs, Y, sup, evidence_targets(y[idx_test])


def theory_test_outputs(net, X, y, P, test, kappa):
    """μP predictions on the ``test`` digits after training on the first ``P`` (fl.predict(X_new): the
    learned kernels extended to new sequences without re-solving)."""
    Xs, Y, sup, _ = split(X, y, np.arange(P), [])
    return sf.feature_learning(net, Xs, Y, supervised=sup, kappa=kappa).predict(X[test])


def test_error_section(v, X, y, progress) -> dict:
    """Test MSE (all steps) against the number P of training digits: Langevin-trained width-N_sweep
    networks on every P; the μP theory where the solver accepts the patterns (P <= P_fl + P_fl_test)."""
    Pt, N = v["P_sweep_test"], v["N_sweep"]
    test = np.arange(len(y) - Pt, len(y))
    limit = v["P_fl"] + v["P_fl_test"]
    out = {"P": list(v["P_sweep"]), "P_test": Pt, "N": N, "nets": {}}
    for name, net in mup_nets(v).items():
        entry = {"mse": [], "mse_sem": [], "theory_P": [], "theory_mse": [], "seconds": [], "step": []}
        for k, P in enumerate(v["P_sweep"]):
            Xs, Y, sup, target = split(X, y, np.arange(P), test)
            lg = langevin(net, Xs, Y, supervised=sup, kappa=v["kappa"], N=N, seed=(v["seed"] * 1000 + 500 + k),
                          samples=v["samples"], burn=v["burn"], burn_times=v["burn_times"], thin=v["thin"],
                          chains=v["chains"], progress=progress)
            err = np.mean((lg.mean("f")[P:] - target) ** 2, axis=1)       # per test digit
            entry["mse"].append(float(err.mean()))
            entry["mse_sem"].append(float(err.std(ddof=1) / np.sqrt(Pt)))
            entry["seconds"].append(lg.seconds)
            entry["step"].append(lg.step)     # ε shrinks like 1/P (data curvature): longer burn-in at large P
            entry.setdefault("burn", []).append(lg.burn)
            line = (f"Langevin {name}, N = {N}, P = {P}: test MSE {err.mean():.4f} ± {entry['mse_sem'][-1]:.4f}, "
                    f"step {lg.step:.3g} (burn-in {lg.burn} steps, {lg.burn * lg.step:.2g} prior relaxation times)")
            if P <= limit:
                f_th = theory_test_outputs(net, X, y, P, test, v["kappa"])
                entry["theory_P"].append(P)
                entry["theory_mse"].append(float(np.mean((f_th - target) ** 2)))
                line += f" (mu-P theory {entry['theory_mse'][-1]:.4f})"
            print(line + f"; {lg.seconds:.1f} s")
        out["nets"][name] = entry
    return out


def log_ticks(ax, values) -> None:
    """Ticks of a log axis at the plotted values, labelled plainly."""
    from matplotlib.ticker import NullLocator
    ax.set_xticks(list(values), [str(v) for v in values])
    ax.xaxis.set_minor_locator(NullLocator())


def figure(data: dict, path: Path) -> bool:
    plt = pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(2, 4, figsize=(15, 7.2))
    ax = axes.ravel()
    gp = data["gp"]
    cl = dict(zip(("RNN", "DNN"), colors(2)))
    for panel, key, label, title in ((ax[0], "mse", "test MSE", "GP, class task: test error"),
                                     (ax[1], "accuracy", "test accuracy (sign of f)", "GP, class task: accuracy")):
        for name_ro, d in gp["class"].items():
            name, ro = name_ro.split()
            panel.plot(gp["P"], d[key], ls=LINESTYLES[0] if ro == "last" else LINESTYLES[1],
                       lw=3.5 if name == "DNN" else 1.6,        # RNN and DNN coincide for the last-step readout
                       alpha=0.5 if name == "DNN" else 1, color=cl[name], marker="o", label=f"{name}, {ro} readout")
        panel.set(xscale="log", xlabel="training digits P", ylabel=label, title=title)
        log_ticks(panel, gp["P"])
    legend_outside(ax[0], where="below", ncol=2)
    t = np.arange(1, T_STEPS + 1)
    for a in (ax[2], ax[3]):
        for s in range(T_STEPS):
            if s not in SUPERVISED_STEPS:
                a.axvspan(s + 0.5, s + 1.5, color="0.92", lw=0, zorder=0)
    for name, d in gp["evidence"].items():
        ax[2].plot(t, d["mse_per_step"], "o-", color=cl[name], label=name)
    ax[2].set(xlabel="step t (grey: unsupervised)", ylabel="test MSE",
              title=f"GP, running evidence, P = {next(iter(gp['evidence'].values()))['P']}")
    legend_outside(ax[2], where="below", ncol=2)
    tr = data["trained"]
    Pte = tr["P_test"]
    y_sign = np.sign(np.array(data["labels_fl_test"]))
    for name, e in tr["nets"].items():
        th = np.array(e["theory_f"]) * y_sign[:, None]
        ax[3].plot(t, th.mean(0), color=cl[name], label=f"{name}: μP theory (linear)")
        big = e["trained"][-1]
        f = np.array(big["f"]) * y_sign[:, None]
        ax[3].errorbar(t + (0.1 if name == "DNN" else -0.1), f.mean(0), yerr=f.std(0) / np.sqrt(Pte), fmt="s",
                       mfc="none", color=cl[name], label=f"{name}: trained, N = {big['N']}")
    ax[3].plot(t, t / T_STEPS, color="0.3", ls=LINESTYLES[2], lw=1, label="target y (t/T)")
    ax[3].set(xlabel="step t (grey: unsupervised)", ylabel="mean of y·f on test digits",
              title=f"μP nets, running evidence, P = {tr['P_train']}")
    legend_outside(ax[3], where="below", ncol=2)
    for name, e in tr["nets"].items():
        N = np.array([r["N"] for r in e["trained"]])
        ax[4].plot(N, [r["mse"] for r in e["trained"]], "o", mfc="none", color=cl[name], label=f"{name}: trained")
        ax[4].axhline(np.mean(e["theory_mse_per_step"]), color=cl[name], ls=LINESTYLES[1], label=f"{name}: theory")
        ax[5].plot(N, [r["rms_dev_from_theory"] for r in e["trained"]], "o-", color=cl[name],
                   label=f"{name}: |f − theory|")
        ax[5].plot(N, [r["rms_sem"] for r in e["trained"]], ls=LINESTYLES[2], color=cl[name],
                   label=f"{name}: sampling error")
    N0 = min(r["N"] for e in tr["nets"].values() for r in e["trained"])
    dev0 = max(e["trained"][0]["rms_dev_from_theory"] for e in tr["nets"].values())
    ax[5].plot(N, dev0 * N0 / N, color="0.5", lw=1, ls=LINESTYLES[1], label="∝ 1/N")
    ax[4].set(xscale="log", xlabel="width N", ylabel="test MSE (all steps)",
              title=f"trained nets: test error, P = {tr['P_train']}")
    legend_outside(ax[4], where="below", ncol=2)
    ax[5].set(xscale="log", yscale="log", xlabel="width N", ylabel="rms over all outputs",
              title="trained nets: distance to theory")
    legend_outside(ax[5], where="below", ncol=2)
    for a in (ax[4], ax[5]):
        log_ticks(a, N)
    te = data["test_error"]
    for name, e in te["nets"].items():
        shift = 1.03 if name == "DNN" else 1 / 1.03          # RNN and DNN side by side
        ax[6].errorbar(np.array(te["P"]) * shift, e["mse"], yerr=e["mse_sem"], fmt="o-", mfc="none", color=cl[name], capsize=2,
                       label=f"{name}: trained, N = {te['N']}")
        if e["theory_P"]:
            ax[6].plot(e["theory_P"], e["theory_mse"], "x", ms=8, mew=2, color=cl[name], label=f"{name}: μP theory")
    ax[6].set(xscale="log", xlabel="training digits P", ylabel=f"test MSE (all steps, {te['P_test']} digits)",
              title="trained nets: test error against P")
    log_ticks(ax[6], te["P"])
    legend_outside(ax[6], where="below", ncol=2)
    ax[7].remove()
    panel_letters(ax[:7])
    fig.subplots_adjust(hspace=0.75, wspace=0.4)
    save(fig, path, note=data["caption"])
    return True


def main(argv=None) -> dict:
    args, v = derivation_args(__doc__, "out/sequential-digits", PARAMETERS, argv)
    out = args.out
    t0 = time.time()
    X, y = load_digits_rows(v["classes"], v["seed"])
    need = max(v["P"]) + v["P_test"]
    if need > len(y) or v["P_fl"] + v["P_fl_test"] > len(y) or max(v["P_sweep"]) + v["P_sweep_test"] > len(y):
        raise SystemExit(f"only {len(y)} digits of classes {v['classes']}: reduce P / P_test")
    data = {"parameters": {**v, "phi": phi_name(v["phi"]), "T": T_STEPS, "D": 8,
                           "supervised_steps_evidence": [s + 1 for s in SUPERVISED_STEPS], "quick": args.quick}}
    log("[1/3] GP: RNN and DNN, last-step and pooled readouts")
    data["gp"] = gp_section(v, X, y, args.progress)
    log("[2/3] mu-P linear networks: learned kernel and Langevin training")
    data["trained"] = trained_section(v, X, y, args.progress)
    log("[3/3] Langevin-trained networks: test error against P")
    data["test_error"] = test_error_section(v, X, y, args.progress)
    data["labels_fl_test"] = y[v["P_fl"]:v["P_fl"] + v["P_fl_test"]].tolist()
    data["seconds"] = time.time() - t0
    note = (f"digits {v['classes'][0]} vs {v['classes'][1]} (±1), rows as T = 8 steps; (a-c) GP, φ = {phi_name(v['phi'])}, "
            f"g = {v['g']}, σ_b² = {v['sigma_b2']}, noise {v['noise']}, {v['P_test']} test digits; (d-g) linear μP, "
            f"g = {v['g_fl']}, κ = {v['kappa']}, Langevin-trained ({v['chains']} chains, burn-in {v['burn']} steps, "
            f"in (g) at least {v['burn_times']:g}/ε, "
            f"thinning {v['thin']}); (d-f) {v['P_fl']} training / {v['P_fl_test']} test digits, "
            + caption(N=list(v["widths"]), samples=v["samples"] * v["chains"], seed=v["seed"])
            + f"; (g) N = {v['N_sweep']}, {v['P_sweep_test']} held-out test digits, μP theory where the solver "
            f"accepts the patterns (P ≤ {v['P_fl'] + v['P_fl_test']}); error bars: one standard error")
    write_results(out, "sequential_digits", data, lambda path: figure(data, path), caption=note)
    return data


if __name__ == "__main__":
    main()

"""Feature learning in the mean-field (μP) regime: the RNN/DNN phase transition (arXiv:2602.15593).

Run:  python derivations/feature_learning.py [--out DIR] [--quick]   (or: symfield reproduce feature-learning)

1. derives and prints the action on explicit components, the lag-sector Hessians H_k, their determinants and
   the closed-form threshold (linear endpoint task);
2. threshold against T: closed form against the numerical (lag-sector Hessian) threshold, g = 0.9, 1, 1.1;
3. order parameter |corr(T-1, T)| against the signal |y| for RNN and DNN (T = 3), theory lines with the
   threshold marked, and HMC samples of the finite-width weight posterior;
4. convergence in 1/N of the sampled posterior (kernel diagonal, C12·C23 / |corr|, mean output, top |eigenvalue|
   of W) to the saddle point, with the exact finite-N kernel posterior (quadrature) beside it;
5. the spectrum of a sampled W below and above the threshold with the learned eigenvalue and the disc |λ| = g;
6. sequential tasks: the reference table (T = 6) and the held-out-step error against the number of training
   sequences for a sinusoidal teacher;
7. nonlinear φ (derivations/feature_learning_nonlinear.py, skipped with --linear-only): thresholds against T for
   linear, erf and tanh, order parameter against y for the erf RNN and DNN with HMC points, the (g, y) phase
   diagram of the erf RNN and the finite-N z-score table;
writes feature_learning.png/.json and feature_learning_nonlinear.png/.json into the output directory.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import sympy as sp

import symfield as sf
from symfield.cli import Param, derivation_args
from symfield.plotting import pyplot, save, write_results
from symfield.simulate.extrapolate import extrapolate
from symfield.theory.posterior_kernel import kernel_expectation
from symfield.theory.feature_learning import closed as fl_closed
from symfield.theory.feature_learning import closed_form_threshold, critical_signal, feature_learning, signal_scan
from symfield.theory.feature_learning.problem import problem
from symfield.theory.feature_learning.symbolic import action_expr, symbols_for

X1 = np.ones((1, 1))


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def rnn(T, **kw):
    return sf.RNN(T, phi="linear", bias="none", scaling="mean_field", **kw)


def dnn(T, **kw):
    return sf.DNN(T, phi="linear", bias="none", scaling="mean_field", **kw)


def endpoint(T, y):
    Y = np.zeros((1, T))
    Y[0, -1] = y
    return Y


# ------------------------------------------------------------------------------------------ 1. derivation
def derivation() -> dict:
    pr = problem(rnn(3), X1, endpoint(3, 1.0), None, 1.0)
    S = action_expr(pr, symbols_for(pr))
    print("--- μP action S/N of the RNN, T = 3, on explicit components (c_i_j = C_ij, sites = times) ---")
    print(sp.sstr(S), "\n")
    out = {"action_T3": sp.latex(S), "sectors": {}}
    for T in (3, 4, 5):
        H = fl_closed.lag_sector_hessians(T)
        for k, Hk in H.items():
            det = fl_closed.lag_sector_determinant(T, k)
            ok = sp.simplify(det - fl_closed.boxed_determinant(T, k)) == 0
            print(f"T={T} lag k={k}: H_k = {sp.sstr(Hk)}, det = {sp.sstr(det)} (closed form {'✓' if ok else '✗'})")
            out["sectors"][f"T{T}_k{k}"] = {"H": sp.sstr(Hk), "det": sp.sstr(det), "matches_closed_form": bool(ok)}
        rho_c, yc2 = fl_closed.derive_threshold(T)
        print(f"T={T}: rho_c = {rho_c},  y_c^2 = {sp.sstr(yc2)}")
        out[f"threshold_T{T}"] = {"rho_c": str(rho_c), "yc2": sp.sstr(yc2), "yc2_latex": sp.latex(yc2)}
    print(f"y_c(T=3, unit hyperparameters) = {fl_closed.threshold_value(3):.6f} (sqrt(81/8) = {np.sqrt(81 / 8):.6f})\n")
    return out


# ------------------------------------------------------------------------------------------ 2. threshold vs T
def threshold_vs_T(Ts) -> dict:
    out = {"T": list(Ts)}
    worst = 0.0
    for g in (0.9, 1.0, 1.1):
        closed, numeric = [], []
        for T in Ts:
            if fl_closed.folds_before_threshold(T, g_=g):  # first-order jump of the symmetric branch: no pitchfork
                closed.append(float("nan"))
                numeric.append(float("nan"))
                continue
            closed.append(closed_form_threshold(rnn(T, g=g), X1))
            numeric.append(critical_signal(rnn(T, g=g), X1, endpoint(T, 1.0)))
        rel = float(np.nanmax(np.abs(np.array(numeric) / np.array(closed) - 1)))
        folds = [T for T, c in zip(Ts, closed) if np.isnan(c)]
        if folds:
            print(f"g={g}: the symmetric branch folds before rho_c (no pitchfork threshold) for T = {folds}")
        worst = max(worst, rel)
        print(f"g={g}: y_c(T) closed form {np.round(closed, 5).tolist()}")
        print(f"       numerical          {np.round(numeric, 5).tolist()}  (max rel. diff {rel:.1e})")
        out[f"g{g}"] = {"closed": [None if np.isnan(c) else c for c in closed],
                        "numeric": [None if np.isnan(c) else c for c in numeric], "max_rel_diff": rel, "fold_T": folds}
    out["max_rel_diff"] = worst
    return out


# ------------------------------------------------------------------------------------- 3. order parameter
def order_parameter(N, ys_sim, samples, burn, chains, seed) -> dict:
    T = 3
    yc = closed_form_threshold(rnn(T), X1)
    ys = np.linspace(0.2, 8.0, 79)
    out = {"T": T, "y_c": yc, "y": ys.tolist(), "N": N}
    for name, net in (("rnn", rnn(T)), ("dnn", dnn(T))):
        scan = signal_scan(net, X1, endpoint(T, 1.0), ys)
        sel = scan.selected()
        corr = [abs(b.C[1, 2]) / np.sqrt(b.C[1, 1] * b.C[2, 2]) for b in sel]
        out[name] = {"theory_corr": corr, "theory_action": [b.action for b in sel],
                     "symmetric_action": [b.action for b in scan.symmetric]}
        sim_m, sim_e = [], []
        for y in ys_sim:
            t0 = time.time()
            log(f"order parameter: {name.upper()} y = {y}, N = {N}")
            post = sf.simulate.posterior(net, X1, endpoint(T, y), N=N, seed=seed, samples=samples, burn=burn,
                                         chains=chains, leapfrog=20, progress=True)
            sim_m.append(float(post.mean("abs_corr")[1, 2, 0, 0]))
            sim_e.append(float(post.sem("abs_corr")[1, 2, 0, 0]))
            log(f"  |corr23| = {sim_m[-1]:.4f} ± {sim_e[-1]:.4f} ({time.time() - t0:.0f} s, "
                f"accept {post.acceptance:.2f})")
        out[name].update({"sim_y": list(ys_sim), "sim_corr": sim_m, "sim_sem": sim_e})
    i = int(np.argmin(np.abs(ys - 6.0)))
    print(f"order parameter at |y| = {ys[i]:.2f}: RNN {out['rnn']['theory_corr'][i]:.4f}, "
          f"DNN {out['dnn']['theory_corr'][i]:.4f}; threshold y_c = {yc:.5f}")
    for name in ("rnn", "dnn"):
        o = out[name]
        th = np.interp(o["sim_y"], ys, o["theory_corr"])
        print(f"{name.upper()} sim |corr23| at y={o['sim_y']}: {np.round(o['sim_corr'], 4).tolist()} "
              f"(theory {np.round(th, 4).tolist()})")
    return out


# ------------------------------------------------------------------------------------------ 4. 1/N convergence
def _kernel_obs():
    return {"c3": lambda C, f: C[:, 2, 2], "c12c23": lambda C, f: C[:, 0, 1] * C[:, 1, 2],
            "corr23": lambda C, f: np.abs(C[:, 1, 2]) / np.sqrt(C[:, 1, 1] * C[:, 2, 2]), "f3": lambda C, f: f[:, 2]}


def convergence(Ns, samples, burn, chains, seed, eig_Ns, eig_samples) -> dict:
    T, out = 3, {}
    for y in (2.0, 4.5):
        fl = feature_learning(rnn(T), X1, endpoint(T, y))
        C = fl.C_sites
        star = {"c3": C[2, 2], "c12c23": C[0, 1] * C[1, 2], "corr23": abs(C[1, 2]) / np.sqrt(C[1, 1] * C[2, 2]),
                "f3": fl.predict()[0, 2]}
        entry = {"phase": fl.phase, "theory": star, "N": list(Ns), "sim": {k: [] for k in star},
                 "sem": {k: [] for k in star}, "exact_finite_N": {k: [] for k in star}}
        for N in Ns:
            t0 = time.time()
            log(f"convergence: y = {y}, N = {N}")
            post = sf.simulate.posterior(rnn(T), X1, endpoint(T, y), N=N, seed=seed + N, samples=samples, burn=burn,
                                         chains=chains, leapfrog=20, progress=True)
            vals = {"c3": post.observable("diag")[:, 2, 0], "c12c23": post.observable("C12C23")[:, 0],
                    "corr23": post.observable("abs_corr")[:, 1, 2, 0, 0], "f3": post.observable("f")[:, 0, 2]}
            q = kernel_expectation(rnn(T), X1, endpoint(T, y), _kernel_obs(), N=N, nodes=7, mode=C)
            for k, v in vals.items():
                chains_ = np.unique(post.chain)
                means = np.array([v[post.chain == c].mean() for c in chains_])
                entry["sim"][k].append(float(v.mean()))
                entry["sem"][k].append(float(means.std(ddof=1) / np.sqrt(len(chains_))))
                entry["exact_finite_N"][k].append(float(q[k]))
            log(f"  {time.time() - t0:.0f} s, accept {post.acceptance:.2f}")
        entry["fit"] = {}
        for k in star:
            # |corr| of a correlation that vanishes at the saddle point (symmetric phase) decays as N^(-1/2)
            # (mean of |Gaussian| of variance O(1/N)); every other observable as 1/N
            w = np.sqrt(Ns) if (k == "corr23" and fl.phase == "symmetric") else np.array(Ns, dtype=float)
            entry.setdefault("fit_law", {})[k] = "1/sqrt(N)" if w[0] != Ns[0] else "1/N"
            ex = extrapolate(w, entry["sim"][k], np.maximum(entry["sem"][k], 1e-12))
            exact_b = float(np.polyfit(1 / w, np.array(entry["exact_finite_N"][k]) - star[k], 1)[0])
            entry["fit"][k] = {"N_inf": ex.value, "N_inf_err": ex.error, "slope_b": ex.slope, "theory": star[k],
                               "exact_slope_b": exact_b,
                               "z_N_inf": (ex.value - star[k]) / ex.error if ex.error > 0 else float("nan")}
            print(f"y={y} ({fl.phase}) {k:6s}: sampled " + " ".join(
                f"N={N}:{m:.4f}±{e:.4f}" for N, m, e in zip(Ns, entry["sim"][k], entry["sem"][k])))
            law = entry["fit_law"][k]
            print(f"          fit y_N = y_inf + b·{law}: y_inf = {ex.value:.4f} ± {ex.error:.4f} "
                  f"(theory {star[k]:.4f}, "
                  f"z = {entry['fit'][k]['z_N_inf']:.2f}); b = {ex.slope:.3f} (exact finite-N b = {exact_b:.3f})")
        out[f"y{y}"] = entry
    # top |eigenvalue| of W in the outlier regime
    y = 12.0
    lam = float(np.abs(feature_learning(rnn(T), X1, endpoint(T, y)).learned_eigenvalues()).max())
    tops, errs = [], []
    for N in eig_Ns:
        log(f"convergence: top |eigenvalue| of W, y = {y}, N = {N}")
        post = sf.simulate.posterior(rnn(T), X1, endpoint(T, y), N=N, seed=seed + 7 * N, samples=eig_samples,
                                     burn=burn, chains=2, leapfrog=20, eig_samples=eig_samples, progress=True)
        tops.append(float(post.W_top.mean()))
        errs.append(float(post.W_top.std(ddof=1) / np.sqrt(post.W_top.size)))
    ex = extrapolate(eig_Ns, tops, np.maximum(errs, 1e-12))
    print(f"y={y}: learned eigenvalue {lam:.4f}; sampled top |eig W| " +
          " ".join(f"N={N}:{m:.4f}±{e:.4f}" for N, m, e in zip(eig_Ns, tops, errs)) +
          f"; extrapolated {ex.value:.4f} ± {ex.error:.4f}")
    out["eigenvalue"] = {"y": y, "learned": lam, "N": list(eig_Ns), "top_abs": tops, "sem": errs,
                         "N_inf": ex.value, "N_inf_err": ex.error}
    return out


# ------------------------------------------------------------------------------------------ 5. spectra
def spectra(N, seed) -> dict:
    out = {"N": N}
    for tag, y in (("below", 2.0), ("above", 12.0)):
        fl = feature_learning(rnn(3), X1, endpoint(3, y))
        post = sf.simulate.posterior(rnn(3), X1, endpoint(3, y), N=N, seed=seed, samples=5, burn=100, chains=1,
                                     leapfrog=20, progress=True)
        ev = np.linalg.eigvals(post.W_last[0])
        out[tag] = {"y": y, "eig_real": ev.real.tolist(), "eig_imag": ev.imag.tolist(), "phase": fl.phase,
                    "learned": [complex(v).real for v in fl.learned_eigenvalues()], "outliers": fl.outliers().tolist(),
                    "top_abs": float(np.abs(ev).max())}
        lam = np.round(np.real(fl.learned_eigenvalues()), 4).tolist()
        print(f"spectrum y={y} ({fl.phase}): learned eigenvalues {lam}, "
              f"sampled top |eig| = {np.abs(ev).max():.4f} (bulk radius g = 1)")
    return out


# ------------------------------------------------------------------------------------------ 6. sequential
def sequential(Ps) -> dict:
    sup = np.array([1, 1, 0, 0, 1, 1], bool)
    table = {}
    for name, net in (("rnn", rnn(6)), ("dnn", dnn(6))):
        table[name] = feature_learning(net, X1, np.ones((1, 6)), supervised=sup).predict()[0].tolist()
        print(f"sequential T=6, S={{1,2,5,6}}, y=1: {name.upper()} " + " ".join(f"{v:.3f}" for v in table[name]))
    T, D, omega = 8, 32, 2 * np.pi / 6
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, D))
    Xall = rng.standard_normal((max(Ps), D))
    held = np.array([0, 0, 0, 1, 1, 0, 0, 0], bool)
    t = np.arange(1, T + 1)
    err = {"rnn": [], "dnn": []}
    examples = {}
    for P in Ps:
        X = Xall[:P]
        Y = (np.outer(X @ a, np.cos(omega * t)) + np.outer(X @ b, np.sin(omega * t))) / np.sqrt(D)
        for name, net, ro in (("rnn", rnn(T), "shared"), ("dnn", dnn(T), "untied")):
            f = feature_learning(net, X, Y, supervised=np.broadcast_to(~held, (P, T)), kappa=0.1, readout=ro).predict()
            err[name].append(float(np.mean((f[:, held] - Y[:, held]) ** 2) / np.mean(Y[:, held] ** 2)))
            if P == Ps[-1]:
                examples[name] = f[0].tolist()
        examples["target"] = Y[0].tolist()
    print("sinusoidal teacher, held-out steps t = 4, 5: relative error against P = " + str(list(Ps)))
    print("  RNN " + " ".join(f"{e:.4f}" for e in err["rnn"]) + "\n  DNN " + " ".join(f"{e:.4f}" for e in err["dnn"]))
    return {"table": table, "P": list(Ps), "error": err, "held_out": [4, 5], "example": examples, "T": T,
            "omega": omega, "kappa": 0.1}


# ------------------------------------------------------------------------------------------ figure
def figure(data: dict, path: Path) -> bool:
    plt = pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(2, 3, figsize=(15, 8.5))
    o = data["order_parameter"]
    a = ax[0, 0]
    for name, c in (("rnn", "C0"), ("dnn", "C1")):
        a.plot(o["y"], o[name]["theory_corr"], color=c, label=f"{name.upper()} theory")
        a.errorbar(o[name]["sim_y"], o[name]["sim_corr"], yerr=o[name]["sim_sem"], fmt="o", color=c, ms=4,
                   label=f"{name.upper()} HMC, N={o['N']}")
    a.axvline(o["y_c"], color="k", ls="--", lw=1, label=f"$y_c$ = {o['y_c']:.3f}")
    a.set_xlabel("signal |y|")
    a.set_ylabel(r"order parameter $|\mathrm{corr}(h_{T-1}, h_T)|$")
    a.set_title("T = 3: RNN breaks the symmetry, DNN does not")
    a.legend(fontsize=7)
    a = ax[0, 1]
    cv = data["convergence"]
    for key, k, c, lab in (("y4.5", "corr23", "C0", "|corr23|, y=4.5"), ("y4.5", "f3", "C2", "f_T, y=4.5"),
                           ("y2.0", "c12c23", "C3", "C12·C23, y=2"), ("y4.5", "c3", "C4", "c_T / 10, y=4.5")):
        e = cv[key]
        N = np.array(e["N"])
        scale = 0.1 if k == "c3" else 1.0
        dev = (np.array(e["sim"][k]) - e["theory"][k]) * scale
        a.errorbar(1 / N, dev, yerr=np.array(e["sem"][k]) * scale, fmt="o", color=c, ms=4, label=f"HMC {lab}")
        a.plot(1 / N, (np.array(e["exact_finite_N"][k]) - e["theory"][k]) * scale, color=c, lw=1)
    a.axhline(0, color="k", lw=0.8)
    a.set_xlabel("1/N")
    a.set_ylabel("sampled − saddle point")
    a.set_title("finite-N posterior → theory as 1/N (lines: exact finite N)")
    a.legend(fontsize=7)
    a = ax[0, 2]
    s = data["spectra"]
    for tag, c in (("below", "C1"), ("above", "C0")):
        a.scatter(s[tag]["eig_real"], s[tag]["eig_imag"], s=2, color=c, alpha=0.5, label=f"W sample, y={s[tag]['y']}")
        for lam in s[tag]["learned"]:
            a.plot([lam], [0], marker="x", color=c, ms=10, mew=2)
    th = np.linspace(0, 2 * np.pi, 200)
    a.plot(np.cos(th), np.sin(th), "k--", lw=1, label="|λ| = g")
    a.set_aspect("equal")
    a.set_title(f"spectrum of W (N={s['N']}); x: learned eigenvalues")
    a.legend(fontsize=7, loc="lower left")
    a = ax[1, 0]
    t = data["threshold_vs_T"]
    for g, c in ((0.9, "C0"), (1.0, "C1"), (1.1, "C2")):
        closed = np.array([np.nan if v is None else v for v in t[f"g{g}"]["closed"]])
        numeric = np.array([np.nan if v is None else v for v in t[f"g{g}"]["numeric"]])
        a.plot(t["T"], closed, color=c, label=f"closed form, g={g}")
        a.plot(t["T"], numeric, "o", color=c, ms=3, label=f"lag-sector Hessian, g={g}")
    a.set_yscale("log")
    a.set_xlabel("T (hidden states)")
    a.set_ylabel("$y_c$")
    a.set_title("threshold against T")
    a.legend(fontsize=7)
    a = ax[1, 1]
    sq = data["sequential"]
    tt = np.arange(1, 7)
    a.plot(tt, sq["table"]["rnn"], "o-", label="RNN (shared readout)")
    a.plot(tt, sq["table"]["dnn"], "s-", label="DNN (untied readouts)")
    a.axvspan(2.5, 4.5, color="0.9", label="unsupervised")
    a.axhline(1, color="k", lw=0.8, ls=":")
    a.set_xlabel("t")
    a.set_ylabel("mean prediction")
    a.set_title("sequential task: the RNN interpolates, the DNN predicts 0")
    a.legend(fontsize=7)
    a = ax[1, 2]
    a.plot(sq["P"], sq["error"]["rnn"], "o-", label="RNN")
    a.plot(sq["P"], sq["error"]["dnn"], "s-", label="DNN")
    a.set_xscale("log", base=2)
    a.set_xlabel("training sequences P")
    a.set_ylabel("relative error on held-out steps")
    a.set_title("sinusoidal teacher, t = 4, 5 held out")
    a.legend(fontsize=7)
    save(fig, path, dpi=110)
    return True


PARAMETERS = {
    "seed": Param(1, "random seed of the HMC chains"),
    "T_max": Param(40, "largest T of the threshold-against-T panel", quick=10),
    "N_order": Param(512, "width N of the order-parameter HMC", quick=96),
    "signals": Param((1.5, 2.5, 3.0, 3.5, 4.5, 6.0, 8.0), "signals |y| of the order-parameter HMC",
                     quick=(1.5, 4.5, 6.0)),
    "samples": Param(200, "stored HMC samples per chain (order parameter)", quick=40),
    "burn": Param(150, "HMC burn-in per chain", quick=40),
    "chains": Param(4, "HMC chains per point", quick=2),
    "widths": Param((200, 400, 800, 1600, 2048), "widths N of the 1/N convergence", quick=(64, 128)),
    "convergence_samples": Param(250, "stored HMC samples per chain (1/N convergence)", quick=40),
    "eig_widths": Param((256, 512, 1024, 2048), "widths N of the learned-eigenvalue convergence", quick=(64, 128)),
    "eig_samples": Param(6, "weight samples per width for the eigenvalue", quick=4),
    "N_spectra": Param(1024, "width N of the weight spectra", quick=128),
    "sequences": Param((1, 2, 4, 8, 16, 24), "numbers of training sequences P (sequential task)",
                       quick=(1, 2, 4, 8)),
    "linear_only": Param(False, "skip the nonlinear (erf, tanh) part"),
}


def main(argv=None) -> dict:
    args, v = derivation_args(__doc__, "out/feature-learning", PARAMETERS, argv)
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(line_buffering=True)  # progress is readable when the output is redirected
    t0 = time.time()
    data = {"parameters": {"phi": "linear", "g": 1.0, "g_in": 1.0, "sigma_v": 1.0, "kappa": 1.0, "T": 3,
                           "input": "first, |x|^2/D = 1", "quick": args.quick, **v}}
    data["derivation"] = derivation()
    data["threshold_vs_T"] = threshold_vs_T(list(range(3, v["T_max"] + 1)))
    data["order_parameter"] = order_parameter(v["N_order"], list(v["signals"]), v["samples"], v["burn"],
                                              v["chains"], v["seed"])
    data["convergence"] = convergence(list(v["widths"]), v["convergence_samples"], v["burn"], v["chains"],
                                      v["seed"], list(v["eig_widths"]), v["eig_samples"])
    data["spectra"] = spectra(v["N_spectra"], v["seed"])
    data["sequential"] = sequential(list(v["sequences"]))
    data["seconds"] = time.time() - t0
    write_results(args.out, "feature_learning", data, lambda path: figure(data, path))
    if not v["linear_only"]:  # nonlinear φ: thresholds, order parameter, phase diagram, finite-N z-scores
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from feature_learning_nonlinear import run as run_nonlinear
        data["nonlinear"] = run_nonlinear(args.out, args.quick, v["seed"],
                                          progress=args.progress)
    return data


if __name__ == "__main__":
    main()

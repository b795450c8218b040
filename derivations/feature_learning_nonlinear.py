"""Feature learning in the μP regime for nonlinear φ (erf, tanh): thresholds, order parameter, phase diagram,
finite-width check (arXiv:2602.15593; theory Secs. 4, 6, 7, 12).

Run:  python derivations/feature_learning_nonlinear.py [--out DIR] [--quick] [--no-progress] [--widths 256 512 ...]
      [--sampler trajectory|weights] [--samples S] [--burn B] [--chains C] [--spectra-width N]
      [--parts thresholds order phase finite outlier] [--reuse] [--scheduler local:2]
      [--kinds rnn dnn] [--phis erf tanh] [--y-factors 0.7 1.3 1.8] [--sequential true|false]
      [--outlier-widths 512 1024 2048] [--outlier-samples S] [--eig-samples E]
      (also part of: symfield reproduce feature-learning)

1. threshold y_c against T for linear (closed form), erf and tanh RNNs (endpoint task, lag-sector Hessian
   of the symmetric branch from per-step pair expectations, ``sf.critical_signal``);
2. order parameter |corr(T-1, T)| and c_T against the signal y for the erf RNN and DNN (T = 3): theory lines
   (forward–backward solver, exact quadrature) and sampled points of the finite-width posterior (N = 1024);
3. phase diagram of the erf RNN in (g, y): |corr(T-1, T)| of the theory on a grid (symfield.parallel.map_tasks,
   checkpointed) and the threshold line y_c(g);
4. finite-width check: c_T, C12·C23, f̄_T and the learned eigenvalue (as |λ|^(2(T-1))) of erf and tanh RNNs/DNNs
   (T = 3, one point below and two above threshold) and one sequential task, sampled at N = 256…2048
   (default sampler: HMC in trajectory coordinates, the hidden weights integrated out exactly,
   symfield.simulate.trajectory; chains checkpointed), extrapolated in 1/N (powers from theory, fit_powers;
   order-1 and order-2 fits beside) and compared with the theory (z-scores, standard errors from batch
   means, symfield.simulate.batch_means); spectra of the sampled W at --spectra-width: the
   RNN's outlier against the learned eigenvalue of the theory, the DNN layers inside the bulk;
5. the RNN outlier across widths: top |λ(W)| of conditionally drawn W at --outlier-widths, extrapolated in
   1/N against the theory's learned eigenvalue (cells above threshold; outlier_widths);
--parts runs some sections (written to feature_learning_nonlinear_<parts>.json); --reuse assembles those.
writes feature_learning_nonlinear.{json,png,pdf,svg} into the output directory.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

import symfield as sf
from symfield.cli import Param, derivation_args
from symfield.plotting import caption, colors, legend_outside, panel_letters, pyplot, save, write_results
from symfield.progress import progress_bar
from symfield.simulate.batch_means import batch_sem
from symfield.simulate.extrapolate import extrapolate
from symfield.simulate.posterior import learned_eigenvalues
from symfield.simulate.trajectory import posterior_trajectory
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
    if kind == "rnn":  # the sampler's observables (_sampled) from eig(C_pp⁻¹ C_pn) of the φ kernel; the learned W
        lam = learned_eigenvalues(fl.C[None])[0]
        out["learned"] = float(np.abs(lam[0])) ** (2 * (T - 1))
        out["learned_psum"] = float(np.sum(lam ** (2 * (T - 1))).real)
        out["learned_nilpotent"] = fl.phase == "symmetric"     # C diagonal: M̄ a nilpotent Jordan block
        out["learned_W"] = float(np.abs(fl.learned_eigenvalues()).max())
    return out


def order_parameter(phi, ys, hmc_ys, N, samples, burn, chains, seed, progress, sampler="weights",
                    checkpoint=None) -> dict:
    """Theory lines of |corr(T-1, T)|, c_T and the action against y (RNN, DNN) and sampled points at width N."""
    out = {"y": list(ys), "yc": sf.critical_signal(net("rnn", 3, phi), X1, endpoint(3, 1.0)),
           "hmc": {"y": list(hmc_ys), "N": N, "sampler": sampler}}
    with progress_bar(2 * (len(ys) + len(hmc_ys)), f"order parameter ({phi})", progress) as bar:
        for kind in ("rnn", "dnn"):
            pts = []
            for y in ys:
                pts.append(theory_point(kind, 3, phi, y))
                bar.update()
            out[kind] = {k: [p[k] for p in pts] for k in ("abs_corr", "cT", "action")}
            sim = {"abs_corr": [], "abs_corr_sem": [], "cT": [], "cT_sem": []}
            for y in hmc_ys:
                ck = None if checkpoint is None else Path(checkpoint) / f"{kind}-{phi}-{y:g}-N{N}"
                post = sample_cell(kind, 3, phi, endpoint(3, y), None, N, sampler, seed, ck, False,
                                   samples=samples, burn=burn, chains=chains)
                sim["abs_corr"].append(float(post.mean("abs_corr")[1, 2, 0, 0]))
                sim["abs_corr_sem"].append(float(post.sem("abs_corr")[1, 2, 0, 0]))
                sim["cT"].append(float(post.mean("diag")[2, 0]))
                sim["cT_sem"].append(float(post.sem("diag")[2, 0]))
                bar.update()
            out["hmc"][kind] = sim
    return out


# ------------------------------------------------------------------------------------------ 3. phase diagram
def phase_point(args) -> dict:
    """Theory at one grid point (g, y) of the erf RNN, T = 3: |corr(T-1, T)|, C12·C23 and the phase."""
    g, y = args
    fl = sf.feature_learning(net("rnn", 3, "erf", g), X1, endpoint(3, y))
    C = fl.C[:, :, 0, 0]
    return {"abs_corr": fl.order_parameter(), "C12C23": float(C[0, 1] * C[1, 2]), "phase": fl.phase}


def phase_diagram(gs, ys, progress, checkpoint=None) -> dict:
    """Order parameter over the (g, y) grid (symfield.parallel.map_tasks, resumable) and the line y_c(g)."""
    out = {"g": list(gs), "y": list(ys), "yc": []}
    with progress_bar(len(gs), "phase diagram y_c(g), erf RNN", progress) as bar:
        for g in gs:
            out["yc"].append(sf.critical_signal(net("rnn", 3, "erf", g), X1, endpoint(3, 1.0)))
            bar.update()
    grid = [(float(g), float(y)) for g in gs for y in ys]
    pts = sf.parallel.map_tasks(phase_point, grid, checkpoint=checkpoint, progress=progress,
                                desc="phase diagram (g, y) grid")
    for k in ("abs_corr", "C12C23"):
        out[k] = np.array([p[k] for p in pts]).reshape(len(gs), len(ys)).tolist()
    out["phase"] = np.array([p["phase"] for p in pts]).reshape(len(gs), len(ys)).tolist()
    return out


# ------------------------------------------------------------------------------------------ 4. finite N
#: 'learned': |λ|^(2(T-1)) of the top learned eigenvalue; 'learned_psum': tr M^(2(T-1)) = Σ_k λ_k^(2(T-1)) (_sampled)
OBSERVABLES = ("cT", "C12C23", "f", "learned", "learned_psum")


def fit_powers(obs, theory, T) -> tuple:
    """Powers p_k of N^(-p_k) in the expansion y_N = y_∞ + Σ b_k N^(-p_k) of an observable, from theory
    (not from the fit quality).

    c_T, C12·C23 and f̄ are smooth functions of the kernel and the outputs, whose posterior cumulants have a
    regular loop expansion: y_N = y_∞ + b/N + O(1/N²), fitted to order 1 (the order-2 fit is reported
    beside it).  So are the learned-eigenvalue rows where the theory's top eigenvalue is simple and non-zero
    (broken phase, sequential task).

    M = C_pp⁻¹C_pn is exactly a companion matrix: the first T-2 columns of C_pn are columns 2..T-1 of C_pp,
    so M e_k = e_(k+1) (k < T-1) and its last column m = C_pp⁻¹ C_(p,T); the learned eigenvalues are the
    roots of λ^(T-1) = Σ_k m_k λ^(k-1).  In the symmetric phase (C̄ diagonal) m̄ = 0, M̄ a nilpotent Jordan
    block, and the kernel fluctuations make m = O(ε), ε = N^(-1/2).  At T = 3, M = [[0, b], [1, d]] with
    b = m_1 (lag 2) and d = m_2 (lag 1, the soft mode that goes unstable at y_c):

    * 'learned', |λ_max|⁴ with λ = d/2 ± √q, q = d²/4 + b.  For q < 0 it is b², for q > 0 it is
      (|d|/2 + √q)⁴ = q² + 2|d| q^(3/2) + O(ε³).  So E|λ_max|⁴ = A/N + B/N^(5/4) + O(N^(-3/2)) with
      B = 2 N^(5/4) E[|d| q_+^(3/2)] > 0: no regular 1/N expansion (generally λ ~ (εβ)^(1/(T-1)) and the
      correction has relative order ε^(1/(T-1)), giving the power 1 + 1/(2(T-1))).  A line in 1/N through
      N = 256..2048 puts y_∞ at about -0.15 y_2048 for B ≈ A (the z = -3.2 of the earlier run); fitted with
      the derived powers (1, 1 + 1/(2(T-1))).
    * 'learned_psum', tr M⁴ = 2b² + 4b d² + d⁴ exactly: regular, but its 1/N² term holds the soft
      mode's fourth moment E d⁴ ≈ 3 Var(d)² and 4 E[b] Var(d) (E b = O(1/N)).  Var d ∝ 1/stiffness of the
      lag-1 sector grows towards y_c: erf at 0.7 y_c, N Var d = 5.2 against N Var b = 0.95 and N E b ≈ 2
      (measured), a Gaussian estimate of ~130/N² against 1.9/N, a 1/N² term of tens of percent at N = 256
      (the order-2 fit finds c/b = 33): fitted to order 2.
    The same soft mode makes the N^(-3/2) term of |λ_max|⁴ (6 (d²/4) q) sizeable, so the two fitted
    coefficients of 'learned' are effective ones (A = 0.37, B = 5.5 at erf 0.7 y_c, where N E b² = 0.95);
    its intercept is the check.  Every other row: order 1."""
    if not theory.get("learned_nilpotent"):
        return (1.0,)
    if obs == "learned":
        return (1.0, 1.0 + 1.0 / (2 * (T - 1)))
    return (1.0, 2.0) if obs == "learned_psum" else (1.0,)


def _sampled(post, kind):
    """Sample means and batch-means standard errors (5 batches per chain, symfield.simulate.batch_means) of
    the observables: c_T, the sign-invariant C12·C23, f̄_T and, for one shared W, |λ|^(2(T-1)) of the top
    eigenvalue λ of M = C_pp⁻¹ C_pn and the power sum tr M^(2(T-1)) (both even in λ, so invariant under
    the Z2 that maps M to -SMS⁻¹; their N-dependence: :func:`fit_powers`)."""
    obs = {"cT": post.observable("diag")[:, -1, 0], "C12C23": post.observable("C12C23")[:, 0],
           "f": post.observable("f")[:, 0, -1]}
    if kind == "rnn":
        lam = post.observable("learned")
        m2 = 2 * (post.C.shape[1] - 1)
        obs["learned"] = np.abs(lam[:, 0]) ** m2
        obs["learned_psum"] = np.sum(lam ** m2, axis=1).real
    return {k: (float(v.mean()), float(batch_sem(v, post.chain, 5))) for k, v in obs.items()}


def spectrum_summary(Ws, g: float) -> dict:
    """Eigenvalues of the sampled hidden matrices (actual scale): per W group the top two |λ| and the
    number outside the bulk disc, |λ| > g (1 + 3/√N) (circular law plus its finite-N edge; theory Sec. 8)."""
    out = []
    for W in Ws:
        lam = np.sort(np.abs(np.linalg.eigvals(W)))[::-1]
        edge = g * (1 + 3 / np.sqrt(W.shape[0]))
        out.append({"top": float(lam[0]), "second": float(lam[1]), "outside": int(np.sum(lam > edge)),
                    "edge": float(edge), "N": int(W.shape[0])})
    return {"groups": out}


def sample_cell(kind, T, phi, Y, sup, N, sampler, seed, checkpoint, eig, **hmc):
    """Posterior samples of one cell at width N: 'trajectory' (hidden weights integrated out, O(N) per
    step; symfield.simulate.trajectory) or 'weights' (sf.simulate.posterior, O(N²)); ``eig``: diagonalised
    W draws per chain (True: one)."""
    fn = posterior_trajectory if sampler == "trajectory" else sf.simulate.posterior
    return fn(net(kind, T, phi), X1, Y, supervised=sup, N=N, seed=seed, checkpoint=checkpoint,
              eig_samples=int(eig), **hmc)


def finite_n(cells, Ns, samples, burn, chains, seed, progress, sampler="weights", checkpoint=None,
             spectra_N=None) -> list:
    """z-scores of the 1/N-extrapolated observables against the theory; ``checkpoint``: a directory of
    finished chains (a rerun resumes); ``spectra_N``: the width at which the sampled W are diagonalised
    (one draw per chain)."""
    rows = []
    with progress_bar(len(cells) * len(Ns), f"finite-N posterior ({sampler})", progress) as bar:
        for cell in cells:
            kind, phi, y, sup, Y = cell["kind"], cell["phi"], cell["y"], cell.get("supervised"), cell.get("Y")
            T = 3 if Y is None else Y.shape[1]
            Y = endpoint(T, y) if Y is None else Y
            theory = theory_point(kind, T, phi, y, supervised=sup, Y=Y)
            sims, spectra, costs = [], {}, {}
            for N in Ns:
                tag = f"{kind}-{phi}-{y:g}" + ("" if "task" not in cell else f"-seq{T}")   # independent of the cell list
                ck = None if checkpoint is None else Path(checkpoint) / f"{tag}-N{N}"
                post = sample_cell(kind, T, phi, Y, sup, N, sampler, seed + N, ck, N == spectra_N,
                                   samples=samples, burn=burn, chains=chains)
                sims.append(_sampled(post, kind))
                costs[N] = {"seconds": post.seconds, "acceptance": post.acceptance, "step": post.step}
                if N == spectra_N and len(post.W_last):
                    spectra = {**spectrum_summary(post.W_last, 1.0), "top_mean": post.W_top.mean(axis=0).tolist(),
                               "top_sem": post.sem("W_top").tolist(), "draws": int(post.W_top.shape[0])}
                bar.update()
            for obs in OBSERVABLES:
                if obs not in sims[0] or obs not in theory:
                    continue
                vals = [s[obs][0] for s in sims]
                errs = [max(s[obs][1], 1e-12) for s in sims]
                err_th = abs(theory["error"] * theory[obs])
                fits = {}
                for name, kw in (("order1", {"order": 1}), ("order2", {"order": 2}),
                                 ("theory", {"powers": fit_powers(obs, theory, T)})):
                    if len(Ns) > len(kw.get("powers", range(kw.get("order", 0)))):
                        ext = extrapolate(Ns, vals, errs, **kw)
                        fits[name] = {"value": ext.value, "error": ext.error, "powers": list(ext.powers),
                                      "coefficients": list(ext.coefficients),
                                      "chi2": ext.chi2, "dof": ext.dof,
                                      "z": float((ext.value - theory[obs]) / np.hypot(ext.error, err_th))}
                best = fits.get("theory", fits["order1"])   # too few widths for the derived powers: order 1
                rows.append({"kind": kind, "phi": phi, "y": y, "task": cell.get("task", "endpoint"), "observable": obs,
                             "theory": theory[obs], "N": list(Ns), "values": vals, "errors": errs,
                             "extrapolated": best["value"], "extrapolated_error": best["error"], "z": best["z"],
                             "powers": best["powers"], "fits": fits, "sampler": sampler,
                             "cost": {str(k): v for k, v in costs.items()}})
            if spectra:
                rows[-1]["spectra"] = {**spectra, "theory_learned_W": theory.get("learned_W"), "g": 1.0}
    return rows


def outlier_widths(cells, Ns, samples, burn, chains, eig_samples, seed, progress, sampler="trajectory",
                   checkpoint=None) -> list:
    """The RNN outlier across widths (theory Sec. 8): top |λ(W)| of ``eig_samples`` W draws per chain at each
    width N, mean ± standard error over the draws, extrapolated to order 1 in 1/N (an outlier of a
    finite-rank perturbation of the circular-law bulk, well outside the disc, fluctuates by O(N^(-1/2))
    about a mean expected to shift by O(1/N)), z against the theory's |λ| of the learned
    part H_n G_φ⁻¹ Φ_pᵀ/N (``fl.learned_eigenvalues()``)."""
    rows = []
    cells = [c for c in cells if c["kind"] == "rnn" and "task" not in c]
    with progress_bar(len(cells) * len(Ns), f"outlier of W across widths ({sampler})", progress) as bar:
        for cell in cells:
            phi, y = cell["phi"], cell["y"]
            th = theory_point("rnn", 3, phi, y)
            tops, errs = [], []
            for N in Ns:
                ck = None if checkpoint is None else Path(checkpoint) / f"rnn-{phi}-{y:g}-N{N}"
                post = sample_cell("rnn", 3, phi, endpoint(3, y), None, N, sampler, seed + 7 * N, ck, eig_samples,
                                   samples=samples, burn=burn, chains=chains)
                tops.append(float(post.W_top[:, 0].mean()))
                errs.append(float(post.sem("W_top")[0]))
                bar.update()
            row = {"phi": phi, "y": y, "theory_learned_W": th["learned_W"], "N": list(Ns), "top": tops,
                   "top_sem": errs, "draws": int(post.W_top.shape[0]), "edge": [1 + 3 / np.sqrt(n) for n in Ns]}
            if len(Ns) >= 2 and th["learned_W"] > 1.0:   # an outlier only where |λ| > g = 1
                ext = extrapolate(Ns, tops, errs)
                row.update(extrapolated=ext.value, extrapolated_error=ext.error, chi2=ext.chi2, dof=ext.dof,
                           z=float((ext.value - th["learned_W"]) / ext.error))
            rows.append(row)
    return rows


def print_outliers(rows):
    print(f"{'cell':<22} {'theory λ':>9} " + " ".join(f"{'N=' + str(n):>17}" for n in rows[0]["N"])
          + f" {'N->inf':>9} {'±':>7} {'z':>6}")
    for r in rows:
        per_n = " ".join(f"{v:9.5f}±{e:7.5f}" for v, e in zip(r["top"], r["top_sem"]))
        ext = (f"{r['extrapolated']:9.5f} {r['extrapolated_error']:7.5f} {r['z']:6.2f}" if "z" in r
               else f"{'(inside the bulk: no outlier)':>24}")
        print(f"rnn {r['phi']} y={r['y']:<10g} {r['theory_learned_W']:9.5f} {per_n} {ext}")


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
    """The z-table: theory, per-N means, and y_∞ ± error, z of the order-1, order-2 and theory-chosen fits
    (``fit_powers``; the row's z)."""
    print("(learned: |λ|^(2(T-1)) of the top eigenvalue λ of M = C_pp⁻¹C_pn; learned_psum: tr M^(2(T-1)); "
          "T = 3: 4th powers, sequential T = 4: 6th)")
    Ns = rows[0]["N"] if rows else []
    print(f"{'cell':<30} {'obs':<12} {'theory':>9} " + " ".join(f"{'N=' + str(n):>17}" for n in Ns)
          + f" {'order 1: y_inf ± err (z)':>28} {'order 2':>28} {'chosen: powers':>16} {'z':>6}")
    for r in rows:
        cell = f"{r['kind']} {r['phi']} y={r['y']:g} {r['task'] if r['task'] != 'endpoint' else ''}"
        per_n = " ".join(f"{v:9.5f}±{e:7.5f}" for v, e in zip(r["values"], r["errors"]))
        fit = " ".join(f"{f['value']:9.5f}±{f['error']:7.5f} ({f['z']:5.2f})" if f else f"{'-':>28}"
                       for f in (r["fits"].get("order1"), r["fits"].get("order2")))
        powers = ",".join(f"{p:g}" for p in r["powers"])
        print(f"{cell:<30} {r['observable']:<12} {r['theory']:9.5f} {per_n} {fit} {powers:>16} {r['z']:6.2f}")


def print_spectra(rows):
    """Sampled W spectra (theory Sec. 8): RNN top |λ| against the learned eigenvalue, DNN layers in the bulk."""
    print(f"{'cell':<26} {'N':>5} {'top |λ| (mean ± sem over draws)':>34} {'2nd |λ|':>8} {'theory λ':>9} {'outside':>7}")
    for r in rows:
        sp = r.get("spectra")
        if not sp:
            continue
        cell = f"{r['kind']} {r['phi']} y={r['y']:g}"
        tops = ", ".join(f"{m:.4f}±{e:.4f}" for m, e in zip(sp["top_mean"], sp["top_sem"]))
        th = sp["theory_learned_W"]
        print(f"{cell:<26} {sp['groups'][0]['N']:>5} {tops:>34} {max(g['second'] for g in sp['groups']):8.4f} "
              f"{th if th is None else round(th, 4)!s:>9} {sum(g['outside'] for g in sp['groups']):>7}")


def print_costs(rows):
    """Acceptance and adapted leapfrog step against N, per cell, and the wall seconds of the sampling in
    this run (near 0 where the chains came from a checkpoint; cost per trajectory: benchmarks/bench_trajectory.py)."""
    seen = set()
    for r in rows:
        key = (r["kind"], r["phi"], r["y"], r["task"])
        if key in seen:
            continue
        seen.add(key)
        print(f"{r['kind']} {r['phi']} y={r['y']:g}: " + ", ".join(
            f"N={n}: accept {c['acceptance']:.2f}, step {c['step']:.3f}, {c['seconds']:.0f} s"
            for n, c in r["cost"].items()))


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
    t = data.get("thresholds")
    if t:
        for phi, col in zip(("linear", "erf", "tanh"), c):
            a.plot(t["T"], t[phi], "o-", color=col, ms=3, label=phi)
        a.set_yscale("log")
    else:
        a.text(0.5, 0.5, "not computed in this run", ha="center", transform=a.transAxes)
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
    if "abs_corr" in pd:
        im = a.pcolormesh(pd["g"], pd["y"], np.array(pd["abs_corr"]).T, shading="nearest", cmap="viridis")
        fig.colorbar(im, ax=a, label=r"$|\mathrm{corr}(h_{T-1}, h_T)|$ (theory)")
    a.plot(pd["g"], pd["yc"], "o-", color="w", ms=3, label="$y_c(g)$")
    a.set_ylim(min(pd.get("y", [0])), max(pd.get("y", pd["yc"])))
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
PART_KEYS = {"thresholds": "thresholds", "order": "order_parameter", "phase": "phase_diagram", "finite": "finite_n",
             "outlier": "outlier"}


def run(out: Path, quick: bool, seed: int, progress, widths=None, parts=tuple(PART_KEYS), sampler="trajectory",
        fn_samples=None, fn_burn=None, fn_chains=None, spectra_N=None, reuse=False, kinds=None, phis=None,
        y_factors=None, sequential=None, outlier_N=None, outlier_samples=None, eig_samples=None) -> dict:
    """The derivation; ``parts``: which sections run (a run of only some writes only those, to
    feature_learning_nonlinear_<part>.json); ``reuse``: take a section from that file when it exists
    (sections computed by separate, concurrent runs); ``widths``: the widths N of the finite-N check
    (default 256..2048, quick 16, 32)."""
    t0 = time.time()
    q = quick
    data = {"parameters": {**MODEL, "quick": q, "seed": seed}}
    ckpt = out / "checkpoints"
    if reuse:
        for part in parts:
            path = out / f"feature_learning_nonlinear_{part}.json"
            if path.exists():
                data[PART_KEYS[part]] = json.loads(path.read_text())[PART_KEYS[part]]
                print(f"{part}: reused {path}")
    requested, parts = tuple(parts), [p for p in parts if PART_KEYS[p] not in data]
    if "thresholds" in parts:
        data["thresholds"] = thresholds(list(range(3, 7 if q else 21)), progress)
        print("T   y_c linear   y_c erf    y_c tanh")
        for T, a, b, c_ in zip(*(data["thresholds"][k] for k in ("T", "linear", "erf", "tanh"))):
            print(f"{T:<3} {a:10.6f} {b:10.6f} {c_:10.6f}")
    hmc = dict(N=32 if q else 1024, samples=20 if q else 300, burn=20 if q else 100, chains=2 if q else 4)
    if "order" in parts:
        data["order_parameter"] = order_parameter("erf", list(np.linspace(0.5, 9.0, 8 if q else 30)),
                                                  [2.0, 6.0] if q else [2.0, 3.5, 5.0, 6.5, 8.0], seed=seed,
                                                  progress=progress, sampler=sampler,
                                                  checkpoint=ckpt / f"order-{sampler}", **hmc)
    if "phase" in parts:
        data["phase_diagram"] = phase_diagram(list(np.linspace(0.7, 1.3, 2 if q else 11)),
                                              list(np.linspace(0.5, 9.0, 3 if q else 14)), progress,
                                              checkpoint=ckpt / f"phase-{__name__}")
    Ns = list(widths) if widths else ([16, 32] if q else [256, 512, 1024, 2048])
    fin = dict(samples=fn_samples or (10 if q else 300), burn=fn_burn or (10 if q else 100),
               chains=fn_chains or (2 if q else 4))
    if "finite" in parts:
        cells = cells_for(phis or (["erf"] if q else ["erf", "tanh"]), kinds or (["rnn"] if q else ["rnn", "dnn"]),
                          y_factors or ([1.5] if q else [0.7, 1.3, 1.8]), sequential=(not q) if sequential is None
                          else sequential)
        data["finite_n"] = finite_n(cells, Ns, seed=seed, progress=progress, sampler=sampler,
                                    checkpoint=ckpt / f"finite-{sampler}",
                                    spectra_N=spectra_N if spectra_N else Ns[-1] if q else 1024, **fin)
    if "outlier" in parts:
        data["outlier"] = outlier_widths(cells_for(phis or (["erf"] if q else ["erf", "tanh"]), ["rnn"],
                                                   [f for f in (y_factors or ([1.5] if q else [1.3, 1.8])) if f > 1],
                                                   False),
                                         list(outlier_N or ([32, 64] if q else [512, 1024, 2048])),
                                         samples=outlier_samples or (10 if q else 100), burn=fin["burn"],
                                         chains=fin["chains"], eig_samples=eig_samples or (2 if q else 5), seed=seed,
                                         progress=progress, sampler=sampler, checkpoint=ckpt / f"outlier-{sampler}")
    if "outlier" in data:
        print_outliers(data["outlier"])
    if "finite_n" in data:
        print_table(data["finite_n"])
        print_spectra(data["finite_n"])
        print_costs(data["finite_n"])
    data["seconds"] = time.time() - t0
    cap = caption(N=Ns, samples=fin["samples"] * fin["chains"], seed=seed, HMC_order_parameter_N=hmc["N"],
                  finite_N_sampler=sampler, quick=q)
    whole = all(k in data for k in PART_KEYS.values())
    stem = "feature_learning_nonlinear" if whole else "feature_learning_nonlinear_" + "_".join(requested)
    drawable = all(k in data for k in ("order_parameter", "phase_diagram", "finite_n"))   # thresholds optional
    write_results(out, stem, data, lambda path: figure(data, path) if drawable else False, caption=cap)
    return data


#: command-line options (the sizes follow --quick; the model is MODEL)
PARAMETERS = {"seed": Param(1, "random seed of the HMC chains"),
              "widths": Param((256, 512, 1024, 2048), "widths N of the finite-N check", quick=(16, 32)),
              "sampler": Param("trajectory", "finite-N sampler: 'trajectory' (hidden weights integrated out, "
                               "O(N) per step) or 'weights' (HMC over all weights, O(N^2))"),
              "samples": Param(300, "finite-N samples per chain", quick=10),
              "burn": Param(100, "finite-N burn-in trajectories per chain", quick=10),
              "chains": Param(4, "finite-N chains per width", quick=2),
              "spectra_width": Param(1024, "width N at which the sampled W are diagonalised", quick=32),
              "parts": Param(tuple(PART_KEYS), "sections to run"),
              "outlier_widths": Param((512, 1024, 2048), "widths of the W-outlier check", quick=(32, 64)),
              "outlier_samples": Param(100, "samples per chain of the W-outlier check", quick=10),
              "eig_samples": Param(5, "diagonalised W draws per chain of the W-outlier check", quick=2),
              "kinds": Param(("rnn", "dnn"), "architectures of the finite-N cells", quick=("rnn",)),
              "phis": Param(("erf", "tanh"), "nonlinearities of the finite-N cells", quick=("erf",)),
              "y_factors": Param((0.7, 1.3, 1.8), "signals y / y_c of the finite-N endpoint cells", quick=(1.5,)),
              "sequential": Param(True, "include the sequential finite-N cell", quick=False),
              "reuse": Param(False, "take sections from feature_learning_nonlinear_<part>.json of earlier runs")}


def main(argv=None) -> dict:
    args, v = derivation_args(__doc__, "out/feature-learning", PARAMETERS, argv)
    return run(args.out, args.quick, v["seed"], args.progress, widths=v["widths"], parts=tuple(v["parts"]),
               sampler=v["sampler"], fn_samples=v["samples"], fn_burn=v["burn"], fn_chains=v["chains"],
               spectra_N=v["spectra_width"], reuse=v["reuse"], kinds=list(v["kinds"]), phis=list(v["phis"]),
               y_factors=list(v["y_factors"]), sequential=v["sequential"], outlier_N=v["outlier_widths"],
               outlier_samples=v["outlier_samples"], eig_samples=v["eig_samples"])


if __name__ == "__main__":
    main()

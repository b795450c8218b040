"""Residual networks: kernel, response function and optimal residual scale (arXiv:2305.07715).

Run:  python derivations/resnet.py [--out DIR] [--quick]   (or: symfield reproduce resnet)

The ResNet h_1 = U x, h_t = h_{t-1} + r W_t φ(h_{t-1}) (erf, g = 1, g_in = 1, no bias; T hidden states
= T-1 residual blocks, the paper's depth L = T-1) on two inputs with |x|²/D = 1 and correlation cos θ:

1. the kernel C̄_TT and the response χ_t = ∂C̄_tt[0,1]/∂C̄_11[0,1] against depth for several r, and the
   readout response ∂K^out[0,1]/∂C̄_11[0,1] against r (a maximum at r*);
2. r*(g) from :func:`optimal_r` against the large-depth limit sqrt(S*/(T-1))/g;
3. finite-width networks (``sf.simulate.prior``, one declaration for theory and simulation): the mean
   squared deviation of the empirical kernel K̂_TT and of the per-network response (central difference
   in θ with common random numbers) from the mean-field values, against N; its log-log slope must be -1.
Writes resnet.png and resnet.json into the output directory.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import symfield as sf
from symfield.cli import Param, derivation_args, phi_name
from symfield.plotting import caption, legend_outside, panel_letters, pyplot, save, write_results
from symfield.progress import progress_bar
from symfield.theory.response import large_depth_optimum, optimal_r, response
from symfield.validation import loglog_slope

PARAMETERS = {
    "phi": Param("erf", "nonlinearity: a registered name or an expression in x"),
    "g": Param(1.0, "weight gain g of the depth and finite-width sections"),
    "T_depth": Param(50, "depth of the kernel/response-against-depth section", quick=20),
    "widths": Param((32, 64, 128, 256), "widths N of the finite-width section", quick=(16, 32, 64)),
    "samples": Param(300, "networks per width (each simulated at theta +- H)", quick=30),
    "seed": Param(0, "random seed offset (run k uses seed + 100 T + 10 r + width index)"),
}
PHI, G, G_IN, SIGMA_B2 = PARAMETERS["phi"].default, PARAMETERS["g"].default, 1.0, 0.0
THETA, H = np.pi / 3, 1e-3          # input correlation cos θ = 0.5; central-difference step in θ
R_VALUES = (0.1, 0.3, 1.0)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def inputs(theta: float = THETA) -> np.ndarray:
    """Two inputs of D = 2 with x·x/D = 1 and x1·x2/D = cos θ."""
    return np.sqrt(2.0) * np.array([[1.0, 0.0], [np.cos(theta), np.sin(theta)]])


def net(T: int, r: float, g: float = G, phi=PHI) -> sf.NetworkSpec:
    return sf.ResNet(T, r=r, phi=phi, g=g, g_in=G_IN, sigma_b2=SIGMA_B2)


def depth_section(T: int, r_values, g: float = G, phi=PHI) -> dict:
    out = {}
    for r in r_values:
        spec = net(T, r, g, phi)
        res = response(spec, inputs(), pairs=[(0, 1)])
        C = res.mf.equal_time()
        out[str(r)] = {"C00": C[:, 0, 0].tolist(), "C01": C[:, 0, 1].tolist(), "chi": res.chi(0, 1).tolist(),
                       "output_chi": res.output_chi(0, 1)}
        print(f"r = {r:4}: C̄_TT = {C[-1, 0, 0]:.4f}, χ_T = {res.chi(0, 1)[-1]:.4f}, "
              f"∂K_out/∂C_11 = {res.output_chi(0, 1):.4f}")
    return out


def optimum_section(Ts, gs, points: int = 25, phi=PHI) -> dict:
    S_star, log_max = large_depth_optimum(sf.get_phi(phi), G_IN ** 2, G_IN ** 2 * np.cos(THETA))
    print(f"large-depth limit: S* = (T-1) r*² g² = {S_star:.4f}, max response {np.exp(log_max):.4f}")
    out = {"S_star": S_star, "max_response_limit": float(np.exp(log_max)), "T": {}}
    for T in Ts:
        rows = []
        for g in gs:
            opt = optimal_r(net(T, 1.0, g, phi), inputs(), bounds=(0.1 / (g * np.sqrt(T)), 10 / (g * np.sqrt(T))),
                            points=points)
            limit = np.sqrt(S_star / (T - 1)) / g
            rows.append({"g": g, "r_star": opt.r, "response": opt.response, "r_limit": float(limit)})
            print(f"T = {T:3d}, g = {g:4}: r* = {opt.r:.4f} (r* g = {opt.r * g:.4f}), limit {limit:.4f}, "
                  f"max response {opt.response:.4f}")
        out["T"][str(T)] = rows
    return out


def convergence(T: int, r: float, widths, samples, seed: int = 0, g: float = G, phi=PHI, progress=None) -> dict:
    """MSE of the empirical kernel K̂_TT (all entries) and of the per-network response χ_T from their
    mean-field values at each width (independent seeds per width, the same seed for θ ± H), with the
    log-log slopes (weighted by the delta-method variances Var(d)/(S MSE²)) and the z-scores of the means."""
    spec = net(T, r, g, phi)
    X0 = inputs()
    res = response(spec, X0, pairs=[(0, 1)])
    C = res.mf.C[T - 1, T - 1]
    chi = res.chi(0, 1)[-1]
    out = {"T": T, "r": r, "widths": list(map(int, widths)), "samples": list(map(int, np.broadcast_to(samples, len(widths)))),
           "kernel": {"mse": [], "var_log": [], "z_mean": []}, "response": {"mse": [], "var_log": [], "z_mean": []},
           "theory": {"C_TT": C.tolist(), "chi_T": chi}}
    t0 = time.time()
    for i, (N, S) in enumerate(zip(out["widths"], out["samples"])):
        ens = [sf.simulate.prior(spec, inputs(THETA + sign * H), N=N, samples=S, seed=seed + i, progress=progress).emp
               for sign in (1, -1)]
        plus, minus = ens[0][:, T - 1, T - 1], ens[1][:, T - 1, T - 1]
        K = 0.5 * (plus + minus)                                   # K̂_TT at θ, up to O(H²)
        # per network: d K̂_TT[0,1] / d K̂_11[0,1] (its own first-state kernel moves with θ)
        chi_hat = (plus[:, 0, 1] - minus[:, 0, 1]) / (ens[0][:, 0, 0, 0, 1] - ens[1][:, 0, 0, 0, 1])
        for name, dev, mean_dev in (("kernel", ((K - C) ** 2).mean(axis=(1, 2)), K.mean(0) - C),
                                    ("response", (chi_hat - chi) ** 2, np.array([chi_hat.mean() - chi]))):
            sem = np.sqrt((K.var(0, ddof=1) if name == "kernel" else np.array([chi_hat.var(ddof=1)])) / S)
            out[name]["mse"].append(float(dev.mean()))
            out[name]["var_log"].append(float(dev.var(ddof=1) / S / dev.mean() ** 2))
            out[name]["z_mean"].append(float(np.max(np.abs(mean_dev) / sem)))
    for name in ("kernel", "response"):
        slope, se = loglog_slope(out["widths"], out[name]["mse"], out[name]["var_log"])
        out[name].update(slope=slope, slope_se=se, N_mse=(np.array(out["widths"]) * out[name]["mse"]).tolist())
        print(f"T = {T}, r = {r}: {name:8s} MSE slope {slope:+.3f} ± {se:.3f}, N·MSE "
              f"{np.round(out[name]['N_mse'], 4).tolist()}, max |z| of the mean {max(out[name]['z_mean']):.2f}")
    out["seconds"] = time.time() - t0
    out["seeds"] = [seed + i for i in range(len(out["widths"]))]
    return out


def figure(data: dict, path: Path) -> bool:
    plt = pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(2, 2, figsize=(10.5, 6.8))
    ax = axes.ravel()
    for r, d in data["depth"].items():
        t = np.arange(1, len(d["C00"]) + 1)
        ax[0].plot(t, d["C00"], label=f"r = {r}")
        ax[1].plot(t, d["chi"], label=f"r = {r}")
    ax[0].set(xlabel="depth t", ylabel=r"$\bar C_{tt}$ (one input)", yscale="log", title="kernel against depth")
    ax[1].set(xlabel="depth t", ylabel=r"$\chi_t = \partial\bar C_{tt}[0,1]/\partial\bar C_{11}[0,1]$",
              title="response against depth")
    for T, rows in data["optimum"]["T"].items():
        g = np.array([row["g"] for row in rows])
        ax[2].plot(g, [row["r_star"] for row in rows], "o-", label=f"T = {T}: optimal_r")
    for k, (T, rows) in enumerate(data["optimum"]["T"].items()):
        ax[2].plot([row["g"] for row in rows], [row["r_limit"] for row in rows], color="0.3", ls=":", lw=1,
                   label="large-depth limit $\\sqrt{S^*/(T-1)}/g$" if k == 0 else None)
    ax[2].set(xlabel="g", ylabel="r*", xscale="log", yscale="log", title="optimal residual scale")
    for c in data["convergence"]:
        for name, mark in (("kernel", "o-"), ("response", "s--")):
            ax[3].plot(c["widths"], c[name]["mse"], mark, mfc="none", label=f"T = {c['T']}, r = {c['r']}: {name}")
    N = np.array(data["convergence"][0]["widths"], float)
    ax[3].plot(N, data["convergence"][0]["kernel"]["mse"][0] * N[0] / N, color="0.3", ls=":", lw=1, label="slope 1/N")
    ax[3].set(xlabel="width N", ylabel="MSE from mean field", xscale="log", yscale="log", title="finite width")
    for a in ax:
        legend_outside(a)
    panel_letters(ax)
    save(fig, path, note=data["caption"])
    return True


def main(argv=None) -> int:
    args, v = derivation_args(__doc__, "out/resnet", PARAMETERS, argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.quick:
        Ts, gs, points = (10,), (0.5, 1.0, 2.0), 9
        runs = [(10, 0.3), (10, 1.0)]
    else:
        Ts, gs, points = (10, 50, 100), (0.25, 0.5, 1.0, 2.0, 4.0), 25
        runs = [(10, 0.3), (10, 1.0), (50, 0.2), (50, 0.5)]
    widths, samples = v["widths"], v["samples"]
    data = {"parameters": {**v, "phi": phi_name(v["phi"]), "g_in": G_IN, "sigma_b2": SIGMA_B2, "theta": THETA,
                           "quick": args.quick}}
    data["depth"] = depth_section(v["T_depth"], R_VALUES, v["g"], v["phi"])
    data["optimum"] = optimum_section(Ts, gs, points, v["phi"])
    data["convergence"] = []
    with progress_bar(len(runs), "resnet finite-width runs", args.progress) as bar:
        for T, r in runs:
            log(f"simulating T={T}, r={r}: widths {widths}, {samples} networks each (twice: θ ± H)")
            data["convergence"].append(convergence(T, r, widths, samples, v["seed"] + 100 * T + int(10 * r),
                                                   v["g"], v["phi"], args.progress))
            bar.update(1)
    data["seconds"] = time.time() - t0
    seeds = sorted({s for c in data["convergence"] for s in c["seeds"]})
    note = (f"(d) {caption(N=list(widths), samples=samples)} (each at θ ± {H:g}, common random numbers); "
            f"seeds {seeds[0]}..{seeds[-1]} (one per run and width); {phi_name(v['phi'])}, g_in = {G_IN}, "
            f"σ_b² = {SIGMA_B2}, cos θ = {np.cos(THETA):.2f}; (a-c) mean-field theory")
    write_results(out, "resnet", data, lambda p: figure(data, p), caption=note)
    return 0


if __name__ == "__main__":
    sys.exit(main())

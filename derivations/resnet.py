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

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import symfield as sf
from symfield.plotting import pyplot, save, write_results
from symfield.theory.response import large_depth_optimum, optimal_r, response
from symfield.validation import loglog_slope

PHI, G, G_IN, SIGMA_B2 = "erf", 1.0, 1.0, 0.0
THETA, H = np.pi / 3, 1e-3          # input correlation cos θ = 0.5; central-difference step in θ
R_VALUES = (0.1, 0.3, 1.0)


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def inputs(theta: float = THETA) -> np.ndarray:
    """Two inputs of D = 2 with x·x/D = 1 and x1·x2/D = cos θ."""
    return np.sqrt(2.0) * np.array([[1.0, 0.0], [np.cos(theta), np.sin(theta)]])


def net(T: int, r: float, g: float = G) -> sf.NetworkSpec:
    return sf.ResNet(T, r=r, phi=PHI, g=g, g_in=G_IN, sigma_b2=SIGMA_B2)


def depth_section(T: int, r_values) -> dict:
    out = {}
    for r in r_values:
        spec = net(T, r)
        res = response(spec, inputs(), pairs=[(0, 1)])
        C = res.mf.equal_time()
        out[str(r)] = {"C00": C[:, 0, 0].tolist(), "C01": C[:, 0, 1].tolist(), "chi": res.chi(0, 1).tolist(),
                       "output_chi": res.output_chi(0, 1)}
        print(f"r = {r:4}: C̄_TT = {C[-1, 0, 0]:.4f}, χ_T = {res.chi(0, 1)[-1]:.4f}, "
              f"∂K_out/∂C_11 = {res.output_chi(0, 1):.4f}")
    return out


def optimum_section(Ts, gs, points: int = 25) -> dict:
    S_star, log_max = large_depth_optimum(sf.get_phi(PHI), G_IN ** 2, G_IN ** 2 * np.cos(THETA))
    print(f"large-depth limit: S* = (T-1) r*² g² = {S_star:.4f}, max response {np.exp(log_max):.4f}")
    out = {"S_star": S_star, "max_response_limit": float(np.exp(log_max)), "T": {}}
    for T in Ts:
        rows = []
        for g in gs:
            opt = optimal_r(net(T, 1.0, g), inputs(), bounds=(0.1 / (g * np.sqrt(T)), 10 / (g * np.sqrt(T))),
                            points=points)
            limit = np.sqrt(S_star / (T - 1)) / g
            rows.append({"g": g, "r_star": opt.r, "response": opt.response, "r_limit": float(limit)})
            print(f"T = {T:3d}, g = {g:4}: r* = {opt.r:.4f} (r* g = {opt.r * g:.4f}), limit {limit:.4f}, "
                  f"max response {opt.response:.4f}")
        out["T"][str(T)] = rows
    return out


def convergence(T: int, r: float, widths, samples, seed: int = 0) -> dict:
    """MSE of the empirical kernel K̂_TT (all entries) and of the per-network response χ_T from their
    mean-field values at each width (independent seeds per width, the same seed for θ ± H), with the
    log-log slopes (weighted by the delta-method variances Var(d)/(S MSE²)) and the z-scores of the means."""
    spec = net(T, r)
    X0 = inputs()
    res = response(spec, X0, pairs=[(0, 1)])
    C = res.mf.C[T - 1, T - 1]
    chi = res.chi(0, 1)[-1]
    out = {"T": T, "r": r, "widths": list(map(int, widths)), "samples": list(map(int, np.broadcast_to(samples, len(widths)))),
           "kernel": {"mse": [], "var_log": [], "z_mean": []}, "response": {"mse": [], "var_log": [], "z_mean": []},
           "theory": {"C_TT": C.tolist(), "chi_T": chi}}
    t0 = time.time()
    for i, (N, S) in enumerate(zip(out["widths"], out["samples"])):
        ens = [sf.simulate.prior(spec, inputs(THETA + sign * H), N=N, samples=S, seed=seed + i).emp
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
    return out


def figure(data: dict, path: Path) -> bool:
    plt = pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(1, 4, figsize=(17, 3.8))
    for r, d in data["depth"].items():
        t = np.arange(1, len(d["C00"]) + 1)
        ax[0].plot(t, d["C00"], label=f"r = {r}")
        ax[1].plot(t, d["chi"], label=f"r = {r}")
    ax[0].set(xlabel="t", ylabel="C̄_tt (one input)", yscale="log", title="kernel against depth")
    ax[1].set(xlabel="t", ylabel="χ_t = ∂C̄_tt[0,1]/∂C̄_11[0,1]", title="response against depth")
    for T, rows in data["optimum"]["T"].items():
        g = np.array([row["g"] for row in rows])
        ax[2].plot(g, [row["r_star"] for row in rows], "o-", label=f"T = {T}: optimal_r")
        ax[2].plot(g, [row["r_limit"] for row in rows], "k:", lw=1)
    ax[2].set(xlabel="g", ylabel="r*", xscale="log", yscale="log", title="optimal r (dotted: large-depth limit)")
    for c in data["convergence"]:
        for name, mark in (("kernel", "o-"), ("response", "s--")):
            ax[3].plot(c["widths"], c[name]["mse"], mark, label=f"T={c['T']}, r={c['r']} {name}")
    N = np.array(data["convergence"][0]["widths"], float)
    ax[3].plot(N, data["convergence"][0]["kernel"]["mse"][0] * N[0] / N, "k:", lw=1, label="1/N")
    ax[3].set(xlabel="N", ylabel="MSE vs mean field", xscale="log", yscale="log", title="finite width")
    for a in ax:
        a.legend(fontsize=6)
    save(fig, path)
    return True


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="out/resnet")
    parser.add_argument("--quick", action="store_true", help="smaller depths, widths and ensembles")
    parser.add_argument("--scheduler", default=None, help=sf.parallel.SCHEDULER_HELP)
    args = parser.parse_args(argv)
    sf.parallel.set_default(args.scheduler)  # ensembles, chains and widths below run there
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    if args.quick:
        T_depth, Ts, gs, points = 20, (10,), (0.5, 1.0, 2.0), 9
        runs = [(10, 0.3), (10, 1.0)]
        widths, samples = (16, 32, 64), 30
    else:
        T_depth, Ts, gs, points = 50, (10, 50, 100), (0.25, 0.5, 1.0, 2.0, 4.0), 25
        runs = [(10, 0.3), (10, 1.0), (50, 0.2), (50, 0.5)]
        widths, samples = (32, 64, 128, 256), 300
    data = {"parameters": {"phi": PHI, "g": G, "g_in": G_IN, "sigma_b2": SIGMA_B2, "theta": THETA, "quick": args.quick}}
    data["depth"] = depth_section(T_depth, R_VALUES)
    data["optimum"] = optimum_section(Ts, gs, points)
    data["convergence"] = []
    for T, r in runs:
        log(f"simulating T={T}, r={r}: widths {widths}, {samples} networks each (twice: θ ± H)")
        data["convergence"].append(convergence(T, r, widths, samples, seed=100 * T + int(10 * r)))
    data["seconds"] = time.time() - t0
    write_results(out, "resnet", data, lambda p: figure(data, p))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""GELU / SiLU / softplus one loop at a large input scale against finite-width networks (issue 10, part 2).

Run:  python derivations/gelu_one_loop_large.py [samples] [phi ...]     (default 20000 samples; gelu silu softplus)

``one_loop(RNN(3, phi), 10 X)``, X = randn(2, 3)/√3 (pre-activation variances up to ≈ 5: Gauss–Hermite cannot
certify the three- and four-site moments there, the tabulated nested rule of symfield.gauss.nested does): the
theory N Var C[T-1, T-1, 0, 1] against networks at N = 32, 64, 128 extrapolated to N -> infinity in 1/N
(``symfield.validation.one_loop_measurements``, as derivations/tanh_one_loop_patterns.py for tanh), with the z-score
(simulation - theory) / standard error, the one-loop time and the smallest eigenvalue of NΔ.
"""
from __future__ import annotations

import os
import sys
import time

import numpy as np
import sympy as sp

import symfield as sf
from symfield.gauss.registry import x
from symfield.simulate.extrapolate import extrapolate
from symfield.validation import one_loop_measurements

WIDTHS = (32, 64, 128)
SCALE = 10.0
PHIS = {"gelu": x * (1 + sp.erf(x / sp.sqrt(2))) / 2, "silu": x / (1 + sp.exp(-x)), "softplus": sp.log(1 + sp.exp(x))}
X = np.random.default_rng(0).standard_normal((2, 3)) / np.sqrt(3)


def net(name: str):
    sf.register_phi(f"large_{name}", sp.Lambda(x, PHIS[name]), overwrite=True)
    return sf.RNN(3, phi=f"large_{name}")


def compare(name: str, samples: int, seed: int = 5):
    """(theory, Extrapolation, NΔ eigenvalue range, one-loop seconds) of N Var C[T-1, T-1, 0, 1] at SCALE·X."""
    spec = net(name)
    t0 = time.perf_counter()
    nl = sf.one_loop(spec, SCALE * X)
    sec = time.perf_counter() - t0
    lam = np.linalg.eigvalsh(nl.NDelta)
    t = spec.T - 1
    m = one_loop_measurements(spec, SCALE * X, list(WIDTHS), samples, seed=seed, pattern=(0, 1))
    return nl.variance()[t, t, 0, 1], extrapolate(m["N"], m["var"], m["var_err"]), (lam[0], lam[-1]), sec


if __name__ == "__main__":
    samples = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    for name in sys.argv[2:] or list(PHIS):
        t0 = time.time()
        theory, fit, (lo, hi), sec = compare(name, samples)
        print(f"{name:9s} theory {theory:.4f}  simulation {fit.value:.4f} ± {fit.error:.4f}  "
              f"z = {(fit.value - theory) / fit.error:+.2f}  NΔ eigenvalues [{lo:.3g}, {hi:.3g}]  one loop {sec:.1f} s  "
              f"({samples} samples, {time.time() - t0:.0f} s, load {os.getloadavg()[0]:.1f})", flush=True)

"""Accuracy grid of the Gaussian expectations <φ(u)φ(v)> and <φ'(u)φ'(v)> against mpmath (issue 10, part 1).

Run:  python derivations/expectations_grid.py [--dense] [--write tests/data/expectations_grid.json]

For each φ of PHIS, variance c11 = v, c22 = 2v (v in VARIANCES) and correlation ρ (RHOS):
  ours  <φφ>:   symfield.theory.kernel_map.kernel_map(φ).expect (what mean_field runs: the closed form, or the
                Mehler dual kernel handing uncertified pairs to the graded panel rule);
        <φ'φ'>: the registry's closed form <φ'φ'> where there is one, else DualKernel(φ).pair(orders=(1, 1));
  reference (symfield.gauss.reference, 30-digit mpmath, independent quadrature):
        ρ = ±1:            the 1-D integral (graded Gauss–Legendre, pair_reference);
        |ρ| = 1 - 1e-12:   Price's theorem from ρ = ±1 (near_collinear_reference; remainder << 1e-18);
        0 < |ρ| < 1:       the 2-D integral (ungraded, v <= 1; φ smooth on the scale 1) or the mpmath Mehler
                           sum (softplus20; --dense: all φ and v).
The error is |ours - ref| / √(<φ^(o)²>_c11 <φ^(o)²>_c22), the Cauchy–Schwarz scale of the pair (the
documented accuracy, symfield.gauss.dual.TOL = 1e-6 of it); also printed: the relative error |ours - ref|/|ref|
and the φ evaluations of the panel rule at that covariance (panels.pair(counts=True)).
``--write`` stores the references for tests/test_expectations_grid.py.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import sympy as sp

from symfield.gauss import DualKernel, get_phi, panels, register_phi
from symfield.gauss.reference import mehler_reference, near_collinear_reference, pair_reference
from symfield.gauss.registry import x
from symfield.theory.kernel_map import kernel_map

#: name -> (φ as a registered name or SymPy expression in x, points where it changes fast: kinks, centres)
PHIS = {
    "erf": ("erf", (0,)), "tanh": ("tanh", (0,)), "relu": ("relu", (0,)), "linear": ("linear", (0,)),
    "softsign": (x / (1 + sp.Abs(x)), (0,)),
    "gelu": (x * (1 + sp.erf(x / sp.sqrt(2))) / 2, (0,)),
    "silu": (x / (1 + sp.exp(-x)), (0,)),
    "elu": (sp.Piecewise((x, x > 0), (sp.exp(x) - 1, True)), (0,)),
    "hardtanh": (sp.Max(-1, sp.Min(1, x)), (-1, 0, 1)),
    "softplus": (sp.log(1 + sp.exp(x)), (0,)),
    "softplus20": (sp.log(1 + sp.exp(20 * x)) / 20, (0,)),
    "sin": (sp.sin(x), (0,)),
}
VARIANCES = (1e-6, 1e-2, 1.0, 1e2, 1e4)
RHOS = (-1.0, -(1 - 1e-12), 0.3, 1 - 1e-12, 1.0)
DENSE_VARIANCES = (1e-6, 1e-4, 1e-2, 1e-1, 1.0, 10.0, 1e2, 1e3, 1e4)
DENSE_RHOS = (-1.0, -(1 - 1e-12), -0.5, 0.3, 0.8, 1 - 1e-12, 1.0)
#: the interior ρ is checked up to this variance on the coarse grid, against the ungraded 2-D mpmath integral
#: (accurate for φ smooth on the scale 1) or, for the φ in FINE (features at 1/20), the mpmath Mehler sum
INTERIOR_MAX = 1.0
FINE = ("softplus20",)
#: φ oscillating at every scale: the panels are graded, not uniform, so above this variance they cannot
#: resolve sin(z) and every method refuses (ValueError; tests/test_expectations_grid.py checks the refusal)
OSCILLATING = ("sin",)
OSCILLATING_MAX = 1.0


def nonlinearity(name: str):
    """The registered φ (user expressions registered as grid_<name>)."""
    phi, _ = PHIS[name]
    if isinstance(phi, str):
        return get_phi(phi)
    register_phi(f"grid_{name}", sp.Lambda(x, phi), overwrite=True)
    return get_phi(f"grid_{name}")


def cases(dense: bool = False):
    """(name, orders, c11, c22, c12) of the grid."""
    out = []
    for name in PHIS:
        for v in DENSE_VARIANCES if dense else VARIANCES:
            for rho in DENSE_RHOS if dense else RHOS:
                if name in OSCILLATING and v > OSCILLATING_MAX:
                    continue
                interior = abs(rho) < 1 - 1e-8
                if interior and not dense and v > INTERIOR_MAX:
                    continue
                c11, c22 = v, 2 * v
                out.append((name, (0, 0), c11, c22, rho * np.sqrt(c11 * c22)))
                if abs(rho) == 1.0 and name != "relu":  # <φ'φ'> at ρ = ±1 (χ1, the Price slope)
                    out.append((name, (1, 1), c11, c22, rho * np.sqrt(c11 * c22)))
    return out


def reference(name, orders, c11, c22, c12, dense=False) -> float:
    phi = nonlinearity(name)
    points = PHIS[name][1]
    rho = c12 / np.sqrt(c11 * c22)
    if abs(rho) == 1.0:
        return pair_reference(phi, c11, c22, c12, orders, points=points)
    if abs(rho) > 1 - 1e-8:
        return near_collinear_reference(phi, c11, c22, c12, points=points)
    if not dense and name not in FINE:
        return pair_reference(phi, c11, c22, c12, orders, points=points)
    return mehler_reference(phi, c11, c22, c12, orders, kmax=120 if dense else 60, points=points)


def scale(name, orders, c11, c22) -> float:
    """√(<φ^(o1)²>_c11 <φ^(o2)²>_c22) from the 1-D references."""
    phi, points = nonlinearity(name), PHIS[name][1]
    return float(np.sqrt(pair_reference(phi, c11, c11, c11, (orders[0],) * 2, points=points)
                         * pair_reference(phi, c22, c22, c22, (orders[1],) * 2, points=points)))


def ours(name, orders, c11, c22, c12, compiled: bool = True) -> float:
    """<φ^(o1)φ^(o2)>: the compiled kernel map (``compiled``; what mean_field runs) or, for orders (0, 0)
    without ``compiled``, the registry's closed form in double precision / the dual kernel (no compilation)."""
    phi = nonlinearity(name)
    if tuple(orders) == (0, 0):
        if compiled:
            return float(kernel_map(phi).expect(np.array([c11]), np.array([c22]), np.array([[c12]]))[0, 0])
        if phi.pair_form is not None:
            return float(sp.lambdify([], phi.pair(*(sp.Float(c, 17) for c in (c11, c22, c12))))())
    elif phi.dpair_form is not None:
        return float(sp.lambdify([], phi.dpair(*(sp.Float(c, 17) for c in (c11, c22, c12))))())
    return float(DualKernel(phi).pair(c11, c22, c12, orders=orders))


def evaluations(name, orders, c11, c22, c12) -> int:
    """φ evaluations of the panel rule at this covariance (its cost where the Mehler sum hands over)."""
    phi = nonlinearity(name)
    if phi.numeric(orders[0]).has(sp.DiracDelta) or phi.numeric(orders[1]).has(sp.DiracDelta):
        return 0
    return int(panels.pair(phi, c11, c22, c12, orders, counts=True)[2])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dense", action="store_true", help="the dense grid (Mehler references; ~1 h)")
    ap.add_argument("--write", help="store the references as JSON (for tests/test_expectations_grid.py)")
    args = ap.parse_args(argv)
    rows, start = [], time.time()
    for name, orders, c11, c22, c12 in cases(args.dense):
        ref = reference(name, orders, c11, c22, c12, args.dense)
        sc = scale(name, orders, c11, c22)
        val = ours(name, orders, c11, c22, c12)
        rows.append(dict(phi=name, orders=list(orders), c11=c11, c22=c22, c12=c12, ref=ref, scale=sc,
                         err=abs(val - ref) / sc if sc else abs(val - ref),
                         rel=abs(val - ref) / abs(ref) if ref else abs(val - ref),
                         evals=evaluations(name, orders, c11, c22, c12)))
    print(f"{len(rows)} grid points in {time.time() - start:.0f} s; error = |ours - mpmath| / sqrt(<f^2><g^2>)")
    print(f"{'phi':>11} {'max err':>9} {'max rel':>9} {'at (orders, c11, rho) of max err':>34} {'max evals':>9}")
    for name in PHIS:
        mine = [r for r in rows if r["phi"] == name]
        worst = max(mine, key=lambda r: r["err"])
        rho = worst["c12"] / np.sqrt(worst["c11"] * worst["c22"])
        where = f"{tuple(worst['orders'])}, {worst['c11']:.0e}, {rho:+.12f}"
        print(f"{name:>11} {worst['err']:9.2e} {max(r['rel'] for r in mine):9.2e} {where:>34} "
              f"{max(r['evals'] for r in mine):9d}")
    if args.write:
        with open(args.write, "w") as fh:
            json.dump([{k: r[k] for k in ("phi", "orders", "c11", "c22", "c12", "ref", "scale")} for r in rows], fh,
                      indent=0)
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)

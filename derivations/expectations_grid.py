"""Accuracy grid of the Gaussian expectations <φ^(o1)(u) φ^(o2)(v)> against mpmath (issue 10, part 1).

Run:  python derivations/expectations_grid.py [--dense] [--write tests/data/expectations_grid.json]
      python derivations/expectations_grid.py --read tests/data/expectations_grid.json [--verify]
          (errors only; --verify: check the references against closed forms and mp.quad, see verify)

For each φ of PHIS, variance c11 = v, c22 = 2v (v in VARIANCES), correlation ρ (RHOS) and orders (o1, o2) in
ORDERS (skipped where φ^(o) is a distribution), the reference (symfield.gauss.reference, 30-digit mpmath,
independent quadrature) is
        ρ = ±1:            the 1-D integral ∫ Dx φ^(o1)(a x) φ^(o2)(±b x) (graded Gauss–Legendre, pair_reference);
        |ρ| = 1 - 1e-12:   Price's theorem from ρ = ±1 (near_collinear_reference; remainder << 1e-18 of the
                           scale for smooth φ^(o+1); skipped where φ^(o) jumps or φ^(o+1) is a distribution);
        0 < |ρ| < 1:       the Mehler sum Σ ρ^k c_k d_k of mpmath Hermite coefficients (mehler_reference).
Compared (:func:`methods`):
        closed:  the registry's closed form <φφ> / <φ'φ'> (erf, relu, linear) in double precision;
        dual:    DualKernel(φ).pair(..., with_error=True): the self-choosing Mehler sum / panel rule, with its
                 reported error and method;
        panels:  the graded panel rule symfield.gauss.panels.pair, with its error estimate.
The error is |ours - ref| / √(<φ^(o1)²>_c11 <φ^(o2)²>_c22), the Cauchy–Schwarz scale of the pair (the
documented accuracy is symfield.gauss.dual.TOL = 1e-6 of it); also printed: the relative error |ours - ref|/|ref|.
``--write`` stores the references for tests/test_expectations_grid.py.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from functools import lru_cache

import numpy as np
import sympy as sp

from symfield.gauss import DualKernel, get_phi, panels, register_phi
from symfield.gauss.reference import (mehler_reference, near_collinear_reference, near_collinear_supported,
                                      pair_reference)
from symfield.gauss.registry import x

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
RHOS = (-1.0, -(1 - 1e-12), -0.6, 0.3, 1 - 1e-12, 1.0)
#: <φφ>, <φ'φ'> (the Price slope, χ1) and <φ''φ> (the c11-derivative, used by gp.py)
ORDERS = ((0, 0), (1, 1), (2, 0))
DENSE_VARIANCES = (1e-6, 1e-4, 1e-2, 1e-1, 1.0, 10.0, 1e2, 1e3, 1e4)
DENSE_RHOS = (-1.0, -(1 - 1e-12), -0.6, 0.3, 0.8, 1 - 1e-12, 1.0)
#: Hermite orders of the Mehler reference: |ρ|^KMAX far below 1e-18 for |ρ| <= 0.6 (0.8 in the dense grid)
KMAX, DENSE_KMAX = 100, 200
#: φ oscillating at every scale: the panels are graded, not uniform, so above this variance they cannot
#: resolve sin(z) and every method refuses (AccuracyError; tests/test_expectations_grid.py checks the refusal)
OSCILLATING = ("sin",)
OSCILLATING_MAX = 1.0
METHODS = ("closed", "dual", "panels")
#: accuracy of a stored reference, relative to the scale: a double (1.1e-16 of |ref| <= scale), and at
#: |ρ| = 1 - 1e-12 Price's first order, whose remainder (δc²/2) <φ^(o+2) φ^(o+2)> is ~1e-19 of the scale for
#: ReLU but ~1e-14 for softplus β = 20 at variance 1e4 (φ^(3) ~ 20^3 on a width 1/20);
#: tests/test_expectations_grid.py adds it to the reported errors
REF_FLOOR = 1e-13


def nonlinearity(name: str):
    """The registered φ (user expressions registered as grid_<name>)."""
    phi, _ = PHIS[name]
    if isinstance(phi, str):
        return get_phi(phi)
    register_phi(f"grid_{name}", sp.Lambda(x, phi), overwrite=True)
    return get_phi(f"grid_{name}")


@lru_cache(maxsize=None)
def _included(name: str, orders: tuple, near: bool) -> bool:
    """φ^(o) are functions (not distributions); near ρ = ±1 also near_collinear_supported."""
    phi = nonlinearity(name)
    if any(o and phi.derivative(o).has(sp.DiracDelta) for o in orders):
        return False
    return near_collinear_supported(phi, orders) if near else True


def cases(dense: bool = False):
    """(name, orders, c11, c22, c12) of the grid."""
    out = []
    for name in PHIS:
        for v in DENSE_VARIANCES if dense else VARIANCES:
            if name in OSCILLATING and v > OSCILLATING_MAX:
                continue
            for rho in DENSE_RHOS if dense else RHOS:
                for orders in ORDERS:
                    if not _included(name, orders, 0 < 1 - abs(rho) <= 1e-8):
                        continue
                    c11, c22 = v, 2 * v
                    out.append((name, orders, c11, c22, rho * np.sqrt(c11 * c22)))
    return out


def reference(name, orders, c11, c22, c12, dense=False) -> float:
    phi = nonlinearity(name)
    points = PHIS[name][1]
    rho = c12 / np.sqrt(c11 * c22)
    if abs(rho) == 1.0:
        return pair_reference(phi, c11, c22, c12, tuple(orders), points=points)
    if abs(rho) > 1 - 1e-8:
        return near_collinear_reference(phi, c11, c22, c12, tuple(orders), points=points)
    return mehler_reference(phi, c11, c22, c12, tuple(orders), kmax=DENSE_KMAX if dense else KMAX, points=points)


def scale(name, orders, c11, c22) -> float:
    """√(<φ^(o1)²>_c11 <φ^(o2)²>_c22) from the 1-D references."""
    phi, points = nonlinearity(name), PHIS[name][1]
    return float(np.sqrt(pair_reference(phi, c11, c11, c11, (orders[0],) * 2, points=points)
                         * pair_reference(phi, c22, c22, c22, (orders[1],) * 2, points=points)))


def closed_form(phi, orders, c11, c22, c12):
    """The registry's closed form of <φ^(o1)φ^(o2)> in double precision (arrays), or None."""
    form = {(0, 0): phi.pair_form, (1, 1): phi.dpair_form}.get(tuple(orders))
    if form is None:
        return None
    a, b, c = sp.symbols("c11 c22 c12", real=True)
    f = sp.lambdify([a, b, c], form(a, b, c), "numpy")
    with np.errstate(invalid="ignore"):  # Piecewise branches are all evaluated (ReLU's √ of a negative excess)
        return np.broadcast_to(np.asarray(f(c11, c22, c12), dtype=float), np.shape(c12))


def methods(name, orders, c11, c22, c12) -> dict:
    """method -> (values, reported errors or None, chosen methods) of every symfield method at the covariances
    (arrays); a refusal of the dual kernel is (nan, nan, "refused: <message>")."""
    phi, orders = nonlinearity(name), tuple(orders)
    out = {}
    closed = closed_form(phi, orders, c11, c22, c12)
    if closed is not None:
        out["closed"] = (closed, None, np.full(np.shape(c12), "closed"))
    try:
        r = DualKernel(phi).pair(c11, c22, c12, orders=orders, with_error=True)
        out["dual"] = (r.value, r.error, r.method)
    except ValueError:  # find the refused covariances: one by one
        r = [_dual_or_refusal(phi, orders, *c) for c in zip(c11, c22, c12)]
        out["dual"] = tuple(np.array(v, dtype=dt) for v, dt in zip(zip(*r), (float, float, object)))
    out["panels"] = (*panels.pair(phi, c11, c22, c12, orders), np.full(np.shape(c12), "panels"))
    return out


def _dual_or_refusal(phi, orders, c11, c22, c12):
    try:
        r = DualKernel(phi).pair(c11, c22, c12, orders=orders, with_error=True)
        return r.value, r.error, r.method
    except ValueError as err:
        return np.nan, np.nan, f"refused: {err}"


def errors(refs):
    """Rows (case, method, value, reported error, chosen method, error relative to the scale, relative error),
    the methods called once per φ and orders on all its covariances."""
    rows = []
    groups = {}
    for case in refs:
        groups.setdefault((case["phi"], tuple(case["orders"])), []).append(case)
    for (name, orders), group in groups.items():
        c11, c22, c12, ref, sc = (np.array([c[k] for c in group]) for k in ("c11", "c22", "c12", "ref", "scale"))
        for method, (value, reported, chosen) in methods(name, orders, c11, c22, c12).items():
            diff = np.abs(value - ref)
            err = np.where(sc > 0, diff / np.where(sc > 0, sc, 1), diff)
            rel = np.where(ref != 0, diff / np.where(ref != 0, np.abs(ref), 1), diff)
            diff[np.isnan(value)] = np.inf  # a refusal
            rows += [dict(case=c, method=method, value=float(value[k]),
                          reported=None if reported is None else float(reported[k]), chosen=str(chosen[k]),
                          err=float(err[k]), rel=float(rel[k])) for k, c in enumerate(group)]
    return rows


def _ratio(diff, allowed):
    return diff / allowed if allowed > 0 else (0.0 if diff == 0 else np.inf)


def table(rows) -> str:
    """Max error (scale-relative and relative) per φ and method, where the scale-relative one occurs, and the
    largest ratio of the actual to the reported error plus REF_FLOOR of the scale (err/rep; closed forms report
    none)."""
    lines = [f"{'phi':>11} {'method':>7} {'points':>6} {'max err':>9} {'max rel':>9} {'err/rep':>8}  "
             f"{'(orders, c11, rho) of max err':<36} chosen"]
    for name in PHIS:
        for method in METHODS:
            mine = [r for r in rows if r["case"]["phi"] == name and r["method"] == method]
            if not mine:
                continue
            worst = max(mine, key=lambda r: r["err"])
            c = worst["case"]
            rho = c["c12"] / np.sqrt(c["c11"] * c["c22"])
            where = f"{tuple(c['orders'])}, {c['c11']:.0e}, {rho:+.12f}"
            chosen = sorted({r["chosen"].split(":")[0] for r in mine})
            ratio = max(_ratio(abs(r["value"] - r["case"]["ref"]), r["reported"] + REF_FLOOR * r["case"]["scale"])
                        for r in mine if r["reported"] is not None) if method != "closed" else 0.0
            lines.append(f"{name:>11} {method:>7} {len(mine):6d} {worst['err']:9.2e} "
                         f"{max(r['rel'] for r in mine):9.2e} {ratio:8.2f}  {where:<36} {','.join(chosen)}")
    return "\n".join(lines)


@lru_cache(maxsize=None)
def _closed_form_mp(name: str, orders: tuple):
    """The registry's closed form of <φ^(o1)φ^(o2)> as an mpmath function of (c11, c22, c12), or None; <φ''φ> as
    2 ∂<φφ>/∂c11 (Price's theorem)."""
    phi = nonlinearity(name)
    a, b, c = sp.symbols("c11 c22 c12", positive=True)
    if phi.pair_form is not None and orders in ((0, 0), (2, 0)):
        form = phi.pair_form(a, b, c)
        exact = form if orders == (0, 0) else 2 * sp.diff(form, a)
    elif phi.dpair_form is not None and orders == (1, 1):
        exact = phi.dpair_form(a, b, c)
    else:
        return None
    return sp.lambdify([a, b, c], exact, "mpmath")


def verify(refs, quad: bool = True) -> list[str]:
    """Checks of the references themselves: against the registry's closed forms evaluated with 30 digits
    (erf, relu, linear: <φφ>, <φ'φ'> and <φ''φ> = 2 ∂<φφ>/∂c11 by Price's theorem) and, at ρ = ±1, against
    mpmath's own tanh-sinh quadrature (mp.quad, with ``quad``) of the 1-D integral ∫ N(u; 0, c11) φ^(o1)(u) φ^(o2)(r u) du,
    r = c12/c11, split at 0, ±√c11·(1.5, 3, 6), the points of φ and p ± 4^j around them.  Returns one line per
    check with the largest difference relative to the scale."""
    import mpmath as mp

    from symfield.gauss.reference import mp_function

    worst = {}
    for case in refs:
        name, orders = case["phi"], tuple(case["orders"])
        phi = nonlinearity(name)
        edge = abs(case["c12"]) == np.sqrt(case["c11"] * case["c22"])
        exact = _closed_form_mp(name, orders)
        if exact is not None:
            with mp.workdps(30):
                args = [mp.mpf(case[k]) for k in ("c11", "c22", "c12")]  # the doubles exactly
                if edge:  # the grid's ρ = ±1, as the reference takes it (COLLINEAR_EPS)
                    args[2] = mp.sign(args[2]) * mp.sqrt(args[0] * args[1])
                value = float(exact(*args))
            key = ("closed form", name)
            worst[key] = max(worst.get(key, 0.0), abs(value - case["ref"]) / (case["scale"] or 1.0))
        if edge and quad:
            f, g = mp_function(phi, orders[0]), mp_function(phi, orders[1])
            with mp.workdps(30):
                c11, r = mp.mpf(case["c11"]), mp.mpf(case["c12"]) / mp.mpf(case["c11"])
                sd = mp.sqrt(c11)
                pts = {mp.mpf(0)} | {t * sd * k for t in (-1, 1) for k in (1.5, 3, 6, 12)}
                for p in PHIS[name][1]:
                    for q in (mp.mpf(p), mp.mpf(p) / r):
                        pts |= {q + t * mp.mpf(4) ** j for t in (-1, 1) for j in range(-8, 12)}
                pts = sorted(q for q in pts if abs(q) <= 12 * sd)
                value = mp.quad(lambda u: mp.npdf(u, 0, sd) * f(u) * g(r * u), pts)
            key = ("mp.quad at rho = +-1", name)
            worst[key] = max(worst.get(key, 0.0), abs(float(value) - case["ref"]) / (case["scale"] or 1.0))
    return [f"{what:>22} {name:>11}: max |ref - check| / scale = {err:.2e}" for (what, name), err in worst.items()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dense", action="store_true", help="the dense grid (more variances and correlations)")
    ap.add_argument("--write", help="store the references as JSON (for tests/test_expectations_grid.py)")
    ap.add_argument("--read", help="take the references from this JSON file instead of computing them")
    ap.add_argument("--verify", action="store_true", help="check the references against closed forms and mp.quad")
    args = ap.parse_args(argv)
    start = time.time()
    if args.read:
        with open(args.read) as fh:
            refs = json.load(fh)
    else:
        refs = []
        for n, (name, orders, c11, c22, c12) in enumerate(cases(args.dense)):
            if n % 100 == 0:
                print(f"{n} references, {time.time() - start:.0f} s", flush=True)
            refs.append(dict(phi=name, orders=list(orders), c11=c11, c22=c22, c12=c12,
                             ref=reference(name, orders, c11, c22, c12, args.dense), scale=scale(name, orders, c11, c22)))
        print(f"{len(refs)} mpmath references in {time.time() - start:.0f} s", flush=True)
        if args.write:
            with open(args.write, "w") as fh:
                fh.write("[\n" + ",\n".join(json.dumps(r) for r in refs) + "\n]\n")
    if args.verify:
        start = time.time()
        print("\n".join(verify(refs)))
        print(f"verified in {time.time() - start:.0f} s")
    rows = errors(refs)
    print("error = |ours - mpmath| / sqrt(<f^2><g^2>); rel = |ours - mpmath| / |mpmath|")
    print(table(rows))
    return rows


if __name__ == "__main__":
    sys.exit(0 if main() is not None else 1)

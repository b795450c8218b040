"""Accuracy grid of the one-loop moments <Π_i φ(z_i)^{k_i}> and their Price gradients against mpmath (issue 10,
part 1), for φ without a closed form.

Run:  python derivations/moments_grid.py [--write tests/data/moments_grid.json]
      python derivations/moments_grid.py --read tests/data/moments_grid.json     (errors only, no mpmath)
      (--phis softsign gelu --write part.json: a part, e.g. one per process; --read a.json b.json joins parts)

Cases (:func:`cases`): φ in PHIS, variances c11 = v, c22 = 2v (v in VARIANCES), correlations RHOS, and three
geometries: one site with multiplicity 4 (<φ⁴>, ½<(φ⁴)''>), two sites (u, v) with multiplicities (1, 1) and
(2, 2), and four sites (u, u, v, v) (a rank-2 4×4 covariance: the four-point moment of identical pairs).  Every
column (value, then ∂/∂Σ_ij) is <F(u) G(v)> for products F, G of φ, φ', ½φ'' on u and on v; the reference
(symfield.gauss.reference, 25-30 digits) is the 1-D graded rule (``expect1``; ``expect2`` at ρ = ±1) or the
Mehler sum of mpmath Hermite coefficients of F and G (``hermite_coefficients``, ``mehler_sum``).  φ whose φ' jumps
(hardtanh): the δ terms w δ(u - a) of a ½g'' factor (w from the jumps of φ' evaluated in mpmath, :func:`_atoms`) add
w N(a; 0, c11) <G(v) | u = a>, a 1-D integral over the conditional Gaussian; the graded rules break at the kinks.  Compared:
``moments(..., with_error=True)`` (the self-choosing method) and ``method="nested"``.  Errors are relative to
the absolute moment <|F G|> (the scale of ``moments.TOL``); err/rep is the largest actual / reported error.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from functools import lru_cache
from pathlib import Path

import mpmath as mp
import numpy as np
import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from expectations_grid import PHIS as ALL_PHIS, nonlinearity  # noqa: E402

from symfield.gauss.moments import _function_part, moments, pair_columns  # noqa: E402
from symfield.gauss.reference import expect1, expect2, hermite_coefficients, mehler_sum  # noqa: E402
from symfield.gauss.registry import x  # noqa: E402

PHIS = ("softsign", "gelu", "silu", "elu", "softplus20", "hardtanh")
VARIANCES = (1e-6, 1e-2, 1.0, 1e2, 1e4)
RHOS = (-1.0, -0.6, 0.3, 1.0)
#: (name, multiplicities, group of each site: 0 = u, 1 = v)
GEOMETRIES = (("one", (4,), (0,)), ("two", (1, 1), (0, 1)), ("two22", (2, 2), (0, 1)),
              ("four", (1, 1, 1, 1), (0, 0, 1, 1)))
KMAX = 100
DPS = 25


@lru_cache(maxsize=None)
def _mp_derivatives(name: str):
    """φ, φ', and the function part of φ'' (its δ terms dropped: :func:`_atoms`) as mpmath callables."""
    phi = nonlinearity(name)
    d2 = phi.derivative(2)
    d2 = d2.subs({d: 0 for d in d2.atoms(sp.DiracDelta)})
    return tuple(sp.lambdify(x, e, modules="mpmath") for e in (phi.expr, _function_part(phi.derivative(1)), d2))


@lru_cache(maxsize=None)
def _atoms(name: str) -> tuple:
    """The δ terms c δ(x - a) of φ'': c = φ'(a + ε) - φ'(a - ε) (ε = 1e-20, at DPS digits) at every point a of
    ``expectations_grid.PHIS[name][1]`` (the kinks) where it is not 0 — evaluated in mpmath, independently of
    ``moments.delta_atoms``."""
    _, p1, _ = _mp_derivatives(name)
    eps = mp.mpf(10) ** -20
    with mp.workdps(DPS):
        jumps = ((mp.mpf(a), p1(mp.mpf(a) + eps) - p1(mp.mpf(a) - eps)) for a in ALL_PHIS[name][1])
        return tuple((a, c) for a, c in jumps if abs(c) > mp.mpf(10) ** -15)


def _points(name) -> tuple:
    return tuple(ALL_PHIS[name][1])


def _site_factor(name, k: int, kind: int):
    """g, g' or ½g'' of g = φ^k as an mpmath callable (½g'' without its δ terms: :func:`_group_atoms`)."""
    p0, p1, p2 = _mp_derivatives(name)
    if kind == 0:
        return lambda z: p0(z) ** k
    if kind == 1:
        return lambda z: k * p0(z) ** (k - 1) * p1(z)
    return lambda z: (k * (k - 1) * p0(z) ** (k - 2) * p1(z) ** 2 if k > 1 else 0) / 2 + k * p0(z) ** (k - 1) * p2(z) / 2


def _group_function(name, factors):
    fs = [_site_factor(name, k, kind) for k, kind in factors]

    def f(z):
        out = mp.mpf(1)
        for fi in fs:
            out *= fi(z)
        return out
    return f


def _group_atoms(name, factors) -> list:
    """(a, w): the δ terms w δ(z - a) of the product of ``factors``: a ½g'' = ½ k φ^(k-1) φ'' factor contributes
    ½ c k φ(a)^(k-1) times the other factors at a, for each δ term c δ(x - a) of φ''."""
    p0 = _mp_derivatives(name)[0]
    out = []
    for s, (k, kind) in enumerate(factors):
        if kind != 2:
            continue
        rest = _group_function(name, factors[:s] + factors[s + 1:])
        out += [(a, c * k * p0(a) ** (k - 1) / 2 * rest(a)) for a, c in _atoms(name)]
    return out


def _density(a, c):
    return mp.exp(-a * a / (2 * c)) / mp.sqrt(2 * mp.pi * c)


def _conditional(name, g, c, points):
    """<g(z)>, z ~ N(mean, c) — the 1-D graded rule around the shifted points (c = 0: g(mean))."""
    def at(mean):
        if c <= 0:
            return g(mean)
        return expect1(lambda z: g(mean + z), c, DPS, points=tuple(p - mean for p in points))
    return at


@lru_cache(maxsize=None)
def _hermite(name, factors, c):
    with mp.workdps(DPS):
        return hermite_coefficients(_group_function(name, factors), c, KMAX, DPS, points=_points(name))


def column_factors(kk, groups):
    """Per column: the (k, kind) factors of group u and of group v."""
    m = len(kk)
    kinds = [[0] * m]
    for i, j in pair_columns(m):
        kind = [0] * m
        if i == j:
            kind[i] = 2
        else:
            kind[i] = kind[j] = 1
        kinds.append(kind)
    return [tuple(tuple((kk[s], kd[s]) for s in range(m) if groups[s] == g) for g in (0, 1)) for kd in kinds]


def covariance(groups, v, rho):
    c = np.array([[v, rho * np.sqrt(2) * v], [rho * np.sqrt(2) * v, 2 * v]])
    g = np.array(groups)
    return c[np.ix_(g, g)]


def pair_value(name, fu, fv, v, rho) -> float:
    """<F(u) G(v)> for (u, v) with variances v, 2v and correlation ρ, F, G the products of the (k, kind) factors
    ``fu``, ``fv`` (``fv`` empty: <F(u)>): the 1-D graded rule, or the Mehler sum of mpmath Hermite coefficients."""
    c11, c22, c12 = v, 2 * v, rho * np.sqrt(2) * v
    return float(_smooth_value(name, fu, fv, c11, c22, c12, rho) + _atom_value(name, fu, fv, c11, c22, c12)
                 + _atom_value(name, fv, fu, c22, c11, c12))


def _smooth_value(name, fu, fv, c11, c22, c12, rho):
    """<F(u) G(v)> of the function parts (module docstring)."""
    pts = _points(name)
    if not fv:
        return expect1(_group_function(name, fu), c11, DPS, points=pts)
    if abs(rho) == 1:
        return expect2(_group_function(name, fu), _group_function(name, fv), c11, c22, c12, DPS, points=pts)
    (ca, na), (cb, nb) = _hermite(name, tuple(fu), c11), _hermite(name, tuple(fv), c22)
    with mp.workdps(DPS):
        return mp.mpf(mehler_sum(ca, na, cb, nb, c11, c22, c12))


def _atom_value(name, fu, fv, c11, c22, c12):
    """The δ terms w δ(u - a) of F: Σ w N(a; 0, c11) <G(v) | u = a>, v | u = a ~ N(c12 a / c11, c22 - c12²/c11)."""
    atoms = _group_atoms(name, tuple(fu))
    if not atoms:
        return mp.mpf(0)
    with mp.workdps(DPS):
        c11, c22, c12 = mp.mpf(c11), mp.mpf(c22), mp.mpf(c12)
        g = _group_function(name, fv)
        var = c22 - c12 ** 2 / c11
        rest = _conditional(name, g, var if var > mp.mpf(10) ** -12 * c22 else mp.mpf(0), _points(name))
        return mp.fsum(w * _density(a, c11) * rest(c12 * a / c11) for a, w in atoms)


def reference(name, kk, groups, v, rho) -> list[float]:
    return [pair_value(name, fu, fv, v, rho) for fu, fv in column_factors(kk, groups)]


def collect(cases, reference_of, write=None) -> list[dict]:
    """Records {**case, "ref": reference_of(**case)} for each case (a dict), printed and, with ``write`` (a path),
    stored after every record (a long run that is stopped keeps what it has)."""
    records, t0 = [], time.time()
    for case in cases:
        records.append({**case, "ref": reference_of(**case)})
        print(len(records), *case.values(), f"({time.time() - t0:.0f} s)", flush=True)
        if write:
            Path(write).write_text(json.dumps(records, indent=0))
    return records


def cases(phis=PHIS):
    for name in phis:
        for v in VARIANCES:
            for geo, kk, groups in GEOMETRIES:
                for rho in ((1.0,) if geo == "one" else RHOS):
                    yield name, geo, kk, groups, v, rho


def evaluate(name, kk, groups, v, rho, method):
    """(values, errors, absolute moments, method) of ours; absolute moments from the nested rule."""
    phi = nonlinearity(name)
    S = covariance(groups, v, rho)[None]
    kk = np.array([kk])
    t = time.perf_counter()
    try:
        est = moments(phi, S, kk, method=method, with_error=True)
    except Exception as err:  # a refusal is reported, not hidden
        return None, type(err).__name__, time.perf_counter() - t
    return est, None, time.perf_counter() - t


def table(records):
    """Per φ and method: max actual / <|f|>, max reported / <|f|>, max actual/reported, refusals."""
    from symfield.gauss.moments import nested_moments
    rows = {}
    for r in records:
        phi = nonlinearity(r["phi"])
        S = covariance(r["groups"], r["v"], r["rho"])[None]
        _, _, absval, leaves = nested_moments(phi, S, np.array([r["kk"]]))
        ref = np.array(r["ref"])
        for method in ("auto", "nested"):
            est, refused, sec = evaluate(r["phi"], r["kk"], r["groups"], r["v"], r["rho"], method)
            row = rows.setdefault((r["phi"], method), {"n": 0, "act": 0.0, "rep": 0.0, "ratio": 0.0, "refused": 0,
                                                       "used": set(), "sec": 0.0})
            row["n"] += 1
            if est is None:
                row["refused"] += 1
                continue
            act = np.abs(est.value[0] - ref) / absval[0]
            rep = est.error[0] / absval[0]
            row["act"], row["rep"] = max(row["act"], act.max()), max(row["rep"], rep.max())
            row["ratio"] = max(row["ratio"], float(np.max(np.where(rep > 0, act / np.maximum(rep, 1e-300),
                                                                    np.where(act > 0, np.inf, 0)))))
            row["used"] |= set(est.method)
            row["sec"] = max(row["sec"], sec)
    markdown(["φ", "method", "points", "max error / <|f|>", "max reported / <|f|>", "max actual/reported", "refused",
              "used", "slowest (s)"],
             [[name, method, row["n"], f"{row['act']:.1e}", f"{row['rep']:.1e}", f"{row['ratio']:.2g}", row["refused"],
               ", ".join(sorted(row["used"])), f"{row['sec']:.2f}"] for (name, method), row in rows.items()])


def markdown(header, rows):
    """Print a Markdown table."""
    for line in ([header, ["---"] * len(header)] + rows):
        print("| " + " | ".join(str(c) for c in line) + " |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write")
    ap.add_argument("--read", nargs="+", help="stored references (several files are concatenated)")
    ap.add_argument("--phis", nargs="+", default=PHIS, help="a part of PHIS (e.g. one per process)")
    args = ap.parse_args(argv)
    if args.read:
        records = [r for path in args.read for r in json.loads(Path(path).read_text())]
    else:
        records = collect(({"phi": name, "geometry": geo, "kk": list(kk), "groups": list(groups), "v": v, "rho": rho}
                           for name, geo, kk, groups, v, rho in cases(args.phis)),
                          lambda phi, geometry, kk, groups, v, rho: reference(phi, tuple(kk), tuple(groups), v, rho),
                          args.write)
    table(records)


if __name__ == "__main__":
    main()

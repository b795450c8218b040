"""Accuracy grid of the one-loop template derivatives of E = <φ(u)φ(v)> for φ without a closed form (issue 10,
part 1; symfield.theory.one_loop.numeric_template_derivatives) against mpmath.

Run:  python derivations/template_grid.py [--write tests/data/template_grid.json]
      python derivations/template_grid.py --read tests/data/template_grid.json      (errors only, no mpmath)

Cases: φ in PHIS (softsign: a kink of φ', only E and ∂E exist), c11 = v, c22 = 2v (v in VARIANCES), ρ in RHOS.
Column j of PRICE_TEMPLATE is f_j <φ^(o1)(u) φ^(o2)(v)>; the reference (symfield.gauss.reference, 25 digits) is
the 1-D graded rule at ρ = ±1 (``expect2``) and the Mehler sum of mpmath Hermite coefficients otherwise
(``hermite_coefficients``, ``mehler_sum``), of φ^(o) as functions (``moments._function_part``: softsign's x δ(x)
dropped).  The table gives the largest actual error / reported error per φ.
"""
from __future__ import annotations

import argparse
import json
import sys
from functools import lru_cache
from pathlib import Path

import mpmath as mp
import numpy as np
import sympy as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from expectations_grid import nonlinearity  # noqa: E402
from moments_grid import collect, markdown  # noqa: E402

from symfield.gauss.moments import _function_part  # noqa: E402
from symfield.gauss.reference import expect2, hermite_coefficients, mehler_sum  # noqa: E402
from symfield.gauss.registry import x  # noqa: E402
from symfield.theory.one_loop import PRICE_TEMPLATE, numeric_template_derivatives  # noqa: E402

PHIS = {"softsign": 4, "gelu": 10, "softplus20": 10}  #: name -> number of template columns that exist
VARIANCES = (1e-6, 1.0, 1e4)
RHOS = (-1.0, 0.3, 1.0)
KMAX = 100
DPS = 25


@lru_cache(maxsize=None)
def _mp(name: str, order: int):
    phi = nonlinearity(name)
    return sp.lambdify(x, _function_part(phi.derivative(order) if order else phi.expr), modules="mpmath")


@lru_cache(maxsize=None)
def _hermite(name, order, c):
    with mp.workdps(DPS):
        return hermite_coefficients(_mp(name, order), c, KMAX, DPS)


def reference(name, v, rho) -> list[float]:
    c11, c22, c12 = v, 2 * v, rho * np.sqrt(2) * v
    out = []
    for f, (o1, o2) in PRICE_TEMPLATE[:PHIS[name]]:
        if abs(rho) == 1:
            e = float(expect2(_mp(name, o1), _mp(name, o2), c11, c22, c12, DPS))
        else:
            (ca, na), (cb, nb) = _hermite(name, o1, c11), _hermite(name, o2, c22)
            with mp.workdps(DPS):
                e = mehler_sum(ca, na, cb, nb, c11, c22, c12)
        out.append(f * e)
    return out


def cases():
    for name in PHIS:
        for v in VARIANCES:
            for rho in RHOS:
                yield name, v, rho


def table(records):
    rows = {}
    for r in records:
        phi = nonlinearity(r["phi"])
        v, rho = r["v"], r["rho"]
        got, err = numeric_template_derivatives(phi, [v], [2 * v], [rho * np.sqrt(2) * v], with_error=True,
                                                hessian=len(r["ref"]) == 10)
        act = np.abs(got[0] - np.array(r["ref"]))
        row = rows.setdefault(r["phi"], {"n": 0, "ratio": 0.0, "rel": 0.0})
        row["n"] += 1
        row["ratio"] = max(row["ratio"], float(np.max(act / np.maximum(err[0], 1e-300))))
        row["rel"] = max(row["rel"], float(np.max(act / np.maximum(np.abs(r["ref"]), 1e-300))))
    markdown(["φ", "points", "max actual/reported", "max actual/|ref|"],
             [[name, row["n"], f"{row['ratio']:.2g}", f"{row['rel']:.1e}"] for name, row in rows.items()])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write")
    ap.add_argument("--read")
    args = ap.parse_args(argv)
    if args.read:
        records = json.loads(Path(args.read).read_text())
    else:
        records = collect(({"phi": n, "v": v, "rho": rho} for n, v, rho in cases()),
                          lambda phi, v, rho: reference(phi, v, rho), args.write)
    table(records)


if __name__ == "__main__":
    main()

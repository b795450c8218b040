"""Accuracy grid of the three- and four-site moments (issue 10, part 1: the tabulated nested rule,
symfield.gauss.moments.nested_moments / moments(..., with_error=True)) against mpmath at variances up to 1e4.

Run:  python derivations/moments_block_grid.py [--write tests/data/moments_block_grid.json]
      python derivations/moments_block_grid.py --read tests/data/moments_block_grid.json   (errors only; a part:
          --phis gelu --geometries four --max-variance 1: four sites at variance 1e4 take minutes each)

Block-diagonal covariances, so that a 25-digit reference is a product of two-site ones: block A = sites (0, 1) with
variances v, 2v and correlation ρ (RHOS), block B = site 2 alone (variance 1.5 v, multiplicity 2: "three") or sites
(2, 3) with variances v/2, v and correlation 0.5 ("four") or 1 ("four_rank3": rank 3, three levels).  Every column (value, ∂/∂Σ_ij, including the cross-block
ones) is <F_A> <F_B> for the factors g, g', ½g'' of each site (``moments_grid.column_factors``), each block's
expectation by ``moments_grid.pair_value`` (the 1-D graded rule or the Mehler sum of mpmath Hermite coefficients).
"three" and "four" have full rank: all three or four levels of the nested rule are integrated, the innermost from its
table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import mpmath as mp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from expectations_grid import nonlinearity  # noqa: E402
from moments_grid import DPS, collect, column_factors, markdown, pair_value  # noqa: E402

from symfield.gauss.moments import TOL, nested_moments  # noqa: E402

PHIS = ("gelu", "softplus20", "softsign", "hardtanh")
VARIANCES = (1e-6, 1.0, 1e2, 1e4)
RHOS = (-0.6, 0.3)
#: name -> (multiplicities, block of each site)
GEOMETRIES = {"three": ((1, 1, 2), (0, 0, 1)), "four": ((1, 1, 1, 1), (0, 0, 1, 1)),
              "four_rank3": ((1, 1, 1, 1), (0, 0, 1, 1))}
#: correlation of block B (four sites): 0.5, or 1 ("four_rank3": sites 2 and 3 collinear, a rank-3 covariance whose
#: nested rule has three levels, the last tabulated: seconds at every variance, checked by the tests up to 1e4)
RHO_B = {"four": 0.5, "four_rank3": 1.0}


def covariance(geometry, v, rho):
    A = np.array([[v, rho * np.sqrt(2) * v], [rho * np.sqrt(2) * v, 2 * v]])
    B = np.array([[1.5 * v]]) if geometry == "three" else np.array([[v / 2, RHO_B[geometry] * v / np.sqrt(2)],
                                                                      [RHO_B[geometry] * v / np.sqrt(2), v]])
    S = np.zeros((len(A) + len(B),) * 2)
    S[:2, :2], S[2:, 2:] = A, B
    return S


def reference(name, geometry, v, rho) -> list[float]:
    kk, blocks = GEOMETRIES[geometry]
    out = []
    # column_factors with the block as the group: per column the (k, kind) factors of block A and of block B
    for fa, fb in column_factors(kk, blocks):
        ea = pair_value(name, fa[:1], fa[1:], v, rho)
        if geometry == "three":
            eb = pair_value(name, fb, (), 1.5 * v, 1.0)
        else:
            eb = pair_value(name, fb[:1], fb[1:], v / 2, RHO_B[geometry])
        with mp.workdps(DPS):
            out.append(float(mp.mpf(ea) * mp.mpf(eb)))
    return out


def cases(phis=PHIS):
    for name in phis:
        for geometry in GEOMETRIES:
            for v in VARIANCES:
                for rho in RHOS:
                    yield name, geometry, v, rho


def table(records):
    rows = {}
    for r in records:
        phi = nonlinearity(r["phi"])
        S = covariance(r["geometry"], r["v"], r["rho"])[None]
        kk = np.array([GEOMETRIES[r["geometry"]][0]])
        ref = np.array(r["ref"])
        t = time.perf_counter()
        out, err, absval, leaves = nested_moments(phi, S, kk)
        sec = time.perf_counter() - t
        act = np.abs(out[0] - ref)
        row = rows.setdefault((r["phi"], r["geometry"]), {"n": 0, "act": 0.0, "rep": 0.0, "ratio": 0.0, "leaves": 0,
                                                           "sec": 0.0, "certified": 0})
        row["n"] += 1
        row["act"] = max(row["act"], float(np.max(act / absval[0])))
        row["rep"] = max(row["rep"], float(np.max(err[0] / absval[0])))
        row["ratio"] = max(row["ratio"], float(np.max(act / np.maximum(err[0], 1e-300))))
        row["leaves"], row["sec"] = max(row["leaves"], int(leaves[0])), max(row["sec"], sec)
        row["certified"] += int(np.all(err[0] <= TOL * absval[0]))
        print(r["phi"], r["geometry"], r["v"], r["rho"], f"{leaves[0]:.3g} leaves {sec:.1f} s", flush=True)
    markdown(["φ", "sites", "points", "max error / <|Π f|>", "max reported / <|Π f|>", "max actual/reported",
              "certified to TOL", "leaves", "slowest (s)"],
             [[name, geo, row["n"], f"{row['act']:.1e}", f"{row['rep']:.1e}", f"{row['ratio']:.2g}", row["certified"],
               f"{row['leaves']:.2g}", f"{row['sec']:.2f}"] for (name, geo), row in rows.items()])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write")
    ap.add_argument("--read")
    ap.add_argument("--phis", nargs="+", default=PHIS)
    ap.add_argument("--geometries", nargs="+", default=list(GEOMETRIES))
    ap.add_argument("--max-variance", type=float, default=max(VARIANCES))
    args = ap.parse_args(argv)
    if args.read:
        records = json.loads(Path(args.read).read_text())
    else:
        stored = {}  # references already in the file are kept (a new geometry costs only its own points)
        if args.write and Path(args.write).exists():
            stored = {(r["phi"], r["geometry"], r["v"], r["rho"]): r["ref"] for r in json.loads(Path(args.write).read_text())}
        records = collect(({"phi": n, "geometry": g, "v": v, "rho": rho} for n, g, v, rho in cases()),
                          lambda phi, geometry, v, rho: stored.get((phi, geometry, v, rho))
                          or reference(phi, geometry, v, rho), args.write)
    table([r for r in records if r["phi"] in args.phis and r["geometry"] in args.geometries
           and r["v"] <= args.max_variance])


if __name__ == "__main__":
    main()

"""Three- and four-site moments: the nested rule with its innermost level tabulated (symfield.gauss.nested
.tabulated_level, what ``moments`` runs) against the same rule integrating every level (``tabled=False``, the
implementation before), in one process, best of k after a warm-up.

    python benchmarks/bench_tabled_moments.py [--repeat 2]

GELU, generic covariances (every correlation non-zero), three sites with multiplicities (2, 1, 1) at variance
0.01 and 0.3 (four sites untabulated need 2e8 leaves and more: not timed).  Reported: seconds, leaves, the ratio,
the largest difference of the two relative to the absolute moment, and the load.
"""
from __future__ import annotations

import argparse
import os

import numpy as np
import sympy as sp

import symfield as sf
from symfield.gauss.moments import nested_moments
from symfield.gauss.registry import x
from timing import best_time


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args(argv)
    sf.register_phi("bench_gelu", sp.Lambda(x, x * (1 + sp.erf(x / sp.sqrt(2))) / 2), overwrite=True)
    A = np.random.default_rng(3).standard_normal((3, 3))
    for v in (0.01, 0.3):
        S = (v * (A @ A.T / 3 + 0.2 * np.eye(3)))[None]
        kk = np.array([[2, 1, 1]])
        t_tab, tab = best_time(lambda: nested_moments("bench_gelu", S, kk, tabled=True), args.repeat)
        t_all, full = best_time(lambda: nested_moments("bench_gelu", S, kk, tabled=False), args.repeat)
        diff = np.max(np.abs(tab[0] - full[0]) / full[2])
        print(f"variance {v:g}: tabulated {t_tab:.3f} s ({tab[3][0]:.3g} leaves), every level {t_all:.3f} s "
              f"({full[3][0]:.3g} leaves), ratio {t_all / t_tab:.1f}x, difference {diff:.1e} of <|Π f|>, "
              f"load {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

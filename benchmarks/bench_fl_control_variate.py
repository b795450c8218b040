"""The control variate of the Monte Carlo tilted measure (feature_learning.tilted_mc) against plain
self-normalised importance sampling (``control=False``, the previous estimator, run in the same process).

    python benchmarks/bench_fl_control_variate.py [--quick] [--size 8x5] [--samples 4000] [--seeds 8]
        [--signal 0.25,0.5,1] [--solve] [--repeat k]

* map: erf RNN on the orthonormal sequential task of bench_fl_scale (``orthonormal_problem``), solved at each
  ``--signal`` × Y; at that solution the forward–backward map is evaluated with ``--seeds`` seeds of the common random numbers,
  with and without the control variate: the seed-to-seed spread (rms over the entries) of ⟨φφᵀ⟩ and of the backward
  Ĉ, the mean reported standard error, and the time of one evaluation (best of ``--repeat``).  The square of the
  spread ratio is the factor in points for the same accuracy of ⟨φφᵀ⟩.
* ``--solve``: the whole ``sf.feature_learning`` solve at Y both ways: wall time, ``fl.error``, map evaluations.
* ``--quick``: T = 4, P = 2, three seeds (run by tests/test_fl_control_variate.py).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

import symfield as sf
from symfield.task import problem
from symfield.theory.feature_learning import nonlinear as nl
from symfield.theory.feature_learning.tilted_mc import TiltedMC

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_feature_learning_nonlinear import orthonormal_problem  # noqa: E402


def map_spread(pr, x, samples: int, seeds: int, control: bool, repeat: int = 1) -> dict:
    """Seed-to-seed spread of the map at x (rms over the upper triangle), the mean stderr, seconds per evaluation."""
    G, E, best = [], [], np.inf
    for seed in range(seeds):
        fp = nl.FixedPoint(pr, 1.0, TiltedMC(pr.spec.phi_fn, samples, seed, control=control))
        for _ in range(repeat if seed == 0 else 1):
            t0 = time.perf_counter()
            g, _, m = fp.evaluate(x, errors=True)
            best = min(best, time.perf_counter() - t0) if seed == 0 else best
        G.append(g)
        E.append(m.stderr)
    iu = np.triu_indices(pr.n)
    sd = np.array(G).std(0, ddof=1)
    rms = lambda a: float(np.sqrt((a[iu] ** 2).mean()))
    return {"C": rms(sd[0]), "Chat": rms(sd[1]), "stderr": rms(np.mean(E, 0)), "seconds": best}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--size", default="8x5")
    ap.add_argument("--samples", type=int, default=4000)
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--signal", default="0.25,0.5,1", help="comma-separated multiples of Y")
    ap.add_argument("--solve", action="store_true")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args(argv)
    T, P = (4, 2) if a.quick else (int(v) for v in a.size.split("x"))
    seeds = 3 if a.quick else a.seeds
    net, X, Y, sup, kappa = orthonormal_problem(T, P, "erf")
    print(f"load {os.getloadavg()[0]:.2f}; erf RNN, orthonormal sequential task, T = {T}, P = {P}, {a.samples} points")
    out = {"map": {}, "ratio": {}}
    for signal in (float(v) for v in ("0.5" if a.quick else a.signal).split(",")):
        fl = sf.feature_learning(net, X, signal * Y, supervised=sup, kappa=kappa,
                                 estimator=dict(samples=a.samples, seed=0), steps=2)
        pr = problem(net, X, signal * Y, sup, kappa)
        x = np.stack([fl.C_sites, fl.selected.Chat])
        rows = {c: map_spread(pr, x, a.samples, seeds, c, a.repeat) for c in (False, True)}
        print(f"  {signal:g}·Y (ESS {fl.selected.moments.ess:.0f} of {a.samples}):")
        for c, r in rows.items():
            print(f"    control={c!s:5}: spread ⟨φφᵀ⟩ {r['C']:.3g} (stderr {r['stderr']:.3g}), Ĉ {r['Chat']:.3g}; "
                  f"one evaluation {r['seconds'] * 1e3:.1f} ms")
        ratio = rows[True]["C"] / rows[False]["C"]
        print(f"    spread ratio {ratio:.3f}: {1 / ratio ** 2:.1f}x fewer points for the same accuracy of ⟨φφᵀ⟩; "
              f"time ratio {rows[True]['seconds'] / rows[False]['seconds']:.2f}")
        out["map"][signal], out["ratio"][signal] = rows, ratio
    if a.solve:
        for c in (False, True):
            t0 = time.perf_counter()
            s = sf.feature_learning(net, X, Y, supervised=sup, kappa=kappa,
                                    estimator=dict(samples=a.samples, seed=0, control=c), steps=4)
            print(f"  solve control={c!s:5}: {time.perf_counter() - t0:.1f} s, fl.error {s.error:.3g}, "
                  f"{s.evaluations} map evaluations (load {os.getloadavg()[0]:.2f})")
            out[f"solve_{c}"] = s.error
    return out


if __name__ == "__main__":
    main()

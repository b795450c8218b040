"""Gaussian expectations for any φ at any variance and correlation, against mpmath (issue 10, part 1).

The grid (φ × variance 1e-6..1e4 × ρ in {±1, ±(1 - 1e-12), 0.3}) and its 30-digit mpmath references come
from derivations/expectations_grid.py (stored in tests/data/expectations_grid.json; a few are recomputed
here to keep the file honest).  Dense grid: ``python derivations/expectations_grid.py --dense``.
"""
import importlib.util
import json
import os

import numpy as np
import pytest
import sympy as sp

import symfield as sf
from symfield.codegen.elementary import stable_exp
from symfield.gauss import DualKernel, panels
from symfield.gauss.dual import TOL
from symfield.gauss.reference import mp_function, pair_reference, single_reference
from symfield.gauss.registry import x

HERE = os.path.dirname(__file__)
_spec = importlib.util.spec_from_file_location("expectations_grid",
                                               os.path.join(HERE, "..", "derivations", "expectations_grid.py"))
grid = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(grid)
GRID_FILE = os.path.join(HERE, "data", "expectations_grid.json")
CASES = json.load(open(GRID_FILE)) if os.path.exists(GRID_FILE) else []


def test_kronrod_rule_is_exact_to_degree_22():
    xk, wk, wg = panels._kronrod()
    for k in range(0, 23):
        exact = (1 - (-1) ** (k + 1)) / (k + 1)
        assert wk @ xk ** k == pytest.approx(exact, abs=1e-15)
        if k <= 13:
            assert wg @ xk ** k == pytest.approx(exact, abs=1e-15)
    assert wk @ xk ** 24 != pytest.approx(2 / 25, abs=1e-12)


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_stable_softplus_beta20_is_finite_and_exact(order):
    """log(1 + e^{20x})/20 and its derivatives: finite at |x| = 1e4 (overflowed before) and equal to mpmath."""
    expr = sp.diff(sp.log(1 + sp.exp(20 * x)) / 20, x, order)
    f = sp.lambdify(x, stable_exp(expr, x), "numpy")
    ref = sp.lambdify(x, expr, "mpmath")
    import mpmath as mp
    for z in (-1e4, -30.0, -0.4, 0.0, 1e-3, 0.7, 30.0, 1e4):
        with mp.workdps(700), np.errstate(all="ignore"):  # enough digits for log(1 + e^{-600})
            want = float(ref(mp.mpf(z)))
            got = float(f(np.float64(z)))
        assert np.isfinite(got)
        assert got == pytest.approx(want, rel=1e-12, abs=1e-300)


@pytest.mark.skipif(not CASES, reason="tests/data/expectations_grid.json missing (derivations/expectations_grid.py)")
def test_grid_against_mpmath():
    """Every grid point within the documented accuracy TOL·√(<φ²><φ²>); the measured worst is far below."""
    worst = {}
    for case in CASES:
        val = grid.ours(case["phi"], case["orders"], case["c11"], case["c22"], case["c12"], compiled=False)
        err = abs(val - case["ref"]) / case["scale"]
        assert err <= TOL, case
        worst[case["phi"]] = max(worst.get(case["phi"], 0.0), err)
    assert set(worst) == set(grid.PHIS) or not CASES


@pytest.mark.skipif(not CASES, reason="tests/data/expectations_grid.json missing")
@pytest.mark.parametrize("k", [0, 1, 2])
def test_stored_references_are_mpmath(k):
    """Three stored ρ = ±1 references recomputed (the stored file is not our own output)."""
    edge = [c for c in CASES if abs(abs(c["c12"]) - np.sqrt(c["c11"] * c["c22"])) == 0.0]
    case = edge[(k * 37) % len(edge)]
    phi = grid.nonlinearity(case["phi"])
    ref = pair_reference(phi, case["c11"], case["c22"], case["c12"], tuple(case["orders"]),
                         points=grid.PHIS[case["phi"]][1])
    assert ref == pytest.approx(case["ref"], rel=1e-14, abs=1e-300)


def test_oscillating_phi_at_large_variance_is_refused():
    """sin at variance 1e2: no graded rule resolves it; the call raises instead of returning a wrong value."""
    dk = DualKernel(grid.nonlinearity("sin"))
    assert dk.pair(1.0, 2.0, 0.3 * np.sqrt(2.0)) == pytest.approx(np.exp(-1.5) * np.sinh(0.3 * np.sqrt(2)), rel=1e-12)
    with pytest.raises(ValueError, match="cannot reach"):
        dk.pair(1e4, 1e4, 1e4)


@pytest.mark.parametrize("name", ["tanh", "softsign", "gelu"])
def test_mean_field_large_variance_collinear(name):
    """DNN, g = 4, inputs of squared norm/D = 16 (pre-activation variances ~ 16-60), patterns x, x, -x, z:
    finite, PSD, identical patterns identical, and the diagonal follows the length map
    C_l = σ_b² + g² <φ²>_{C_(l-1)} computed with 30-digit mpmath from the previous layer."""
    phi = grid.nonlinearity(name)
    rng = np.random.default_rng(3)
    xv = rng.normal(size=6)
    xv *= 4.0 / np.sqrt(xv @ xv / 6)
    X = np.array([xv, xv, -xv, 4.0 * rng.normal(size=6)])
    spec = sf.DNN(4, phi=phi, g=4.0, sigma_b2=0.5)
    mf = sf.mean_field(spec, X)
    for layer in range(1, 4):
        C, prev = mf.C[layer, layer], mf.C[layer - 1, layer - 1]
        assert np.all(np.isfinite(C))
        assert np.linalg.eigvalsh(C)[0] >= -1e-9 * np.max(np.diag(C))
        assert C[0, 1] == pytest.approx(C[0, 0], rel=1e-12)
        for i in (0, 3):
            phi2 = single_reference(phi, float(prev[i, i]), (0, 0))
            assert C[i, i] == pytest.approx(0.5 + 16.0 * phi2, abs=16.0 * TOL * phi2)  # documented accuracy

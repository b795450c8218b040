"""Residual networks: the response function, the optimal residual scale and their finite-width checks.

- the response (tangent of the mean-field recursion) against central differences of sf.mean_field along
  an input path, for a ResNet, a DNN, an RNN, a custom declaration with skip and pairwise-shared W, tanh
  (quadrature slopes) and the h readout;
- the closed-form slopes ∂E against Price's theorem by quadrature;
- optimal_r: r*(g)·g constant (the kernel depends on r g only) and r* -> sqrt(S*/(T-1))/g, the
  large-depth limit integrated as an ODE;
- kernel and response of sf.simulate.prior networks converge to theory at the 1/N rate (MSE slope -1)
  for T = 10 and T = 50 (reduced ensembles; the full run is derivations/resnet.py);
- ``symfield reproduce resnet --quick`` writes a sane JSON and a figure.
"""
import json

import numpy as np
import pytest

import symfield as sf
from symfield.cli import _load_derivation, main
from symfield.gauss import expect2_block
from symfield.theory.response import large_depth_optimum, optimal_r, pair_slopes

from response_checks import V3, X3, response_and_differences

resnet = _load_derivation("resnet")

SPECS = {
    "resnet": sf.ResNet(6, r=0.7, phi="erf", g=1.3, sigma_b2=0.1),
    "dnn": sf.DNN(5, phi="erf", g=1.2, sigma_b2=0.1),
    "rnn": sf.RNN(5, phi="erf", g=1.2, sigma_b2=0.1),
    "custom": sf.NetworkSpec(T=6, share={"W": [[1, 2], [3, 4], [5]]}, leak=0.5, r=(1.0, 0.8, 0.6, 0.4, 0.2),
                             phi="erf", g=(1.1, 1.1, 0.9, 0.9, 1.3), sigma_b2=0.05),
    "resnet-tanh": sf.ResNet(5, r=0.5, phi="tanh", g=1.5),
    "resnet-h-readout": sf.ResNet(5, r=0.9, phi="erf", readout="h", g_out=1.3),
}


@pytest.mark.parametrize("name", sorted(SPECS))
def test_response_is_the_derivative_of_the_mean_field(name):
    """d/dε of C̄_tt and K^out along X + εV equals Σ_{κ<=λ} response[κλ] · dC̄_11[κλ]/dε."""
    spec = SPECS[name]
    res, ours_hidden, fd_hidden, ours_out, fd_out = response_and_differences(spec, X3, V3, h=1e-5)
    tol = 1e-5 if spec.phi_fn.has_closed_form else 1e-4  # tanh: quadrature in the mean field and the slopes
    np.testing.assert_allclose(ours_hidden, fd_hidden, rtol=tol, atol=tol)
    np.testing.assert_allclose(ours_out, fd_out, rtol=tol, atol=tol)
    assert res.chi(0, 1)[0] == 1.0 and res.spec is spec


def test_closed_form_slopes_match_price_quadrature():
    phi = sf.get_phi("erf")
    d1, d2 = np.array([0.5, 1.7]), np.array([0.8, 2.5, 4.0])
    c12 = 0.6 * np.sqrt(np.outer(d1, d2)) * np.array([[1, -0.5, 0.2], [0.3, 0.9, -0.8]])
    s = pair_slopes(phi, d1, d2, c12)
    np.testing.assert_allclose(s[2], expect2_block(phi, d1, d2, c12, orders=(1, 1), n=80), rtol=1e-7)
    np.testing.assert_allclose(s[0], 0.5 * expect2_block(phi, d1, d2, c12, orders=(2, 0), n=80), rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(s[1], 0.5 * expect2_block(phi, d1, d2, c12, orders=(0, 2), n=80), rtol=1e-7, atol=1e-8)


def test_optimal_r_scales_as_one_over_g():
    """The kernel depends on r and g only through r g (fixed g_in, σ²): r*(g) g is one number."""
    X = resnet.inputs()
    rg = [optimal_r(resnet.net(12, 1.0, g), X, bounds=(0.1 / g, 3 / g), points=9).r * g for g in (0.5, 2.5)]
    np.testing.assert_allclose(rg[0], rg[1], rtol=1e-3)


def test_optimal_r_approaches_the_large_depth_limit():
    """r* sqrt(T-1) g -> sqrt(S*) with an O(1/T) error (S* from the continuum ODE, an independent code path)."""
    S_star, _ = large_depth_optimum(sf.get_phi("erf"), 1.0, np.cos(resnet.THETA))
    X = resnet.inputs()
    err = {T: optimal_r(resnet.net(T, 1.0), X, bounds=(0.5 / np.sqrt(T), 8 / np.sqrt(T)), points=9).r
           * np.sqrt(T - 1) / np.sqrt(S_star) - 1 for T in (13, 49)}
    assert abs(err[49]) < 0.02 and abs(err[49]) < 0.5 * abs(err[13])


def test_optimal_r_rejects_a_maximum_on_the_bound():
    with pytest.raises(ValueError, match="bound"):
        optimal_r(resnet.net(10, 1.0), resnet.inputs(), bounds=(1.0, 10.0), points=5)


CONVERGENCE = {(10, 0.3): ((16, 32, 64, 128), 80), (10, 1.0): ((16, 32, 64, 128), 80),   # (widths, samples)
               (50, 0.2): ((32, 64, 128), 40), (50, 0.5): ((32, 64, 128), 40)}   # reduced: see the derivation


@pytest.mark.slow
@pytest.mark.parametrize("T, r", sorted(CONVERGENCE))
def test_kernel_and_response_converge_at_rate_one_over_width(T, r):
    widths, samples = CONVERGENCE[(T, r)]
    c = resnet.convergence(T, r, widths, samples, seed=7 * T + int(100 * r))
    for name in ("kernel", "response"):
        slope, se = c[name]["slope"], c[name]["slope_se"]
        assert se < (0.25 if T == 10 else 0.35), f"{name}: slope too poorly determined ({se:.3f})"
        assert abs(slope + 1) < max(3.5 * se, 0.1), f"T={T} r={r} {name}: slope {slope:.3f} ± {se:.3f}"
        assert max(c[name]["z_mean"][1:]) < 4.5  # means agree with theory (beyond the smallest width)


def test_reproduce_resnet_quick(tmp_path):
    pytest.importorskip("matplotlib")
    assert main(["reproduce", "resnet", "--quick", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "resnet.json").read_text())
    assert (tmp_path / "resnet.png").stat().st_size > 10_000
    depth = data["depth"]
    # r -> 0 is the identity network: χ stays near 1; larger r amplifies the response of C̄_tt
    assert abs(depth["0.1"]["chi"][-1] - 1) < 0.2 and depth["1.0"]["chi"][-1] > depth["0.3"]["chi"][-1] > 1
    for rows in data["optimum"]["T"].values():
        rg = [row["r_star"] * row["g"] for row in rows]
        assert np.allclose(rg, rg[0], rtol=1e-3) and all(0 < row["response"] < 2 for row in rows)
    assert 0 < data["optimum"]["S_star"] < 50
    for c in data["convergence"]:
        for name in ("kernel", "response"):
            assert -2 < c[name]["slope"] < -0.4 and np.all(np.isfinite(c[name]["N_mse"]))

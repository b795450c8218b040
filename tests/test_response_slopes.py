"""The response's slopes ∂<φφ>/∂c (theory.response.pair_slopes) are exact, certified or refused (issue 10):

- φ without a closed form (softsign, GELU, softplus β = 20) against 25-digit mpmath (derivations/template_grid.py,
  stored in tests/data/template_grid.json) at variances 1e-6, 1, 1e4 and ρ in {-1, 0.3, 1}: actual <= reported;
- ReLU (φ'' = δ: the scaling identity) against the arc-cosine derivatives, also at ρ = ±1;
- hardtanh (φ' jumps: φ'' has δ terms, integrated as conditional integrals) against the 25-digit moments grid;
- the response against central differences of sf.mean_field along an input path (GELU, ReLU, hardtanh);
- a response that overflows raises NonFiniteError naming the cause.
"""
import numpy as np
import pytest

import symfield as sf
from symfield.errors import NonFiniteError
from symfield.theory.response import pair_slopes

from response_checks import REF_FLOOR, RECORDS, V3, X3, grid, response_and_differences
import test_gauss_nested as moments_tests


@pytest.mark.parametrize("name", list(grid.PHIS))
def test_slopes_against_mpmath(name):
    phi = grid.nonlinearity(name)
    for r in (r for r in RECORDS if r["phi"] == name):
        v, c12 = r["v"], r["rho"] * np.sqrt(2) * r["v"]
        got, err = pair_slopes(phi, [v], [2 * v], [[c12]], with_error=True)
        ref = np.array(r["ref"][1:4])
        actual = np.abs(got[:, 0, 0] - ref)
        assert np.all(actual <= err[:, 0, 0] + REF_FLOOR * np.abs(ref)), (r["v"], r["rho"], actual, err[:, 0, 0])
        assert np.all(actual <= 1e-5 * np.max(np.abs(ref))), (r["v"], r["rho"], actual)


@pytest.mark.parametrize("v", [1e-6, 1.0, 1e4])
def test_relu_slopes_against_the_arc_cosine_derivatives(v):
    """∂E/∂c12 = (π - θ)/2π, ∂E/∂c11 = ½ p_u(0) <φ(v) | u = 0> = √(c11 c22 - c12²)/(4π c11)."""
    c11, c22 = np.array([v, 3 * v]), np.array([2 * v, 0.5 * v])
    rho = np.array([[-1.0, -0.6], [0.3, 1.0]])
    c12 = rho * np.sqrt(np.outer(c11, c22))
    got, err = pair_slopes(sf.get_phi("relu"), c11, c22, c12, with_error=True)
    root = np.sqrt(1 - rho ** 2) * np.sqrt(np.outer(c11, c22))  # exactly 0 at ρ = ±1
    ref = np.stack([root / (4 * np.pi * c11[:, None]), root / (4 * np.pi * c22[None, :]),
                    (np.pi - np.arccos(rho)) / (2 * np.pi)])
    actual = np.abs(got - ref)
    assert np.all(actual <= err + 1e-14 * np.abs(ref)), (actual, err)
    assert np.all(actual <= 1e-5 * np.abs(ref).max()), actual


def test_hardtanh_slopes_against_mpmath():
    """hardtanh (φ'' = δ(x + 1) - δ(x - 1)): ∂E/∂c11 = ½<φ''(u) φ(v)> is the δ terms' conditional integrals; against the
    25-digit moments grid (derivations/moments_grid.py, two sites: value, ∂/∂Σ00, ∂/∂Σ01, ∂/∂Σ11) at variances
    1e-6 … 1e4 and ρ = ±1, -0.6, 0.3: actual <= reported."""
    phi = grid.nonlinearity("hardtanh")
    records = [r for r in moments_tests.RECORDS if r["phi"] == "hardtanh" and r["geometry"] == "two"]
    assert len(records) == 20
    for r in records:
        v, c12 = r["v"], r["rho"] * np.sqrt(2) * r["v"]
        got, err = pair_slopes(phi, [v], [2 * v], [[c12]], with_error=True)
        ref = np.array(r["ref"])[[1, 3, 2]]
        actual = np.abs(got[:, 0, 0] - ref)
        assert np.all(actual <= err[:, 0, 0] + moments_tests.REF_FLOOR * np.abs(ref).max()), (r["v"], r["rho"], actual, err[:, 0, 0])


def test_response_refuses_a_non_finite_result_naming_the_cause():
    """Linear φ, g = 1e3, depth 60 on inputs of scale 1e-150: the kernel stays finite (~1e-300 g^(2t)), its response
    (~g^(2t)) overflows at t = 53 — NonFiniteError naming g, T and X (before: a bare FloatingPointError)."""
    spec = sf.DNN(60, phi="linear", g=1e3, sigma_b2=0.0)
    X = 1e-150 * np.array([[1.0, 0.5], [0.3, -1.0]])
    with pytest.raises(NonFiniteError, match=r"step t = 53.*\(g\).*depth T.*rescale X"):
        sf.theory.response.response(spec, X)


@pytest.mark.parametrize("name, scale", [("gelu", 1.0), ("gelu", 10.0), ("relu", 1.0), ("hardtanh", 1.0)])
def test_response_is_the_derivative_of_the_mean_field(name, scale):
    """d/dε of C̄_tt and K^out along X + εV equals Σ_{κ<=λ} response[κλ] · dC̄_11[κλ]/dε (central differences,
    h = 1e-4 of the scale: truncation ~h²)."""
    phi = sf.get_phi("relu") if name == "relu" else grid.nonlinearity(name)
    spec = sf.DNN(4, phi=phi, g=1.2, sigma_b2=0.1)
    X, V = scale * X3, scale * V3
    _, ours_hidden, fd_hidden, ours_out, fd_out = response_and_differences(spec, X, V, h=1e-4)
    tol = 1e-5 * max(np.abs(fd_hidden).max(), np.abs(fd_out).max())
    np.testing.assert_allclose(ours_hidden, fd_hidden, rtol=0, atol=tol)
    np.testing.assert_allclose(ours_out, fd_out, rtol=0, atol=tol)

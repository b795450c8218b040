"""The response's slopes ∂<φφ>/∂c (theory.response.pair_slopes) are exact, certified or refused (issue 10):

- φ without a closed form (softsign, GELU, softplus β = 20) against 25-digit mpmath (derivations/template_grid.py,
  stored in tests/data/template_grid.json) at variances 1e-6, 1, 1e4 and ρ in {-1, 0.3, 1}: actual <= reported;
- ReLU (φ'' = δ: the scaling identity) against the arc-cosine derivatives, also at ρ = ±1;
- hardtanh (φ' jumps: ½<φ''φ> is no function integral) refuses, saying why;
- the response against central differences of sf.mean_field along an input path (GELU, ReLU).
"""
import numpy as np
import pytest
import sympy as sp

import symfield as sf
from symfield.errors import NotSupportedError
from symfield.gauss.registry import x
from symfield.theory.response import pair_slopes

from response_checks import REF_FLOOR, RECORDS, V3, X3, grid, response_and_differences


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


def test_a_jump_of_phi_prime_refuses_saying_why():
    phi = grid.nonlinearity("softsign")  # φ'' has x δ(x) = 0: a function; hardtanh's has δ(x ∓ 1)
    assert np.all(np.isfinite(pair_slopes(phi, [1.0], [1.0], [[0.5]])))
    sf.register_phi("hardtanh_response_test", sp.Lambda(x, sp.Max(-1, sp.Min(1, x))), overwrite=True)
    with pytest.raises(NotSupportedError, match="jump of phi'"):
        pair_slopes(sf.get_phi("hardtanh_response_test"), [1.0], [1.0], [[0.5]])


@pytest.mark.parametrize("name, scale", [("gelu", 1.0), ("gelu", 10.0), ("relu", 1.0)])
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

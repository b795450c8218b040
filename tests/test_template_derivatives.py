"""numeric_template_derivatives (one_loop's E = <φφ>, ∂E, ∂²E for φ without a closed form) reports an error that
bounds the actual one: against 25-digit mpmath (derivations/template_grid.py, stored in
tests/data/template_grid.json: ρ = ±1 as the 1-D integral, else the Mehler sum of mpmath Hermite coefficients) at
variances 1e-6, 1, 1e4, and its columns against central differences of each other (Price's factors)."""
import numpy as np
import pytest

from symfield.errors import NotSupportedError
from symfield.theory.one_loop import HESS, numeric_template_derivatives

from response_checks import REF_FLOOR, RECORDS, grid


def test_stored_grid_covers_the_derivation():
    assert [(r["phi"], r["v"], r["rho"]) for r in RECORDS] == list(grid.cases())


@pytest.mark.parametrize("name", list(grid.PHIS))
def test_template_derivatives_against_mpmath(name):
    """Every column at every variance and ρ in {-1, 0.3, 1}: |ours - mpmath| <= reported error (softsign, whose
    φ' has a kink: E and ∂E only; GELU and softplus β = 20: all ten columns)."""
    recs = [r for r in RECORDS if r["phi"] == name]
    v = np.array([r["v"] for r in recs])
    rho = np.array([r["rho"] for r in recs])
    ref = np.array([r["ref"] for r in recs])
    got, err = numeric_template_derivatives(grid.nonlinearity(name), v, 2 * v, rho * np.sqrt(2) * v,
                                            with_error=True, hessian=ref.shape[1] == 10)
    actual = np.abs(got - ref)
    assert np.all(actual <= err + REF_FLOOR * np.abs(ref)), np.max(actual / np.maximum(err, 1e-300))


def test_kinked_derivative_refuses_the_hessian():
    with pytest.raises(NotSupportedError, match="distribution"):
        numeric_template_derivatives(grid.nonlinearity("softsign"), [1.0], [2.0], [0.3])


@pytest.mark.parametrize("name, v", [("gelu", 1.0), ("softplus20", 0.05)])
def test_columns_are_the_derivatives_of_each_other(name, v):
    """∂E/∂c_i (columns 1-3) against central differences of E, ∂²E (HESS) against central differences of ∂E:
    Price's factors of PRICE_TEMPLATE, checked by the definition of the derivative (step h = 1e-3 v, truncation
    ~h² E'''; allowed 1e-5 of the column scale)."""
    phi = grid.nonlinearity(name)
    c = np.array([v, 1.7 * v, 0.4 * v])
    h = 1e-3 * v
    base = numeric_template_derivatives(phi, *c[:, None])[0]
    shifted = []
    for i in range(3):
        step = np.zeros(3)
        step[i] = h
        plus = numeric_template_derivatives(phi, *(c + step)[:, None])[0]
        minus = numeric_template_derivatives(phi, *(c - step)[:, None])[0]
        shifted.append((plus - minus) / (2 * h))
    order = [1, 2, 3]  # columns of ∂E/∂c11, ∂E/∂c22, ∂E/∂c12
    for i in range(3):
        assert abs(shifted[i][0] - base[order[i]]) <= 1e-5 * np.max(np.abs(base[1:4]))
    for k, (i, j) in enumerate(HESS):
        assert abs(shifted[j][order[i]] - base[4 + k]) <= 1e-5 * np.max(np.abs(base[4:])), (i, j)

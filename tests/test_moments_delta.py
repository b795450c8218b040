"""Moments of φ whose φ'' has δ terms (a jump of φ': hardtanh, ReLU; issue 10, part 1): the δ terms c δ(x - a)
enter the diagonal Price columns as lower-dimensional conditional integrals (symfield.gauss.moments.delta_atoms,
_atom_problems).

References: the jumps of φ' by hand; central
differences of the value column in Σ_ii (the value is a smooth function of Σ: Price's theorem with the δ terms);
the 25-digit mpmath grids (derivations/moments_grid.py, moments_block_grid.py: hardtanh at two, three and four
sites, variance 1e-6 … 1e4, ρ = ±1, -0.6, 0.3) are checked in tests/test_gauss_nested.py."""
import numpy as np
import pytest
import sympy as sp

import symfield as sf
from symfield.errors import NotSupportedError
from symfield.gauss.moments import (NESTED_BUDGET, TOL, _feature_table, delta_atoms, moments, nested_moments,
                                    pair_columns, predicted_leaves)
from symfield.gauss.registry import x

from test_gauss_nested import grid


def _hardtanh():
    return grid.nonlinearity("hardtanh")  # the grid's registration: one compiled module for all tests


def test_delta_atoms_are_the_jumps_of_phi_prime():
    assert delta_atoms(_hardtanh()) == ((-1.0, 1.0), (1.0, -1.0))
    assert delta_atoms(sf.get_phi("relu")) == ((0.0, 1.0),)
    (leaky,) = delta_atoms(sf.get_phi(sp.Lambda(x, sp.Max(x / 10, x))))
    assert leaky == pytest.approx((0.0, 0.9), abs=1e-15)
    assert delta_atoms(grid.nonlinearity("softsign")) == ()   # φ' continuous: x δ(x) = 0
    assert delta_atoms(sf.get_phi("tanh")) == ()
    with pytest.raises(NotSupportedError, match="jumps"):
        delta_atoms(sf.get_phi(sp.Lambda(x, sp.Heaviside(x))))


def _generic(m, v, seed=11):
    A = np.random.default_rng(seed).standard_normal((m, m))
    return v * (A @ A.T / m + 0.3 * np.eye(m))


@pytest.mark.parametrize("m, kk, v", [(2, (1, 2), 1.0), (3, (1, 1, 2), 0.5), (3, (1, 2, 1), 30.0)])
def test_hardtanh_diagonal_columns_are_derivatives_of_the_value(m, kk, v):
    """∂M/∂Σ_ii (central differences of the nested value, step 1e-4 Σ_ii: truncation ~1e-9 of the scale) equals the
    diagonal column ½<g_i'' Π g_j>, whose δ terms are the conditional integrals; generic full-rank covariances."""
    phi = _hardtanh()
    S, k = _generic(m, v), np.array([kk])
    out, err, absval, _ = nested_moments(phi, S[None], k)
    assert np.all(err[0] <= TOL * absval[0])
    for c, (i, j) in enumerate(pair_columns(m), start=1):
        if i != j:
            continue
        h = 1e-4 * S[i, i]
        D = np.zeros((m, m))
        D[i, i] = h
        plus, minus = (nested_moments(phi, (S + s * D)[None], k)[0][0, 0] for s in (1, -1))
        fd = (plus - minus) / (2 * h)
        assert abs(out[0, c] - fd) <= 1e-7 * max(absval[0, c], 1e-300) + 1e-9 * abs(out[0, 0]) / S[i, i], \
            ((i, j), out[0, c], fd)


def test_hardtanh_gauss_hermite_refuses():
    S = _generic(3, 1.0)[None]
    with pytest.raises(NotSupportedError, match="delta terms"):
        moments(_hardtanh(), S, np.ones((1, 3), np.int64), method="quadrature")


def test_hardtanh_four_site_leaves_are_bounded():
    """Piecewise polynomial φ: kinks only, one breakpoint for a site's own factor (nested.level_rule with infinite
    width) — predicted leaves of four generic sites stay below 1e8 at every variance, within NESTED_BUDGET (measured
    here 1.8e6 … 5.6e7; before: 1.6e8 … 3.2e9, refused)."""
    phi = _hardtanh()
    fp, fw, fkink = _feature_table(phi)
    assert fp.tolist() == [-1.0, 1.0] and np.all(np.isinf(fw)) and np.all(fkink)
    need = [predicted_leaves(phi, _generic(4, v)[None], np.ones((1, 4), np.int64))[0] for v in (1e-6, 1.0, 1e4)]
    assert max(need) <= 1e8 <= NESTED_BUDGET, need

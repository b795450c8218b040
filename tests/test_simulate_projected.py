"""Projection sampling (W applied only to the vectors it meets) against real weight matrices."""
import numpy as np
import pytest

import symfield as sf
from symfield.simulate import kernel_moments, prior


@pytest.mark.parametrize("net", [sf.RNN(4, phi="erf", g=1.3, sigma_b2=0.2),
                                 sf.DNN(4, phi="erf", g=[1.3, 0.8, 1.1], sigma_b2=0.2),
                                 sf.RNN(4, phi="tanh", g=1.5, sigma_b2=0.1, bias="fresh", input="every")])
def test_projection_matches_full_weight_matrices_in_distribution(net):
    X = np.random.default_rng(0).standard_normal((2, 3))
    N, S1, S2 = 16, 30000, 12000
    km = kernel_moments(net, X, N, S1, seed=1)
    pr = prior(net, X, N, S2, seed=2)
    for kind in ("aux", "emp"):
        var_pr = pr.var(kind)
        live = var_pr > 1e-12
        z = (km.mean(kind) - pr.mean(kind))[live] / np.sqrt(km.var(kind)[live] / S1 + var_pr[live] / S2)
        assert np.max(np.abs(z)) < 4.5
        ratio = km.var(kind)[live] / var_pr[live]
        assert np.all(np.abs(ratio - 1) < 0.08)   # sampling error of a variance at S2 = 12000: ~1.3 %


def test_linear_dnn_exact_finite_width_variance():
    """Linear φ, σ = 0, one input: C⁽ᵃ⁾ = g² C⁽ᵃ⁻¹⁾ χ²_N/N, so N Var C⁽ᵃ⁾/C̄⁽ᵃ⁾² = N[(1 + 2/N)^(a-1) - 1]."""
    N, S = 8, 200000
    km = kernel_moments(sf.DNN(4, phi="linear", g=1.0, sigma_b2=0.0), np.ones((1, 1)), N, S, seed=3)
    var = np.diag(km.var("aux")[:, :, 0, 0])
    exact = (1 + 2 / N) ** np.arange(4) - 1
    # relative standard error of a sample variance of a (near) chi-square law: ~ sqrt(2/S)(1 + kurtosis)
    np.testing.assert_allclose(var[1:], exact[1:], rtol=0.05)


def test_bad_arguments():
    with pytest.raises(ValueError, match="N must be"):
        kernel_moments(sf.RNN(3), np.ones((1, 1)), 0, 10)
    with pytest.raises(ValueError, match="samples must be"):
        kernel_moments(sf.RNN(3), np.ones((1, 1)), 8, 0)
    with pytest.raises(sf.SpecError, match="non-finite"):
        kernel_moments(sf.RNN(3), np.array([[np.nan]]), 8, 10)

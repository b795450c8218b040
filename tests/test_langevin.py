"""Full-batch Langevin training (symfield.simulate.langevin) against independent references."""
import numpy as np
import pytest

import symfield as sf
from symfield.errors import SpecError
from symfield.simulate import posterior
from symfield.simulate.langevin import langevin

NET = sf.RNN(2, phi="linear", bias="none", scaling="mean_field")
X = np.array([[1.0, 0.3], [0.2, -1.0]])
Y = np.array([[0.0, 1.0], [0.0, -0.5]])
SUP = np.array([[False, True], [False, True]])


def test_prior_stationary_variance_is_the_closed_form():
    """Without data (κ → ∞) the update is θ ← (1 − ε)θ + √(2ε)ξ: stationary variance 1/(1 − ε/2) exactly."""
    eps = 0.4
    s = langevin(NET, X, Y, supervised=SUP, kappa=1e12, N=6, step=eps, samples=400, thin=20, burn=100,
                 chains=2, seed=1)
    assert s.mean("theta2") == pytest.approx(1 / (1 - eps / 2), abs=4 * s.sem("theta2"))
    assert abs(s.mean("theta2") - 1.0) > 8 * s.sem("theta2")   # the discretisation bias is resolved


def test_stationary_outputs_and_kernel_agree_with_hmc():
    """At small ε the trained networks' mean outputs and kernel match the HMC posterior (Metropolis-corrected,
    energy-only acceptance: an error in the gradient would show here)."""
    lg = langevin(NET, X, Y, supervised=SUP, kappa=0.5, N=6, step=0.01, samples=1000, thin=50, burn=1000,
                  chains=4, seed=2)
    hm = posterior(NET, X, Y, supervised=SUP, kappa=0.5, N=6, samples=800, chains=4, seed=3)
    se = np.hypot(lg.sem("f"), hm.sem("f"))
    assert np.all(np.abs(lg.mean("f") - hm.mean("f")) < 4 * se + 0.01)
    assert lg.mean("f")[0, 1] > 0.4 and lg.mean("f")[1, 1] < -0.2      # the data pull the outputs
    np.testing.assert_allclose(lg.C_mean, hm.mean("C"), atol=0.05)


def test_arguments_are_checked():
    with pytest.raises(SpecError, match="step"):
        langevin(NET, X, Y, supervised=SUP, step=2.0)
    with pytest.raises(SpecError, match="N"):
        langevin(NET, X, Y, supervised=SUP, N=0)
    with pytest.raises(SpecError, match="mean_field"):
        langevin(sf.RNN(2, phi="linear"), X, Y, supervised=SUP)

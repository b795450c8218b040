"""Full-batch Langevin training (symfield.simulate.langevin) against independent references."""
import numpy as np
import pytest

import symfield as sf
from symfield.errors import SpecError
from symfield.simulate import posterior
from symfield.simulate import langevin as lg
from symfield.simulate.langevin import langevin
from symfield.simulate.posterior import layout, reduced_inputs
from symfield.task import problem

NET = sf.RNN(2, phi="linear", bias="none", scaling="mean_field")
X = np.array([[1.0, 0.3], [0.2, -1.0]])
Y = np.array([[0.0, 1.0], [0.0, -0.5]])
SUP = np.array([[False, True], [False, True]])


@pytest.mark.parametrize("method", ["fast", "reference"])
def test_prior_stationary_variance_is_the_closed_form(method):
    """Without data (κ → ∞) the update is θ ← (1 − ε)θ + √(2ε)ξ: stationary variance 1/(1 − ε/2) exactly
    (both implementations; their noise streams differ)."""
    eps = 0.4
    s = langevin(NET, X, Y, supervised=SUP, kappa=1e12, N=6, step=eps, samples=400, thin=20, burn=100,
                 chains=2, seed=1, method=method)
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


SPECS = {
    "shared": sf.RNN(4, phi="tanh", g=1.3, sigma_b2=0.2, input="every", scaling="mean_field"),
    "fresh": sf.as_dnn(sf.RNN(4, phi="tanh", g=1.3, sigma_b2=0.2, input="every", scaling="mean_field")),
    "first input, skip": sf.ResNet(4, phi="tanh", scaling="mean_field"),
    # W groups {1, 3}, {2}: runs of steps that are not contiguous; readout groups {1, 4}, {2, 3}
    "interleaved": sf.NetworkSpec(T=4, phi="tanh", input="every", scaling="mean_field", leak=0.5, sigma_b2=0.1,
                                  bias="static", share={"W": [[1, 3], [2]], "v": [[1, 4], [2, 3]]}),
}


@pytest.mark.parametrize("name", list(SPECS))
def test_fast_drift_is_the_reference_gradient(name):
    """The fast step's drift θ + d (BLAS products on pattern-major states) equals the HMC module's energy
    gradient (loops on unit-major states, checked by the HMC test) to rounding, and so does the energy."""
    spec = SPECS[name]
    rng = np.random.default_rng(4)
    T, P, D, N = spec.T, 4, 5, 7
    Xs = rng.standard_normal((P, T, D) if spec.input == "every" else (P, D))
    sup = rng.random((P, T)) < 0.6
    pr = problem(spec, Xs, rng.standard_normal((P, T)), sup, 0.7)
    xr, r = reduced_inputs(pr.X)
    lay, size, _ = layout(spec, N, pr.X.shape[2], r, pr.mask_out)
    mod = lg.load(spec.phi_fn)
    y = np.ascontiguousarray(np.where(sup, pr.Y, 0.0).T)
    s = np.ascontiguousarray(sup.T)
    theta = rng.standard_normal(size)
    g = np.empty(size)
    E = mod.energy_grad(theta, lay, xr, y, s, 0.7, np.empty((T, N, P)), np.empty((T, N, P)), np.empty((T, P)), g)
    d = np.full(size, np.nan)
    Ed = mod.data_grad(theta, lay, xr, y, s, 0.7, *(np.empty(T * P * N) for _ in range(3)), np.empty((T, P)), d)
    np.testing.assert_allclose(theta + d, g, rtol=1e-12, atol=1e-12 * np.abs(g).max())
    assert Ed + 0.5 * theta @ theta == pytest.approx(E, rel=1e-12)


def test_more_patterns_than_the_theory_accepts():
    """The sampler needs no nonsingular input covariance: 5 patterns in D = 2 train (and fit the targets)."""
    rng = np.random.default_rng(5)
    Xs = rng.standard_normal((5, 2))
    Ys = np.zeros((5, 2))
    Ys[:, 1] = np.sign(Xs[:, 0])
    sup = np.zeros((5, 2), dtype=bool)
    sup[:, 1] = True
    s = langevin(NET, Xs, Ys, supervised=sup, kappa=0.1, N=16, samples=20, burn=300, chains=2, seed=0)
    assert s.f.shape == (40, 5, 2) and np.all(np.isfinite(s.f))
    assert np.corrcoef(s.mean("f")[:, 1], Ys[:, 1])[0, 1] > 0.8


def test_method_is_checked():
    with pytest.raises(SpecError, match="method"):
        langevin(NET, X, Y, supervised=SUP, method="slow")


def test_burn_in_in_relaxation_times():
    """burn_times sets the burn-in to at least ⌈burn_times/ε⌉ steps (ε = 0.02, 3 times: 150 > 10), never
    below ``burn``; a negative or non-finite value is refused by name."""
    run = dict(supervised=SUP, kappa=1.0, N=4, step=0.02, samples=2, thin=1, chains=1, seed=0)
    assert langevin(NET, X, Y, burn=10, burn_times=3.0, **run).burn == 150
    assert langevin(NET, X, Y, burn=400, burn_times=3.0, **run).burn == 400
    assert langevin(NET, X, Y, burn=10, **run).burn == 10
    for bad in (-1.0, float("nan"), "5"):
        with pytest.raises(SpecError, match="burn_times"):
            langevin(NET, X, Y, burn=10, burn_times=bad, **run)

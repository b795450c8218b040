"""The trajectory-coordinate posterior sampler (symfield.simulate.trajectory): its energy gradient against
finite differences, its law against the weight-space HMC (symfield.simulate.posterior) and the prior
ensemble, and the spectra of the conditionally drawn hidden weights (theory Sec. 8)."""
import numpy as np
import pytest

import symfield as sf
from symfield.errors import NotSupportedError
from symfield.simulate.trajectory import Model, conditional_weights, posterior_trajectory
from symfield.task import problem

X1 = np.ones((1, 1))


def endpoint(T, y):
    Y = np.zeros((1, T))
    Y[0, -1] = y
    return Y


@pytest.mark.parametrize("make,kw", [(sf.RNN, dict(bias="none")), (sf.DNN, dict(bias="none")),
                                     (sf.RNN, dict(input="every")), (sf.RNN, dict(leak=0.5)),
                                     (sf.DNN, dict())])
def test_energy_gradient_against_central_differences(make, kw):
    rng = np.random.default_rng(4)
    net = make(3, phi="tanh", g=1.2, scaling="mean_field", **kw)
    X = rng.standard_normal((2, 3, 2) if kw.get("input") == "every" else (2, 2))
    pr = problem(net, X, np.array([[0.3, -0.5, 1.0], [0.2, 0.7, -1.1]]), None, 0.7, None)
    m = Model(pr, 9)
    x = m.start(rng)
    E, g = m.energy_grad(x)
    for _ in range(3):
        d = rng.standard_normal(x.size)
        errs = []
        for e in (2e-4, 1e-4):
            fd = (m.energy_grad(x + e * d, False)[0] - m.energy_grad(x - e * d, False)[0]) / (2 * e)
            errs.append(abs(fd - g @ d))
        assert errs[1] < 0.35 * errs[0] + 1e-7 * abs(g @ d)   # central differences converge like e²
        assert errs[1] < 2e-4 * max(1.0, abs(g @ d))


def test_conditional_weights_reproduce_the_trajectory():
    """Z Φ/√N = S exactly for the drawn weights: the forward pass with them gives back the states."""
    pr = problem(sf.RNN(3, phi="erf", bias="none", scaling="mean_field"), X1, endpoint(3, 4.0), None, 1.0, None)
    m = Model(pr, 40)
    rng = np.random.default_rng(2)
    x = m.start(rng)
    (Z,) = conditional_weights(m, x, rng)
    h = m.states(x)
    F = m.fn(h)
    for t in (1, 2):
        assert np.allclose(Z @ F[t - 1, 0] / np.sqrt(40), h[t, 0], atol=1e-10)


def test_prior_law_matches_the_prior_ensemble():
    """Data term switched off (κ = 1e8): the trajectory sampler must sample the finite-N prior (the ln det G
    term of the marginal), compared with direct forward passes of random networks at N = 6."""
    net = sf.RNN(3, phi="erf", g=1.5, bias="none", scaling="mean_field")
    post = posterior_trajectory(net, X1, endpoint(3, 0.0), kappa=1e8, N=6, seed=1, samples=400, burn=50,
                                chains=4, leapfrog=8)
    rng = np.random.default_rng(0)
    N, k = 6, 20000
    c3, c12c23 = [], []
    for _ in range(k // 100):   # direct forward passes: h1 = U x, h_t = g/√N W φ(h_{t-1})
        h1 = rng.standard_normal((100, N))
        W = rng.standard_normal((100, N, N)) * 1.5 / np.sqrt(N)
        f1 = sf.gauss.get_phi("erf").numeric_function()(h1)
        f2 = sf.gauss.get_phi("erf").numeric_function()(np.einsum("kij,kj->ki", W, f1))
        f3 = sf.gauss.get_phi("erf").numeric_function()(np.einsum("kij,kj->ki", W, f2))
        c3.append(np.mean(f3 ** 2, axis=1))
        c12c23.append(np.mean(f1 * f2, axis=1) * np.mean(f2 * f3, axis=1))
    c3, c12c23 = np.concatenate(c3), np.concatenate(c12c23)
    for obs, ref in (("diag", c3), ("C12C23", c12c23)):
        m = post.mean(obs)[-1, 0] if obs == "diag" else post.mean(obs)[0]
        s = post.sem(obs)[-1, 0] if obs == "diag" else post.sem(obs)[0]
        z = (m - ref.mean()) / np.hypot(s, ref.std() / np.sqrt(ref.size))
        assert abs(z) < 4, (obs, m, ref.mean(), z)


def test_same_law_as_the_weight_space_sampler():
    """Above threshold (erf RNN, y = 1.5 y_c, N = 12): c_T, C12·C23 and f̄ of the two samplers agree."""
    net = sf.RNN(3, phi="erf", bias="none", scaling="mean_field")
    Y = endpoint(3, 6.0)
    a = posterior_trajectory(net, X1, Y, N=12, seed=5, samples=300, burn=60, chains=4, leapfrog=8)
    b = sf.simulate.posterior(net, X1, Y, N=12, seed=5, samples=600, burn=100, chains=4, leapfrog=20)
    for obs, idx in (("diag", (-1, 0)), ("C12C23", (0,)), ("f", (0, -1))):
        z = (a.mean(obs)[idx] - b.mean(obs)[idx]) / np.hypot(a.sem(obs)[idx], b.sem(obs)[idx])
        assert abs(z) < 4, (obs, a.mean(obs)[idx], b.mean(obs)[idx], z)


def test_spectra_rnn_outlier_and_dnn_bulk():
    """Theory Sec. 8 at N = 160: the erf RNN deep in the broken phase has one outlier of W near the learned
    eigenvalue of the theory, the rest in the disc |λ| <= g; every DNN layer stays in the bulk."""
    y = 8.0   # about 2 y_c (y_c = 4.09, derivations/feature_learning_nonlinear.py)
    fl = sf.feature_learning(sf.RNN(3, phi="erf", bias="none", scaling="mean_field"), X1, endpoint(3, y))
    lam = float(np.abs(fl.learned_eigenvalues()).max())
    assert lam > 1.5
    N = 160
    for make in (sf.RNN, sf.DNN):
        post = posterior_trajectory(make(3, phi="erf", bias="none", scaling="mean_field"), X1, endpoint(3, y), N=N,
                                    seed=2, samples=2, burn=60, chains=2, eig_samples=1)
        for W in post.W_last:
            ev = np.sort(np.abs(np.linalg.eigvals(W)))[::-1]
            edge = 1.0 + 3.0 / np.sqrt(N)
            if make is sf.RNN:
                assert abs(ev[0] - lam) < 0.2, (ev[0], lam)
                assert ev[1] < edge
            else:
                assert ev[0] < edge


def test_refuses_what_it_does_not_cover():
    net = sf.RNN(3, phi="erf", bias="none", scaling="mean_field")
    with pytest.raises(NotSupportedError, match="N > T"):
        posterior_trajectory(net, X1, endpoint(3, 1.0), N=3)
    with pytest.raises(sf.errors.SpecError):
        posterior_trajectory(net, X1, endpoint(3, 1.0), N=0)

"""Finite-width posterior samplers: gradient, exact small cases, weight space = kernel space, 1/N rate."""
import numpy as np
import pytest
from scipy import integrate

import symfield as sf
from symfield.simulate import posterior_hmc
from symfield.simulate.posterior import layout, posterior, reduced_inputs
from symfield.theory.posterior_kernel import kernel_expectation, kernel_posterior
from symfield.spec import SpecError
from symfield.theory.feature_learning import feature_learning
from symfield.theory.feature_learning.problem import problem

from linear_mup import X1, endpoint, rnn


@pytest.mark.parametrize("arch,phi,inp,bias,readout", [("rnn", "tanh", "every", "static", "shared"),
                                                       ("dnn", "erf", "first", "fresh", "untied"),
                                                       ("rnn", "linear", "first", "none", "untied")])
def test_energy_gradient_against_finite_differences(arch, phi, inp, bias, readout):
    rng = np.random.default_rng(0)
    net = sf.NetworkSpec(arch, 3, phi=phi, input=inp, bias=bias, sigma_b2=0.3, g=1.2, g_in=0.8, sigma_v=1.1,
                         scaling="mean_field")
    X = rng.standard_normal((2, 3, 4)) if inp == "every" else rng.standard_normal((2, 4))
    Y = rng.standard_normal((2, 3))
    sup = np.array([[1, 0, 1], [0, 1, 1]], bool)
    pr = problem(net, X, Y, sup, 0.5, readout)
    N = 7
    xr, r = reduced_inputs(pr.X)
    lay, size, _ = layout(pr.spec, N, pr.X.shape[2], r, pr.mask_out)
    mod = posterior_hmc.load(pr.spec.phi_fn)
    y = np.ascontiguousarray(pr.Y.T)
    sp_ = np.ascontiguousarray(pr.supervised.T)
    bufs = lambda: (np.empty((3, N, 2)), np.empty((3, N, 2)), np.empty((3, 2)))
    theta = rng.standard_normal(size)
    g = np.empty(size)
    mod.energy_grad(theta, lay, xr, y, sp_, 0.5, *bufs(), g)
    h = 1e-6
    for k in rng.choice(size, 25, replace=False):
        e = np.zeros(size)
        e[k] = h
        gg = np.empty(size)
        fd = (mod.energy_grad(theta + e, lay, xr, y, sp_, 0.5, *bufs(), gg)
              - mod.energy_grad(theta - e, lay, xr, y, sp_, 0.5, *bufs(), gg)) / (2 * h)
        assert g[k] == pytest.approx(fd, rel=1e-5, abs=1e-6)


def test_forward_matches_the_reference_network_equations():
    """kernel_and_outputs == h_t = W φ(h_{t-1}) + U x evaluated directly from the same weights."""
    rng = np.random.default_rng(1)
    net = sf.RNN(3, phi="tanh", bias="none", scaling="mean_field", g=1.3)
    X = rng.standard_normal((2, 5))
    pr = problem(net, X, rng.standard_normal((2, 3)), None, 1.0)
    N = 6
    xr, r = reduced_inputs(pr.X)
    lay, size, _ = layout(pr.spec, N, 5, r, pr.mask_out)
    theta = rng.standard_normal(size)
    C, f = np.empty((6, 6)), np.empty((3, 2))
    posterior_hmc.load(pr.spec.phi_fn).kernel_and_outputs(theta, lay, xr, C, f)
    U = theta[:N * r].reshape(N, r) / np.sqrt(5)
    W = theta[lay.w_off:lay.w_off + N * N].reshape(N, N) * 1.3 / np.sqrt(N)
    v = theta[lay.v_off:lay.v_off + N]
    h = U @ xr[:, 0].T
    states = [h]
    for _ in range(2):
        h = W @ np.tanh(h)
        states.append(h)
    F = np.tanh(np.stack(states))  # (T, N, P)
    np.testing.assert_allclose(f, np.einsum("i,tim->tm", v, F) / N, atol=1e-12)
    Fl = F.transpose(0, 2, 1).reshape(6, N)
    np.testing.assert_allclose(C, Fl @ Fl.T / N, atol=1e-12)
    np.testing.assert_allclose(xr[:, 0] @ xr[:, 0].T, X @ X.T, atol=1e-10)  # the reduced basis is exact


def test_hmc_exact_two_parameter_posterior():
    """T = 1, N = 1: p(u, v) ∝ exp(-(y - uv)²/(2κ) - (u² + v²)/2); moments by 2-D quadrature."""
    y, kappa = 2.0, 0.5
    post = posterior(sf.RNN(1, phi="linear", bias="none", scaling="mean_field"), X1, np.array([[y]]),
                     kappa=kappa, N=1, seed=3, samples=1500, burn=200, chains=4, leapfrog=10, step=0.3)
    dens = lambda u, v: np.exp(-(y - u * v) ** 2 / (2 * kappa) - (u * u + v * v) / 2)
    Z = integrate.dblquad(dens, -8, 8, -8, 8)[0]
    Ef = integrate.dblquad(lambda u, v: u * v * dens(u, v), -8, 8, -8, 8)[0] / Z
    Eh2 = integrate.dblquad(lambda u, v: u * u * dens(u, v), -8, 8, -8, 8)[0] / Z
    assert abs(post.mean("f")[0, 0] - Ef) < 4 * post.sem("f")[0, 0]
    assert abs(post.mean("C")[0, 0, 0, 0] - Eh2) < 4 * post.sem("C")[0, 0, 0, 0]


@pytest.mark.parametrize("y", [2.0, 4.5])
def test_weight_space_hmc_equals_exact_kernel_posterior_at_same_width(y):
    """HMC of the network weights and Metropolis on the exact kernel density agree at N = 48."""
    N, net, Y = 48, rnn(3), endpoint(3, y)
    hp = posterior(net, X1, Y, N=N, seed=1, samples=300, burn=100, chains=4, leapfrog=20)
    kp = kernel_posterior(net, X1, Y, N=N, seed=1, samples=800, chains=32, burn=800, thin=5)
    assert hp.acceptance > 0.6
    for obs in ("diag", "C12C23"):
        d = hp.mean(obs) - kp.mean(obs)
        z = d / np.sqrt(hp.sem(obs) ** 2 + kp.sem(obs) ** 2)
        assert np.all(np.abs(z) < 4.5), (obs, z)
    d = hp.mean("f")[0, 2] - kp.mean("f")[0, 2]
    assert abs(d) < 4.5 * np.hypot(hp.sem("f")[0, 2], kp.sem("f")[0, 2])


def test_kernel_posterior_metropolis_equals_quadrature():
    N, net, Y = 1000, rnn(3), endpoint(3, 4.5)
    kp = kernel_posterior(net, X1, Y, N=N, seed=2, samples=600, chains=32, burn=600, thin=5)
    q = kernel_expectation(net, X1, Y, {"diag": lambda C, f: np.einsum("kii->ki", C)}, N=N, nodes=7)
    z = (kp.mean("diag")[:, 0] - q["diag"]) / kp.sem("diag")[:, 0]
    assert np.all(np.abs(z) < 4.5)


@pytest.mark.parametrize("y", [2.0, 4.5])
def test_exact_finite_width_posterior_approaches_saddle_point_as_one_over_N(y):
    """|E_N[obs] − obs*| ∝ 1/N (log–log slope −1) for the kernel diagonal, C12·C23 and the mean output,
    below (y = 2) and above (y = 4.5) the threshold y_c = 3.18."""
    net, Y = rnn(3), endpoint(3, y)
    fl = feature_learning(net, X1, Y)
    C = fl.C_sites
    obs = {"c3": lambda C, f: C[:, 2, 2], "c12c23": lambda C, f: C[:, 0, 1] * C[:, 1, 2], "f": lambda C, f: f[:, 2]}
    star = {"c3": C[2, 2], "c12c23": C[0, 1] * C[1, 2], "f": fl.predict()[0, 2]}
    Ns = np.array([1000, 2000, 4000, 8000])
    dev = {k: [] for k in obs}
    for N in Ns:
        r = kernel_expectation(net, X1, Y, obs, N=int(N), nodes=7, mode=C)
        for k in obs:
            dev[k].append(r[k] - star[k])
    for k in obs:
        d = np.abs(dev[k])
        slope = np.polyfit(np.log(Ns), np.log(d), 1)[0]
        assert slope == pytest.approx(-1.0, abs=0.1), (k, slope)


def test_posterior_records_weight_spectrum_and_rejects_bad_input():
    net = rnn(3)
    post = posterior(net, X1, endpoint(3, 2.0), N=32, seed=0, samples=4, burn=2, chains=1, eig_samples=2)
    assert post.W_top.shape == (2, 1) and np.all(post.W_top > 0)
    assert post.C.shape == (4, 3, 3, 1, 1) and post.f.shape == (4, 1, 3)
    dn = posterior(sf.DNN(3, phi="linear", bias="none", scaling="mean_field"), X1, endpoint(3, 2.0), N=32,
                   samples=2, burn=0, chains=1, eig_samples=2)
    assert dn.W_top.shape[1] == 2  # one top |eigenvalue| per layer matrix
    with pytest.raises(SpecError, match="N must be a positive integer"):
        posterior(net, X1, endpoint(3, 1.0), N=0)
    with pytest.raises(SpecError, match="samples"):
        posterior(net, X1, endpoint(3, 1.0), N=16, samples=0)
    with pytest.raises(SpecError, match="kappa"):
        posterior(net, X1, endpoint(3, 1.0), N=16, kappa=-1.0)

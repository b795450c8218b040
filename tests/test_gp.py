"""Gaussian-process regression: the formulas and the RNN/DNN identity at a single readout."""
import numpy as np
import pytest

import symfield as sf


def test_gp_predict_matches_direct_linear_algebra():
    rng = np.random.default_rng(0)
    A = rng.standard_normal((7, 7))
    K = A @ A.T + 0.1 * np.eye(7)
    train, test = np.arange(5), np.arange(5, 7)
    y = rng.standard_normal(5)
    pred = sf.gp.gp_predict(K[np.ix_(train, train)], K[np.ix_(test, train)], np.diag(K)[test], y, noise=0.3)
    inv = np.linalg.inv(K[np.ix_(train, train)] + 0.3 * np.eye(5))
    np.testing.assert_allclose(pred.mean, K[np.ix_(test, train)] @ inv @ y, rtol=1e-10)
    np.testing.assert_allclose(pred.var, np.diag(K)[test] - np.einsum("ij,jk,ik->i", K[np.ix_(test, train)], inv,
                                                                          K[np.ix_(test, train)]), rtol=1e-10)


def test_gp_interpolates_without_noise():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((6, 4))
    K = sf.gp.output_kernel(sf.DNN(3, phi="erf", g=1.5, sigma_b2=0.1), X)
    pred = sf.gp.gp_predict(K, K, np.diag(K), np.arange(6.0))
    np.testing.assert_allclose(pred.mean, np.arange(6.0), atol=1e-7)
    np.testing.assert_allclose(pred.var, 0, atol=1e-7)


@pytest.mark.parametrize("phi", ["erf", "relu", "tanh"])
@pytest.mark.parametrize("bias", ["static", "fresh"])
def test_rnn_readout_at_T_equals_dnn_at_depth_T(phi, bias):
    rng = np.random.default_rng(2)
    Xtr, Xte = rng.standard_normal((8, 5)), rng.standard_normal((4, 5))
    y = np.sin(Xtr[:, 0])
    kw = dict(phi=phi, g=1.3, g_in=1.0, sigma_b2=0.1, sigma_out2=0.05, g_out=1.2)
    r = sf.gp.predict(sf.RNN(7, bias=bias, **kw), Xtr, y, Xte, noise=0.01)
    d = sf.gp.predict(sf.DNN(7, **kw), Xtr, y, Xte, noise=0.01)
    np.testing.assert_allclose(r.mean, d.mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(r.var, d.var, rtol=1e-12, atol=1e-14)


def test_output_kernel_readout_of_h_and_noise_option():
    X = np.random.default_rng(3).standard_normal((3, 2))
    net = sf.RNN(4, phi="erf", readout="h", g_out=2.0, sigma_out2=0.5)
    K = sf.gp.output_kernel(net, X, readout_time=2)
    np.testing.assert_allclose(K, 0.5 + 4.0 * sf.mean_field(net, X).block(1, 1))
    p0 = sf.gp.gp_predict(K[:2, :2], K[2:, :2], np.diag(K)[2:], np.ones(2), noise=0.2)
    p1 = sf.gp.gp_predict(K[:2, :2], K[2:, :2], np.diag(K)[2:], np.ones(2), noise=0.2, include_noise=True)
    np.testing.assert_allclose(p1.var - p0.var, 0.2)

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


# ------------------------------------------------------------------ readouts (independent: mean_field(...).C)
def _phi_expect_reference(spec, C, a, b):
    """<φ(z_a) φ(z_b)> from the dense C by the dual kernel (independent of the compiled kernel map)."""
    from symfield.gauss.dual import dual_kernel
    va, vb = np.diag(C[a, a]), np.diag(C[b, b])
    return dual_kernel(spec.phi_fn).pair(va[:, None], vb[None, :], C[a, b])


@pytest.mark.parametrize("arch", ["RNN", "DNN"])
def test_pooled_kernel_is_the_mean_of_the_time_blocks(arch):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((5, 4, 3))
    net = getattr(sf, arch)(4, phi="erf", g=1.4, sigma_b2=0.2, input="every", readout="h", g_out=1.3,
                            sigma_out2=0.1)
    C = sf.mean_field(net, X).C
    Mout = net.readout_mask()
    expected = np.mean([Mout[a, b] * (0.1 + 1.69 * C[a, b]) for a in range(4) for b in range(4)], axis=0)
    np.testing.assert_allclose(sf.gp.output_kernel(net, X, readout="pooled"), expected, rtol=1e-12, atol=1e-14)
    phi = net.with_(readout="phi")
    expected = np.mean([Mout[a, b] * (0.1 + 1.69 * _phi_expect_reference(phi, C, a, b))
                        for a in range(4) for b in range(4)], axis=0)
    np.testing.assert_allclose(sf.gp.output_kernel(phi, X, readout="pooled"), expected, rtol=1e-6, atol=1e-8)


def test_rnn_and_dnn_pooled_kernels_differ_but_last_step_agrees():
    rng = np.random.default_rng(5)
    X = rng.standard_normal((6, 5, 3))
    kw = dict(phi="tanh", g=1.5, sigma_b2=0.1, input="every")
    r, d = sf.RNN(5, **kw), sf.DNN(5, **kw)
    np.testing.assert_allclose(sf.gp.output_kernel(r, X), sf.gp.output_kernel(d, X), rtol=1e-12)
    Kr, Kd = sf.gp.output_kernel(r, X, readout="pooled"), sf.gp.output_kernel(d, X, readout="pooled")
    assert np.abs(Kr - Kd).max() > 0.05 * np.abs(Kd).max()


@pytest.mark.parametrize("readout", [2, [1, 3]])
def test_chosen_and_several_steps_against_mean_field(readout):
    rng = np.random.default_rng(6)
    X = rng.standard_normal((4, 3))
    net = sf.RNN(4, phi="erf", g=1.2, sigma_b2=0.3, g_out=0.8, sigma_out2=0.05)
    C = sf.mean_field(net, X).C
    times = [readout] if isinstance(readout, int) else readout
    ref = np.block([[0.05 + 0.64 * _phi_expect_reference(net, C, a, b) for b in times] for a in times])
    np.testing.assert_allclose(sf.gp.output_kernel(net, X, readout=readout), ref, rtol=1e-6, atol=1e-9)
    # the same blocks read from a precomputed MeanField
    np.testing.assert_allclose(sf.gp.output_kernel(net, X, readout=readout, mf=sf.mean_field(net, X)), ref,
                               rtol=1e-6, atol=1e-9)


def test_needed_blocks_from_masks():
    assert sf.gp.needed_blocks(sf.RNN(5), [4]).sum() == 5          # equal-time closure: the diagonal only
    need = sf.gp.needed_blocks(sf.RNN(5), [3, 4])
    assert need[3, 4] and need[2, 3] and need[0, 1] and not need[0, 4]
    assert not sf.gp.needed_blocks(sf.DNN(5), [3, 4])[3, 4]      # untied readout, fresh weights: no cross block
    shared_v = sf.NetworkSpec(T=5, share={"v": "shared"}, bias="static", sigma_b2=0.1)
    need = sf.gp.needed_blocks(shared_v, [3, 4])
    assert need[3, 4] and not need[2, 3]                          # Σdet (static bias) only, W fresh


def test_several_steps_predict_with_unsupervised_entries():
    rng = np.random.default_rng(7)
    Xtr, Xte = rng.standard_normal((6, 3)), rng.standard_normal((2, 3))
    net = sf.RNN(3, phi="erf", g=1.3, sigma_b2=0.2)
    Y = rng.standard_normal((6, 2))
    Y[:3, 0] = np.nan
    pred = sf.gp.predict(net, Xtr, Y, Xte, noise=0.1, readout=[1, 2], return_cov=True)
    K = sf.gp.output_kernel(net, np.concatenate([Xtr, Xte]), readout=[1, 2])
    rows = [3, 4, 5, 8, 9, 10, 11, 12, 13]    # time-major: time 1 patterns 3..5, time 2 patterns 0..5
    test = [6, 7, 14, 15]
    A = K[np.ix_(rows, rows)] + 0.1 * np.eye(len(rows))
    y = np.concatenate([Y[3:, 0], Y[:, 1]])
    mean = K[np.ix_(test, rows)] @ np.linalg.solve(A, y)
    cov = K[np.ix_(test, test)] - K[np.ix_(test, rows)] @ np.linalg.solve(A, K[np.ix_(rows, test)])
    np.testing.assert_allclose(pred.mean, mean.reshape(2, 2).T, rtol=1e-10)
    np.testing.assert_allclose(pred.cov, cov, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(pred.var, np.diag(cov).reshape(2, 2).T, rtol=1e-9, atol=1e-12)


def test_bad_readouts_raise_naming_readout():
    X = np.ones((2, 2))
    for bad in ("first", 5, [1, 1], [], 1.5, True):
        with pytest.raises(sf.SpecError, match="readout"):
            sf.gp.output_kernel(sf.RNN(3), X, readout=bad)
    with pytest.raises(sf.SpecError, match="readout= or time="):
        sf.gp.output_kernel(sf.RNN(3), X, readout="pooled", time=1)


# ------------------------------------------------------------------ kernel gradients (finite differences)
@pytest.mark.parametrize("phi,arch,readout", [("erf", "RNN", "pooled"), ("relu", "RNN", "last"),
                                              ("tanh", "DNN", "pooled"), ("erf", "DNN", [1, 2])])
def test_kernel_gradient_matches_finite_differences(phi, arch, readout):
    X = np.random.default_rng(8).standard_normal((4, 3, 2))
    net = getattr(sf, arch)(3, phi=phi, g=1.3, sigma_b2=0.2, g_in=0.9, input="every", sigma_out2=0.1)
    K, dK = sf.gp.readout_kernel(net, X, readout, grad=True)
    np.testing.assert_allclose(K, sf.gp.output_kernel(net, X, readout=readout), rtol=1e-12, atol=1e-15)
    h = 1e-5
    for k, name in enumerate(sf.gp.HYPERPARAMETERS):   # d/dlog θ by central differences in log θ
        v = getattr(net, name)
        fd = (sf.gp.readout_kernel(net.with_(**{name: v * np.exp(h)}), X, readout)
              - sf.gp.readout_kernel(net.with_(**{name: v * np.exp(-h)}), X, readout)) / (2 * h)
        np.testing.assert_allclose(dK[..., k], fd, rtol=0, atol=1e-7 * np.abs(fd).max())


def test_expect_derivatives_against_the_dual_kernel_by_price():
    from symfield.gauss.dual import dual_kernel
    rng = np.random.default_rng(9)
    d1, d2 = rng.uniform(0.5, 2, 3), rng.uniform(0.5, 2, 4)
    c12 = 0.6 * np.sqrt(np.outer(d1, d2)) * rng.uniform(-1, 1, (3, 4))
    erf = sf.get_phi("erf")
    D = sf.gp.expect_derivatives(erf, d1, d2, c12)
    dual = dual_kernel(erf)
    np.testing.assert_allclose(D[0], 0.5 * dual.pair_block(d1, d2, c12, orders=(2, 0)), atol=1e-6)
    np.testing.assert_allclose(D[2], dual.pair_block(d1, d2, c12, orders=(1, 1)), atol=1e-6)

"""symfield.sklearn: the NNGP kernel inside scikit-learn's estimators (optional extra)."""
import numpy as np
import pytest

import symfield as sf

pytest.importorskip("sklearn")
from sklearn.base import clone  # noqa: E402
from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor  # noqa: E402
from sklearn.gaussian_process.kernels import RBF  # noqa: E402
from sklearn.kernel_ridge import KernelRidge  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

from symfield.sklearn import NNGPKernel, flatten_sequences, stack_readouts  # noqa: E402

T, D = 4, 3
NET = sf.RNN(T, phi="erf", g=1.2, sigma_b2=0.1, g_in=1.0, input="every")


def _data(P, seed=0):
    rng = np.random.default_rng(seed)
    X3 = rng.standard_normal((P, T, D))
    y = np.tanh(X3[:, :, 0].sum(axis=1))
    return X3, y


def test_flattened_sequences_give_the_gp_kernel():
    X3, _ = _data(6)
    for readout in ("last", 1, "pooled"):
        k = NNGPKernel(NET, readout=readout)
        np.testing.assert_allclose(k(flatten_sequences(X3)), sf.gp.output_kernel(NET, X3, readout=readout),
                                   rtol=1e-13)
        np.testing.assert_allclose(k.diag(flatten_sequences(X3)), np.diag(k(flatten_sequences(X3))))
    X = flatten_sequences(X3)
    np.testing.assert_allclose(k(X[:2], X[2:]), k(X)[:2, 2:], rtol=1e-13)
    with pytest.raises(sf.SpecError, match="T·D"):
        k(X[:, :-1])


def test_theta_gradient_matches_finite_differences():
    X = flatten_sequences(_data(5)[0])
    k = NNGPKernel(NET, readout="pooled")
    assert [h.name for h in k.hyperparameters] == ["g", "g_in", "sigma_b2"]
    K, dK = k(X, eval_gradient=True)
    assert dK.shape == (5, 5, 3)
    h = 1e-6
    for i in range(3):
        step = np.zeros(3)
        step[i] = h
        fd = (k.clone_with_theta(k.theta + step)(X) - k.clone_with_theta(k.theta - step)(X)) / (2 * h)
        np.testing.assert_allclose(dK[..., i], fd, rtol=0, atol=1e-7 * np.abs(fd).max())


def _fd_errors(k, X, h=1e-5):
    """max |dK - central FD| / max |FD| per free hyperparameter (FD of the kernel values in log θ)."""
    K, dK = k(X, eval_gradient=True)
    np.testing.assert_allclose(K, k(X), rtol=1e-12, atol=1e-14)   # the tangent path gives the same values
    errors = []
    for i in range(len(k.theta)):
        step = np.zeros(len(k.theta))
        step[i] = h
        fd = (k.clone_with_theta(k.theta + step)(X) - k.clone_with_theta(k.theta - step)(X)) / (2 * h)
        errors.append(np.abs(dK[..., i] - fd).max() / np.abs(fd).max())
    return np.array(errors)


SKIP_NETS = [sf.ResNet(T, phi="erf", g=1.3, sigma_b2=0.2, r=0.7),                     # skip 1, input first
             sf.RNN(T, phi="relu", g=1.1, sigma_b2=0.1, leak=0.5, input="every"),        # leaky RNN
             sf.NetworkSpec(T=T, phi="erf", leak=[0.5, 0.9, 0.3], g=1.2, sigma_b2=0.3,   # pairwise-shared W
                            share={"W": [[1, 2], [3]]}, input="every")]


@pytest.mark.parametrize("net", SKIP_NETS, ids=["resnet", "leaky-rnn", "custom"])
def test_skip_network_gradients_match_finite_differences(net):
    X3, _ = _data(4, seed=6)
    X3[1] = 2.0 * X3[0]                                       # collinear patterns: ρ = 1 off the diagonal
    X = flatten_sequences(X3) if net.input == "every" else X3[:, 0]
    for readout in ("last", "pooled"):
        k = NNGPKernel(net, readout=readout)
        assert [h.name for h in k.hyperparameters if not h.fixed] == ["g", "g_in", "sigma_b2"]
        assert _fd_errors(k, X).max() < 1e-7


@pytest.mark.parametrize("net", [sf.DNN(3, phi="erf", g=1.2, sigma_b2=0.2, input="every", readout="h", g_out=1.3,
                                        sigma_out2=0.2),
                                 sf.RNN(3, phi="erf", g=1.2, sigma_b2=0.2, scaling="mean_field"),
                                 sf.ResNet(3, phi="linear", g=1.2, sigma_b2=0.2, input="every", bias="none")],
                         ids=["dnn-readout-h", "rnn-mean-field-scaling", "resnet-linear-no-bias"])
def test_other_declarations_have_gradients(net):
    """A sample of a sweep over RNN/DNN/ResNet x input x bias x readout x scaling x φ (worst 9.7e-9)."""
    X3, _ = _data(3, seed=9)
    X3[1] = -X3[0]                                            # antipodal patterns: ρ = -1
    assert _fd_errors(NNGPKernel(net, readout="pooled"), flatten_sequences(X3) if net.input == "every"
                      else X3[:, 0]).max() < 1e-7


@pytest.mark.parametrize("g, sigma_b2, g_in, least", [(3.5, 2.0, 1.0, 9.0), (5.0, 2.0, 5.0, 40.0)])
def test_tanh_gradients_at_large_variance_and_collinear_inputs(g, sigma_b2, g_in, least):
    """tanh (no closed form: dual kernel, Price derivatives) at the upper default bounds: variances up to
    11 (where the dual kernel's Mehler sum is accepted near ρ = 1; at its default tol 1e-6 this check gives
    4e-6) and 224 (graded panels), patterns collinear (ρ → 1) and identical (ρ = 1) as well as the diagonal."""
    rng = np.random.default_rng(8)
    X = rng.standard_normal((3, D))
    X[1], X[2] = 2.0 * X[0], X[0]
    net = sf.DNN(2, phi="tanh", g=g, sigma_b2=sigma_b2, g_in=g_in)
    k = NNGPKernel(net)
    assert (np.asarray(k.bounds)[:, 1] >= np.log([g, g_in, sigma_b2]) - 1e-12).all()   # inside the bounds
    assert sf.mean_field(net, X).variances.max() > least
    assert _fd_errors(k, X).max() < 1e-7


def test_an_accuracy_the_dual_kernel_cannot_certify_is_a_named_error():
    X = np.random.default_rng(8).standard_normal((2, D))
    k = NNGPKernel(sf.DNN(2, phi="tanh", g=5.0, sigma_b2=2.0, g_in=5.0), tol=1e-13)
    with pytest.raises(sf.AccuracyError, match="cannot reach"):
        k(X, eval_gradient=True)
    with pytest.raises(sf.SpecError, match="tol"):
        NNGPKernel(sf.DNN(2, phi="tanh"), tol=0.1)


def test_gpr_fits_a_resnet_kernel():
    X3, y = _data(25, seed=7)
    X = X3[:, 0]
    k = NNGPKernel(sf.ResNet(T, phi="erf", g=2.2, sigma_b2=1e-3, g_in=0.3, r=0.8), readout="last")
    gpr = GaussianProcessRegressor(kernel=k, alpha=1e-2).fit(X, np.tanh(X.sum(axis=1)) + 1.0)  # offset: σ_b² > 0
    fitted = gpr.log_marginal_likelihood_value_
    assert fitted > gpr.log_marginal_likelihood(k.theta) + 1.0
    grid = [gpr.log_marginal_likelihood(np.log([g, gin, s])) for g in (0.3, 1.0, 2.0)
            for gin in (0.3, 1.0, 2.4) for s in (1e-3, 0.1, 1.0)]
    assert fitted >= max(grid) - 1e-6


def test_params_clone_theta_and_fixed_hyperparameters():
    k = NNGPKernel(NET, readout="pooled", g_bounds=(0.5, 2.0))
    c = clone(k)
    assert c == k and c.get_params()["readout"] == "pooled" and c.g == 1.2
    np.testing.assert_allclose(k.theta, np.log([1.2, 1.0, 0.1]))
    np.testing.assert_allclose(k.bounds[0], np.log([0.5, 2.0]))
    no_bias = NNGPKernel(sf.RNN(T, phi="erf", input="every"))       # sigma_b2 = 0: held fixed
    assert [h.name for h in no_bias.hyperparameters if not h.fixed] == ["g", "g_in"]
    assert no_bias(np.ones((2, T * D)), eval_gradient=True)[1].shape == (2, 2, 2)
    from sklearn.gaussian_process.kernels import ConstantKernel
    scaled = clone(ConstantKernel(2.0) * k)         # an output amplitude composed by scikit-learn
    K, dK = scaled(np.ones((2, T * D)), eval_gradient=True)
    np.testing.assert_allclose(K, 2.0 * k(np.ones((2, T * D))))
    assert dK.shape == (2, 2, 4)
    with pytest.raises(sf.NotSupportedError, match="g"):
        NNGPKernel(sf.NetworkSpec(T=3, g=[1.0, 2.0]))


def test_log_marginal_likelihood_and_covariance_against_sklearn():
    rng = np.random.default_rng(1)
    X, y, Xs = rng.standard_normal((12, 2)), rng.standard_normal(12), rng.standard_normal((4, 2))
    rbf = RBF(0.7)                                   # a fixed kernel: scikit-learn's own formulas are the reference
    gpr = GaussianProcessRegressor(kernel=rbf, alpha=0.05, optimizer=None).fit(X, y)
    assert sf.gp.gp_log_marginal_likelihood(rbf(X), y, 0.05) == pytest.approx(gpr.log_marginal_likelihood_value_,
                                                                             rel=1e-10)
    mean, cov = gpr.predict(Xs, return_cov=True)
    pred = sf.gp.gp_predict(rbf(X), rbf(Xs, X), rbf.diag(Xs), y, 0.05, K_test=rbf(Xs))
    np.testing.assert_allclose(pred.mean, mean, rtol=1e-9)
    np.testing.assert_allclose(pred.cov, cov, rtol=1e-8, atol=1e-12)
    # the network's GP through the sklearn kernel (held fixed) and through gp.predict
    X3, y3 = _data(10, seed=2)
    k = NNGPKernel(NET, readout="pooled")
    gpr = GaussianProcessRegressor(kernel=k, alpha=0.01, optimizer=None).fit(flatten_sequences(X3[:7]), y3[:7])
    mean, cov = gpr.predict(flatten_sequences(X3[7:]), return_cov=True)
    pred = sf.gp.predict(NET, X3[:7], y3[:7], X3[7:], noise=0.01, readout="pooled", return_cov=True)
    np.testing.assert_allclose(pred.mean, mean, rtol=1e-9)
    np.testing.assert_allclose(pred.cov, cov, rtol=1e-7, atol=1e-12)
    assert sf.gp.log_marginal_likelihood(NET, X3[:7], y3[:7], noise=0.01, readout="pooled") == \
        pytest.approx(gpr.log_marginal_likelihood_value_, rel=1e-10)


def test_gpr_fits_the_hyperparameters_by_marginal_likelihood():
    X3, y = _data(30, seed=3)
    X = flatten_sequences(X3)
    k = NNGPKernel(NET.with_(g=0.6, sigma_b2=0.5), readout="pooled")
    gpr = GaussianProcessRegressor(kernel=k, alpha=1e-2).fit(X, y)
    fitted = gpr.log_marginal_likelihood_value_
    assert fitted > gpr.log_marginal_likelihood(k.theta) + 1.0
    assert gpr.kernel_.g != 0.6 and gpr.kernel_.sigma_b2 != 0.5
    # independent of the optimiser and of the gradient: no point of a grid is better
    grid = [gpr.log_marginal_likelihood(np.log([g, gin, s])) for g in (0.3, 0.8, 1.5, 2.4)
            for gin in (0.3, 1.0, 2.4) for s in (1e-3, 0.1, 1.0)]
    assert fitted >= max(grid) - 1e-6


def test_classifier_svc_and_kernel_ridge_accept_the_kernel():
    X3, y = _data(40, seed=4)
    X, labels = flatten_sequences(X3), (y > 0).astype(int)
    k = NNGPKernel(NET, readout="last")
    tr, te = slice(0, 30), slice(30, 40)
    gpc = GaussianProcessClassifier(kernel=k).fit(X[tr], labels[tr])
    assert gpc.score(X[tr], labels[tr]) > 0.8
    svc = SVC(kernel=k, C=10.0).fit(X[tr], labels[tr])
    pre = SVC(kernel="precomputed", C=10.0).fit(k(X[tr]), labels[tr])
    np.testing.assert_array_equal(svc.predict(X[te]), pre.predict(k(X[te], X[tr])))
    kr = KernelRidge(kernel=k, alpha=0.1).fit(X[tr], y[tr])
    K = sf.gp.output_kernel(NET, X3)
    expected = K[30:, :30] @ np.linalg.solve(K[:30, :30] + 0.1 * np.eye(30), y[tr])
    np.testing.assert_allclose(kr.predict(X[te]), expected, rtol=1e-8)


def test_several_readouts_as_stacked_rows():
    X3, y = _data(8, seed=5)
    Y = np.column_stack([np.sin(X3[:, 1, 0]), y])
    Y[:4, 0] = np.nan                                      # time 1 unsupervised for the first patterns
    rows, targets = stack_readouts(X3[:6], Y[:6])
    k = NNGPKernel(NET, readout=[1, 3])
    gpr = GaussianProcessRegressor(kernel=k, alpha=0.01, optimizer=None).fit(rows, targets)
    test_rows = np.column_stack([np.repeat(flatten_sequences(X3[6:]), 2, axis=0), np.tile([0.0, 1.0], 2)])
    pred = sf.gp.predict(NET, X3[:6], Y[:6], X3[6:], noise=0.01, readout=[1, 3])
    np.testing.assert_allclose(gpr.predict(test_rows), pred.mean.ravel(), rtol=1e-9)

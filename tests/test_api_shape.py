"""One API shape (docs/conventions.md, "API shape"): signatures, result attributes, errors, deprecated names."""
import inspect
import math
import warnings

import numpy as np
import pytest

import symfield as sf
from symfield import api, errors
from symfield.theory.feature_learning import closed_form_threshold, signal_scan
from linear_mup import X1, endpoint, rnn

# entry point -> its positional head (data and required sizes); everything else is keyword-only
ENTRY_POINTS = {
    sf.mean_field: ("spec", "X"),
    sf.one_loop: ("spec", "X"),
    sf.fixed_point: ("spec",),
    sf.length_map: ("spec", "q1", "steps"),
    sf.feature_learning: ("spec", "X", "Y"),
    sf.critical_signal: ("spec", "X", "Y"),
    closed_form_threshold: ("spec", "X", "Y"),
    signal_scan: ("spec", "X", "Y", "scales"),
    sf.gp.output_kernel: ("spec", "X"),
    sf.gp.predict: ("spec", "X_train", "Y_train", "X_test"),
    sf.simulate.prior: ("spec", "X", "N", "samples"),
    sf.simulate.kernel_moments: ("spec", "X", "N", "samples"),
    sf.simulate.posterior: ("spec", "X", "Y"),
    sf.response: ("spec", "X"),
    sf.action: ("spec", "X", "Y"),
    sf.optimal_r: ("spec", "X"),
}


@pytest.mark.parametrize("fn", list(ENTRY_POINTS), ids=lambda f: f.__name__)
def test_signature_shape(fn):
    params = list(inspect.signature(fn).parameters.values())
    head = tuple(p.name for p in params if p.kind is p.POSITIONAL_OR_KEYWORD)
    assert head == ENTRY_POINTS[fn]
    assert [p.name for p in params[:len(head)]] == list(head)
    options = [p for p in params[len(head):]]
    assert all(p.kind is p.KEYWORD_ONLY for p in options), [p.name for p in options if p.kind is not p.KEYWORD_ONLY]
    unknown = {p.name for p in options} - set(api.OPTIONS) - set(api.DEPRECATED)
    assert not unknown, f"{fn.__name__}: options {unknown} are not in symfield.api.OPTIONS"
    assert all(p.default is None for p in options if p.name in api.DEPRECATED)


def test_every_error_is_a_symfield_error_and_exported():
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert issubclass(cls, sf.SymfieldError)
        assert getattr(sf, name) is cls
    assert issubclass(sf.SpecTypeError, TypeError) and issubclass(sf.SpecTypeError, ValueError)


# ---------------------------------------------------------------- results expose .spec and .C
X = np.random.default_rng(0).standard_normal((2, 3))


def test_theory_results_spec_and_C():
    net = sf.RNN(3, phi="erf", g=1.1, sigma_b2=0.1)
    mf = sf.mean_field(net, X)
    assert mf.spec is net and mf.C.shape == (3, 3, 2, 2)
    np.testing.assert_array_equal(mf.C[2, 1], mf.block(2, 1))
    lin = sf.RNN(3, phi="linear", g=0.9, sigma_b2=0.1)  # (linear: the cheapest one-loop modules)
    ol = sf.one_loop(lin, X[:1])
    assert ol.spec is lin
    np.testing.assert_array_equal(ol.C, sf.mean_field(lin, X[:1]).C)  # the mean-field kernel it expands about
    fp = sf.fixed_point(net)
    assert fp.spec is net and fp.C == fp.q
    np.testing.assert_allclose(sf.length_map(net, fp.C, 2)[1], fp.C, rtol=1e-10)  # q* is a fixed point


def test_gp_prediction_spec_and_C():
    net = sf.RNN(4, phi="erf", g=1.2, sigma_b2=0.1)
    Xte = X[:1] + 0.3
    pred = sf.gp.predict(net, X, np.array([1.0, -1.0]), Xte, noise=0.01)
    assert pred.spec is net
    np.testing.assert_array_equal(pred.C, sf.gp.output_kernel(net, np.concatenate([X, Xte])))
    K = pred.C  # independent GP formulas on the kernel
    mean = K[2:, :2] @ np.linalg.solve(K[:2, :2] + 0.01 * np.eye(2), [1.0, -1.0])
    np.testing.assert_allclose(pred.mean, mean, rtol=1e-10)


def test_simulation_results_spec_and_C():
    net = sf.RNN(3, phi="erf", g=1.1, sigma_b2=0.1)
    ens = sf.simulate.prior(net, X, 16, 5, seed=1)
    assert ens.spec is net
    np.testing.assert_array_equal(ens.C, ens.emp.mean(axis=0))
    km = sf.simulate.kernel_moments(net, X, 16, 5, seed=1)
    assert km.spec is net
    np.testing.assert_array_equal(km.C, km.mean("emp"))


def test_feature_learning_results_spec_and_C():
    net = rnn(3)
    fl = sf.feature_learning(net, X1, endpoint(3, 1.0))
    assert fl.spec is net and fl.C.shape == (3, 3, 1, 1)
    np.testing.assert_array_equal(fl.C.reshape(3, 3), fl.C_sites)  # P = 1: sites are times
    scan = signal_scan(net, X1, endpoint(3, 1.0), [0.5, 1.0])
    assert scan.spec is net and scan.C.shape == (2, 3, 3, 1, 1)  # one kernel per scale
    np.testing.assert_allclose(scan.C[-1], fl.C, rtol=1e-6, atol=1e-9)
    post = sf.simulate.posterior(net, X1, endpoint(3, 1.0), N=8, samples=3, burn=2, chains=1, leapfrog=5)
    assert post.spec is net and post.C.shape == (3, 3, 3, 1, 1)  # samples
    np.testing.assert_array_equal(post.mean("C"), post.C.mean(axis=0))


# ---------------------------------------------------------------- bad arguments name the argument
NET = sf.RNN(3, phi="erf")
BAD = [
    (lambda: sf.mean_field("rnn", X), sf.SpecTypeError, "spec"),
    (lambda: sf.mean_field(NET, X, keep="first"), sf.SpecError, "keep"),
    (lambda: sf.one_loop(3, X), sf.SpecTypeError, "spec"),
    (lambda: sf.one_loop(NET, X, method="lu"), sf.SpecError, "method"),
    (lambda: sf.fixed_point(NET, q_in=-1.0), sf.SpecError, "q_in"),
    (lambda: sf.length_map(NET, 1.0, 0), sf.SpecError, "steps"),
    (lambda: sf.length_map(NET, -1.0, 3), sf.SpecError, "q1"),
    (lambda: sf.gp.output_kernel(NET, X, time=3), sf.SpecError, "time"),
    (lambda: sf.gp.predict(NET, X, np.ones(2), X, noise=-1.0), sf.SpecError, "noise"),
    (lambda: sf.gp.predict(None, X, np.ones(2), X), sf.SpecTypeError, "spec"),
    (lambda: sf.simulate.prior(NET, X, 0, 2), sf.SpecError, "N"),
    (lambda: sf.simulate.prior(NET, X, 4, 2, seed=-1), sf.SpecError, "seed"),
    (lambda: sf.simulate.kernel_moments(NET, X, 4, 0), sf.SpecError, "samples"),
    (lambda: sf.simulate.kernel_moments(NET, X, 4, 2, chunk=0), sf.SpecError, "chunk"),
    (lambda: sf.simulate.posterior(rnn(3), X1, endpoint(3, 1.0), N=8, burn=-1), sf.SpecError, "burn"),
    (lambda: sf.feature_learning("rnn", X1, endpoint(3, 1.0)), sf.SpecTypeError, "spec"),
    (lambda: sf.feature_learning(rnn(3), X1, endpoint(3, 1.0), steps=0), sf.SpecError, "steps"),
    (lambda: sf.feature_learning(rnn(3), X1, endpoint(3, 1.0), method="qr"), sf.SpecError, "method"),
    (lambda: sf.critical_signal(rnn(3), X1, endpoint(3, 1.0), kappa=0.0), sf.SpecError, "kappa"),
    (lambda: closed_form_threshold(rnn(3), X1, kappa=-1.0), sf.SpecError, "kappa"),
    (lambda: signal_scan(rnn(3), X1, endpoint(3, 1.0), []), sf.SpecError, "scales"),
    (lambda: sf.get_phi("erf", width=2.0), sf.SpecError, "phi_params"),
    (lambda: sf.response("rnn", X), sf.SpecTypeError, "spec"),
    (lambda: sf.action(3), sf.SpecTypeError, "spec"),
    (lambda: sf.action(NET, X), sf.SpecError, "X"),
    (lambda: sf.response(NET, X, pairs=[(0, 5)]), sf.SpecError, "pairs"),
    (lambda: sf.optimal_r(sf.ResNet(4), X, bounds=(2.0, 1.0)), sf.SpecError, "bounds"),
    (lambda: sf.optimal_r(sf.ResNet(4), X, pair=(0, 9)), sf.SpecError, "pair"),
]


@pytest.mark.parametrize("call,cls,name", BAD, ids=[f"{i}-{b[2]}" for i, b in enumerate(BAD)])
def test_bad_argument_raises_symfield_error_naming_it(call, cls, name):
    with pytest.raises(cls, match=rf"\b{name}\b"):
        call()


def test_too_many_positional_arguments():
    with pytest.raises(sf.SpecTypeError, match="positional"):
        sf.mean_field(NET, X, False, "all", "extra")
    with pytest.raises(sf.SpecTypeError, match="multiple values"):
        sf.mean_field(NET, X, True, progress=False)


# ---------------------------------------------------------------- deprecated names still work
def test_positional_options_still_accepted_with_warning():
    with pytest.warns(DeprecationWarning, match="keep"):
        last = sf.mean_field(NET, X, False, "last")
    assert last.keep == "last"
    np.testing.assert_array_equal(last.block(0, 2), sf.mean_field(NET, X).block(0, 2))
    with pytest.warns(DeprecationWarning, match="q_in"):
        assert sf.fixed_point(NET, 0.5).q == sf.fixed_point(NET, q_in=0.5).q


def test_solver_is_the_deprecated_name_of_method():
    net = sf.RNN(3, phi="linear", g=0.9, sigma_b2=0.1)
    with pytest.warns(DeprecationWarning, match="method"):
        old = sf.one_loop(net, X[:1], solver="dense")
    new = sf.one_loop(net, X[:1], method="dense")
    np.testing.assert_array_equal(old.NDelta, new.NDelta)
    with pytest.raises(sf.SpecError, match="solver"):  # an error names the argument the caller wrote
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sf.one_loop(net, X[:1], solver="lu")
    with pytest.raises(sf.SpecTypeError, match="method"):
        sf.one_loop(net, X[:1], method="dense", solver="dense")


def test_readout_time_is_the_deprecated_one_based_time():
    net = sf.RNN(4, phi="erf", g=1.2, sigma_b2=0.1)
    mf = sf.mean_field(net, X)
    with pytest.warns(DeprecationWarning, match="time"):
        old = sf.gp.output_kernel(net, X, readout_time=2)
    new = sf.gp.output_kernel(net, X, time=1)
    np.testing.assert_array_equal(old, new)
    d = np.diag(mf.block(1, 1))  # erf closed form at the 0-based time 1, written out
    ref = 2 / np.pi * np.arcsin(2 * mf.block(1, 1) / np.sqrt(np.outer(1 + 2 * d, 1 + 2 * d)))
    np.testing.assert_allclose(new, ref, rtol=1e-10)
    np.testing.assert_array_equal(sf.gp.output_kernel(net, X), sf.gp.output_kernel(net, X, time=3))


def test_erf_scale_and_its_deprecated_name_kappa():
    with pytest.warns(DeprecationWarning, match="scale"):
        old = sf.get_phi("erf", kappa=0.5)
    new = sf.get_phi("erf", scale=0.5)
    assert old.key == new.key and old.params == {"scale": 0.5}
    assert float(new(2.0)) == pytest.approx(math.erf(1.0), rel=1e-14)
    with pytest.raises(sf.SpecError, match="scale"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sf.get_phi("erf", kappa=0.5, scale=0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        a = sf.mean_field(sf.RNN(3, phi="erf", phi_params={"kappa": 0.7}), X).C
    b = sf.mean_field(sf.RNN(3, phi="erf", phi_params={"scale": 0.7}), X).C
    np.testing.assert_array_equal(a, b)

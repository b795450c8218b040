"""fl.predict(X_new) for nonlinear φ (prediction.tilted_joint_kernel), against references that are not its own
output: re-solving with the new patterns appended as unsupervised patterns (an independent solve of the larger
problem), the closed form of linear φ (prediction.joint_kernel) through the point-based path, and the exact
linear solution for the Monte Carlo error of the predictions."""
import numpy as np
import pytest

import symfield as sf
from symfield.spec import SpecError
from symfield.theory.feature_learning import feature_learning, nonlinear as nl
from symfield.theory.feature_learning.prediction import tilted_joint_kernel
from symfield.theory.feature_learning.problem import problem
from symfield.theory.feature_learning.tilted_mc import TiltedMC
from symfield.theory.feature_learning.tilted_quadrature import TiltedQuadrature

X2 = np.array([[1.0, 0.0], [0.6, 0.8]])


def _appended(net, X, Y, sup, **kw):
    """The solve with X[P:] appended unsupervised (targets 0, supervised False)."""
    P, T = Y.shape
    Yj, supj = np.zeros((len(X), T)), np.zeros((len(X), T), bool)
    Yj[:P], supj[:P] = Y, sup
    return sf.feature_learning(net, X, Yj, supervised=supj, **kw)


def test_erf_dnn_joint_kernel_equals_resolving_with_the_new_pattern_appended():
    """Factorised measure, exact quadrature on both sides: C_ba, C_bb and f̄ of the new pattern agree to
    the quadrature accuracy (the re-solve integrates the 2-D measure of each layer jointly)."""
    net = sf.DNN(3, phi="erf", bias="none", scaling="mean_field")
    Y, sup = np.array([[0.0, 1.5, -2.0]]), np.array([[0, 1, 1]], bool)
    fl = sf.feature_learning(net, X2[:1], Y, supervised=sup)
    flj = _appended(net, X2, Y, sup)
    Cj, a, b = tilted_joint_kernel(fl.problem, net.phi_fn, fl.C_sites, fl.selected.moments.points, X2[1:],
                                   odd=True)
    ref = flj.C_sites
    assert np.abs(ref[np.ix_(a, a)] - fl.C_sites).max() < 1e-9  # the training block is unchanged
    assert np.abs(Cj[np.ix_(b, a)] - ref[np.ix_(b, a)]).max() < 1e-9
    assert np.abs(np.diag(Cj)[b] - np.diag(ref)[b]).max() < 1e-9
    f, err = fl.predict(X2[1:], error=True)
    np.testing.assert_allclose(f, flj.predict()[1:], atol=1e-9)
    assert np.abs(f[0, 1:]).min() > 0.05 and err.max() < 1e-9  # non-trivial predictions, accurate to the rule
    np.testing.assert_allclose(fl.predict(X2[:1]), fl.predict(), atol=1e-9)  # training pattern given as new


def test_tanh_rnn_monte_carlo_prediction_equals_resolving_within_the_reported_errors():
    """T·P = 4 (importance sampling, sequential task: no symmetric sector); the appended problem (T·P = 8)
    is an independent Monte Carlo solve.  The difference is compared with both reported errors."""
    net = sf.RNN(4, phi="tanh", bias="none", scaling="mean_field")
    Y, sup = np.array([[0.5, 1.0, 0.0, 1.0]]), np.array([[1, 1, 0, 1]], bool)
    est = dict(samples=8000, seed=1)
    fl = sf.feature_learning(net, X2[:1], Y, supervised=sup, estimator=est, steps=4)
    f, err = fl.predict(X2[1:], error=True)
    flj = _appended(net, X2, Y, sup, estimator=est, steps=4)
    fj, errj = flj.predict(error=True)
    z = (f - fj[1:]) / np.sqrt(err ** 2 + errj[1:] ** 2)
    assert np.abs(z).max() < 4, z
    assert err.max() < 0.1 * np.abs(f).max() and err.min() > 0  # errors of a useful, non-zero size


@pytest.mark.parametrize("net,Y,sup", [
    (sf.RNN(3, phi="linear", bias="none", scaling="mean_field"), np.array([[0.7, 0.0, 1.0]]),
     np.array([[1, 0, 1]], bool)),
    (sf.RNN(2, phi="linear", leak=0.5, bias="none", scaling="mean_field"), np.array([[0.7, 1.0]]), None),
    (sf.DNN(3, phi="linear", bias="none", scaling="mean_field"), np.array([[0.0, 1.0, 2.0]]),
     np.array([[0, 1, 1]], bool))])
def test_linear_phi_through_the_point_based_path_equals_the_closed_form(monkeypatch, net, Y, sup):
    """Linear φ solved with the quadrature estimator (exact for a Gaussian): the conditional-Gaussian
    prediction (1-D rules; 2-D pair rules with the skip propagator) equals prediction.joint_kernel."""
    ref = feature_learning(net, X2[:1], Y, supervised=sup, gtol=1e-11)
    # 25 nodes per dimension: the trapezoid rule integrates the Gaussian moments to ~e^{-2π²/δ²}, δ = 2/3
    monkeypatch.setattr(nl, "measure_for",
                        lambda pr, d, samples, seed, nodes=None, control=False: TiltedQuadrature(pr.spec.phi_fn, 25))
    got = nl.feature_learning(problem(net, X2[:1], Y, sup))
    assert got.selected.moments.points is not None and got.phase == ref.phase
    f_new = got.predict(X2[1:])
    np.testing.assert_allclose(f_new, ref.predict(X2[1:]), atol=1e-8)
    assert np.abs(f_new).max() > 0.1


def test_monte_carlo_prediction_error_covers_the_deviation_from_the_exact_linear_prediction(monkeypatch):
    net = sf.RNN(4, phi="linear", bias="none", scaling="mean_field")
    Y, sup = np.array([[0.5, 1.0, 0.0, 1.0]]), np.array([[1, 1, 0, 1]], bool)
    ref = feature_learning(net, X2[:1], Y, supervised=sup).predict(X2[1:])
    monkeypatch.setattr(nl, "measure_for",
                        lambda pr, d, samples, seed, nodes=None, control=False: TiltedMC(pr.spec.phi_fn, samples, seed,
                                                                                   control=control))
    got = nl.feature_learning(problem(net, X2[:1], Y, sup), samples=8000, seed=3, steps=4)
    f, err = got.predict(X2[1:], error=True)
    assert np.abs(f - ref).max() < 4 * err.max()
    assert 1e-4 * np.abs(ref).max() < err.max() < 0.1 * np.abs(ref).max()


def test_branch_average_of_the_broken_erf_rnn_is_z2_symmetric():
    """Broken phase (y = 5.5 > threshold): the branch average is 0 at the odd time (it changes sign under the
    Z2) and equals the mean of the predictions on the two mirror branches, each from its own estimate."""
    net = sf.RNN(3, phi="erf", bias="none", scaling="mean_field")
    fl = sf.feature_learning(net, X2[:1], np.array([[0.0, 0.0, 5.5]]))
    assert fl.phase == "broken" and [b.name for b in fl.branches] == ["symmetric", "broken+", "broken-"]
    avg = fl.predict(X2[1:], average_branches=True)
    minus = fl.branches[2]
    f_minus = fl._predict_at(np.stack([minus.C, minus.Chat]), minus.moments.points, X2[1:], False)
    assert f_minus[0, 1] < -0.5 and avg[0, 1] == 0.0
    # at the even times both branches predict the same (sign-invariant) value: the average is that value
    np.testing.assert_allclose(avg[0, [0, 2]], f_minus[0, [0, 2]], atol=1e-8)


def test_estimator_for_linear_phi_is_refused():
    net = sf.RNN(3, phi="linear", bias="none", scaling="mean_field")
    Y = np.array([[0.0, 0.0, 2.0]])
    with pytest.raises(SpecError, match="estimator"):
        sf.feature_learning(net, np.ones((1, 1)), Y, estimator={"samples": 1000})
    with pytest.raises(SpecError, match="estimator"):
        sf.critical_signal(net, np.ones((1, 1)), Y, estimator={"samples": 1000})

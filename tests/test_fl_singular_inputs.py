"""μP feature learning with a singular input kernel (D < P, dependent or repeated patterns): the solution on the
span of the inputs (symfield.theory.feature_learning.span) against independent references:

(a) the limit of nonsingular problems: the dependent pattern moved off the span by ε along a new input
    direction; the solutions converge to the span solution like ε²;
(b) exact symmetry: every pattern twice with its target is the deduplicated problem with κ/2 (the data term
    y_dᵀ(κ + σ_v² J C Jᵀ)⁻¹ y_d = yᵀ(κ/2 + σ_v² C)⁻¹ y for J = [1; 1], and the entropy terms are the same on
    the span), so C_dup = J C Jᵀ;
(c) the closed forms of the endpoint task (theory Secs. 7.1, 7.3) for duplicated patterns (via (b): κ → κ/2);
(d) predictions for new patterns against re-solving with them appended.
"""
import numpy as np
import pytest

import symfield as sf
from symfield.errors import NotSupportedError
from symfield.theory.feature_learning import closed_form_threshold, critical_signal, feature_learning
from symfield.theory.feature_learning.span import RANK_TOL, span

from linear_mup import endpoint, rnn

X3 = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # D = 2 < P = 3: x3 = x1 + x2
Y3 = endpoint(3, np.array([1.0, -2.0, 0.5]), P=3)


def jittered(X, eps):
    """X with one more input coordinate, ε for the last pattern only (the same |x|²/D scale per pattern
    as D grows: sigma_det is g_in² X Xᵀ / D)."""
    D = X.shape[-1]
    extra = np.zeros(X.shape[:-1] + (1,))
    extra[-1] = eps
    return np.concatenate([X, extra], axis=-1) * np.sqrt((D + 1) / D)


def rel(a, b):
    return np.abs(a - b).max() / np.abs(b).max()


@pytest.mark.parametrize("net", [rnn(3), sf.DNN(3, phi="linear", bias="none", scaling="mean_field")])
def test_span_solution_is_the_limit_of_nonsingular_problems(net):
    fl = feature_learning(net, X3, Y3)
    assert fl.fixed_point_residual() < 1e-8
    errs = [rel(feature_learning(net, jittered(X3, e), Y3).C_sites, fl.C_sites) for e in (1e-2, 1e-3)]
    # measured: 6.1e-3, 6.2e-5, 6.1e-7 at ε = 1e-1, 1e-2, 1e-3 (∝ ε²)
    assert errs[1] < 1e-6 and 60 < errs[0] / errs[1] < 160


def test_input_at_every_step_with_fewer_dimensions_than_patterns():
    """RNN, input at every step (shared U: the input part of Σ has rank D over all T·P sites), sequential task."""
    net = sf.RNN(3, phi="linear", bias="none", scaling="mean_field", input="every")
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4, 3, 2))  # D = 2 < P = 4 at every step
    Y = rng.standard_normal((4, 3))
    sup = np.array([1, 0, 1], bool)
    fl = feature_learning(net, X, Y, supervised=sup)
    assert fl.fixed_point_residual() < 1e-8
    errs, J = [], rng.standard_normal((4, 3, 2))
    for e in (1e-1, 3e-2):
        Xe = np.concatenate([X, e * J], axis=-1) * np.sqrt(2)
        fe = feature_learning(net, Xe, Y, supervised=sup)
        errs.append((rel(fe.C_sites, fl.C_sites), np.abs(fe.predict() - fl.predict()).max()))
    assert errs[0][0] / errs[1][0] > 8 and errs[0][1] / errs[1][1] > 8  # ∝ ε²: (10/3)² = 11
    assert errs[1][0] < 1e-3 and errs[1][1] < 5e-3  # measured 3.9e-4, 2.1e-3


def test_duplicated_patterns_are_the_deduplicated_problem_with_half_kappa():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((2, 2))
    Y = endpoint(4, np.array([2.0, -1.5]), P=2)
    J = np.kron(np.eye(4), np.vstack([np.eye(2), np.eye(2)]))  # sites (t, μ) of the doubled problem
    for net in (rnn(4), sf.DNN(4, phi="linear", bias="none", scaling="mean_field")):
        one = feature_learning(net, X, Y, kappa=0.5)
        two = feature_learning(net, np.vstack([X, X]), np.vstack([Y, Y]), kappa=1.0)
        assert two.phase == one.phase
        np.testing.assert_allclose(two.C_sites, J @ one.C_sites @ J.T, atol=1e-8 * np.abs(one.C_sites).max())
        assert two.action == pytest.approx(one.action, abs=1e-9)
        np.testing.assert_allclose(two.predict(), np.vstack([one.predict()] * 2), atol=1e-8)


def test_duplicated_pattern_against_the_closed_forms():
    """x twice, target y twice: the one-pattern closed forms with κ/2 (theory Secs. 7.1, 7.3, 13.1)."""
    X = np.ones((2, 1))
    fl = feature_learning(rnn(3), X, endpoint(3, 2.0, P=2), kappa=2.0)  # = one pattern, κ = 1, y = 2
    phi = (1 + np.sqrt(5)) / 2
    np.testing.assert_allclose(fl.C[:, :, 0, 1].diagonal(), [phi, phi ** 2, phi ** 3], rtol=1e-8)
    np.testing.assert_allclose(fl.C[:, :, 1, 1], fl.C[:, :, 0, 0], rtol=1e-12)
    yc = critical_signal(rnn(3), X, endpoint(3, 1.0, P=2), kappa=2.0)  # |y_S| = √2 y_c(κ = 1)
    assert yc == pytest.approx(np.sqrt(2) * np.sqrt(81 / 8), rel=1e-7)
    assert closed_form_threshold(rnn(3), np.ones((1, 1)), kappa=1.0) == pytest.approx(np.sqrt(81 / 8), rel=1e-12)


def test_prediction_for_new_patterns_equals_resolving_with_them_appended():
    net = sf.RNN(3, phi="linear", bias="none", scaling="mean_field", input="every")
    rng = np.random.default_rng(5)
    X = rng.standard_normal((5, 3, 2))  # D = 2 < P = 5
    Y = rng.standard_normal((5, 3))
    sup = np.array([1, 0, 1], bool)
    Xn = np.stack([X[0] + 2 * X[1], rng.standard_normal((3, 2))])  # one dependent, one generic new pattern
    fl = feature_learning(net, X, Y, supervised=sup)
    Xa, Ya = np.vstack([X, Xn]), np.vstack([Y, np.zeros((2, 3))])
    supa = np.vstack([np.broadcast_to(sup, (5, 3)), np.zeros((2, 3), bool)])
    full = feature_learning(net, Xa, Ya, supervised=supa)
    np.testing.assert_allclose(fl.predict(Xn), full.predict()[5:], atol=1e-7)
    np.testing.assert_allclose(full.predict()[:5], fl.predict(), atol=1e-7)


def test_span_tolerance_drops_round_off_and_keeps_small_genuine_variances():
    C = np.diag([1.0, 1e-8, 1.0])  # a small but genuine variance: its own site, scale-free test keeps it
    assert span(C) is None
    v = np.array([1.0, 2.0, 3.0])
    sp = span(np.outer(v, v) + np.diag([0, 0, 0.0]))
    assert sp is not None and int(sp.rank) == 1
    X = np.random.default_rng(0).standard_normal((4, 3))
    G = X @ X.T  # rank 3 of 4
    assert int(span(G).rank) == 3
    assert int(span(G + 1e-3 * RANK_TOL * np.trace(G) * np.eye(4) / 4).rank) == 3  # below the tolerance: dropped
    assert span(G + 1e3 * RANK_TOL * np.trace(G) * np.eye(4) / 4) is None


def test_nonlinear_span_solution_is_the_limit_of_nonsingular_problems():
    """erf DNN, x2 = −x1/2 (D = 1 < P = 2): 1-D quadrature on the span at t = 1, 2-D at t = 2 (erf makes C full
    rank); the jittered problems integrate 2-D at both steps."""
    net = sf.DNN(2, phi="erf", bias="none", scaling="mean_field")
    X, Y = np.array([[1.2], [-0.6]]), endpoint(2, np.array([1.5, 1.0]), P=2)
    fl = feature_learning(net, X, Y)
    assert fl.error < 1e-8
    errs = [rel(feature_learning(net, jittered(X, e), Y).C_sites, fl.C_sites) for e in (1e-1, 1e-2)]
    assert errs[1] < 2e-4 and errs[0] / errs[1] > 50


def test_nonlinear_duplicates_refused_where_the_lag_test_needs_the_kernel_inverse():
    X = np.array([[1.0], [1.0]])
    with pytest.raises(NotSupportedError, match="kappa/k"):
        feature_learning(sf.RNN(3, phi="erf", bias="none", scaling="mean_field"), X, endpoint(3, 4.0, P=2))


def test_a_negative_variance_has_no_span_and_is_outside_the_domain():
    """A covariance with a negative diagonal entry (an iterate that left the domain) raises NotPositiveDefinite,
    which the iterations catch to step back (it returned an empty span before, and the measure failed later with a
    zero-size reduction); an exact zero variance still gives a span without that site."""
    from symfield.errors import NotPositiveDefinite
    with pytest.raises(NotPositiveDefinite):
        span(np.diag([2.0, -1.0]))
    with pytest.raises(NotPositiveDefinite):
        span(-np.eye(3))
    sp = span(np.diag([2.0, 0.0, 1.0]))
    assert int(sp.rank) == 2

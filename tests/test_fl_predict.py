"""fl.predict(X_new): new patterns from the learned kernels, against re-solving with them appended as
unsupervised patterns (an independent solve of the larger problem), and the branch-averaged mean against
the finite-N posterior (HMC)."""
import numpy as np
import pytest

import symfield as sf
from symfield.simulate.posterior import posterior
from symfield.spec import SpecError
from symfield.theory.feature_learning import feature_learning

from linear_mup import X1, dnn, endpoint, rnn


def _appended(fl, X_all, Y, sup):
    """Re-solve with the new patterns appended (supervised False); returns the predictions of the new
    patterns on the branch whose training block matches ``fl`` (the Z2 sign of a broken branch is a
    convention of the solver)."""
    P, T = Y.shape
    Pj = X_all.shape[0]
    supj = np.zeros((Pj, T), bool)
    supj[:P] = sup
    Yj = np.zeros((Pj, T))
    Yj[:P] = Y
    flj = feature_learning(fl.spec, X_all, Yj, supervised=supj, gtol=1e-11)
    best = min(flj.branches, key=lambda b: np.abs(flj.problem.from_sites(b.C)[:, :, :P, :P] - fl.C).max())
    assert np.abs(flj.problem.from_sites(best.C)[:, :, :P, :P] - fl.C).max() < 1e-6 * np.abs(fl.C).max()  # training block unchanged (solver accuracy)
    return flj._predict_at(best.C, None)[P:]


@pytest.mark.parametrize("make,task", [(rnn, "endpoint"), (rnn, "sequential"), (dnn, "sequential"),
                                       (lambda T: sf.RNN(T, leak=0.5, phi="linear", bias="none",
                                                         scaling="mean_field"), "sequential")])
def test_predict_new_patterns_equals_resolving_with_them_appended(make, task):
    rng = np.random.default_rng(0)
    T, P, Pn, D = 4, 2, 2, 5
    X = rng.standard_normal((P + Pn, D))
    if task == "endpoint":
        Y, sup = endpoint(T, np.array([2.0, -1.5]), P=P), np.eye(T, dtype=bool)[-1][None].repeat(P, 0)
    else:
        Y, sup = rng.standard_normal((P, T)), np.broadcast_to(np.array([1, 1, 0, 1], bool), (P, T))
    fl = feature_learning(make(T), X[:P], Y, supervised=sup, gtol=1e-11)
    f_new = fl.predict(X[P:])
    assert f_new.shape == (Pn, T)
    np.testing.assert_allclose(f_new, _appended(fl, X, Y, sup), atol=1e-6 * np.abs(f_new).max())
    # the training patterns given as new ones reproduce the training predictions
    np.testing.assert_allclose(fl.predict(X[:P]), fl.predict(), atol=1e-8)  # to the solver accuracy


def test_predict_new_sequences_with_input_every_step():
    rng = np.random.default_rng(1)
    net = sf.RNN(3, phi="linear", bias="none", scaling="mean_field", input="every")
    X = rng.standard_normal((3, 3, 4))
    Y = rng.standard_normal((2, 3))
    sup = np.broadcast_to(np.array([1, 0, 1], bool), (2, 3))
    fl = feature_learning(net, X[:2], Y, supervised=sup, gtol=1e-11)
    np.testing.assert_allclose(fl.predict(X[2:]), _appended(fl, X, Y, sup), atol=1e-6)


def test_predict_rejects_inputs_of_another_shape():
    fl = feature_learning(rnn(3), X1, endpoint(3, 1.0))
    with pytest.raises(SpecError, match="X_new"):
        fl.predict(np.ones((2, 3)))


def test_branch_average_is_the_finite_N_posterior_mean():
    """T = 3, y = 4.5 (broken phase): the branch value at the unsupervised t = 2 changes sign under the Z2
    (f_t -> (-1)^{t+T} f_t), so the branch-averaged mean is 0 there; HMC of the width-N network (chains
    started from prior draws of both signs) gives a mean consistent with 0 and not with the branch value,
    while the sign-invariant f at t = 1, 3 agree with both."""
    Y = endpoint(3, 4.5)
    fl = feature_learning(rnn(3), X1, Y)
    branch, avg = fl.predict()[0], fl.predict(average_branches=True)[0]
    assert branch[1] == pytest.approx(1.5972, abs=1e-3)
    assert avg[1] == 0.0
    np.testing.assert_allclose(avg[[0, 2]], branch[[0, 2]])
    hp = posterior(rnn(3), X1, Y, N=64, seed=3, samples=150, burn=100, chains=8, leapfrog=20)
    m, e = hp.mean("f")[0], hp.sem("f")[0]
    assert abs(m[1] - avg[1]) < 4 * e[1] + 0.1
    assert abs(m[1] - branch[1]) > 4 * e[1]
    assert abs(m[2] - branch[2]) < 4 * e[2] + 0.15  # O(1/N) at N = 64

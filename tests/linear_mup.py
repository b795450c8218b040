"""Shared set-up of the μP feature-learning tests: linear networks, one pattern, endpoint targets."""
import numpy as np
import pytest

import symfield as sf

X1 = np.ones((1, 1))  # one pattern, |x|²/D = 1


def rnn(T, **kw):
    return sf.RNN(T, phi="linear", bias="none", scaling="mean_field", **kw)


def dnn(T, **kw):
    return sf.DNN(T, phi="linear", bias="none", scaling="mean_field", **kw)


def endpoint(T, y, P=1):
    """Targets (P, T): y at the last step, zero elsewhere."""
    Y = np.zeros((P, T))
    Y[:, -1] = y
    return Y


def check_gradient_and_hessian(act, C, rng, h=1e-6):
    """act.grad and act.hessp at C against central finite differences of act.value / act.grad along three
    random symmetric directions."""
    n = C.shape[0]
    G = act.grad(C)
    for _ in range(3):
        D = rng.standard_normal((n, n))
        D = D + D.T
        fd = (act.value(C + h * D) - act.value(C - h * D)) / (2 * h)
        assert np.sum(G * D) == pytest.approx(fd, rel=1e-6, abs=1e-8)
        fdH = (act.grad(C + h * D) - act.grad(C - h * D)) / (2 * h)
        np.testing.assert_allclose(act.hessp(C, D), fdH, rtol=1e-5, atol=1e-6 * np.abs(fdH).max())


def continued(fl):
    """``fl`` with its continued branch selected: the point the subspace solver (or the reference solver) reached,
    whether or not a branch of larger action was found from it (``branches._climb_from_saddle``) — the tests of the
    solvers' machinery compare that point."""
    fl.selected = next(b for b in fl.branches if b.name == "continued")
    return fl

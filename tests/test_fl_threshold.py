"""Threshold of the μP feature-learning transition for any φ (symfield.theory.feature_learning.threshold).

References: the closed-form linear threshold (theory Sec. 7.3), the verified linear Hessian (action.py),
and, for erf, finite differences of the action S(C) with Ĉ eliminated by an independent Legendre solve
over the full 3-dimensional tilted measure (tensor Gauss–Hermite, scipy root)."""
import numpy as np
import pytest
from scipy.optimize import root

import symfield as sf
from symfield.theory.feature_learning import closed_form_threshold, critical_signal
from symfield.theory.feature_learning.nonlinear import FixedPoint, NonlinearSolver
from symfield.theory.feature_learning.problem import problem
from symfield.theory.feature_learning.threshold import lag_hessp, top_lag
from symfield.theory.feature_learning.tilted_quadrature import TiltedQuadrature

X1 = np.ones((1, 1))


def _endpoint(T, y):
    Y = np.zeros((1, T))
    Y[0, -1] = y
    return Y


@pytest.mark.parametrize("T,g,kappa", [(3, 1.0, 1.0), (5, 1.0, 0.5), (4, 0.8, 1.0)])
def test_linear_phi_threshold_through_the_nonlinear_path_is_the_closed_form(T, g, kappa):
    from symfield.theory.feature_learning.nonlinear import critical_signal as nl_threshold
    net = sf.RNN(T, phi="linear", g=g, bias="none", scaling="mean_field")
    pr = problem(net, X1, _endpoint(T, 1.0), kappa=kappa)
    assert nl_threshold(pr) == pytest.approx(closed_form_threshold(net, X1, kappa=kappa), rel=1e-8)


def test_lag_hessian_from_pair_expectations_is_the_linear_hessian():
    net = sf.RNN(4, phi="linear", bias="none", scaling="mean_field")
    X = np.array([[1.0, 0.2], [0.1, 0.9]])
    pr = problem(net, X, np.array([[0, 0, 0, 1.5], [0, 0, 0, -0.7]]))
    sv = NonlinearSolver(pr)
    x = sv.symmetric(4).x[-1]
    fp = FixedPoint(pr, 1.0, sv.block)
    _, p, m = fp.evaluate(x)
    rng = np.random.default_rng(0)
    D = rng.standard_normal((5, pr.n, pr.n))
    D = (D + np.swapaxes(D, 1, 2)) * (pr.lag() > 0)
    ref = fp.act.hessp_at(p, D) * (pr.lag() > 0)
    assert np.abs(lag_hessp(fp.act, p, m, D)[0] * (pr.lag() > 0) - ref).max() < 1e-8 * np.abs(ref).max()


def _legendre_action(pr, s, C, Chat0, quad):
    """S/N at C with Ĉ from the forward equation ⟨φφᵀ⟩ = C solved on the full tilted measure."""
    fp = FixedPoint(pr, s, quad)
    p = fp.act.point(C)
    iu = np.triu_indices(pr.n)

    def unpack(v):
        M = np.zeros((pr.n, pr.n))
        M[iu] = v
        return M + np.triu(M, 1).T

    sol = root(lambda v: (quad.tilted(p.Sigma, unpack(v)).phiphi - C)[iu], Chat0[iu], tol=1e-13)
    assert sol.success
    Chat = unpack(sol.x)
    return fp.action(np.stack([C, Chat]), p, quad.tilted(p.Sigma, Chat))


@pytest.mark.parametrize("phi", ["erf"])
def test_nonlinear_threshold_is_where_the_finite_difference_action_hessian_changes_sign(phi):
    net = sf.RNN(3, phi=phi, bias="none", scaling="mean_field")
    yc = critical_signal(net, X1, _endpoint(3, 1.0))
    quad = TiltedQuadrature(net.phi_fn, 24)
    signs = []
    for y in (0.97 * yc, 1.03 * yc):
        pr = problem(net, X1, _endpoint(3, y))
        sv = NonlinearSolver(pr)
        x = sv.symmetric(6).x[-1]
        fp = FixedPoint(pr, 1.0, sv.block)
        _, p, m = fp.evaluate(x)
        lam = top_lag(fp.act, p, m)[0]
        # lag-1 sector: variables (C12, C23); finite-difference Hessian of S(C)
        E = [np.zeros((3, 3)), np.zeros((3, 3))]
        E[0][0, 1] = E[0][1, 0] = 1.0
        E[1][1, 2] = E[1][2, 1] = 1.0
        h = 2e-3
        S = lambda a, b: _legendre_action(pr, 1.0, x[0] + a * E[0] + b * E[1], x[1], quad)
        S0 = S(0, 0)
        H = np.empty((2, 2))
        H[0, 0] = (S(h, 0) - 2 * S0 + S(-h, 0)) / h ** 2
        H[1, 1] = (S(0, h) - 2 * S0 + S(0, -h)) / h ** 2
        H[0, 1] = H[1, 0] = (S(h, h) - S(h, -h) - S(-h, h) + S(-h, -h)) / (4 * h ** 2)
        top_fd = np.linalg.eigvalsh(H)[-1]
        assert np.sign(top_fd) == np.sign(lam)
        signs.append(np.sign(top_fd))
    assert signs == [-1, 1]

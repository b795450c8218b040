"""μP action: matrix rules, explicit-component derivation, finite differences, closed-form threshold."""
import numpy as np
import pytest
import sympy as sp

import symfield as sf
from symfield.theory.feature_learning import closed as fl_closed, rules as fl_rules
from symfield.theory.feature_learning import closed_form_threshold, critical_signal, feature_learning
from symfield.theory.feature_learning.action import LinearAction, gp_kernel
from symfield.theory.feature_learning.blocks import Blocks
from symfield.theory.feature_learning.spectrum import sector_spectrum
from symfield.theory.feature_learning.problem import problem
from symfield.theory.feature_learning.spectrum import sector_hessian
from symfield.theory.feature_learning.symbolic import ExplicitAction, two_field_equations
from symfield.theory.feature_learning.tilted import GaussianTilted, ImportanceTilted, forward_backward_residual

from linear_mup import check_gradient_and_hessian


def _net(arch, T, **kw):
    kw = {"phi": "linear", "bias": "none", "scaling": "mean_field", **kw}
    return sf.NetworkSpec(arch, T, **kw)


def _random_point(pr, rng, scale=0.2):
    C0 = gp_kernel(pr)
    A = rng.standard_normal((pr.n, pr.n)) * scale
    return C0 + A @ A.T


@pytest.mark.parametrize("name", sorted(fl_rules.RULES))
def test_matrix_rule_against_finite_differences_and_sympy_diff(name):
    rule = fl_rules.RULES[name]
    assert fl_rules.verify_numeric(rule) < 1e-6
    assert fl_rules.verify_symbolic(rule) < 1e-10


@pytest.mark.parametrize("arch,readout", [("rnn", "shared"), ("dnn", "untied"), ("rnn", "untied"), ("dnn", "shared")])
def test_gradient_and_hessian_against_finite_differences(arch, readout):
    rng = np.random.default_rng(1)
    net = _net(arch, 4, g=1.1, g_in=0.9, sigma_v=1.3)
    sup = np.array([[1, 0, 1, 1], [0, 1, 0, 1]], bool)
    pr = problem(net, rng.standard_normal((2, 3)), rng.standard_normal((2, 4)), sup, 0.7, readout=readout)
    act = LinearAction(pr)
    C = _random_point(pr, rng)
    check_gradient_and_hessian(act, C, rng)


@pytest.mark.parametrize("arch,T,P", [("rnn", 3, 1), ("dnn", 3, 1), ("rnn", 2, 2)])
def test_explicit_components_compiled_equal_matrix_rules(arch, T, P):
    """sympy.diff on explicit components (compiled through codegen) == matrix rules == finite differences."""
    rng = np.random.default_rng(2)
    pr = problem(_net(arch, T, g=0.9, sigma_v=1.2), rng.standard_normal((P, 3)), rng.standard_normal((P, T)), None, 0.8)
    ex, lin = ExplicitAction(pr), LinearAction(pr)
    assert ex.module.__file__.endswith(".py")  # a real cached module
    C = _random_point(pr, rng)
    D = rng.standard_normal((pr.n, pr.n))
    D = D + D.T
    assert ex.value(C) == pytest.approx(lin.value(C), abs=1e-12)
    np.testing.assert_allclose(ex.grad(C), lin.grad(C), atol=1e-11)
    np.testing.assert_allclose(ex.hessp_at(C, D), lin.hessp(C, D), atol=1e-10)
    h = 1e-6
    fd = (ex.value(C + h * D) - ex.value(C - h * D)) / (2 * h)
    assert np.sum(ex.grad(C) * D) == pytest.approx(fd, rel=1e-6)


def test_explicit_backend_solves_to_the_same_saddle_point():
    net = sf.RNN(3, phi="linear", bias="none", scaling="mean_field")
    Y = np.array([[0.0, 0.0, 4.5]])
    a = feature_learning(net, np.ones((1, 1)), Y, backend="explicit")
    b = feature_learning(net, np.ones((1, 1)), Y)
    np.testing.assert_allclose(a.C, b.C, atol=1e-7)
    assert a.phase == b.phase == "broken"


def test_two_field_forward_backward_equations_match_the_documented_ones():
    """∂S(C,Ĉ)/∂Ĉ = ½[(Σ⁻¹−Ĉ)⁻¹ − C], ∂S/∂C = ½[−Ĉ + Bᵀ(Wm∘(Σ⁻¹⟨hh⟩Σ⁻¹−Σ⁻¹))B + σ_v²E_S(M∘wwᵀ)] (unordered)."""
    rng = np.random.default_rng(3)
    pr = problem(_net("rnn", 3, g=1.1, sigma_v=0.8), np.ones((1, 1)), np.array([[0.3, -1.0, 2.0]]),
                 np.array([False, True, True]), 0.6, readout="shared")
    sy, ch, S2, fwd, bwd = two_field_equations(pr)
    lin = LinearAction(pr)
    C = _random_point(pr, rng)
    p = lin.point(C)
    Ch = 0.1 * rng.standard_normal((3, 3))
    Ch = Ch + Ch.T
    K = np.linalg.inv(p.Sinv - Ch)
    subs = {s: C[i, j] for (i, j), s in sy.c.items()}
    subs.update({s: Ch[i, j] for (i, j), s in ch.items()})
    subs.update(dict(zip(sy.hyper(), sy.hyper_values(pr))))
    Gf = 0.5 * (K - C)
    Gb = 0.5 * (-Ch + lin.chat(p, K))
    for k, (i, j) in enumerate(sy.c):
        w = 1.0 if i == j else 2.0  # unordered derivative = 2 × ordered off the diagonal
        assert float(fwd[k].subs(subs)) == pytest.approx(w * Gf[i, j], abs=1e-10)
        assert float(bwd[k].subs(subs)) == pytest.approx(w * Gb[i, j], abs=1e-10)


def test_tilted_measure_interface_vanishes_at_the_saddle_point():
    net = sf.RNN(3, phi="linear", bias="none", scaling="mean_field")
    fl = feature_learning(net, np.ones((1, 1)), np.array([[0.0, 0.0, 4.5]]))
    lin = LinearAction(fl.problem)
    Ch = fl.problem.to_sites(fl.Chat)
    r1, r2 = forward_backward_residual(lin, fl.C_sites, Ch, GaussianTilted())
    assert np.abs(r1).max() < 1e-8 and np.abs(r2).max() < 1e-8
    # the sampling estimator (the path for nonlinear φ) agrees within its Monte-Carlo error
    r1, r2 = forward_backward_residual(lin, fl.C_sites, Ch, ImportanceTilted(lambda h: h, samples=200000, seed=1))
    assert np.abs(r1).max() < 0.02 * np.abs(fl.C_sites).max()
    assert np.abs(r2).max() < 0.02 * np.abs(Ch).max()
    # from the prior proposal (importance weights carry the whole tilt), in the weakly tilted phase
    fl = feature_learning(net, np.ones((1, 1)), np.array([[0.0, 0.0, 1.0]]))
    Ch = fl.problem.to_sites(fl.Chat)
    r1, _ = forward_backward_residual(LinearAction(fl.problem), fl.C_sites, Ch,
                                      ImportanceTilted(lambda h: h, samples=400000, seed=2, proposal="prior"))
    assert np.abs(r1).max() < 0.03 * np.abs(fl.C_sites).max()


@pytest.mark.parametrize("T", [3, 4, 5, 6])
def test_lag_sector_determinant_derived_equals_closed_form(T):
    for k in range(1, T):
        assert sp.simplify(fl_closed.lag_sector_determinant(T, k) - fl_closed.boxed_determinant(T, k)) == 0
    rho_c, yc2 = fl_closed.derive_threshold(T)
    assert rho_c == sp.Rational(T - 1, T - 2)
    assert sp.simplify(yc2 - fl_closed.threshold_formula(T)[1]) == 0


def test_symmetric_solution_and_threshold_values():
    y2 = fl_closed.symmetric_solution(3)  # raises if the geometric ansatz does not solve the derived equations
    phi = (1 + sp.sqrt(5)) / 2  # y = 2, unit hyperparameters: ρ is the golden ratio
    assert sp.simplify(y2.subs({fl_closed.rho: phi, fl_closed.g: 1, fl_closed.su: 1, fl_closed.sv: 1,
                                fl_closed.kappa: 1}) - 4) == 0
    assert fl_closed.threshold_value(3) == pytest.approx(np.sqrt(81 / 8), rel=1e-14)


def test_numerical_sector_hessian_equals_symbolic_H_k():
    """At the diagonal symmetric solution the congruence coordinates are η; the compiled lag-sector
    Hessians must equal the symbolically derived H_k(ρ)."""
    T, y = 5, 1.0
    net = sf.RNN(T, phi="linear", bias="none", scaling="mean_field", g=0.8, g_in=1.3, sigma_v=0.7)
    Y = np.zeros((1, T))
    Y[0, -1] = y
    fl = feature_learning(net, np.ones((1, 1)), Y, kappa=0.5)
    sym = fl.branches[0]
    assert sym.name == "symmetric"
    rho = sym.C[0, 0] / 1.3 ** 2
    bl = Blocks(fl.problem)
    p = bl.point(bl.blocks(sym.C))
    for k in range(1, T):
        op, shape = bl.sector_operator(p, k)
        m = int(np.prod(shape))
        H = op(np.eye(m).reshape((m,) + shape)).reshape(m, m)
        Hs = np.array(fl_closed.lag_sector_hessians(T)[k].subs(fl_closed.rho, rho), dtype=float)
        np.testing.assert_allclose(H, Hs, atol=1e-9)


def test_block_sector_spectrum_equals_dense_hessian():
    rng = np.random.default_rng(4)
    net = _net("rnn", 4, g=1.1, sigma_v=1.2)
    X = rng.standard_normal((2, 3))
    Y = np.zeros((2, 4))
    Y[:, -1] = [2.0, -1.5]
    fl = feature_learning(net, X, Y, kappa=0.7)
    C = fl.branches[0].C  # the symmetric solution (a saddle here)
    lin = LinearAction(fl.problem)
    spec = sector_spectrum(Blocks(fl.problem), Blocks(fl.problem).blocks(C))
    for k in range(1, 4):
        H, _ = sector_hessian(lin, C, [k])
        assert spec[k][0] == pytest.approx(np.linalg.eigvalsh(H)[-1], abs=1e-10)


@pytest.mark.parametrize("T,g,g_in,sigma_v,kappa,P", [(3, 1.0, 1.0, 1.0, 1.0, 1), (4, 0.9, 1.2, 1.3, 0.5, 1),
                                                      (5, 1.1, 0.8, 0.9, 2.0, 1), (4, 1.0, 1.0, 1.0, 1.0, 3),
                                                      (12, 0.95, 1.0, 1.0, 1.0, 1), (30, 1.0, 1.0, 1.0, 0.3, 1)])
def test_numerical_threshold_equals_closed_form(T, g, g_in, sigma_v, kappa, P):
    net = sf.RNN(T, phi="linear", bias="none", scaling="mean_field", g=g, g_in=g_in, sigma_v=sigma_v)
    rng = np.random.default_rng(T)
    X = np.linalg.qr(rng.standard_normal((P + 2, P)))[0].T * np.sqrt(P + 2)  # orthonormal, |x|²/D = 1
    Y = np.zeros((P, T))
    Y[:, -1] = rng.standard_normal(P)
    num = critical_signal(net, X, Y, kappa=kappa)
    closed = closed_form_threshold(net, X, Y, kappa=kappa)
    assert num == pytest.approx(closed, rel=1e-7)


def test_no_threshold_for_dnn_and_two_states():
    Y = np.array([[0.0, 0.0, 1.0]])
    assert critical_signal(sf.DNN(3, phi="linear", bias="none", scaling="mean_field"), np.ones((1, 1)), Y) == np.inf
    assert critical_signal(sf.RNN(2, phi="linear", bias="none", scaling="mean_field"), np.ones((1, 1)),
                           np.array([[0.0, 1.0]])) == np.inf

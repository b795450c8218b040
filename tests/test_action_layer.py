"""The action layer: GPAction and MeanFieldAction for RNN, DNN, ResNet, leaky RNN and grouped W.

GP: derived equations against docs/theory.md, the conjugate equation with skip against the hand chain
rule, derivatives against finite differences of the compiled kernel map.  μP: the derived two-field
equations against finite differences of the numeric action value (terms.py via LinearAction) at a random
PSD point, and their vanishing at the solver's solution; derivatives against finite differences.
"""
import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symfield as sf
from symfield.action import GPAction, MeanFieldAction
from symfield.action import template as tp
from symfield.theory.feature_learning.action import LinearAction
from symfield.theory.kernel_map import kernel_map

DOC = Path(__file__).resolve().parents[1] / "docs" / "theory.md"


def _nets(**kw):
    return {"rnn": sf.RNN(4, **kw), "dnn": sf.DNN(4, **kw), "resnet": sf.ResNet(4, r=0.7, **kw),
            "leaky": sf.RNN(4, leak=0.5, **kw), "grouped": sf.NetworkSpec(T=4, share={"W": [[1, 2], [3]]}, **kw)}


NAMES = list(_nets())


def _doc(ident):
    blocks = dict(re.findall(r"```sympy id=(\w+)\n(.*?)\n```", DOC.read_text(), re.S))
    local = {s.name: s for s in (tp.C_u, tp.Ct_u, tp.C_w, tp.Ct_w, tp.c11, tp.c22, tp.c12, tp.d1, tp.d2, tp.sdet,
                                 tp.sdet_w, tp.m, tp.m_w, tp.g2)}
    return sp.parse_expr(blocks[ident], local_dict=dict(local, E=tp.E, kappa=sp.Symbol("kappa", positive=True)))


# ------------------------------------------------------------------------------------ GP action
@pytest.mark.parametrize("name", NAMES)
def test_gp_saddle_point_equals_docs(name):
    net = _nets(phi="erf")[name]
    act = sf.action(net)
    assert isinstance(act, GPAction)
    sp_eq = act.saddle_point()
    field = tp.D_u if net.has_skip else tp.C_u
    assert act.fields[0].name == field.name[0] and sp_eq.kernel.lhs == field
    assert sp.simplify(sp_eq.kernel.rhs - _doc("kernel").rhs) == 0
    doc_erf = _doc("kernel_erf").subs(sp.Symbol("kappa", positive=True), 1)
    assert sp.simplify(sp_eq.closed.rhs - doc_erf.rhs) == 0
    # conjugate: with a concrete E, against the chain rule written by hand (skip: through l_i = dC/dD_u)
    a, b, c = sp.symbols("a b c")
    E = lambda x, y, z: x * y + z ** 2 + x * z  # noqa: E731
    dE = [lambda x, y, z: y + z, lambda x, y, z: x, lambda x, y, z: 2 * z + x]
    got = sp_eq.conjugate.rhs.replace(tp.E, E).doit()
    if net.has_skip:
        args = (tp.d1 + tp.l1 * tp.D_u, tp.d2 + tp.l2 * tp.D_u, tp.c12_w + tp.l12 * tp.D_u)
        chain = sum(l * f(*args) for l, f in zip((tp.l1, tp.l2, tp.l12), dE))
    else:
        chain = dE[2](tp.d1, tp.d2, tp.C_u)
        assert sp.simplify((sp_eq.conjugate.rhs - _doc("conjugate").rhs).doit()) == 0
    assert sp.simplify(got - tp.m_w * tp.g2 * tp.Ct_w * chain) == 0


@pytest.mark.parametrize("name", NAMES)
def test_gp_derivatives_are_finite_differences_of_the_kernel_map(name):
    act = sf.action(_nets(phi="erf")[name])
    d = act.derivatives()
    km = kernel_map(act.phi)
    rng = np.random.default_rng(4)
    c = np.array([rng.uniform(0.5, 1.5), rng.uniform(0.5, 1.5), 0.0])
    c[2] = 0.4 * np.sqrt(c[0] * c[1])
    g2, sdet = 1.7, 0.2
    subs = {tp.m: 1, tp.g2: g2, tp.sdet: sdet}

    def F(x):
        return km.block(np.array([x[0]]), np.array([x[1]]), np.array([[x[2]]]), sdet, 1.0, g2)[0, 0]

    def at(e, x):
        return float(e.subs(subs).subs(dict(zip(tp.ARGS, x))))
    h = 1e-5
    for i in range(3):
        e = np.eye(3)[i] * h
        assert at(d["Fp"][i], c) == pytest.approx((F(c + e) - F(c - e)) / (2 * h), rel=1e-7, abs=1e-9)
        for j in range(i, 3):
            ej = np.eye(3)[j] * h
            fd = (at(d["Fp"][i], c + ej) - at(d["Fp"][i], c - ej)) / (2 * h)
            assert at(d["Fpp"][(i, j)], c) == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_gp_compiled_skip_template_is_the_action_of_D():
    """dS/dCt_u = -1/2 (D_u - F(c)) and dS/dD_u = 0 at Ct = 0 (finite differences of the compiled module)."""
    act = sf.action(sf.ResNet(3, r=0.7, phi="erf"))
    S = act.compiled().pair_action
    names = [s.name for s in act.compiled_args()]
    km = kernel_map(act.phi)
    rng = np.random.default_rng(5)
    p = dict(zip(names, rng.uniform(0.3, 1.2, len(names))))
    p.update(Ct_u=0.0, Ct_w=0.0, c12=0.3 * np.sqrt(p["c11"] * p["c22"]), l1=0.5, l2=0.5, l12=0.2, c12_w=0.1)
    h = 1e-6

    def S_at(key, dx):
        q = dict(p, **{key: p[key] + dx})
        return S(*[q[k] for k in names])
    F = km.block(np.array([p["c11"]]), np.array([p["c22"]]), np.array([[p["c12"]]]), p["sdet"], p["m"], p["g2"])[0, 0]
    assert (S_at("Ct_u", h) - S_at("Ct_u", -h)) / (2 * h) == pytest.approx(-0.5 * (p["D_u"] - F), abs=1e-8)
    assert (S_at("D_u", h) - S_at("D_u", -h)) / (2 * h) == pytest.approx(0.0, abs=1e-9)


def test_gp_latex_names_the_declared_masks():
    n = _nets(phi="erf")
    assert r"\delta_{ab}" in sf.action(n["dnn"]).latex()
    assert "RNN" in sf.action(n["rnn"]).latex()
    grouped = sf.action(n["grouped"]).latex()
    assert r"[W_a = W_b] = " + sp.latex(sp.Matrix(n["grouped"].weight_mask()).applyfunc(sp.nsimplify)) in grouped
    res = sf.action(n["resnet"])
    tex = res.latex()
    assert r"C = \mathcal A D \mathcal A^{\rm T}" in tex and "branch mask" in tex and r"\frac{49}{100}" in tex
    assert r"\frac{1}{4}" in sf.action(n["leaky"]).latex()  # a_3 a_2 = 1/4 in the skip propagator
    assert "driving covariance" in str(res) and "C = A D A^T" in str(res.saddle_point())


def test_gp_for_phi_needs_no_declaration():
    a = GPAction.for_phi("erf")
    assert a.spec is None and a.template == sf.action(sf.DNN(7, phi="erf")).template
    assert a.saddle_point().closed == sf.action(sf.RNN(2, phi="erf")).saddle_point().closed
    assert a.latex()


# ------------------------------------------------------------------------------------ μP action
def _mup(name):
    net = _nets(phi="linear", scaling="mean_field", g=0.9, sigma_v=1.1)[name]
    return net.with_(T=3) if name not in ("grouped",) else net


def _point(n, rng):
    A = rng.standard_normal((n, n))
    return A @ A.T / n + np.eye(n)


@pytest.mark.parametrize("name", NAMES)
def test_mup_saddle_point_is_the_derivative_of_the_numeric_action(name):
    net = _mup(name)
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((1, 2)), np.array([rng.standard_normal(net.T)])
    act = sf.action(net, X, Y, kappa=0.7)
    assert isinstance(act, MeanFieldAction)
    sp_eq = act.saddle_point()
    lin = LinearAction(act.problem)
    C = _point(act.problem.n, rng)
    p = lin.point(C)
    Chat = p.Sinv - p.Cinv  # the forward equation solved for Ĉ: C = (Σ⁻¹ − Ĉ)⁻¹
    fwd, bwd = sp_eq.residuals(C, Chat)
    assert np.abs(fwd).max() < 1e-9
    h = 1e-6
    for k, (i, j) in enumerate(sp_eq.pairs):  # unordered entry c_ij: move C_ij and C_ji together
        E = np.zeros_like(C)
        E[i, j] = E[j, i] = 1.0
        fd = (lin.value(C + h * E) - lin.value(C - h * E)) / (2 * h)
        assert bwd[k] == pytest.approx(fd, rel=1e-6, abs=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_mup_saddle_point_vanishes_at_the_solver_solution(name):
    net = _mup(name)
    X, Y = np.ones((1, 1)), np.zeros((1, net.T))
    Y[0, -1] = 2.5
    fl = sf.feature_learning(net, X, Y)
    fwd, bwd = sf.action(net, X, Y).saddle_point().residuals(fl.C_sites, fl.problem.to_sites(fl.Chat))
    assert np.abs(fwd).max() < 1e-7 and np.abs(bwd).max() < 1e-7


@pytest.mark.parametrize("name", NAMES)
def test_mup_symbolic_default_and_derivatives(name):
    net = _mup(name)
    act = sf.action(net)
    assert act.symbolic_default and act.problem.P == 1
    free = set().union(*(e.free_symbols for e in act.saddle_point().backward))
    assert {"kappa", "sv2", "y_0"} <= {s.name for s in free}  # the task stays symbolic
    d = act.derivatives()
    sy = d["symbols"]
    cs = list(sy.c.values())
    rng = np.random.default_rng(7)
    C = _point(act.problem.n, rng)
    hyper = sy.hyper_values(act.problem)
    f, g, H = (_bound(sp.lambdify([*cs, *sy.hyper()], e, cse=True), hyper)
               for e in (d["action"], d["gradient"], d["hessian"]))
    x = C[tuple(np.array(list(sy.c)).T)]
    lin = LinearAction(act.problem)
    assert f(*x) == pytest.approx(lin.value(C), abs=1e-10)  # the same S/N as terms.action_value
    h = 1e-6
    grad, hess = np.array(g(*x)), np.array(H(*x))
    iu = np.triu_indices(len(cs))
    Hm = np.zeros((len(cs), len(cs)))
    Hm[iu] = hess
    Hm[iu[1], iu[0]] = hess
    for k in range(len(cs)):
        e = np.eye(len(cs))[k] * h
        assert grad[k] == pytest.approx((f(*(x + e)) - f(*(x - e))) / (2 * h), rel=1e-6, abs=1e-8)
        np.testing.assert_allclose(Hm[k], (np.array(g(*(x + e))) - np.array(g(*(x - e)))) / (2 * h),
                                   rtol=1e-5, atol=1e-7)


def _bound(fn, hyper):
    return lambda *c: fn(*c, *hyper)


def test_mup_latex_names_the_masks_and_dispatch():
    n = {k: _mup(k) for k in NAMES}
    for k, net in n.items():
        tex = sf.action(net).latex()
        assert sp.latex(sp.Matrix(net.branch_mask()).applyfunc(sp.nsimplify)) in tex and "branch mask" in tex
        assert r"M_{\rm out} = " + sp.latex(sp.Matrix(net.readout_mask()).applyfunc(sp.nsimplify)) in tex
        assert ("skip propagator" in tex) == net.has_skip
    assert r"\frac{1}{4}" in sf.action(n["leaky"]).latex()
    assert r"\frac{49}{100}" in sf.action(n["resnet"]).latex()
    assert isinstance(sf.action(sf.RNN(3)), GPAction)
    with pytest.raises(ValueError, match="X"):
        sf.action(sf.RNN(3), np.ones((1, 1)))
    with pytest.raises(sf.SpecError, match="X"):
        sf.action(n["rnn"], Y=np.ones((1, 3)))
    mod = sf.action(n["dnn"], np.ones((1, 1)), np.array([[0.0, 0.0, 1.0]])).compiled()
    assert mod.__file__.endswith(".py") and hasattr(mod, "gradient")

"""The action's derived equations: against docs/theory.md and against finite differences."""
import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import symfield as sf
from symfield.action import template as tp
from symfield.theory.kernel_map import kernel_map

DOC = Path(__file__).resolve().parents[1] / "docs" / "theory.md"
NAMES = {s.name: s for s in (tp.C_u, tp.Ct_u, tp.C_w, tp.Ct_w, tp.c11, tp.c22, tp.c12, tp.d1, tp.d2,
                              tp.sdet, tp.sdet_w, tp.m, tp.m_w, tp.g2)}


def doc_equation(ident):
    blocks = dict(re.findall(r"```sympy id=(\w+)\n(.*?)\n```", DOC.read_text(), re.S))
    local = dict(NAMES, E=tp.E, kappa=sp.Symbol("kappa", positive=True))
    return sp.parse_expr(blocks[ident], local_dict=local)


@pytest.mark.parametrize("arch", ["rnn", "dnn"])
def test_derived_equations_equal_docs(arch):
    sp_eq = sf.action(sf.NetworkSpec(arch, 4, phi="tanh")).saddle_point()
    for derived, ident in ((sp_eq.kernel, "kernel"), (sp_eq.conjugate, "conjugate")):
        doc = doc_equation(ident)
        assert derived.lhs == doc.lhs
        assert sp.simplify((derived.rhs - doc.rhs).doit()) == 0


@pytest.mark.parametrize("kappa", [1, sp.Rational(1, 2), sp.sqrt(sp.pi) / 2])
def test_erf_closed_equation_equals_docs(kappa):
    closed = sf.action(sf.RNN(3, phi="erf", phi_params={"kappa": float(kappa)})).saddle_point().closed
    doc = doc_equation("kernel_erf").subs(sp.Symbol("kappa", positive=True), kappa)
    rng = np.random.default_rng(0)
    diff = sp.lambdify(list(NAMES.values()), closed.rhs - doc.rhs)
    for _ in range(20):  # numerical equality at random valid points (kappa is a float in the spec)
        vals = rng.uniform(0.2, 2.0, len(NAMES))
        vals[list(NAMES).index("c12")] = rng.uniform(-0.19, 0.19)
        assert abs(diff(*vals)) < 1e-12


def test_relu_closed_equation_equals_docs():
    """Equal wherever the covariance is valid (the registered form guards acos against rounding)."""
    closed = sf.action(sf.DNN(3, phi="relu")).saddle_point().closed
    diff = sp.lambdify(list(NAMES.values()), closed.rhs - doc_equation("kernel_relu").rhs)
    rng = np.random.default_rng(3)
    for _ in range(20):
        vals = dict(zip(NAMES, rng.uniform(0.2, 2.0, len(NAMES))))
        vals["c12"] = rng.uniform(-1, 1) * np.sqrt(vals["c11"] * vals["c22"])
        assert abs(diff(*vals.values())) < 1e-12


def test_tanh_has_no_closed_equation():
    assert sf.action(sf.RNN(3, phi="tanh")).saddle_point().closed is None


def _point(rng):
    c11, c22 = rng.uniform(0.3, 2.0, 2)
    c12 = rng.uniform(-0.9, 0.9) * np.sqrt(c11 * c22)
    d1, d2 = rng.uniform(0.3, 2.0, 2)  # the successor reads C_u as its covariance: |C_u| < sqrt(d1 d2)
    return dict(C_u=rng.uniform(-0.9, 0.9) * np.sqrt(d1 * d2), Ct_u=0.0, C_w=rng.uniform(0.2, 1.5), Ct_w=0.0, c11=c11, c22=c22,
                c12=c12, d1=d1, d2=d2, sdet=rng.uniform(0, .3), sdet_w=rng.uniform(0, .3), m=1.0, m_w=1.0,
                g2=rng.uniform(0.5, 4.0))


@pytest.mark.parametrize("phi", ["erf", "relu", "linear"])
def test_compiled_equation_is_fd_derivative_of_compiled_action(phi):
    """dS/dCt_u (central differences of the compiled action) = -1/2 (C_u - F_u), F_u from the compiled map."""
    act = sf.action(sf.RNN(3, phi=phi))
    S = act.compiled().pair_action
    km = kernel_map(act.phi)
    rng = np.random.default_rng(1)
    order = ["C_u", "Ct_u", "C_w", "Ct_w", "c11", "c22", "c12", "d1", "d2", "sdet", "sdet_w", "m", "m_w", "g2"]
    for _ in range(10):
        p = _point(rng)
        h = 1e-6

        def S_at(**shift):
            q = dict(p)
            for k, v in shift.items():
                q[k] += v
            return S(*[q[k] for k in order])
        dS = (S_at(Ct_u=h) - S_at(Ct_u=-h)) / (2 * h)
        F = km.block(np.array([p["c11"]]), np.array([p["c22"]]), np.array([[p["c12"]]]), p["sdet"], 1.0, p["g2"])
        assert dS == pytest.approx(-0.5 * (p["C_u"] - F[0, 0]), abs=1e-8)
        # conjugate equation: dS/dC_u vanishes at Ct = 0 ...
        assert (S_at(C_u=h) - S_at(C_u=-h)) / (2 * h) == pytest.approx(0.0, abs=1e-9)


def test_kernel_equation_is_derivative_of_exact_cumulant_generating_function():
    """Independent of any closed form: W(Ct) = ln<exp(g²/2 Ct φ(z1)φ(z2))> by 2-D Gauss-Hermite;
    dS/dCt at Ct=0 vanishes exactly at the compiled C_u = Σdet + g² E."""
    x, w = np.polynomial.hermite_e.hermegauss(80)
    w = w / np.sqrt(2 * np.pi)
    rng = np.random.default_rng(2)
    for phi, f in (("erf", __import__("scipy.special", fromlist=["erf"]).erf), ("tanh", np.tanh)):
        km = kernel_map(sf.get_phi(phi))
        for _ in range(5):
            c11, c22 = rng.uniform(0.3, 2.0, 2)
            c12 = rng.uniform(-0.8, 0.8) * np.sqrt(c11 * c22)
            sdet, g2 = rng.uniform(0, .3), rng.uniform(0.5, 3.0)
            L = np.linalg.cholesky([[c11, c12], [c12, c22]])
            X1, X2 = np.meshgrid(x, x, indexing="ij")
            z1, z2 = L[0, 0] * X1, L[1, 0] * X1 + L[1, 1] * X2
            Phi, W2 = f(z1) * f(z2), np.outer(w, w)
            C_star = km.block(np.array([c11]), np.array([c22]), np.array([[c12]]), sdet, 1.0, g2)[0, 0]

            def S(ct):
                return -0.5 * ct * (C_star - sdet) + np.log(np.sum(W2 * np.exp(0.5 * g2 * ct * Phi)))
            h = 1e-5
            assert (S(h) - S(-h)) / (2 * h) == pytest.approx(0.0, abs=1e-8)


def test_latex_and_text():
    act = sf.action(sf.DNN(4, phi="erf"))
    tex = act.latex()
    assert r"\tilde C" in tex and r"\delta_{ab}" in tex and r"\operatorname{erf}" in tex
    assert "RNN" in sf.action(sf.RNN(4)).latex()
    assert "asin" in str(act.saddle_point())


def test_template_does_not_grow_with_T_or_P():
    small = sf.action(sf.RNN(2, phi="erf")).template
    large = sf.action(sf.RNN(50, phi="erf")).template
    assert small == large

"""The top eigenvalue of the Hessian at a subspace point by inertia counts (symfield/theory/feature_learning/
reduced_top.py) against the eigenvalues of the dense Hessian (spectrum.sector_hessian) and of the coupled block
built densely from its Hessian-vector products, at small n."""
import numpy as np
import pytest

import symfield as sf
from symfield.theory.feature_learning import critical_signal, feature_learning
from symfield.theory.feature_learning import reduced, reduced_spectrum as rs, reduced_top as rt
from symfield.theory.feature_learning.action import LinearAction
from symfield.theory.feature_learning.problem import problem
from symfield.theory.feature_learning.result import Branch

from test_fl_dense_paths import CASES, _dense_coupled_block, _dense_spectrum, _solve
from test_fl_reduced import sequential


def _parts(red, sub, N, s=1.0):
    cert = rs.certificate(red, sub, N, s, cap=red.n)
    b = rt.chain_factor(cert.blk.H)
    return cert, b, rt.ShiftedSchur(cert, b)


@pytest.mark.parametrize("kw", CASES.values(), ids=CASES.keys())
def test_top_eigenvalue_equals_the_dense_hessian(kw):
    """At the saddle point: the count of coupled-block eigenvalues above λ equals the dense block's at every
    λ tried, Q(0) equals the certificate's (built by sparse propagation), the 𝒲⊥ block's top equals the GP
    formula, and the top eigenvalue equals the dense Hessian's to 1e-10 (Branch.top_eigenvalue uses it)."""
    fl, _ = _solve(kw, T=5, P=3)
    r = fl.selected.reduced
    cert, b, sh = _parts(r.red, r.sub, r.N)
    assert b is not None
    block = np.linalg.eigvalsh(_dense_coupled_block(cert.blk))
    np.testing.assert_allclose(sh.Q(0.0), cert.Q, atol=1e-12 * np.abs(cert.Q).max())
    for lam in np.linspace(block[-1] - 0.05, block[-1] + 0.01, 13) + 1e-4:
        if np.abs(block - lam).min() > 1e-8:  # the count at an eigenvalue itself is round-off
            assert sh.count(lam) == np.sum(block > lam)
    dense = _dense_spectrum(fl.problem, fl.C_sites)
    top = rt.top_eigenvalue(r.red, r.sub, r.N, 1.0, cert=cert)
    assert top == pytest.approx(dense[-1], abs=1e-10)
    assert sh.block_top(-np.inf) == pytest.approx(block[-1], abs=1e-10)
    rest = rt.rest_top(b, cert.blk.W, fl.problem.P)
    assert rest <= top + 1e-15 and np.abs(dense - rest).min() < 1e-10  # an eigenvalue of the Hessian
    fl.selected._top = None
    assert fl.selected.top_eigenvalue == top


def test_top_eigenvalue_at_an_unstable_point_and_a_larger_problem():
    """Far from the saddle point (positive eigenvalues, held by the coupled block), and at T = 6, P = 6 with two
    held-out steps: against the dense Hessian's top eigenvalue to 1e-10."""
    net, X, Y, sup = sequential(5, 3)
    pr = problem(net, X, Y, sup, 0.5)
    red = reduced.Reduction(pr)
    sub, _, _ = red.solve(1.0, None, None, 1e-10)
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.standard_normal((sub.R, sub.R)))[0]
    N = Q @ np.diag(rng.uniform(-0.9, 10.0, sub.R)) @ Q.T
    dense = _dense_spectrum(pr, red.dense(sub, N))
    assert dense[-1] > 1e-3
    assert rt.top_eigenvalue(red, sub, N, 1.0) == pytest.approx(dense[-1], abs=1e-10)
    _, _, sh = _parts(red, sub, N)
    lam, h = 0.5 * dense[-1], 1e-5
    f, d = sh.schur_top(lam)  # Newton's path: f > 0 below the top, its slope against a central difference
    assert f > 0 and d <= -1
    assert d == pytest.approx((sh.schur_top(lam + h)[0] - sh.schur_top(lam - h)[0]) / (2 * h), rel=1e-6)
    fl, _ = _solve({}, T=6, P=6)
    r = fl.selected.reduced
    dense = _dense_spectrum(fl.problem, fl.C_sites)
    assert rt.top_eigenvalue(r.red, r.sub, r.N, 1.0) == pytest.approx(dense[-1], abs=1e-10)


def test_top_eigenvalue_changes_sign_at_the_threshold():
    """The symmetric branch of an endpoint task at 0.98 and 1.02 × critical_signal, put in subspace form: the top
    eigenvalue equals the dense Hessian's (to 1e-10) and is negative, then positive."""
    T = 5
    net = sf.RNN(T, phi="linear", bias="none", scaling="mean_field")
    X = np.array([[1.0, 0.2], [0.1, 0.9]])
    Y = np.zeros((2, T))
    Y[:, -1] = [1.0, -0.6]
    yc = critical_signal(net, X, Y)
    for f, sign in ((0.98, -1), (1.02, 1)):
        fl = feature_learning(net, X, Y * f * yc / np.linalg.norm(Y[:, -1]), gtol=1e-12)
        sym = fl.branches[0]
        assert sym.name == "symmetric"
        pr = fl.problem
        red = reduced.Reduction(pr)
        sub, N = red.state(sym.C)
        top = rt.top_eigenvalue(red, sub, N, 1.0)
        dense = _dense_spectrum(pr, sym.C)
        assert top == pytest.approx(dense[-1], abs=1e-10)
        assert np.sign(top) == sign
        br = Branch("sym", sym.C, sym.action, LinearAction(pr), reduced=reduced.ReducedPoint(red, sub, N, 1.0))
        assert br.top_eigenvalue == top and br.stable == (sign < 0)


def test_chain_factor_refuses_a_congruence_that_is_not_one_chain():
    """A 𝔅̃ that mixes patterns is not b ⊗ 1_P: chain_factor says None (top_eigenvalue then returns None and the
    result uses Lanczos)."""
    fl, _ = _solve({}, T=4, P=3)
    r = fl.selected.reduced
    H = rs.WhitenedHessian(r.red, r.sub, r.N, 1.0)
    assert rt.chain_factor(H) is not None
    Bt = H.Bt.toarray() if hasattr(H.Bt, "toarray") else H.Bt
    H.Bt = Bt.copy()
    H.Bt[5, 1] += 0.1
    assert rt.chain_factor(H) is None

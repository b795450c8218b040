"""The top eigenvalue of the Hessian at a subspace point by inertia counts (symfield/theory/feature_learning/
reduced_top.py) against the eigenvalues of the dense Hessian (spectrum.sector_hessian) and of the coupled block
built densely from its Hessian-vector products, at small n."""
import numpy as np
import pytest

from symfield.theory.feature_learning import reduced_spectrum as rs, reduced_top as rt

from test_fl_dense_paths import CASES, _dense_coupled_block, _dense_spectrum, _solve


@pytest.mark.parametrize("kw", CASES.values(), ids=CASES.keys())
def test_top_eigenvalue_equals_the_dense_hessian(kw):
    """At the saddle point: the count of coupled-block eigenvalues above λ equals the dense block's at every
    λ tried, Q(0) equals the certificate's (built by sparse propagation), the 𝒲⊥ block's top equals the GP
    formula, and the top eigenvalue equals the dense Hessian's to 1e-10 (Branch.top_eigenvalue uses it)."""
    fl, _ = _solve(kw, T=5, P=3)
    r = fl.selected.reduced
    cert = rs.certificate(r.red, r.sub, r.N, 1.0, cap=fl.problem.n)
    b = rt.chain_factor(cert.blk.H)
    assert b is not None
    sh = rt.ShiftedSchur(cert, b)
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


def test_top_eigenvalue_of_a_larger_problem():
    """T = 6, P = 5 with two held-out steps: against the dense Hessian's top eigenvalue to 1e-10 (an unstable point
    and the threshold: tests/test_fl_dense_paths.py)."""
    fl, _ = _solve({}, T=6, P=5)
    r = fl.selected.reduced
    dense = _dense_spectrum(fl.problem, fl.C_sites)
    assert rt.top_eigenvalue(r.red, r.sub, r.N, 1.0) == pytest.approx(dense[-1], abs=1e-10)


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


def test_a_dense_branch_in_subspace_form(monkeypatch):
    """A symmetric branch of an endpoint task solved densely (block solver) above the threshold, with the size
    from which dense branches go to their subspace form (result.SUBSPACE_FORM_MIN_N, 200 sites) lowered to 0:
    Branch.top_eigenvalue through Reduction.state and reduced_top equals the dense Hessian's (to 1e-10), positive."""
    import symfield as sf
    from symfield.theory.feature_learning import critical_signal, feature_learning, result
    monkeypatch.setattr(result, "SUBSPACE_FORM_MIN_N", 0)
    T = 5
    net = sf.RNN(T, phi="linear", bias="none", scaling="mean_field")
    X = np.array([[1.0, 0.2], [0.1, 0.9]])
    Y = np.zeros((2, T))
    Y[:, -1] = [1.0, -0.6]
    fl = feature_learning(net, X, Y * 1.2 * critical_signal(net, X, Y) / np.linalg.norm(Y[:, -1]))
    sym = fl.branches[0]
    assert sym.name == "symmetric" and sym.reduced is None and sym._subspace_form() is not None
    dense = _dense_spectrum(fl.problem, sym.C)
    assert sym.top_eigenvalue == pytest.approx(dense[-1], abs=1e-10) and dense[-1] > 1e-6

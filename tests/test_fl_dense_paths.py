"""The observables of a subspace-solver result (symfield/theory/feature_learning/{reduced,reduced_spectrum}.py) in
O(n² R) against their dense formulas on the same kernel (LinearAction, prediction.joint_kernel) and the Hessian
spectrum against the dense Hessian's eigenvalues, at small n."""
import numpy as np
import pytest

from symfield.theory.feature_learning import feature_learning
from symfield.theory.feature_learning.action import LinearAction
from symfield.theory.feature_learning.prediction import predict_new
from symfield.theory.feature_learning.problem import problem
from symfield.theory.feature_learning import reduced, reduced_spectrum as rs, reduced_top as rt
from symfield.theory.feature_learning.spectrum import sector_hessian

from linear_mup import continued
from test_fl_reduced import NETS, sequential


CASES = dict(NETS, untied={"input": "every", "readout": "untied"})


def _solve(kw, T=6, P=4, gtol=1e-12):
    kw = dict(kw)
    readout = kw.pop("readout", None)
    net, X, Y, sup = sequential(T, P, **kw)
    fl = continued(feature_learning(net, X, Y, supervised=sup, kappa=0.5, gtol=gtol, readout=readout))
    assert fl.selected.reduced is not None  # solved by the subspace solver
    return fl, LinearAction(fl.problem)


def _close(a, b, rtol=1e-10):
    assert np.abs(np.asarray(a) - b).max() <= rtol * np.abs(b).max()


@pytest.mark.parametrize("kw", CASES.values(), ids=CASES.keys())
def test_observables_equal_their_dense_formulas(kw):
    fl, lin = _solve(kw)
    pr, C = fl.problem, fl.C_sites
    p = lin.point(C)
    _close(fl.Chat, pr.from_sites(lin.chat(p)))
    _close(fl.predict(), (lin.readout_kernel(C)[:, pr.sites_S] @ p.w).reshape(pr.T, pr.P).T)
    Xn = np.random.default_rng(3).standard_normal((2, fl.problem.X.shape[-1]))
    _close(fl.predict(Xn), predict_new(pr, C, lin.chat(p), p.w, Xn))
    K = lin.readout_kernel(C)
    KS = K[:, pr.sites_S]
    var = np.diag(K) - np.einsum("ia,ab,ib->i", KS, p.Ainv, KS)
    _close(fl.predictive_variance(), var.reshape(pr.T, pr.P).T)
    assert len(fl.path.x) == len(fl.path.s) and np.array_equal(fl.path.x[-1], C)
    assert all(isinstance(st, tuple) or st is None for st in fl.path.x.states)  # no dense kernel stored


def test_fixed_point_residual_of_a_loose_solve_equals_the_dense_one():
    fl, lin = _solve({}, gtol=1e-5)
    C = fl.C_sites
    p = lin.point(C)
    dense = np.abs(lin.forward(p, lin.chat(p)) - C).max() / np.abs(C).max()
    assert dense > 1e-9  # measurably off the fixed point
    assert fl.fixed_point_residual() == pytest.approx(dense, rel=1e-6)


def _dense_spectrum(pr, C):
    H, _ = sector_hessian(LinearAction(pr), C, None)
    return np.linalg.eigvalsh(H)


@pytest.mark.parametrize("kw", CASES.values(), ids=CASES.keys())
def test_hessian_products_and_top_eigenvalue_equal_the_dense_hessian(kw):
    fl, lin = _solve(kw, T=5, P=3)
    r = fl.selected.reduced
    H = rs.WhitenedHessian(r.red, r.sub, r.N, 1.0)
    D = np.random.default_rng(0).standard_normal((fl.problem.n,) * 2)
    D = D + D.T
    L0 = r.red.L0
    _close(H.apply(D), L0.T @ lin.hessp(fl.C_sites, L0 @ D @ L0.T) @ L0, 1e-12)
    lam = _dense_spectrum(fl.problem, fl.C_sites)
    assert fl.selected.top_eigenvalue == pytest.approx(lam[-1], abs=1e-10)
    assert fl.stable == (lam[-1] <= 1e-9)
    assert rs.top_eigen(r.red, r.sub, r.N, 1.0)[0] == pytest.approx(lam[-1], abs=1e-10)
    block, bound = rs.stability(r.red, r.sub, r.N, 1.0, cap=fl.problem.n)
    assert np.abs(lam - block).min() < 1e-10  # an eigenvalue of the Hessian
    assert lam[-1] <= max(block, bound) + 1e-12


def test_an_unstable_point_is_found_unstable():
    """At a point C₀ + Φ N Φᵀ far from the saddle point (the decomposition holds at any such point) the Hessian
    has positive eigenvalues: the coupled block holds the top one, and Branch.stable / top_eigenvalue see it."""
    from symfield.theory.feature_learning.result import Branch
    net, X, Y, sup = sequential(5, 3)
    pr = problem(net, X, Y, sup, 0.5)
    red = reduced.Reduction(pr)
    sub, _, _ = red.solve(1.0, None, None, 1e-10)
    rng = np.random.default_rng(0)
    Q = np.linalg.qr(rng.standard_normal((sub.R, sub.R)))[0]
    N = Q @ np.diag(rng.uniform(-0.9, 10.0, sub.R)) @ Q.T
    C = red.dense(sub, N)
    lam = _dense_spectrum(pr, C)
    assert lam[-1] > 1e-3
    block, bound = rs.stability(red, sub, N, 1.0, cap=pr.n)
    assert block == pytest.approx(lam[-1], abs=1e-10)
    cert = rs.certificate(red, sub, N, 1.0, cap=pr.n)
    assert cert.positive(1e-10) == np.sum(lam > 1e-10) >= 1  # exact inertia
    br = Branch("far", C, 0.0, LinearAction(pr), reduced=reduced.ReducedPoint(red, sub, N, 1.0))
    br._certificate = (cert,)
    assert not br.stable
    assert br.top_eigenvalue == pytest.approx(lam[-1], abs=1e-10)  # reduced_top: Newton on the shifted 𝒮(λ)
    sh = rt.ShiftedSchur(cert, rt.chain_factor(cert.blk.H))
    x, h = 0.5 * lam[-1], 1e-5
    f, d = sh.schur_top(x)  # f > 0 below the top; its slope against a central difference
    assert f > 0 and d <= -1
    assert d == pytest.approx((sh.schur_top(x + h)[0] - sh.schur_top(x - h)[0]) / (2 * h), rel=1e-6)


def _dense_coupled_block(blk):
    Hd = np.array([blk.apply(e) for e in np.eye(blk.dim)]).T
    return 0.5 * (Hd + Hd.T)


@pytest.mark.parametrize("kw", CASES.values(), ids=CASES.keys())
def test_schur_certificate_equals_the_dense_schur_complement(kw):
    """SchurCertificate (closed-form X block −½KᵀK and Q by sparse propagation) against the Schur complement of
    the coupled block built densely from its Hessian-vector products, and its inertia against the dense Hessian."""
    fl, lin = _solve(kw, T=5, P=3)
    r = fl.selected.reduced
    H = rs.WhitenedHessian(r.red, r.sub, r.N, 1.0)
    blk = rs.CoupledBlock(H, rs.reducing_basis(H, fl.problem.n))
    Hd = _dense_coupled_block(blk)
    m = blk.k * (blk.k + 1) // 2
    assert np.linalg.eigvalsh(Hd[m:, m:])[-1] < 0  # the X block is negative definite
    ref = Hd[:m, :m] - Hd[:m, m:] @ np.linalg.solve(Hd[m:, m:], Hd[m:, :m])
    cert = rs.SchurCertificate(blk)
    _close(cert.schur, ref, 1e-12)
    lam = _dense_spectrum(fl.problem, fl.C_sites)
    assert cert.positive() == np.sum(lam > 0) == 0 and fl.stable


def test_stability_flips_at_the_threshold():
    """The symmetric branch of an endpoint task at 0.98 and 1.02 × critical_signal (the lag-sector threshold
    of the dense solver): the certificate at its subspace form says stable, then unstable, as the dense
    Hessian's top eigenvalue does, and reduced_top's top eigenvalue equals it (to 1e-10), changing sign."""
    import symfield as sf
    from symfield.theory.feature_learning import critical_signal
    T = 5
    net = sf.RNN(T, phi="linear", bias="none", scaling="mean_field")
    X = np.array([[1.0, 0.2], [0.1, 0.9]])
    Y = np.zeros((2, T))
    Y[:, -1] = [1.0, -0.6]
    yc = critical_signal(net, X, Y)
    for f, stable in ((0.98, True), (1.02, False)):
        fl = feature_learning(net, X, Y * f * yc / np.linalg.norm(Y[:, -1]), gtol=1e-12)
        sym = fl.branches[0]
        assert sym.name == "symmetric"
        pr = fl.problem
        red = reduced.Reduction(pr)
        sub, N = red.state(sym.C)
        cert = rs.certificate(red, sub, N, 1.0, cap=pr.n)
        lam = _dense_spectrum(pr, sym.C)
        assert (lam[-1] <= 0) == stable == (cert.positive() == 0)
        assert cert.positive(1e-10) == np.sum(lam > 1e-10)
        top = rt.top_eigenvalue(red, sub, N, 1.0, cert=cert)
        assert top == pytest.approx(lam[-1], abs=1e-10) and (top < 0) == stable


@pytest.mark.parametrize("kw", [{}, {"leak": 0.5, "g": 0.9}], ids=["rnn", "leaky"])
def test_learned_eigenvalues_from_the_companion_matrix_equal_the_dense_eig(kw):
    """spectrum.perturbed_nilpotent_spectrum at a subspace point against the dense eig(C_pp⁻¹C_px): the eigenvalues
    above a tenth of the largest one by one (to 1e-10), all of them through the power sums tr (C_pp⁻¹C_px)^j (the
    small ones form rings around 0 of near-Jordan chains that neither eig resolves, and with exact zeros (P > 2T)
    the dense eig spreads each chain of zeros by round-off)."""
    from symfield.theory.feature_learning.spectrum import _overlaps, perturbed_nilpotent_spectrum, weight_group_sites
    for T, P, zeros in ((5, 10, False), (4, 8, True)):
        fl, _ = _solve(kw, T=T, P=P)
        lam = fl.learned_eigenvalues()
        r = fl.selected.reduced
        assert r is not None and lam.shape == ((T - 1) * P,)
        pr = fl.problem
        prev, nxt, ks = weight_group_sites(pr)[0]
        a, rr = pr.spec.leak_values(), pr.spec.r_values()
        M = _learned_map(fl)
        Phi, ak = r.sub.Phi, np.repeat(a[ks], P)[:, None]
        C0pp, C0px = _overlaps(r.red.C0, prev, nxt, ak[:, 0], np.repeat(rr[ks], P))
        direct = perturbed_nilpotent_spectrum(C0pp, C0px, Phi[prev], (Phi[nxt] - ak * Phi[prev]) / rr[ks[0]], r.N,
                                              ks.size + 1)
        np.testing.assert_array_equal(direct, lam)  # the companion path, not the dense fallback
        assert (np.sum(lam == 0) > 0) == zeros
        _agrees_with_the_dense_eig(lam, M, 2 * T)


def _learned_map(fl, group=0):
    """The dense C_pp⁻¹C_px of W group ``group`` at the solution of ``fl``."""
    from symfield.theory.feature_learning.spectrum import _overlaps, _solve_pd, weight_group_sites
    pr = fl.problem
    prev, nxt, ks = weight_group_sites(pr)[group]
    a, rr = pr.spec.leak_values(), pr.spec.r_values()
    return _solve_pd(*_overlaps(fl.C_sites, prev, nxt, np.repeat(a[ks], pr.P), np.repeat(rr[ks], pr.P)))


def _agrees_with_the_dense_eig(lam, M, powers):
    """The eigenvalues above a tenth of the largest one by one against eig(M) (to 1e-10), all of them through the
    power sums tr M^j, j <= ``powers`` (to 1e-9)."""
    dense = np.linalg.eigvals(M)
    big = 0.1 * np.abs(dense).max()
    top, top_dense = lam[np.abs(lam) > big], dense[np.abs(dense) > big]
    assert top.size == top_dense.size >= 1
    assert max(np.abs(top_dense - v).min() for v in top) <= 1e-10 * np.abs(dense).max()
    Mj = np.eye(M.shape[0])
    for j in range(1, powers + 1):
        Mj = Mj @ M
        assert np.sum(lam ** j).real == pytest.approx(np.trace(Mj), rel=1e-9, abs=1e-12)


def test_learned_eigenvalues_of_a_dense_solve_come_from_the_same_companion_matrix():
    """The reference (dense) solver's result: C − C₀ is split by spectrum.low_rank_part and goes through
    perturbed_nilpotent_spectrum like a subspace point — exact zeros instead of the dense eig's round-off ring,
    the rest equal to the dense eig (to 1e-10) and through the power sums, and equal to the subspace result's.
    A DNN (one W group per layer, several groups) the same per group (exact zeros: no cross-layer overlaps)."""
    import symfield as sf
    T, P = 4, 8
    net, X, Y, sup = sequential(T, P)
    fl = feature_learning(net, X, Y, supervised=sup, kappa=0.5, gtol=1e-12, method="reference")
    assert fl.selected.reduced is None
    lam = fl.learned_eigenvalues()
    assert lam.shape == ((T - 1) * P,) and np.sum(lam == 0) > 0  # exact zeros: the companion path
    M = _learned_map(fl)
    _agrees_with_the_dense_eig(lam, M, 2 * T)
    sub, _ = _solve({}, T=T, P=P)
    ref = sub.learned_eigenvalues()
    assert np.sum(ref == 0) == np.sum(lam == 0)
    big = lam[np.abs(lam) > 0.1 * np.abs(ref).max()]  # the small ones: rings of near-Jordan chains, ill-conditioned
    assert big.size >= 2 and max(np.abs(ref - v).min() for v in big) <= 1e-9 * np.abs(ref).max()
    net = sf.DNN(3, phi="linear", bias="none", scaling="mean_field")
    X = np.random.default_rng(2).standard_normal((5, 6))
    Y = np.zeros((5, 3))
    Y[:, -1] = X[:, 0] - X[:, 1]
    fl = feature_learning(net, X, Y, kappa=0.5, gtol=1e-12)
    lam = fl.learned_eigenvalues()
    assert lam.shape == (2, 5) and fl.selected.reduced is None
    for g in range(2):  # no cross-layer overlaps in C: the learned map vanishes, the companion gives exact zeros
        assert np.abs(_learned_map(fl, g)).max() < 1e-12 and not np.any(lam[g])


def test_dense_lanczos_refuses_before_running_beyond_the_time_limit():
    """spectrum.top_eigen above DENSE_MAX runs Lanczos with O(n³) products: under a time limit it raises a
    ResourceError naming T·P before any product (here n = 200, about 24 s estimated against a 1 s limit)."""
    import symfield as sf
    from symfield.errors import ResourceError
    from symfield.theory.feature_learning.action import gp_kernel
    from symfield.theory.feature_learning.spectrum import top_eigen
    net, X, Y, sup = sequential(10, 20)
    pr = problem(net, X, Y, sup, 0.5)
    sf.set_time_limit(1.0)
    try:
        with pytest.raises(ResourceError, match=r"T·P = 200"):
            top_eigen(LinearAction(pr), gp_kernel(pr))
    finally:
        sf.set_time_limit(None)

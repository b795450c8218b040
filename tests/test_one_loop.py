"""One-loop corrections: derived vertices vs finite differences, closed forms, and structural identities."""
import numpy as np
import pytest

import symfield as sf
from symfield.gauss.moments import moments, pair_columns
from symfield.theory.one_loop import HESS, dnn_recursion, four_point, one_loop, template_derivatives

ORDER = ["C_u", "Ct_u", "C_w", "Ct_w", "c11", "c22", "c12", "d1", "d2", "sdet", "sdet_w", "m", "m_w", "g2"]
ARGS = ["c11", "c22", "c12"]


@pytest.mark.parametrize("phi", ["erf", "linear"])
def test_hessian_and_cubic_vertex_are_fd_derivatives_of_compiled_action(phi):
    """∂²S/∂C~_u∂c_i = F'_i/2 and ∂³S/∂C~_u∂c_i∂c_j = F''_ij/2 (central differences of the compiled action)."""
    act = sf.action(sf.RNN(3, phi=phi))
    S = act.compiled().pair_action
    rng = np.random.default_rng(0)
    for _ in range(5):
        c11, c22 = rng.uniform(0.4, 1.5, 2)
        p = dict(C_u=0.3, Ct_u=0.0, C_w=0.2, Ct_w=0.0, c11=c11, c22=c22, c12=rng.uniform(-.8, .8) * np.sqrt(c11 * c22),
                 d1=1.0, d2=1.0, sdet=0.1, sdet_w=0.1, m=1.0, m_w=1.0, g2=1.7)
        D = template_derivatives(act.phi, [p["c11"]], [p["c22"]], [p["c12"]])[0]
        h = 1e-3

        def Sat(shift):
            q = dict(p)
            for k, v in shift.items():
                q[k] += v
            return S(*[q[k] for k in ORDER])
        for i, a in enumerate(ARGS):
            mixed = (Sat({"Ct_u": h, a: h}) - Sat({"Ct_u": h, a: -h}) - Sat({"Ct_u": -h, a: h})
                     + Sat({"Ct_u": -h, a: -h})) / (4 * h * h)
            assert mixed == pytest.approx(0.5 * p["g2"] * D[1 + i], rel=1e-6, abs=1e-9)
        for k, (i, j) in enumerate(HESS):
            a, b = ARGS[i], ARGS[j]

            def d2(ct):
                def at(da, db):
                    shift = {"Ct_u": ct}
                    shift[a] = shift.get(a, 0) + da
                    shift[b] = shift.get(b, 0) + db
                    return Sat(shift)
                return (at(h, h) - at(h, -h) - at(-h, h) + at(-h, -h)) / (4 * h * h)
            third = (d2(h) - d2(-h)) / (2 * h)
            assert third == pytest.approx(0.5 * p["g2"] * D[4 + k], rel=1e-4, abs=1e-6)


def test_K_is_the_second_derivative_of_the_exact_cumulant_generating_function():
    """S^(2)_{C~u C~v} = K_uv/4 with K = g⁴ Cov(Φ_u, Φ_v): against ln<exp(g²/2 Σ C~ Φ)> by 4-D quadrature."""
    from scipy.special import erf
    rng = np.random.default_rng(1)
    A = rng.standard_normal((4, 4))
    cov = A @ A.T / 4 + 0.3 * np.eye(4)
    x, w = np.polynomial.hermite_e.hermegauss(24)
    w = w / w.sum()
    grids = np.meshgrid(*([x] * 4), indexing="ij")
    W4 = np.einsum("i,j,k,l->ijkl", w, w, w, w)
    z = np.einsum("ab,b...->a...", np.linalg.cholesky(cov), np.stack(grids))
    Phi_u, Phi_v = erf(z[0]) * erf(z[1]), erf(z[2]) * erf(z[3])
    g2 = 1.5

    def Wgen(cu, cv):
        return np.log(np.sum(W4 * np.exp(0.5 * g2 * (cu * Phi_u + cv * Phi_v))))
    h = 1e-3
    second = (Wgen(h, h) - Wgen(h, -h) - Wgen(-h, h) + Wgen(-h, -h)) / (4 * h * h)
    E4 = four_point(sf.get_phi("erf"), cov, np.array([[0, 1, 2, 3]]), n_nodes={4: 24})[0][0]
    E2u = moments("erf", cov[np.ix_([0, 1], [0, 1])][None], [[1, 1]])[0, 0]
    E2v = moments("erf", cov[np.ix_([2, 3], [2, 3])][None], [[1, 1]])[0, 0]
    assert second == pytest.approx(g2 ** 2 * (E4 - E2u * E2v) / 4, rel=1e-5)


def test_moments_linear_is_isserlis_and_gradient_is_fd():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((4, 4))
    S = A @ A.T / 4 + 0.2 * np.eye(4)
    out = moments("linear", S[None], [[1, 1, 1, 1]])[0]
    assert out[0] == pytest.approx(S[0, 1] * S[2, 3] + S[0, 2] * S[1, 3] + S[0, 3] * S[1, 2], rel=1e-12)
    grad = dict(zip(pair_columns(4), out[1:]))
    assert grad[(0, 1)] == pytest.approx(S[2, 3], rel=1e-12) and grad[(0, 0)] == pytest.approx(0, abs=1e-12)
    # z1² z2²: <..> = S11 S22 + 2 S12²
    out = moments("linear", S[:2, :2][None], [[2, 2]])[0]
    assert out[0] == pytest.approx(S[0, 0] * S[1, 1] + 2 * S[0, 1] ** 2, rel=1e-12)
    # erf: Price gradient against central differences
    val = lambda M: moments("erf", M[None], [[1, 2, 1]], n=60)[0, 0]  # noqa: E731
    S3 = S[:3, :3]
    g = moments("erf", S3[None], [[1, 2, 1]], n=60)[0, 1:]
    for (i, j), gv in zip(pair_columns(3), g):
        E = np.zeros((3, 3))
        E[i, j] = E[j, i] = 1e-5
        assert gv == pytest.approx((val(S3 + E) - val(S3 - E)) / 2e-5, rel=1e-5, abs=1e-8)


def test_moments_against_mpmath():
    """Two-site moments with multiplicities (φ(u)²φ(v)², φ(u)φ(v)³) and a one-site φ⁴ at random covariances."""
    import mpmath as mp
    from symfield.gauss.reference import expect1, expect2
    rng = np.random.default_rng(8)
    for _ in range(2):
        a, b = rng.uniform(0.3, 2.0, 2)
        c = rng.uniform(-0.9, 0.9) * np.sqrt(a * b)
        S = np.array([[a, c], [c, b]])
        for k in ([2, 2], [1, 3]):
            ref = float(expect2(lambda u: mp.erf(u) ** k[0], lambda v: mp.erf(v) ** k[1], a, b, c, dps=20))
            assert moments("erf", S[None], [k])[0, 0] == pytest.approx(ref, rel=1e-7, abs=1e-12)
        ref1 = float(expect1(lambda u: mp.erf(u) ** 4, a, dps=20))
        assert moments("erf", S[:1, :1][None], [[4]])[0, 0] == pytest.approx(ref1, rel=1e-9)


@pytest.mark.parametrize("arch", ["dnn", "rnn"])
def test_linear_single_input_variance_grows_linearly(arch):
    """Linear φ, σ = 0: N Δ⁽ᵃ⁾/C̄⁽ᵃ⁾² = 2(a-1) for both; the DNN has no mean shift (F'' = 0, Sec. 8.4)."""
    nl = one_loop(sf.NetworkSpec(arch, 6, phi="linear", g=1.3, sigma_b2=0.0), np.ones((1, 1)))
    C = nl.mf.diagonal()[:, 0]
    np.testing.assert_allclose(np.diag(nl.variance()[:, :, 0, 0]) / C ** 2, 2 * np.arange(6), rtol=1e-10)
    assert np.max(np.abs(nl.terms["tadpole"])) < 1e-10 * C.max()
    if arch == "dnn":
        assert np.max(np.abs(nl.mean_shift)) < 1e-10 * C.max()


def test_linear_multi_input_K_is_wishart():
    """Linear DNN, first hidden layer: K = g⁴(C_ac C_bd + C_ad C_bc)."""
    X = np.random.default_rng(3).standard_normal((3, 4))
    nl = one_loop(sf.DNN(2, phi="linear", g=0.9, sigma_b2=0.2), X)
    C1 = nl.mf.block(0, 0)
    cov = nl.covariance_block(1, 1, 1, 1)
    expect = 0.9 ** 4 * (np.einsum("ac,bd->abcd", C1, C1) + np.einsum("ad,bc->abcd", C1, C1))
    np.testing.assert_allclose(cov, expect, rtol=1e-10)


def test_fresh_bias_rnn_equals_dnn_at_one_loop():
    X = np.random.default_rng(4).standard_normal((2, 3))
    r = one_loop(sf.RNN(5, phi="erf", g=1.4, sigma_b2=0.2, bias="fresh"), X)
    d = one_loop(sf.DNN(5, phi="erf", g=1.4, sigma_b2=0.2), X)
    for a in range(5):
        np.testing.assert_allclose(r.covariance_block(a, a, a, a), d.covariance_block(a, a, a, a), atol=1e-12)
        np.testing.assert_allclose(r.mean_shift[a, a], d.mean_shift[a, a], atol=1e-10)
        np.testing.assert_allclose(r.empirical_variance[a, a], d.empirical_variance[a, a], atol=1e-10)


def test_static_bias_rnn_differs_and_weight_sharing_reverses_the_shift():
    """Near-critical static-bias RNN: the F''-only shift stays negative, the full one turns positive."""
    X = np.ones((1, 1))
    r = one_loop(sf.RNN(12, phi="erf", g=1.2, sigma_b2=0.1), X)
    d = one_loop(sf.DNN(12, phi="erf", g=1.2, sigma_b2=0.1), X)
    tad, full = np.diag(r.terms["tadpole"][:, :, 0, 0]), np.diag(r.mean_shift[:, :, 0, 0])
    assert np.all(tad[2:] < 0) and full[-1] > 0
    assert np.diag(r.variance()[:, :, 0, 0])[-1] > 1.2 * np.diag(d.variance()[:, :, 0, 0])[-1]
    assert np.all(d.terms["weight_sharing"] == 0)


def test_dnn_recursion_equals_general_result():
    X = np.random.default_rng(5).standard_normal((3, 4))
    net = sf.DNN(5, phi="erf", g=[1.1, 1.3, 0.9, 1.2], sigma_b2=0.1)
    nl = one_loop(net, X)
    ND, shift = dnn_recursion(net, X)
    layer = nl.ps.pairs[:, 0] // 3
    same = layer[:, None] == layer[None, :]
    np.testing.assert_allclose(ND[same], nl.NDelta[same], atol=1e-13)
    np.testing.assert_allclose(shift, sum(nl.shift_terms.values()), atol=1e-13)


def test_empirical_variance_dnn_is_sampling_plus_delta():
    """DNN: N Var K̂ = C_aa C_bb + C_ab² + NΔ (no response term); single input: 2C̄² + NΔ."""
    nl = one_loop(sf.DNN(6, phi="erf", g=1.2, sigma_b2=0.1), np.ones((1, 1)))
    C = nl.mf.diagonal()[:, 0]
    np.testing.assert_allclose(np.diag(nl.empirical_variance[:, :, 0, 0]),
                               2 * C ** 2 + np.diag(nl.variance()[:, :, 0, 0]), rtol=1e-12)


def test_accessors_and_shapes():
    X = np.random.default_rng(6).standard_normal((2, 3))
    nl = one_loop(sf.RNN(3, phi="erf", g=1.1, sigma_b2=0.1), X)
    full = nl.kernel_covariance.dense()
    assert full.shape == (3, 3, 2, 2, 3, 3, 2, 2)
    np.testing.assert_allclose(full[1, 2, 0, 1], nl.covariance_block(1, 2, 0, 0)[0, 1] * 0 + full[1, 2, 0, 1])
    np.testing.assert_allclose(full[2, 1, :, :, 1, 2], nl.covariance_block(2, 1, 1, 2))
    np.testing.assert_allclose(full, full.transpose(4, 5, 6, 7, 0, 1, 2, 3))
    np.testing.assert_allclose(np.einsum("abcdabcd->abcd", full), nl.variance())
    assert nl.mean_shift.shape == nl.empirical_variance.shape == (3, 3, 2, 2)
    assert np.all(full[0] == 0)  # the first time step is deterministic


def test_kinked_phi_is_refused_saying_why():
    """ReLU: <φ''φ''> is the density at the kink, infinite at c12² = c11 c22 (every variance pair)."""
    with pytest.raises(sf.errors.NotSupportedError, match="not smooth at x = \\[0.0\\].*perfect correlation"):
        one_loop(sf.RNN(3, phi="relu"), np.ones((1, 1)))


def test_numeric_template_derivatives_equal_the_closed_form():
    """Price's theorem by Gauss–Hermite (the path of φ without closed <φφ>, e.g. tanh) against the
    derived closed form for erf, including a pair at (near-)perfect correlation."""
    from symfield.theory.one_loop import numeric_template_derivatives
    phi = sf.get_phi("erf")
    c11, c22, c12 = np.array([0.5, 1.3, 2.0, 1.0]), np.array([0.7, 1.3, 1.1, 1.0]), np.array([0.2, 1.3, -0.9, 0.999999])
    np.testing.assert_allclose(numeric_template_derivatives(phi, c11, c22, c12),
                               template_derivatives(phi, c11, c22, c12), atol=1e-8)


def test_closed_form_four_point_moments_against_quadrature_and_fd():
    """erf: the orthant-integral closed form = high-order Gauss–Hermite (80⁴ nodes); its closed-form
    gradient = central differences of its value; linear: Isserlis (exact)."""
    rng = np.random.default_rng(11)
    A = rng.standard_normal((4, 4))
    S = A @ A.T / 4 + 0.3 * np.eye(4)
    closed = moments("erf", S[None], [[1, 1, 1, 1]])[0]
    np.testing.assert_allclose(closed, moments("erf", S[None], [[1, 1, 1, 1]], n=80)[0], atol=1e-10)
    for c, (i, j) in enumerate(pair_columns(4)):
        E = np.zeros((4, 4))
        E[i, j] = E[j, i] = 1e-5
        fd = (moments("erf", (S + E)[None], [[1, 1, 1, 1]])[0, 0] - moments("erf", (S - E)[None], [[1, 1, 1, 1]])[0, 0])
        assert closed[1 + c] == pytest.approx(fd / 2e-5, abs=1e-9)
    for k in ([2, 1, 1], [1, 3]):  # multiplicities through the expanded 4x4 form
        m = len(k)
        np.testing.assert_allclose(moments("erf", S[:m, :m][None], [k])[0],
                                   moments("erf", S[:m, :m][None], [k], n=150 if m == 2 else 100)[0], atol=1e-9)


def test_causal_forward_substitution_equals_dense_inverse_of_full_hessian():
    """NΔ and J⁻¹ from forward substitution = the blocks of -(S⁽²⁾)⁻¹ of the full quadratic action."""
    X = np.random.default_rng(7).standard_normal((2, 3))
    net = sf.RNN(5, phi="erf", g=1.3, sigma_b2=0.1)
    a, b = one_loop(net, X), one_loop(net, X, solver="dense")
    np.testing.assert_allclose(a.NDelta, b.NDelta, atol=1e-11)
    np.testing.assert_allclose(a.Jinv, b.Jinv, atol=1e-12)
    np.testing.assert_allclose(a.mean_shift, b.mean_shift, atol=1e-11)
    with pytest.raises(ValueError, match="solver"):
        one_loop(net, X, solver="lu")


def test_default_quadrature_is_converged_in_the_chaotic_regime():
    """The hardest listed case (erf, g = 2, static bias: variances ≈ 2.6): defaults vs many more nodes."""
    net = sf.RNN(10, phi="erf", g=2.0, sigma_b2=0.1)
    a = one_loop(net, np.ones((1, 1)))
    b = one_loop(net, np.ones((1, 1)), n_nodes={1: 150, 2: 100, 3: 64, 4: 20})
    assert a.mean_shift[9, 9, 0, 0] == pytest.approx(b.mean_shift[9, 9, 0, 0], rel=5e-3)
    assert a.variance()[9, 9, 0, 0] == pytest.approx(b.variance()[9, 9, 0, 0], rel=1e-4)


def test_multiset_rank_is_a_dense_bijection():
    """Every sorted 4-multiset of M sites gets a distinct rank in 0..C(M+3, 4)-1, and unrank inverts it."""
    from itertools import combinations_with_replacement
    from math import comb
    from symfield.theory.one_loop import _binomials, multiset_rank, multiset_unrank
    M = 7
    quads = np.array(list(combinations_with_replacement(range(M), 4)))
    binom = _binomials(M + 3)
    r = multiset_rank(quads, binom)
    assert sorted(r.tolist()) == list(range(comb(M + 3, 4)))
    np.testing.assert_array_equal(multiset_unrank(r, binom), quads)

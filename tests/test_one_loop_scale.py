"""One loop at larger T·P (issue 12 part 4, issue 10 part 3): the compiled pair-pair loops against the numpy
path they replace, the lazy kernel covariance against its dense array, and the time estimate's orthant count."""
import numpy as np
import pytest

import symfield as sf
from symfield import resources
from symfield.errors import ResourceError, SpecError
from symfield.gauss import moments as gm
from symfield.progress import progress_bar
from symfield.theory.kernel_covariance import KernelCovariance
from symfield.theory.mean_field import mean_field
from symfield.theory.one_loop import (_vertices, _vertices_compiled, causal_propagate, estimate_operations,
                                      ingredients, one_loop, orthant_terms, vertex_phi)
from symfield.theory.pairs import pair_space


def _both_paths(spec, X):
    ing = ingredients(spec, mean_field(spec, X))

    def propagate(K):
        return causal_propagate(ing.J, K), ing.Jinv

    with progress_bar(3, "test", False) as bar:
        old = _vertices(spec, ing, None, False, bar, propagate)
        new = _vertices_compiled(spec, ing, None, bar, propagate, chunk=7)  # several moment chunks
    return old, new


@pytest.mark.parametrize("spec,P", [
    (sf.RNN(4, phi="erf", g=1.3, sigma_b2=0.2), 3),
    (sf.DNN(4, phi="erf", g=1.1, sigma_b2=0.1), 3),                          # unrelated pairs across layers
    (sf.NetworkSpec(T=5, share={"W": [[1, 2], [3, 4]]}), 2),                     # grouped sharing
    (sf.RNN(3, phi="tanh", g=1.2), 2),                                          # erf sum: 4⁴ orthant terms
])
def test_compiled_loops_match_numpy_path(spec, P):
    """K → NΔ and the weight-sharing vertex t_u of the compiled loops (:mod:`symfield.theory.assembly`) equal
    those of the chunked numpy path (the implementation before them), also where pairs are unrelated or
    independent (zero covariance between their sites)."""
    X = np.random.default_rng(2).standard_normal((P, 3))
    (nd_old, jinv_old, t_old), (nd_new, jinv_new, t_new) = _both_paths(spec, X)
    scale = np.max(np.abs(nd_old))
    np.testing.assert_allclose(nd_new, nd_old, rtol=0, atol=1e-13 * scale)
    np.testing.assert_allclose(t_new, t_old, rtol=0, atol=1e-13 * np.max(np.abs(t_old)))
    np.testing.assert_array_equal(jinv_new, jinv_old)   # restored after the transposed loop


def test_causal_propagate_against_dense_inverse():
    """J⁻¹ K J⁻ᵀ by in-place forward substitution equals the dense products with scipy's triangular inverse."""
    from scipy.linalg import solve_triangular
    spec, X = sf.RNN(4, phi="erf", g=1.4), np.random.default_rng(4).standard_normal((2, 3))
    ing = ingredients(spec, mean_field(spec, X))
    rng = np.random.default_rng(0)
    A = rng.standard_normal((ing.ps.n, ing.ps.n))
    K = A @ A.T
    Jd = ing.J.toarray()
    Jinv = solve_triangular(Jd, np.eye(len(Jd)), lower=True)
    np.testing.assert_allclose(causal_propagate(ing.J, K.copy()), Jinv @ K @ Jinv.T, rtol=0, atol=1e-12 * np.abs(K).max())
    np.testing.assert_allclose(ing.Jinv, Jinv, rtol=0, atol=1e-13)


@pytest.fixture(scope="module")
def small():
    return one_loop(sf.RNN(3, phi="erf", g=1.1, sigma_b2=0.1), np.random.default_rng(6).standard_normal((2, 3)))


def test_kernel_covariance_reads_equal_dense(small):
    kc = small.kernel_covariance
    full = kc.dense()
    assert kc.shape == full.shape == (3, 3, 2, 2, 3, 3, 2, 2) and kc.nbytes_dense == full.nbytes
    for t, s, t2, s2 in [(1, 2, 2, 1), (0, 1, 2, 2), (2, 2, 2, 2)]:
        np.testing.assert_array_equal(kc.block(t, s, t2, s2), full[t, s, :, :, t2, s2])
        np.testing.assert_array_equal(small.covariance_block(t, s, t2, s2), full[t, s, :, :, t2, s2])
    for key in [(1, 2, 0, 1), (2, 1, slice(None), 0, -1), (Ellipsis, 1), (1, Ellipsis, 0, 1),
                (slice(1, 3), slice(None, None, -1), 1, 0, 2, 2, 1, 1), (2,)]:
        np.testing.assert_array_equal(kc[key], full[key])
    np.testing.assert_array_equal(kc.diagonal(), np.einsum("abcdabcd->abcd", full))
    np.testing.assert_array_equal(np.asarray(kc), full)
    with pytest.raises(IndexError):
        kc[3]
    with pytest.raises(SpecError, match="integers, slices"):
        kc[[0, 1]]


def test_kernel_covariance_dense_refused_when_large():
    """RNN T = 30, P = 20: the dense (TP)⁴ array is 1 TB; refused naming the argument, before allocating."""
    ps = pair_space(sf.RNN(30), 20)
    kc = KernelCovariance(ps, np.zeros((0, 0)))
    assert kc.nbytes_dense == 8 * 600 ** 4
    with pytest.raises(ResourceError, match="kernel_covariance.*the number of inputs X"):
        kc.dense()
    with pytest.raises(ResourceError):
        np.asarray(kc)


def test_time_estimate_counts_orthant_terms(monkeypatch):
    """tanh runs on its 4-term erf sum: every distinct four-point multiset costs up to 4⁴ = 256 orthant moments.
    The count the estimate uses bounds the count sign_moments actually evaluates (counted by wrapping it),
    within the factor that repeated sites save, and the estimate grows by it against erf."""
    tanh = sf.RNN(3, phi="tanh", g=1.2)
    assert orthant_terms(vertex_phi(tanh.phi_fn)) == 256 and orthant_terms(vertex_phi(sf.RNN(3).phi_fn)) == 1
    seen = []
    real = gm.sign_moments
    monkeypatch.setattr(gm, "sign_moments", lambda S, *a, **k: (seen.append(len(S)), real(S, *a, **k))[1])
    X = np.random.default_rng(1).standard_normal((2, 3))
    one_loop(tanh, X)
    evaluated = sum(seen)
    multisets = 35   # C((T - 1) P + 3, 4) = C(7, 4) site multisets, all related
    assert evaluated <= 256 * multisets <= 4 * evaluated, evaluated
    big_tanh, big_erf = sf.RNN(15, phi="tanh"), sf.RNN(15, phi="erf")
    ratio = estimate_operations(big_tanh, 4) / estimate_operations(big_erf, 4)
    assert 100 < ratio <= 256


def test_time_limit_refuses_tanh_where_erf_passes():
    spec_erf, spec_tanh = sf.RNN(15, phi="erf"), sf.RNN(15, phi="tanh")
    limit = 3 * estimate_operations(spec_erf, 4) / resources.RATE
    assert estimate_operations(spec_tanh, 4) / resources.RATE > 10 * limit
    X = np.random.default_rng(0).standard_normal((4, 3))
    sf.set_time_limit(limit)
    try:
        with pytest.raises(ResourceError, match=r"256 orthant moments.*reduce P or T"):
            one_loop(spec_tanh, X)
    finally:
        sf.set_time_limit(None)

"""Finite-width prior simulator: conventions, weight sharing, seeds, exact linear-network laws."""
import numpy as np
import pytest

from symfield.simulate import PriorEnsemble, draw_network, forward, prior
from symfield.simulate.draws import nested_normals
from symfield.spec import DNN, RNN, SpecError

RNG = np.random.default_rng(12345)
X2 = RNG.standard_normal((3, 4))  # P=3 patterns, D=4
XSEQ = RNG.standard_normal((3, 4, 4))  # P=3, T=4, D=4


def _emp_from_states(h):
    return np.einsum("tip,siq->tspq", h, h) / h.shape[1]


def _within(est, target, se, k=4.0):
    assert np.all(np.abs(est - target) <= k * se + 1e-12), (est, target, se)


@pytest.mark.parametrize("spec, X", [
    (RNN(4, g=1.2, sigma_b2=0.1), X2),
    (DNN(4, g=[1.1, 0.9, 1.3], sigma_b2=[0.1, 0.2, 0.0, 0.3], phi="relu"), X2),
    (RNN(4, input="every", bias="fresh", phi="tanh"), XSEQ),
    (DNN(4, input="every", phi="linear"), XSEQ),
])
def test_shapes_symmetry_and_reference_forward(spec, X):
    ens = prior(spec, X, N=24, samples=5, seed=7, chunk=2)
    assert isinstance(ens, PriorEnsemble) and ens.samples == 5 and ens.N == 24
    for kind in ("emp", "aux"):
        K = ens.kernel(kind)
        assert K.shape == (5, 4, 4, 3, 3) and K.dtype == np.float64
        np.testing.assert_allclose(K, K.transpose(0, 2, 1, 4, 3), atol=1e-13)
        assert ens.mean(kind).shape == ens.var(kind).shape == ens.sem(kind).shape == (4, 4, 3, 3)
    np.testing.assert_array_equal(ens.C, ens.emp.mean(axis=0))
    # every sample equals the plain per-network forward pass with the documented weights
    for k in (0, 3, 4):
        h = forward(spec, draw_network(spec, 24, 4, 7, k), X)
        np.testing.assert_allclose(ens.emp[k], _emp_from_states(h), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="kind"):
        ens.mean("hat")


def test_auxiliary_kernel_definition_and_first_step():
    """C = Σdet + M g_t g_s/N Σ φφ; entries with t=1 or s=1 are exactly Σdet (Sec. 3.3)."""
    for spec in (RNN(4, g=1.3, sigma_b2=0.2), DNN(4, g=[1.1, 0.9, 1.3], sigma_b2=0.2)):
        ens = prior(spec, X2, N=16, samples=3, seed=1)
        Xc = spec.check_inputs(X2)
        for t in range(4):
            np.testing.assert_allclose(ens.aux[:, 0, t], np.broadcast_to(spec.sigma_det(Xc, 0, t), (3, 3, 3)))
        phi = spec.phi_fn.numpy()
        gs = spec.g_values()
        for k in range(3):
            h = forward(spec, draw_network(spec, 16, 4, 1, k), X2)
            for t in range(1, 4):
                for s in range(1, 4):
                    ref = spec.sigma_det(Xc, t, s)
                    if spec.block_exists(t, s):
                        ref = ref + gs[t - 1] * gs[s - 1] * phi(h[t - 1]).T @ phi(h[s - 1]) / 16
                    np.testing.assert_allclose(ens.aux[k, t, s], ref, rtol=1e-12, atol=1e-14)
        if spec.arch == "dnn":  # independent layers: no cross-layer weight term
            np.testing.assert_allclose(ens.aux[:, 1, 2], 0.0)


def test_static_vs_fresh_bias_cross_time_structure():
    """Static bias: Σdet = σ² on every time pair; fresh: only on the diagonal (Sec. 2.4)."""
    sig2 = 0.5
    x = X2[:1]
    static = prior(RNN(3, g=1.0, sigma_b2=sig2, bias="static"), x, N=64, samples=300, seed=3)
    fresh = prior(RNN(3, g=1.0, sigma_b2=sig2, bias="fresh"), x, N=64, samples=300, seed=3)
    np.testing.assert_allclose(static.aux[:, 0, 1:], sig2)  # deterministic first-step rows
    np.testing.assert_allclose(fresh.aux[:, 0, 1:], 0.0)
    # <h_1 h_2> = Σdet_12 since W is independent of h_1
    _within(static.mean("emp")[0, 1], sig2, static.sem("emp")[0, 1])
    _within(fresh.mean("emp")[0, 1], 0.0, fresh.sem("emp")[0, 1])
    # equal-time kernels agree in distribution (both σ² on the diagonal)
    d = static.mean("aux")[2, 2] - fresh.mean("aux")[2, 2]
    _within(d, 0.0, np.hypot(static.sem("aux")[2, 2], fresh.sem("aux")[2, 2]))


def test_input_every_sequence_shared_vs_per_layer_input_weights():
    Xrep = np.repeat(X2[:, None, :], 4, axis=1)
    rnn = RNN(4, g=0.8, input="every", bias="none")
    dnn = DNN(4, g=0.8, input="every", bias="none")
    # a (P, D) input with input='every' is the repeated sequence
    a, b = prior(rnn, X2, 16, 4, seed=2), prior(rnn, Xrep, 16, 4, seed=2)
    np.testing.assert_array_equal(a.emp, b.emp)
    # sequence: t=1 rows of the auxiliary kernel are g_in² x^(1)·x^(s)/D (shared W_in)
    ens = prior(rnn, XSEQ, 32, 200, seed=4)
    sdet01 = XSEQ[:, 0] @ XSEQ[:, 1].T / 4
    np.testing.assert_allclose(ens.aux[:, 0, 1], np.broadcast_to(sdet01, (200, 3, 3)), atol=1e-12)
    _within(ens.mean("emp")[0, 1], sdet01, ens.sem("emp")[0, 1])
    # repeated input: RNN (shared W_in) correlates h_1 and h_2 through the input, the DNN does not
    r = prior(rnn, Xrep, 32, 200, seed=5)
    d = prior(dnn, Xrep, 32, 200, seed=5)
    target = X2 @ X2.T / 4
    _within(r.mean("emp")[0, 1], target, r.sem("emp")[0, 1])
    _within(d.mean("emp")[0, 1], 0.0, d.sem("emp")[0, 1])
    assert np.all(np.abs(np.diag(target)) > 6 * np.diag(d.sem("emp")[0, 1]))


def test_rnn_shares_W_dnn_draws_fresh_layers():
    """At T=2 (one application of W) RNN == DNN draw for draw; from T=3 on they differ."""
    kw = dict(g=1.2, sigma_b2=0.1, bias="fresh")
    r2, d2 = prior(RNN(2, **kw), X2, 20, 6, seed=9), prior(DNN(2, **kw), X2, 20, 6, seed=9)
    np.testing.assert_array_equal(r2.emp, d2.emp)
    np.testing.assert_array_equal(r2.aux, d2.aux)
    r3, d3 = prior(RNN(3, **kw), X2, 20, 6, seed=9), prior(DNN(3, **kw), X2, 20, 6, seed=9)
    np.testing.assert_array_equal(r3.emp[:, :2, :2], d3.emp[:, :2, :2])
    assert not np.allclose(r3.emp[:, 2, 2], d3.emp[:, 2, 2])
    assert len(draw_network(RNN(5), 8, 4, 0).W) == 1 and len(draw_network(DNN(5), 8, 4, 0).W) == 4
    # the shared W: h_3 = W φ(h_2) + ξ_3 with the same W that made h_2
    net = draw_network(RNN(3, **kw), 20, 4, 9, 0)
    h = forward(RNN(3, **kw), net, X2)
    phi = RNN(3).phi_fn.numpy()
    np.testing.assert_allclose(h[2], net.W[0] @ phi(h[1]) + net.bias[2][:, None], atol=1e-12)


def test_seed_reproducibility_chunks_prefix_and_nested_widths():
    spec = RNN(3, g=1.1, sigma_b2=0.1)
    a = prior(spec, X2, 16, 7, seed=11, chunk=7)
    b = prior(spec, X2, 16, 7, seed=11, chunk=2)
    c = prior(spec, X2, 16, 3, seed=11)
    np.testing.assert_array_equal(a.emp, b.emp)
    np.testing.assert_array_equal(a.aux, b.aux)
    np.testing.assert_array_equal(a.emp[:3], c.emp)  # samples=m is the prefix of a longer run
    assert not np.allclose(a.emp, prior(spec, X2, 16, 7, seed=12).emp)
    free = prior(spec, X2, 16, 2)  # fresh entropy, recorded in .seed
    np.testing.assert_array_equal(free.emp, prior(spec, X2, 16, 2, seed=free.seed).emp)
    # widths are nested: width 8 uses the top-left corner of the width-16 draws
    z8 = nested_normals(np.random.default_rng(5), 8)
    z16 = nested_normals(np.random.default_rng(5), 16)
    np.testing.assert_array_equal(z8, z16[:8, :8])
    n8, n16 = draw_network(spec, 8, 4, 11, 2), draw_network(spec, 16, 4, 11, 2)
    np.testing.assert_allclose(n8.W[0] * np.sqrt(8), n16.W[0][:8, :8] * np.sqrt(16))
    np.testing.assert_array_equal(n8.W_in, n16.W_in[:, :8])
    np.testing.assert_array_equal(n8.bias, n16.bias[:, :8])


def _var_and_se(v):
    """Unbiased variance of samples v and its standard error (from the fourth central moment)."""
    S = len(v)
    m2 = v.var(ddof=1)
    m4 = np.mean((v - v.mean()) ** 4)
    return m2, np.sqrt(max(m4 - m2 ** 2 * (S - 3) / (S - 1), 0.0) / S)


def test_linear_dnn_exact_chi_square_law():
    """φ linear, σ=0, one input: C^(a) = g² C^(a-1) χ²_N/N, so for the DNN (Sec. 8.4)
    N Var C^(a)/C̄^(a)² = N[(1+2/N)^(a-1) - 1] (auxiliary) and N[(1+2/N)^a - 1] (empirical K̂^(a))."""
    N, S, T = 8, 4000, 4
    gs = np.array([1.1, 0.9, 1.2])
    spec = DNN(T, phi="linear", g=gs, g_in=1.3, bias="none")
    x = X2[:1]
    ens = prior(spec, x, N, S, seed=2024)
    c1 = 1.3 ** 2 * x[0] @ x[0] / 4
    cbar = c1 * np.concatenate([[1.0], np.cumprod(gs ** 2)])
    for a in range(T):
        for kind, power in (("aux", a), ("emp", a + 1)):
            v = ens.kernel(kind)[:, a, a, 0, 0]
            _within(v.mean(), cbar[a], v.std(ddof=1) / np.sqrt(S) + 1e-15)
            var, se = _var_and_se(v)
            exact = N * ((1 + 2 / N) ** power - 1)
            _within(N * var / cbar[a] ** 2, exact, N * se / cbar[a] ** 2 + 1e-12)


def test_single_hidden_state_and_progress(capsys):
    ens = prior(RNN(1, sigma_b2=0.3), X2, 10, 4, seed=0, progress=True)
    assert ens.emp.shape == (4, 1, 1, 3, 3)
    np.testing.assert_allclose(ens.aux[:, 0, 0], np.broadcast_to(X2 @ X2.T / 4 + 0.3, (4, 3, 3)))
    assert "prior rnn N=10: 4/4 (" in capsys.readouterr().err  # symfield.progress line (stderr is no terminal)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(N=0), ValueError, "N must be"),
    (dict(N=2.5), ValueError, "N must be"),
    (dict(N=True), ValueError, "N must be"),
    (dict(samples=0), ValueError, "samples must be"),
    (dict(samples=-3), ValueError, "samples must be"),
    (dict(chunk=0), ValueError, "chunk must be"),
    (dict(seed=-1), ValueError, "seed"),
    (dict(seed="abc"), ValueError, "seed"),
    (dict(blas_threads=0), ValueError, "blas_threads"),
    (dict(X=np.array([[1.0, np.nan, 0.0, 1.0]])), SpecError, "non-finite"),
    (dict(X=np.ones((2, 3, 4))), SpecError, "shape"),
    (dict(X=np.ones(4)), SpecError, "shape"),
])
def test_bad_arguments(kwargs, err, match):
    args = dict(spec=RNN(3), X=X2, N=8, samples=2)
    args.update(kwargs)
    with pytest.raises(err, match=match):
        prior(**args)


def test_bad_sequence_shape_and_spec_type():
    with pytest.raises(SpecError, match="T=4"):
        prior(RNN(4, input="every"), np.ones((3, 5, 4)), 8, 2)
    with pytest.raises(TypeError, match="NetworkSpec"):
        prior("rnn", X2, 8, 2)


def test_blas_thread_setting_is_restored():
    from threadpoolctl import threadpool_info
    before = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"]
    prior(RNN(3), X2, 8, 2, seed=0, blas_threads=1)
    assert [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"] == before

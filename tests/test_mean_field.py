"""Leading-order kernels against closed forms, published spot values and structural identities."""
import importlib
import os

import numpy as np
import pytest

import symfield as sf

# theory/nngp_and_one_loop.md Sec. 10.1: erf, C1 = 1.1, g = 1.2, sigma^2 = 0.1
LENGTH_MAP = [1.1, 0.7949, 0.7059, 0.6733, 0.6603, 0.6550, 0.6528, 0.6518, 0.6514, 0.6513]


@pytest.mark.parametrize("net", [sf.DNN(10, phi="erf", g=1.2, sigma_b2=0.1),
                                 sf.RNN(10, phi="erf", g=1.2, sigma_b2=0.1, bias="static"),
                                 sf.RNN(10, phi="erf", g=1.2, sigma_b2=0.1, bias="fresh")])
def test_published_length_map(net):
    mf = sf.mean_field(net, np.ones((1, 1)))  # |x|²/D = 1: C1 = 1.0 + 0.1
    np.testing.assert_allclose(mf.diagonal()[:, 0], LENGTH_MAP, atol=5e-5)


def test_fixed_point_and_chi1_published():
    fp = sf.fixed_point(sf.RNN(10, phi="erf", g=1.2, sigma_b2=0.1))
    assert fp.q == pytest.approx(0.65117, abs=1e-5)
    assert fp.chi1 == pytest.approx(0.9657, abs=1e-4)
    assert fp.phase == "ordered"
    np.testing.assert_allclose(sf.length_map(sf.DNN(10, phi="erf", g=1.2, sigma_b2=0.1), 1.1, 10),
                               LENGTH_MAP, atol=5e-5)


def test_fixed_point_slope_matches_finite_difference_of_length_map():
    net = sf.RNN(3, phi="erf", g=1.2, sigma_b2=0.1)
    fp = sf.fixed_point(net)
    h = 1e-4
    up, dn = sf.length_map(net, fp.q + h, 2)[1], sf.length_map(net, fp.q - h, 2)[1]
    assert fp.slope == pytest.approx((up - dn) / (2 * h), rel=1e-6)


@pytest.mark.parametrize("kappa,g", [(1.0, 0.8), (1.0, 0.9), (0.5, 1.7), (0.5, 1.8)])
def test_zero_fixed_point_stability_criterion(kappa, g):
    """erf(κx), σ = 0: the zero fixed point is stable iff g 2κ/√π < 1 (theory Sec. 6)."""
    fp = sf.fixed_point(sf.RNN(3, phi="erf", g=g, sigma_b2=0.0, phi_params={"kappa": kappa}))
    stable = g * 2 * kappa / np.sqrt(np.pi) < 1
    assert (fp.q < 1e-6) == stable
    assert (fp.chi1 < 1) == stable


def test_relu_fixed_point_closed_form():
    """ReLU: <φ²>_q = q/2, so q* = σ²/(1 - g²/2) and χ1 = g²/2."""
    fp = sf.fixed_point(sf.DNN(3, phi="relu", g=1.1, sigma_b2=0.2))
    assert fp.q == pytest.approx(0.2 / (1 - 1.1 ** 2 / 2), rel=1e-10)
    assert fp.chi1 == pytest.approx(1.1 ** 2 / 2, rel=1e-10)


@pytest.mark.parametrize("phi", ["erf", "relu", "tanh", "linear"])
@pytest.mark.parametrize("bias", ["static", "fresh", "none"])
def test_rnn_equal_time_kernel_equals_dnn(phi, bias):
    X = np.random.default_rng(3).standard_normal((4, 7))
    g = 0.9 if phi == "linear" else 1.3
    rnn = sf.mean_field(sf.RNN(6, phi=phi, g=g, sigma_b2=0.2, bias=bias), X)
    dnn = sf.mean_field(sf.DNN(6, phi=phi, g=g, sigma_b2=0.2, bias="none" if bias == "none" else "fresh"), X)
    np.testing.assert_allclose(rnn.equal_time(), dnn.equal_time(), rtol=1e-13, atol=1e-14)


def test_input_every_step_equal_time_matches_dnn_with_per_layer_input():
    X = np.random.default_rng(4).standard_normal((3, 5, 6))  # a sequence
    rnn = sf.mean_field(sf.RNN(5, phi="erf", g=1.1, sigma_b2=0.1, input="every"), X)
    dnn = sf.mean_field(sf.DNN(5, phi="erf", g=1.1, sigma_b2=0.1, input="every"), X)
    np.testing.assert_allclose(rnn.equal_time(), dnn.equal_time(), rtol=1e-13)
    # RNN shares W_in: the cross-time input term x^(a)·x^(b)/D is present
    assert abs(rnn.block(0, 3)[0, 1] - (0.1 + X[0, 0] @ X[1, 3] / 6)) < 1e-13


def test_fresh_bias_odd_phi_cross_time_vanishes():
    X = np.random.default_rng(5).standard_normal((3, 4))
    mf = sf.mean_field(sf.RNN(8, phi="erf", g=1.5, sigma_b2=0.3, bias="fresh"), X)
    C = mf.C
    for a in range(8):
        for b in range(8):
            if a != b:
                assert np.max(np.abs(C[a, b])) < 1e-15


def test_static_bias_cross_time_builds_up():
    """C̄(1, b) = σ² and C̄(a, b) increases with a up to a = b - 1 (theory Sec. 10.2)."""
    mf = sf.mean_field(sf.RNN(12, phi="erf", g=1.2, sigma_b2=0.1), np.ones((1, 1)))
    C = mf.C[:, :, 0, 0]
    b = 11
    assert C[0, b] == pytest.approx(0.1)
    assert np.all(np.diff(C[: b, b]) > 0)


def test_linear_rnn_closed_form():
    """Linear φ: C̄(a, b) = Σdet_ab + g² C̄(a-1, b-1); static bias, first-step input."""
    X = np.random.default_rng(6).standard_normal((3, 5))
    g, s2, T = 0.8, 0.2, 6
    mf = sf.mean_field(sf.RNN(T, phi="linear", g=g, sigma_b2=s2), X)
    C = np.zeros((T, T, 3, 3))
    C[0, :] = s2
    C[:, 0] = s2
    C[0, 0] += X @ X.T / 5
    for a in range(1, T):
        for b in range(1, T):
            C[a, b] = s2 + g ** 2 * C[a - 1, b - 1]
    np.testing.assert_allclose(mf.C, C, rtol=1e-13)


def test_erf_block_matches_independent_quadrature():
    """One RNN cross-time entry against 2-D Gauss-Hermite of erf·erf (independent of the closed form)."""
    from scipy.special import erf
    X = np.random.default_rng(7).standard_normal((2, 3))
    net = sf.RNN(4, phi="erf", g=1.4, sigma_b2=0.2)
    C = sf.mean_field(net, X).C
    x, w = np.polynomial.hermite_e.hermegauss(60)
    w = w / np.sqrt(2 * np.pi)
    c11, c22, c12 = C[1, 1, 0, 0], C[2, 2, 1, 1], C[1, 2, 0, 1]
    L = np.linalg.cholesky([[c11, c12], [c12, c22]])
    X1, X2 = np.meshgrid(x, x, indexing="ij")
    e = np.sum(np.outer(w, w) * erf(L[0, 0] * X1) * erf(L[1, 0] * X1 + L[1, 1] * X2))
    assert C[2, 3, 0, 1] == pytest.approx(0.2 + 1.4 ** 2 * e, abs=1e-12)


def test_dnn_stores_only_diagonal_blocks_and_dense_view():
    X = np.random.default_rng(8).standard_normal((5, 20))
    mf = sf.mean_field(sf.DNN(10, phi="erf", g=1.2, g_in=1.0, sigma_b2=0.1), X)
    assert sorted(mf.blocks) == [(a, a) for a in range(10)]
    C = mf.C
    assert C.shape == (10, 10, 5, 5)
    assert np.all(C[2, 5] == 0) and np.array_equal(mf.block(9, 9), C[9, 9])
    with pytest.raises(IndexError):
        mf.block(10, 0)


def test_rnn_blocks_symmetric_and_psd():
    X = np.random.default_rng(9).standard_normal((3, 4))
    mf = sf.mean_field(sf.RNN(6, phi="tanh", g=1.5, sigma_b2=0.1), X)
    C = mf.C.transpose(0, 2, 1, 3).reshape(18, 18)
    np.testing.assert_allclose(C, C.T, atol=1e-14)
    assert np.linalg.eigvalsh(C).min() > -1e-10
    assert np.array_equal(mf.block(4, 2), mf.C[4, 2])


def test_per_layer_dnn_hyperparameters():
    gs, sb = [1.0, 1.5, 0.7], [0.1, 0.2, 0.3, 0.0]
    mf = sf.mean_field(sf.DNN(4, phi="linear", g=gs, sigma_b2=sb), np.ones((1, 2)))
    q = [0.1 + 1.0]
    for a in range(1, 4):
        q.append(sb[a] + gs[a - 1] ** 2 * q[-1])
    np.testing.assert_allclose(mf.diagonal()[:, 0], q, rtol=1e-14)


def test_progress_output(capsys):
    sf.mean_field(sf.RNN(3, phi="erf"), np.ones((1, 2)), progress=True)
    assert "mean_field shells: 3/3" in capsys.readouterr().err


@pytest.mark.parametrize("net", [sf.DNN(6, phi="erf", g=1.2, sigma_b2=0.1),
                                 sf.RNN(6, phi="erf", g=1.2, sigma_b2=0.1, input="every")])
def test_keep_last_equals_the_full_recursion(net):
    """keep='last' recycles the memory of earlier shells; its last shell equals the full one bit for bit."""
    X = np.random.default_rng(10).standard_normal((40, 6, 3) if net.input == "every" else (40, 3))
    full, last = sf.mean_field(net, X), sf.mean_field(net, X, keep="last")
    for a in range(6):
        np.testing.assert_array_equal(last.block(a, 5), full.block(a, 5))
    np.testing.assert_array_equal(last.diagonal(), full.diagonal())
    with pytest.raises(KeyError, match="keep='last'"):
        last.block(4, 4)
    with pytest.raises(ValueError, match="keep"):
        last.C
    with pytest.raises(ValueError, match="keep"):
        sf.mean_field(net, X, keep="first")


@pytest.mark.parametrize("bias", ["static", "fresh", "none"])
def test_compiled_shells_equal_the_block_by_block_recursion(bias):
    """An RNN with input at the first step runs through compiled shells into dense storage; every block,
    both triangles, equals the block-by-block path, and C[t, s] = C[s, t].T exactly."""
    from symfield.theory.mean_field import _by_blocks, _by_shells, _dense
    from symfield.theory.kernel_map import kernel_map

    net = sf.RNN(7, phi="erf", g=1.3, sigma_b2=0.2, bias=bias)
    X = net.check_inputs(np.random.default_rng(11).standard_normal((30, 4)))
    km = kernel_map(net.phi_fn)
    dense = _dense(net, km, X, "all")
    assert dense is not None and _dense(net.with_(input="every"), km, X, "all") is None
    fast, slow = _by_shells(net, X, km, dense, False), _by_blocks(net, X, km, "all", False)
    np.testing.assert_array_equal(fast.C, slow.C)
    np.testing.assert_array_equal(fast.C, fast.C.transpose(1, 0, 3, 2))
    np.testing.assert_array_equal(fast.diagonal(), slow.diagonal())
    assert not fast.C.flags.writeable


@pytest.mark.filterwarnings("ignore:overflow")
def test_shells_report_non_finite_kernels():
    from symfield.theory.mean_field import NonFiniteKernel

    net = sf.RNN(4, phi="erf", g=1.0, sigma_b2=0.1)
    with pytest.raises(NonFiniteKernel, match="shells"):
        sf.mean_field(net, np.full((3, 2), 1e200))


# ------------------------------------------------------------------ per-call scheme (issue 12)
@pytest.mark.parametrize("net", [sf.RNN(6, phi="erf", g=1.2, sigma_b2=0.1, input="every"),
                                 sf.DNN(5, phi="erf", g=1.2, sigma_b2=0.1, input="every"),
                                 sf.RNN(5, phi="tanh", g=1.1, sigma_b2=0.1),
                                 sf.ResNet(4, r=0.5, phi="erf"), sf.RNN(5, phi="erf", g=1.3)])
def test_per_call_scheme_equals_the_block_by_block_reference(net):
    """Σdet per shell, hoisted factors per time and any thread count give the per-block path's numbers exactly."""
    from symfield.theory.mean_field import reference_mean_field
    X = np.random.default_rng(12).standard_normal((30, net.T, 4) if net.input == "every" else (30, 4))
    ref = reference_mean_field(net, X)
    for threads in (1, 2):
        mf = sf.mean_field(net, X, threads=threads)
        np.testing.assert_array_equal(mf.C, ref.C)
    with pytest.raises(ValueError, match="threads"):
        sf.mean_field(net, X, threads=0)


def test_deterministic_part_equals_sigma_det_block_by_block():
    from symfield.theory.mean_field import Deterministic
    for net in (sf.RNN(5, input="every", sigma_b2=0.2), sf.DNN(4, input="every", g_in=1.5),
                sf.RNN(4, sigma_b2=0.3, bias="fresh")):
        X = net.check_inputs(np.random.default_rng(13).standard_normal((6, net.T, 3) if net.input == "every"
                                                                       else (6, 3)))
        sdet = Deterministic(net, X)
        for b in range(net.T):
            for a in range(b + 1):
                np.testing.assert_allclose(np.broadcast_to(sdet(a, b), (6, 6)), net.sigma_det(X, a, b),
                                           rtol=1e-14, atol=1e-15)


def test_thread_count_from_work_and_free_cores(monkeypatch):
    mfm = importlib.import_module("symfield.theory.mean_field")
    monkeypatch.setattr(mfm, "_available_cores", lambda: 2)
    assert mfm.thread_count(mfm.THREADS_MIN_WORK / 2, most=2) == 1   # small regions: one thread
    assert mfm.thread_count(mfm.THREADS_MIN_WORK * 4, most=2) == 2
    assert mfm.thread_count(mfm.THREADS_MIN_WORK * 4, most=1) == 1
    monkeypatch.setattr(mfm, "_available_cores", lambda: 1)          # a loaded machine: one thread
    assert mfm.thread_count(mfm.THREADS_MIN_WORK * 4, most=2) == 1
    monkeypatch.undo()
    assert 1 <= mfm._available_cores() <= (os.cpu_count() or 1)


def test_large_rnn_stores_each_block_once(monkeypatch):
    """Above DENSE_MAX_BYTES the RNN is computed block by block (blocks a <= b stored once, no dense array)."""
    mfm = importlib.import_module("symfield.theory.mean_field")
    net = sf.RNN(6, phi="erf", g=1.3, sigma_b2=0.1)
    X = np.random.default_rng(14).standard_normal((20, 3))
    dense = sf.mean_field(net, X)
    monkeypatch.setattr(mfm, "DENSE_MAX_BYTES", 8 * (6 * 20) ** 2 - 1)
    blocks = sf.mean_field(net, X)
    assert dense.dense is not None and blocks.dense is None
    assert len(blocks.raw) == 21
    np.testing.assert_array_equal(blocks.C, dense.C)

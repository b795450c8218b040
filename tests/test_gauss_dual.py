"""Numeric dual kernel (Mehler expansion) against mpmath, exact kernels and the closed forms."""
import math

import numpy as np
import pytest
import sympy as sp

from symfield.gauss import DualKernel, expect, get_phi, register_phi
from symfield.gauss.dual import TOL
from symfield.gauss.reference import mehler_reference, pair_reference, single_reference

y = sp.Symbol("y")
register_phi("sin_dual_test", sp.Lambda(y, sp.sin(y)), overwrite=True)  # no closed form registered
register_phi("exp_dual_test", sp.Lambda(y, sp.exp(y / 2)), overwrite=True)  # neither odd nor even

# the same cases as in test_gauss_quadrature.py (mpmath references are memoised per process)
TANH_CASES = [(1.3, 0.4, 0.7 * math.sqrt(1.3 * 0.4)), (0.7, 2.2, -0.35 * math.sqrt(0.7 * 2.2)),
              (1.3, 1.3, 0.9999 * 1.3)]
TANH_EXTRA = [(2.0, 0.9, -0.99999 * math.sqrt(1.8)), (4.0, 4.0, 0.995 * 4.0)]


def random_block(P, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((P, 12))
    C = scale * X @ X.T / 12
    return np.diag(C).copy(), C


def random_triples(n, seed, vmax=3.0):
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(0.0, vmax, n), rng.uniform(0.0, vmax, n)
    rho = np.concatenate([rng.uniform(-1, 1, n - 6), [1.0, -1.0, 0.999999, -0.999999, 0.9999, 0.0]])
    return a, b, rho * np.sqrt(a * b)


def test_tanh_vs_mpmath():
    dk = DualKernel("tanh")
    for c in TANH_CASES + TANH_EXTRA:
        assert dk.pair(*c) == pytest.approx(pair_reference("tanh", *c), abs=1e-8), c
    for c in (0.3, 1.3, 6.0):  # rho = +-1 exactly
        ref = single_reference("tanh", c, (0, 0))
        assert dk.pair(c, c, c) == pytest.approx(ref, abs=1e-8)
        assert dk.pair(c, c, -c) == pytest.approx(-ref, abs=1e-8)
    # <φ'φ'> against mpmath, and against Price's theorem (finite difference in c12)
    c = TANH_CASES[0]
    assert dk.dpair(*c) == pytest.approx(pair_reference("tanh", *c, orders=(1, 1)), abs=1e-8)
    assert dk.dpair(1.7, 1.7, 1.7) == pytest.approx(single_reference("tanh", 1.7, (1, 1)), abs=1e-8)
    a, b, c12 = random_triples(20, 4)
    keep = np.abs(c12) < 0.99 * np.sqrt(a * b) - 1e-3
    a, b, c12 = a[keep], b[keep], c12[keep]
    h = 1e-4
    fd = (dk.pair(a, b, c12 + h) - dk.pair(a, b, c12 - h)) / (2 * h)
    assert np.max(np.abs(fd - dk.dpair(a, b, c12))) < 1e-7


def test_tanh_dual_vs_quadrature():
    dk = DualKernel("tanh")
    d, C = random_block(12, 1)
    ref = np.array([[expect("tanh", [[d[i], C[i, j]], [C[i, j], d[j]]], n=150) for j in range(12)] for i in range(12)])
    assert np.max(np.abs(dk.pair_block(d, d, C, symmetric=True) - ref)) < 1e-9


def test_user_lambda_sin_exact():
    """<sin u sin v> = exp(-(c11+c22)/2) sinh(c12); <cos u cos v> = exp(-(c11+c22)/2) cosh(c12)."""
    nl = get_phi("sin_dual_test")
    assert nl.pair(1, 1, 0) is None and nl.odd
    dk = DualKernel("sin_dual_test")
    a, b, c = random_triples(40, 2)
    env = np.exp(-(a + b) / 2)
    assert np.max(np.abs(dk.pair(a, b, c) - env * np.sinh(c))) < 1e-10
    assert np.max(np.abs(dk.dpair(a, b, c) - env * np.cosh(c))) < 1e-10
    # a block with several unequal variances, rectangular
    rng = np.random.default_rng(9)
    d1, d2 = rng.uniform(0.1, 3, 5), rng.uniform(0.1, 3, 7)
    c12 = rng.uniform(-1, 1, (5, 7)) * np.sqrt(np.outer(d1, d2))
    exact = np.exp(-(d1[:, None] + d2[None, :]) / 2) * np.sinh(c12)
    assert np.max(np.abs(dk.pair_block(d1, d2, c12) - exact)) < 1e-10


def test_no_parity_and_mixed_orders():
    """φ = exp(x/2): <φ(u)φ(v)> = <φ(u)φ'(v)>·2 = exp((c11+c22)/8 + c12/4)."""
    dk = DualKernel("exp_dual_test")
    a, b, c = random_triples(20, 3, vmax=2.0)
    exact = np.exp((a + b) / 8 + c / 4)
    assert np.max(np.abs(dk.pair(a, b, c) - exact)) < 1e-10
    assert np.max(np.abs(dk.pair(a, b, c, orders=(0, 1)) - exact / 2)) < 1e-10
    # odd x even mixed orders vanish
    assert DualKernel("tanh").pair(1.0, 2.0, 0.5, orders=(0, 1)) == 0.0


def test_erf_dual_vs_closed_form():
    nl = get_phi("erf", kappa=0.7)
    dk = DualKernel(nl)
    d, C = random_block(150, 5, scale=2.0)
    k2 = 2 * 0.7 ** 2
    den = (1 + k2 * d[:, None]) * (1 + k2 * d[None, :])
    pair = 2 / np.pi * np.arcsin(np.clip(k2 * C / np.sqrt(den), -1, 1))
    dpair = 2 * k2 / np.pi / np.sqrt(den - k2 ** 2 * C ** 2)
    K = dk.pair_block(d, d, C, symmetric=True)
    assert np.max(np.abs(K - pair)) < 1e-9
    assert np.array_equal(K, K.T)
    off = ~np.eye(len(d), dtype=bool)  # ρ = 1 on the diagonal: dpair has a finite closed form there too
    assert np.max(np.abs(dk.dpair_block(d, d, C, symmetric=True) - dpair)[off]) < 1e-8
    assert float(nl.pair(1.0, 1.0, 0.5)) == pytest.approx(dk.pair(1.0, 1.0, 0.5), abs=1e-12)


def test_block_symmetric_rectangular_and_elementwise_agree():
    dk = DualKernel("tanh")
    d, C = random_block(40, 6, scale=1.5)
    sym = dk.pair_block(d, d, C, symmetric=True)
    full = dk.pair_block(d, d, C)
    assert np.allclose(sym, full, atol=1e-15, rtol=0)
    ii, jj = np.indices(C.shape)
    assert np.allclose(dk.pair(d[ii], d[jj], C), full, atol=1e-15, rtol=0)
    sub = dk.pair_block(d[:7], d[10:30], C[:7, 10:30])
    assert np.allclose(sub, full[:7, 10:30], atol=1e-15, rtol=0)
    assert isinstance(dk.pair(1.0, 1.0, 0.2), float)
    assert DualKernel("tanh") is dk and DualKernel(get_phi("tanh")) is dk


def test_zero_variance():
    dk = DualKernel("exp_dual_test")
    # u = 0 deterministically: <φ(0)φ(v)> = exp(c22/8)
    assert dk.pair(0.0, 1.2, 0.0) == pytest.approx(math.exp(1.2 / 8), abs=1e-12)
    assert DualKernel("tanh").pair(0.0, 1.0, 0.0) == 0.0


def test_errors_are_loud():
    dk = DualKernel("tanh")
    # the Mehler sum cannot certify <tanh²> at variance 200; the panel rule takes over (was a ValueError)
    assert dk.pair(200.0, 200.0, 200.0) == pytest.approx(single_reference("tanh", 200.0, (0, 0)), rel=1e-12)
    d = np.array([1.0, 200.0])
    block = dk.pair_block(d, d, np.diag(d), symmetric=True)
    assert block[1, 1] == pytest.approx(single_reference("tanh", 200.0, (0, 0)), rel=1e-12)
    assert abs(dk.pair(200.0, 200.0, 0.0)) < 1e-12  # independent: still fine
    with pytest.raises(ValueError, match="positive semi-definite"):
        dk.pair(1.0, 1.0, 1.01)
    with pytest.raises(ValueError, match="negative"):
        dk.pair_block(np.array([1.0, -0.5]), np.array([1.0, -0.5]), np.eye(2))
    # sin at variance 1e6: hundreds of periods per graded panel; neither method certifies it, so it raises
    with pytest.raises(ValueError, match="cannot reach 1e-06"):
        DualKernel(sp.Lambda(y, sp.sin(y))).pair(1e6, 1e6, 1e6)
    with pytest.raises(ValueError, match="shape"):
        dk.pair_block(np.ones(2), np.ones(3), np.zeros((3, 2)))


@pytest.mark.parametrize("orders", [(0, 0), (1, 1)])
def test_kinked_phi_against_arc_cosine_kernel(orders):
    """ReLU (a kink): the Hermite coefficients come from graded panels, not Gauss–Hermite nodes (which left them
    off by ~1e-4 of √<φ²>: <relu relu> at ρ = 0.99 was 5.5e-5 relative off), at every variance and |ρ| up to 0.999;
    the reported error bounds the actual one against the closed form (30 digits) and is within TOL."""
    nl = get_phi("relu")
    dk = DualKernel(nl)
    v = np.array([1e-6, 1.0, 1e4])[:, None] * np.ones(6)
    rho = np.ones((3, 1)) * np.array([-0.999, -0.6, 0.0, 0.3, 0.9, 0.99])
    c11, c22 = v, 2 * v
    c12 = rho * np.sqrt(c11 * c22)
    got = dk.pair(c11, c22, c12, orders=orders, with_error=True)
    form = nl.pair if orders == (0, 0) else nl.dpair
    exact = np.array([float(sp.N(form(*(sp.Rational(float(c)) for c in t)), 30))
                      for t in zip(c11.ravel(), c22.ravel(), c12.ravel())]).reshape(c12.shape)
    scale = np.sqrt(c11 * c22) / 2 if orders == (0, 0) else np.full(c12.shape, 0.5)
    err = np.abs(got.value - exact)
    assert np.all(err <= got.error) and np.all(got.error <= TOL * scale)
    inner = np.abs(rho) <= 0.9  # the Mehler sum reaches its stopping bound tol·1e-4 (at 0.99: ≤ tol, measured 1.6e-7)
    assert np.all(err[inner] <= 1e-10 * scale[inner]) and np.all(got.error[inner] <= 1e-9 * scale[inner])
    assert set(got.method.ravel()) <= {"mehler", "panels"}


def test_with_error_reports_value_error_and_method():
    dk = DualKernel("tanh")
    plain = dk.pair(1.0, 2.0, 0.4)
    r = dk.pair(1.0, 2.0, 0.4, with_error=True)
    assert (r.value, r.method) == (plain, "mehler") and isinstance(r.value, float)
    assert 0 < r.error < 1e-9
    # exact against mpmath within the reported error
    assert abs(r.value - mehler_reference("tanh", 1.0, 2.0, 0.4, kmax=60)) <= r.error
    big = dk.pair([1.0, 300.0], [2.0, 300.0], [0.4, 300.0], with_error=True)  # tanh → sign: handed to the panels
    assert list(big.method) == ["mehler", "panels"] and big.value.shape == big.error.shape == (2,)
    assert abs(big.value[1] - single_reference("tanh", 300.0, (0, 0))) <= big.error[1]
    odd_even = dk.pair(1.0, 2.0, 0.4, orders=(0, 1), with_error=True)
    assert odd_even == (0.0, 0.0, "parity")



#: <tanh(u) tanh(v)>, Var u = v, Var v = 0.7 v, correlation ρ: 20-digit mpmath on graded panels, computed once
#: (60-260 s each) by  pair_reference("tanh", v, 0.7 * v, ρ √(0.7) v, grade=GRADE, dps=20)  (gauss.reference)
TANH_LARGE_VARIANCE = [(25.0, -0.4, -0.2514739308297399), (25.0, 0.95, 0.734897068164356),
                       (100.0, 0.6, 0.4049745154153571), (900.0, 0.8, 0.5893950419973708)]


@pytest.mark.parametrize("v, rho, ref", TANH_LARGE_VARIANCE)
def test_tanh_at_aliasing_variances_stays_on_the_mehler_sum(v, rho, ref):
    """tanh(√v x) from variance ~16 on is aliased by the 640 Gauss–Hermite nodes; its c_k are then tabulated by
    panels, so pairs away from ρ = ±1 keep the Mehler sum (before: every pair at such a variance went to the 2-D
    panel rule, ~70 ms a pair) — within their reported error of mpmath."""
    r = DualKernel("tanh").pair(v, 0.7 * v, rho * np.sqrt(0.7) * v, with_error=True)
    assert r.method == "mehler"
    assert abs(r.value - ref) <= r.error <= 1e-10

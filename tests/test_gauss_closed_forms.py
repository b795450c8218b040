"""Closed forms: erf kernel derived by Price's theorem, ReLU <φ'φ'>, spot values (theory 5.2, 10.1)."""
import math

import mpmath as mp
import numpy as np
import pytest
import sympy as sp

from symfield.gauss import derive_erf_dpair, derive_erf_pair, gaussian_quadratic_expectation, get_phi, price_derivative
from symfield.gauss.price import c11, c12, c22, kappa
from symfield.gauss.reference import expect1, expect2, mp_function, pair_reference, single_reference


def random_covariances(n, seed, scale=2.0):
    """n random 2x2 covariances (c11, c22, c12) with |rho| < 1."""
    rng = np.random.default_rng(seed)
    a = rng.uniform(0.05, scale, n)
    b = rng.uniform(0.05, scale, n)
    rho = rng.uniform(-0.999, 0.999, n)
    return [(float(x), float(y), float(r * math.sqrt(x * y))) for x, y, r in zip(a, b, rho)]


KAPPAS = [1, 2, 0.5, math.sqrt(math.pi) / 2]


def assert_same(a, b):
    """a == b symbolically, or (float coefficients) numerically at 25 random covariances to 1e-12."""
    diff = sp.simplify(a - b)
    if diff != 0:
        f = sp.lambdify((c11, c22, c12), diff)
        assert max(abs(f(*c)) for c in random_covariances(25, 1)) < 1e-12, diff


@pytest.fixture(scope="module")
def derived():
    return derive_erf_pair(), derive_erf_dpair()


@pytest.mark.parametrize("k", KAPPAS)
def test_price_derived_erf_pair_equals_registered_form(derived, k):
    pair, dpair = derived
    nl = get_phi("erf", kappa=k)
    kk = nl.params["scale"]
    if isinstance(kk, sp.Integer):
        assert sp.simplify(pair.subs(kappa, kk) - nl.pair(c11, c22, c12)) == 0
    assert_same(pair.subs(kappa, kk), nl.pair(c11, c22, c12))
    assert_same(dpair.subs(kappa, kk), nl.dpair(c11, c22, c12))
    # Price's theorem on the registered form: d<φφ>/dΣ12 = <φ'φ'>
    assert_same(price_derivative(nl.pair(c11, c22, c12)), nl.dpair(c11, c22, c12))


def test_derived_erf_pair_symbolic_in_kappa(derived):
    pair, dpair = derived
    assert pair.subs(c12, 0) == 0
    assert sp.simplify(price_derivative(pair) - dpair) == 0
    expected = 2 / sp.pi * sp.asin(2 * kappa ** 2 * c12 / sp.sqrt((1 + 2 * kappa ** 2 * c11) * (1 + 2 * kappa ** 2 * c22)))
    assert sp.simplify(pair - expected) == 0


def test_gaussian_quadratic_expectation_numeric():
    """<exp(-½ zᵀMz)> = det(I+ΣM)^(-1/2), checked by mpmath at one 2x2 example (diagonal M)."""
    sig = sp.Matrix([[c11, c12], [c12, c22]])
    m = sp.diag(2, 3)
    val = gaussian_quadratic_expectation(sig, m).subs({c11: 1.2, c22: 0.7, c12: 0.4})
    ref = expect2(lambda u: mp.exp(-u * u), lambda v: mp.exp(-1.5 * v * v), 1.2, 0.7, 0.4)
    assert abs(float(val) - float(ref)) < 1e-13


def test_relu_dpair_is_price_derivative_of_pair():
    nl = get_phi("relu")
    dpair_of_pair = sp.lambdify((c11, c22, c12), sp.diff(nl.pair(c11, c22, c12), c12))
    dpair = sp.lambdify((c11, c22, c12), nl.dpair(c11, c22, c12))
    pair = sp.lambdify((c11, c22, c12), nl.pair(c11, c22, c12))
    for a, b, c in random_covariances(25, 2):
        theta = math.acos(c / math.sqrt(a * b))
        assert abs(dpair(a, b, c) - (math.pi - theta) / (2 * math.pi)) < 1e-14
        assert abs(dpair_of_pair(a, b, c) - dpair(a, b, c)) < 1e-12
        h = 1e-5 * math.sqrt(a * b)
        fd = (pair(a, b, c + h) - pair(a, b, c - h)) / (2 * h)
        assert abs(fd - dpair(a, b, c)) < 1e-7


def test_linear_closed_forms():
    nl = get_phi("linear")
    assert nl.pair(c11, c22, c12) == c12 and nl.dpair(c11, c22, c12) == 1


def test_spot_values_theory_10_1():
    erf = get_phi("erf")
    closed = float(erf.pair(1, 1, sp.Rational(1, 2)))
    assert closed == pytest.approx(2 / math.pi * math.asin(1 / 3), abs=1e-15)
    assert round(closed, 6) == 0.216347
    assert pair_reference("erf", 1.0, 1.0, 0.5) == pytest.approx(closed, abs=1e-14)
    erf2 = single_reference("erf", 1.1, (0, 0))
    assert round(erf2, 6) == 0.482584
    assert erf2 == pytest.approx(float(erf.pair(1.1, 1.1, 1.1)), abs=1e-14)
    relu = float(get_phi("relu").pair(1, 2, 0.7))
    assert round(relu, 6) == 0.428261
    assert pair_reference("relu", 1.0, 2.0, 0.7) == pytest.approx(relu, abs=1e-13)


def test_erf_dpair_closed_form_vs_reference():
    nl = get_phi("erf")
    f = mp_function("erf", 1)
    val = float(expect1(lambda z: f(z) ** 2, 0.8))
    assert val == pytest.approx(float(nl.dpair(0.8, 0.8, 0.8)), abs=1e-14)
    assert val == pytest.approx(4 / math.pi / math.sqrt(1 + 4 * 0.8), abs=1e-14)

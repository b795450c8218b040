"""ReLU and tanh at the edges where they were refused or wrong (issue 10), against closed forms and mpmath."""
import mpmath as mp
import numpy as np
import pytest

import symfield as sf
from symfield.gauss import get_phi
from symfield.gauss.registry import RELU_GRAM_RTOL
from symfield.theory.kernel_map import kernel_map


def _arccos_mp(c11, c22, c12, dps=50):
    """Arc-cosine kernel (√(c11 c22 - c12²) + (π - θ) c12) / 2π in 50-digit arithmetic."""
    with mp.workdps(dps):
        c11, c22, c12 = mp.mpf(c11), mp.mpf(c22), mp.mpf(c12)
        theta = mp.acos(c12 / mp.sqrt(c11 * c22))
        return float((mp.sqrt(c11 * c22 - c12 ** 2) + (mp.pi - theta) * c12) / (2 * mp.pi))


def _relu_E(c11, c22, c12):
    return kernel_map(get_phi("relu")).expect(np.array([c11]), np.array([c22]), np.array([[c12]]))[0, 0]


# -- 1. ReLU closed form at collinear inputs ----------------------------------------------------------

def test_relu_collinear_minimal_case_halves_each_layer():
    """x2 = 3 x1, no bias: ρ = 1 at every layer, E = c/2, so C_T = C_1 / 2^(T-1) (C_1 = [[1, 3], [3, 9]])."""
    C = sf.mean_field(sf.DNN(5, phi="relu"), [[1] * 5, [3] * 5]).C[-1, -1]
    np.testing.assert_allclose(C, np.array([[1, 3], [3, 9]]) / 16, rtol=1e-15, atol=0)


def test_relu_anticollinear_pair_is_zero_after_one_layer():
    """x2 = -2 x1: ρ = -1 at layer 1, E = 0 (θ = π); then ρ = 0, E = √(c11 c22)/2π; the variances halve."""
    C = sf.mean_field(sf.DNN(4, phi="relu"), [[1.0, -0.5], [-2.0, 1.0]]).C
    assert C[1, 1, 0, 1] == 0.0
    assert C[2, 2, 0, 1] == pytest.approx(np.sqrt(0.625 / 2 * 2.5 / 2) / (2 * np.pi), rel=1e-15)
    np.testing.assert_allclose(np.diag(C[3, 3]), np.array([0.625, 2.5]) / 8, rtol=1e-15)


def test_relu_collinear_inputs_never_fail():
    """Random collinear / anti-collinear inputs through DNN, RNN, ResNet and leaky RNN: all finite."""
    rng = np.random.default_rng(7)
    for k in range(24):
        x = rng.normal(size=int(rng.integers(1, 6))) * rng.uniform(0.2, 4)
        X = np.array([x, rng.choice([-1, 1]) * rng.uniform(0.2, 4) * x])
        T = int(rng.integers(2, 9))
        kw = dict(phi="relu", g=float(rng.uniform(0.6, 1.8)), sigma_b2=float(rng.choice([0.0, 0.3])))
        spec = [sf.DNN(T, **kw), sf.RNN(T, input="every", **kw), sf.ResNet(T, r=0.7, **kw),
                sf.RNN(T, leak=0.5, input="every", **kw)][k % 4]
        assert np.all(np.isfinite(sf.mean_field(spec, X).C))


@pytest.mark.parametrize("rho", [1.0, 1 - 1e-15, 1 - 1e-12, 1 - 1e-9, 1 - 1e-7, 1 - 1e-5, 0.3,
                                 -1.0, -1 + 1e-12, -1 + 1e-7, -0.8])
def test_relu_pair_near_collinear_against_mpmath(rho):
    """The compiled map at |ρ| -> 1 to ~1e-15 relative (acos(ρ) alone loses half the digits there: its
    error ~ ulp/√(1 - ρ²), below 5e-14 where it is still used, 1 - ρ² >= RELU_NEAR_COLLINEAR)."""
    c11, c22 = 0.7, 2.3
    c12 = rho * np.sqrt(c11 * c22)
    ref = _arccos_mp(c11, c22, c12)
    rel = 4e-15 if 1 - rho ** 2 < 1e-6 else 5e-14
    assert _relu_E(c11, c22, c12) == pytest.approx(ref, rel=rel, abs=1e-16 * np.sqrt(c11 * c22))


def test_relu_diagonal_is_half_the_variance():
    """E(c, c, c) = c/2 to rounding (before: acos of a ρ rounded to 1 - ulp gave errors up to 8e-9)."""
    c = np.random.default_rng(1).uniform(0.01, 10, 300)
    E = kernel_map(get_phi("relu")).expect(c, c, np.diag(c), symmetric=True)
    np.testing.assert_allclose(np.diag(E), c / 2, rtol=3e-16, atol=0)


def test_relu_rounding_tolerance_and_invalid_covariance():
    """A Gram excess -1e-14 c11 c22 (rounding) counts as ρ = 1; -1e-9 c11 c22 or ρ = 1.01 still raises."""
    c11, c22 = 1.5, 0.4
    within = np.sqrt(c11 * c22 * (1 + 1e-14))
    assert 1e-14 < RELU_GRAM_RTOL
    assert _relu_E(c11, c22, within) == pytest.approx(within / 2, rel=1e-15)
    for c12 in (np.sqrt(c11 * c22 * (1 + 1e-9)), 1.01 * np.sqrt(c11 * c22), -1.01 * np.sqrt(c11 * c22)):
        with pytest.raises(FloatingPointError):
            _relu_E(c11, c22, c12)
    bad = np.array([[1.0, 1.2], [1.2, 1.0]])  # not positive semi-definite
    with pytest.raises(FloatingPointError):
        kernel_map(get_phi("relu")).expect(np.ones(2), np.ones(2), bad, symmetric=True)


# -- 2. χ1 at q* = 0 and for kinked φ' ------------------------------------------------------------------

@pytest.mark.parametrize("phi,g", [("tanh", 0.5), ("tanh", 0.9), ("erf", 0.8)])
def test_smooth_phi_zero_fixed_point(phi, g):
    """σ_b² = 0, g φ'(0) < 1: q* = 0, χ1 = slope = g² φ'(0)² (tanh: 1, erf: 4/π)."""
    fp = sf.fixed_point(sf.RNN(3, phi=phi, g=g))
    d0 = 1.0 if phi == "tanh" else 2 / np.sqrt(np.pi)
    assert fp.q == 0.0 and fp.phase == "ordered"
    assert fp.chi1 == pytest.approx(g ** 2 * d0 ** 2, rel=1e-14)
    assert fp.slope == pytest.approx(g ** 2 * d0 ** 2, rel=1e-6)


@pytest.mark.parametrize("g", [0.5, 1.2])
def test_relu_zero_fixed_point_chi1_is_half_g2(g):
    """ReLU, σ_b² = 0, g² < 2: q* = 0 and <φ'²>_q = 1/2 at every q > 0, so χ1 = slope = g²/2 (was 0)."""
    fp = sf.fixed_point(sf.RNN(3, phi="relu", g=g))
    assert fp.q == 0.0
    assert fp.chi1 == pytest.approx(g ** 2 / 2, rel=1e-15)
    assert fp.slope == pytest.approx(g ** 2 / 2, rel=1e-9)


def test_softsign_chi1_against_mpmath():
    """softsign x/(1+|x|): φ' has a kink at 0; χ1 from the split integral vs 30-digit mpmath at q*
    (the 120-node rule over the kink was 1 % off)."""
    import sympy as sp
    from symfield.gauss.reference import single_reference
    from symfield.gauss.registry import x
    softsign = sp.Lambda(x, x / (1 + sp.Abs(x)))
    assert get_phi(softsign).kinks() == (0.0,)
    fp = sf.fixed_point(sf.RNN(3, phi=softsign, g=1.5, sigma_b2=0.2))
    phi2 = single_reference(softsign, fp.q, orders=(0, 0))
    assert fp.q == pytest.approx(0.2 + 1.5 ** 2 * phi2, rel=1e-8)  # q* is the fixed point
    assert fp.chi1 == pytest.approx(1.5 ** 2 * single_reference(softsign, fp.q, orders=(1, 1)), rel=1e-12)
    zero = sf.fixed_point(sf.RNN(3, phi=softsign, g=0.5))
    assert zero.q == 0.0 and zero.chi1 == pytest.approx(0.25, rel=1e-15)


# -- 3. one loop with ReLU: refused, and why ------------------------------------------------------------

def test_relu_second_derivative_diverges_at_perfect_correlation():
    """∂²E/∂c12² of the ReLU kernel by finite differences = 1/(2π√(c11c22 - c12²)) (Price: <φ''φ''>):
    finite at ρ < 1, unbounded as ρ -> 1, the equal-site pairs the one loop needs."""
    c11, c22 = 1.2, 0.8
    for rho in (0.3, 0.9, 0.999):
        c12, h = rho * np.sqrt(c11 * c22), 1e-3 * (1 - rho)
        fd = (_relu_E(c11, c22, c12 + h) - 2 * _relu_E(c11, c22, c12) + _relu_E(c11, c22, c12 - h)) / h ** 2
        assert fd == pytest.approx(1 / (2 * np.pi * np.sqrt(c11 * c22 - c12 ** 2)), rel=1e-3)


@pytest.mark.parametrize("spec", [sf.DNN(3, phi="relu"), sf.RNN(3, phi="relu", g=1.1, sigma_b2=0.1)])
def test_one_loop_relu_refused_with_reason(spec):
    X = np.random.default_rng(0).normal(size=(2, 3))
    with pytest.raises(sf.NotSupportedError, match="needs a smooth phi.*not smooth at x"):
        sf.one_loop(spec, X)


# -- huge inputs: exact by homogeneity where doubles hold them, else refused naming the scale ------------------

def test_relu_kernel_homogeneous_up_to_huge_inputs():
    """ReLU without bias is degree-1 homogeneous: C(λX) = λ² C(X), exactly, while λ² C stays a double."""
    X = np.array([[1.0, 0.3], [-0.5, 0.2]])
    ref = sf.mean_field(sf.RNN(3, phi="relu"), X).C
    for lam in (1e3, 1e40, 1e70):
        np.testing.assert_allclose(sf.mean_field(sf.RNN(3, phi="relu"), lam * X).C, lam ** 2 * ref, rtol=1e-13)


@pytest.mark.parametrize("phi, scale", [("relu", 1e100), ("tanh", 1e20), ("erf", 1e160)])
def test_overflowing_inputs_refused_naming_the_scale(phi, scale):
    """A kernel that cannot be represented (ReLU: c11 c22 overflows; tanh: beyond the panel rule's 1e30;
    erf: the input Gram overflows) raises NonFiniteKernel saying to rescale X, not a bare numerical error."""
    with np.errstate(over="ignore"), pytest.raises(sf.NonFiniteKernel, match="rescale X"):
        sf.mean_field(sf.RNN(2, phi=phi), [[scale, 0.3 * scale], [-0.5 * scale, 0.2 * scale]])


def test_overflow_deep_in_the_compiled_shells_names_the_scale():
    """ReLU g = 5: the variance grows like 12.5^t and overflows near t = 280 inside the compiled shells; the hint
    reads the variances the shells reached (before: only those of step 1, so no hint)."""
    with np.errstate(over="ignore"), pytest.raises(sf.NonFiniteKernel, match="variance was inf"):
        sf.mean_field(sf.RNN(300, phi="relu", g=5.0), [[1.0, 0.3], [-0.5, 0.2]])

"""Batch-means standard error against closed forms (iid data, AR(1) chains) and the 1/N extrapolation
against synthetic data with known y_∞, b, c and against the Richardson combinations."""
import numpy as np
import pytest
from scipy.signal import lfilter

from symfield.errors import SpecError
from symfield.simulate.batch_means import batch_sem
from symfield.simulate.extrapolate import extrapolate


def ar1_chains(rho, n, chains, reps, rng):
    """(chains·n, reps) stationary unit-variance AR(1) series x_t = ρ x_{t−1} + √(1−ρ²) ξ_t, chain-major."""
    xi = rng.standard_normal((reps, chains, n))
    x0 = xi[..., :1]
    rest = lfilter([np.sqrt(1 - rho ** 2)], [1, -rho], xi[..., 1:], axis=-1, zi=rho * x0)[0]
    return np.concatenate([x0, rest], axis=-1).reshape(reps, chains * n).T


def var_mean_ar1(rho, n):
    """Exact variance of the mean of n consecutive samples of the unit-variance AR(1) series."""
    return ((1 + rho) / (1 - rho) - 2 * rho * (1 - rho ** n) / (n * (1 - rho) ** 2)) / n


def expected_batch_sem2(rho, n, chains, batches):
    """Exact E[sem²] of the batch-means estimator (equal batches of L = n/batches): the spread of the batch
    means from their covariance, Cov(B_j, B_k) = ρ^(L(|j−k|−1)+1) (1−ρ^L)²/((1−ρ) L)² within a chain."""
    L = n // batches
    j = np.arange(batches)
    lag = np.abs(j[:, None] - j[None, :])
    S = np.where(lag == 0, var_mean_ar1(rho, L),
                 rho ** (L * (lag - 1) + 1.0) * (1 - rho ** L) ** 2 / ((1 - rho) * L) ** 2)
    Sb = np.kron(np.eye(chains), S)
    m = chains * batches
    return (np.trace(Sb) - Sb.sum() / m) / (m * (m - 1))


def test_batch_sem_iid_is_unbiased():
    rng = np.random.default_rng(3)
    chains, n, reps, sigma = 4, 500, 400, 1.7
    x = sigma * rng.standard_normal((chains * n, reps))
    chain = np.repeat(np.arange(chains), n)
    s2 = batch_sem(x, chain, 5) ** 2
    exact = sigma ** 2 / (chains * n)
    # each s2 is exact · χ²_19/19: relative sd √(2/19) per replicate
    assert abs(s2.mean() / exact - 1) < 4.5 * np.sqrt(2 / 19 / reps)


@pytest.mark.parametrize("chains", [1, 4])
def test_batch_sem_ar1_against_the_exact_standard_error(chains):
    rng = np.random.default_rng(11)
    rho, n, reps, batches = 0.8, 2000, 300, 5
    x = ar1_chains(rho, n, chains, reps, rng)
    chain = np.repeat(np.arange(chains), n)
    s2 = batch_sem(x, None if chains == 1 else chain, batches) ** 2
    exact_var = var_mean_ar1(rho, n) / chains            # the true squared standard error of the grand mean
    expected = expected_batch_sem2(rho, n, chains, batches)
    # the generator: the replicate means scatter with the exact variance
    assert abs(x.mean(axis=0).var(ddof=1) / exact_var - 1) < 4.5 * np.sqrt(2 / (reps - 1))
    # the estimator: its mean is its exact expectation ...
    assert abs(s2.mean() - expected) < 4.5 * s2.std(ddof=1) / np.sqrt(reps)
    # ... which is the exact squared standard error up to the O(τ/L) batch bias (τ = 9, L = 400: −1 %)
    assert 0.97 < expected / exact_var < 1.0
    # naive iid formula would be wrong by the integrated autocorrelation time (1+ρ)/(1−ρ) = 9
    assert np.mean(x.std(axis=0, ddof=1) ** 2 / (chains * n)) < 0.2 * exact_var


def test_batch_sem_one_chain_uses_all_samples_and_checks_arguments():
    v = np.arange(10.0)
    # 5 batches of 2 of one chain: means 0.5, 2.5, ..., 8.5, spread std = 2·√2.5
    assert np.isclose(batch_sem(v, batches=5), 2 * np.sqrt(2.5) / np.sqrt(5))
    with pytest.raises(SpecError, match="batches"):
        batch_sem(v, batches=1)
    with pytest.raises(SpecError, match="fewer than batches"):
        batch_sem(v[:3], batches=5)
    with pytest.raises(SpecError, match="chain"):
        batch_sem(v, np.zeros(4), 2)


def test_extrapolate_recovers_known_coefficients():
    N = np.array([256, 512, 1024, 2048])
    y_inf, b, c = 0.37, -2.1, 40.0
    y = y_inf + b / N + c / N ** 2
    e = np.full(4, 1e-3)
    fit = extrapolate(N, y, e, order=2)
    assert np.allclose([fit.value, *fit.coefficients], [y_inf, b, c], rtol=1e-9, atol=1e-12)
    assert fit.chi2 < 1e-12 and fit.dof == 1
    fit1 = extrapolate(N, y_inf + b / N, e)
    assert np.isclose(fit1.value, y_inf) and np.isclose(fit1.slope, b)
    # an N^(-5/4) term (the sub-threshold learned eigenvalue) through powers=
    fit_p = extrapolate(N, y_inf + b / N + 3.0 / N ** 1.25, e, powers=(1, 1.25))
    assert np.allclose(fit_p.coefficients, (b, 3.0)) and np.isclose(fit_p.value, y_inf)


def test_extrapolate_is_the_richardson_combination():
    y1, y2, y4 = 1.3, 1.1, 1.04
    e1, e2, e4 = 0.02, 0.01, 0.005
    r1 = extrapolate([100, 200], [y1, y2], [e1, e2])
    assert np.isclose(r1.value, 2 * y2 - y1) and np.isclose(r1.error, np.hypot(2 * e2, e1))
    r2 = extrapolate([100, 200, 400], [y1, y2, y4], [e1, e2, e4], order=2)
    assert np.isclose(r2.value, (8 * y4 - 6 * y2 + y1) / 3)
    assert np.isclose(r2.error, np.sqrt(64 * e4 ** 2 + 36 * e2 ** 2 + e1 ** 2) / 3)


def test_extrapolate_errors_are_calibrated_on_noisy_synthetic_data():
    rng = np.random.default_rng(5)
    N = np.array([256, 512, 1024, 2048])
    y_inf, b, c = 0.5, 3.0, 300.0
    e = 0.002 * np.sqrt(N[0] / N)
    z1, z2 = [], []
    for _ in range(1000):
        y = y_inf + b / N + c / N ** 2 + e * rng.standard_normal(4)
        fit = extrapolate(N, y, e, order=2)
        z2.append((fit.value - y_inf) / fit.error)
        z1.append(extrapolate(N, y, e, order=1).value - y_inf)
    assert abs(np.mean(z2)) < 0.1 and abs(np.std(z2) - 1) < 0.06      # order 2: unbiased, unit z
    # order 1 is biased by the 1/N² term: its mean error is the fit of c/N² by a line (closed form)
    A = np.column_stack([np.ones(4), 1 / N]) / e[:, None]
    bias = (np.linalg.solve(A.T @ A, A.T @ (c / N ** 2 / e)))[0]
    assert bias < 0 and abs(np.mean(z1) - bias) < 4 * np.std(z1) / np.sqrt(1000)


def test_extrapolate_refuses_bad_arguments():
    with pytest.raises(SpecError, match="order"):
        extrapolate([1, 2, 3], [1, 2, 3], [1, 1, 1], order=3)
    with pytest.raises(SpecError, match="at least 3 distinct widths"):
        extrapolate([100, 200], [1, 2], [1, 1], order=2)
    with pytest.raises(SpecError, match="positive"):
        extrapolate([100, 200], [1, 2], [1, 0])
    with pytest.raises(SpecError, match="powers"):
        extrapolate([100, 200, 300], [1, 2, 3], [1, 1, 1], powers=(1, 1))


def test_subthreshold_learned_eigenvalue_has_an_N_to_the_minus_5_4_term():
    """The expansion behind the derived fit powers of derivations/feature_learning_nonlinear.py (fit_powers):
    with M = [[0, b], [1, d]] (the companion form of C_pp⁻¹C_pn at T = 3) and b, d = O(N^(-1/2)),
    N^(5/4) (E|λ_max|⁴ − E b²) → 2 E[|δ| β_+^(3/2)] (b = β/√N, d = δ/√N), approached like N^(-1/4);
    and tr M⁴ = 2b² + 4b d² + d⁴ exactly (a polynomial: a regular 1/N expansion)."""
    rng = np.random.default_rng(2)
    beta, delta = rng.standard_normal((2, 100_000)) * np.array([[1.0], [2.3]])
    limit = 2 * np.mean(np.abs(delta) * np.clip(beta, 0, None) ** 1.5)
    gaps = []
    for N in (1e4, 1e6, 1e8):
        b, d = beta / np.sqrt(N), delta / np.sqrt(N)
        M = np.zeros((beta.size, 2, 2))
        M[:, 0, 1], M[:, 1, 0], M[:, 1, 1] = b, 1.0, d
        lam = np.linalg.eigvals(M)
        top4 = np.abs(lam).max(axis=1) ** 4
        gaps.append(N ** 1.25 * np.mean(top4 - b ** 2) / limit - 1)
        assert np.allclose(np.sum(lam ** 4, axis=1).real, 2 * b ** 2 + 4 * b * d ** 2 + d ** 4, rtol=1e-6, atol=0)
    assert abs(gaps[-1]) < 0.05
    assert abs(gaps[1] / gaps[2] / 10 ** 0.5 - 1) < 0.1     # the remainder falls like N^(-1/4): 10^(1/2) per 100x
    assert gaps[0] / gaps[1] > gaps[1] / gaps[2] > 1

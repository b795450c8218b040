"""The nested rule's cost is estimated over all covariances of a call before it integrates (issue 10, part 3):
a call whose predicted evaluations (nested.predicted_leaves, summed) exceed the total budget, or whose time
estimate exceeds the time limit, raises ResourceError naming the argument and the estimate; below them it runs."""
import numpy as np
import pytest
import sympy as sp

import symfield as sf
from symfield.errors import ResourceError
from symfield.gauss import nested
from symfield.gauss.moments import NESTED_BUDGET, NESTED_TOTAL_BUDGET, moments, predicted_leaves
from symfield.gauss.registry import x


def _gelu():
    sf.register_phi("gelu_nested_test", sp.Lambda(x, x * (1 + sp.erf(x / sp.sqrt(2))) / 2), overwrite=True)
    return sf.gauss.get_phi("gelu_nested_test")


def _covs(B, v, seed=5):
    """B generic three-site covariances at variance ~v (Gauss-Hermite cannot resolve GELU there: nested rule)."""
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((B, 3, 5))
    return v * A @ np.swapaxes(A, 1, 2) / 5


def test_total_budget_refuses_before_integrating_and_names_the_argument():
    phi = _gelu()
    covs, kk = _covs(40, 100.0), np.ones((40, 3), np.int64)
    with pytest.raises(ResourceError, match=r"40 covariances .*predicted.*total budget 1e\+05.*reduce X"):
        moments(phi, covs, kk, with_error=True, total_budget=1e5)
    with pytest.raises(ResourceError, match="reduce covs"):
        moments(phi, covs, kk, method="nested", total_budget=1e5, argument="covs")
    assert NESTED_TOTAL_BUDGET >= 1e9


def test_time_limit_refuses_before_integrating():
    phi = _gelu()
    covs, kk = _covs(40, 100.0), np.ones((40, 3), np.int64)
    sf.set_time_limit(1e-3)
    try:
        with pytest.raises(ResourceError, match="time limit"):
            moments(phi, covs, kk, with_error=True)
    finally:
        sf.set_time_limit(None)


def test_within_the_budget_it_runs():
    phi = _gelu()
    covs, kk = _covs(2, 100.0), np.ones((2, 3), np.int64)
    est = moments(phi, covs, kk, with_error=True, total_budget=1e7)
    assert np.all(np.isfinite(est.value)) and set(est.method) == {"nested"}


def test_softplus20_four_sites_at_1e4_is_within_the_budget_and_its_time_estimated():
    """softplus β = 20, four generic sites at variance 1e4 (refused before at 1.6e8 > 1e8): predicted 1.75e8 leaves,
    within NESTED_BUDGET = 2e8.  Measured once (derivations not needed: a single call): 2.5e8 leaves in 276 s at
    load 5-7, certified to 2e-11 of the absolute moment.  The time estimate (LEAF_OPERATIONS per predicted leaf at
    resources.RATE) must not be below that; a time limit under it refuses before integrating."""
    from test_gauss_nested import grid
    phi = grid.nonlinearity("softplus20")
    A = np.random.default_rng(3).standard_normal((4, 4))
    S, k = (1e4 * (A @ A.T / 4 + 0.2 * np.eye(4)))[None], np.ones((1, 4), np.int64)
    need = predicted_leaves(phi, S, k)[0]
    assert 1e8 < need <= NESTED_BUDGET
    sf.set_time_limit(100.0)
    try:
        with pytest.raises(ResourceError, match="time limit") as info:
            moments(phi, S, k, with_error=True)
    finally:
        sf.set_time_limit(None)
    seconds = float(str(info.value).split("would take about ")[1].split(" s")[0])
    assert seconds >= 276.0

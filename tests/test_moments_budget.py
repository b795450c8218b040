"""The nested rule's cost is estimated over all covariances of a call before it integrates (issue 10, part 3):
a call whose predicted evaluations (nested.predicted_leaves, summed) exceed the total budget, or whose time
estimate exceeds the time limit, raises ResourceError naming the argument and the estimate; below them it runs."""
import numpy as np
import pytest
import sympy as sp

import symfield as sf
from symfield.errors import ResourceError
from symfield.gauss import nested
from symfield.gauss.moments import NESTED_TOTAL_BUDGET, moments
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

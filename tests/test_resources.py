"""Sizes known before allocation (issue 10, part 3): the memory limit, estimates checked at each entry point
before allocating (ResourceError naming the argument), bounded node and iteration counts."""
import math
import time
import tracemalloc

import numpy as np
import pytest

import symfield as sf
from symfield import resources
from symfield.errors import NonFiniteError, ResourceError, SpecError, SymfieldError
from symfield.gauss.moments import NODE_MAX, NODE_MIN, NODE_SCALE, nodes_for
from symfield.simulate import kernel_moments, prior
from symfield.theory.kernel_map import kernel_map
from symfield.theory.mean_field import operations as mean_field_operations, stored_bytes
from symfield.theory.one_loop import estimate_bytes, pair_count
from symfield.theory.pairs import pair_space

MB = 10 ** 6


@pytest.fixture(autouse=True)
def _reset_limit(monkeypatch):
    monkeypatch.delenv(resources.ENV, raising=False)
    resources.set_memory_limit(None)
    yield
    resources.set_memory_limit(None)


def _peak(fn):
    """(result, peak bytes traced) of fn()."""
    tracemalloc.start()
    try:
        out = fn()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _meminfo_available():
    with open("/proc/meminfo") as f:
        fields = dict(line.split(":", 1) for line in f)
    return float(fields["MemAvailable"].split()[0]) * 1024


# ------------------------------------------------------------------ the limit
def test_limit_default_env_and_setter(monkeypatch):
    assert resources.memory_limit() == pytest.approx(_meminfo_available(), rel=0.2)
    for text, size in (("8GB", 8e9), ("512MiB", 512 * 2 ** 20), ("4096", 4096.0), ("1.5 GiB", 1.5 * 2 ** 30)):
        monkeypatch.setenv(resources.ENV, text)
        assert resources.memory_limit() == size
    assert sf.set_memory_limit is resources.set_memory_limit and sf.memory_limit is resources.memory_limit
    sf.set_memory_limit("2MB")                 # the setter wins over the environment
    assert resources.memory_limit() == 2e6
    resources.set_memory_limit(None)
    assert resources.memory_limit() == 1.5 * 2 ** 30
    monkeypatch.setenv(resources.ENV, "lots")
    with pytest.raises(SpecError, match=resources.ENV):
        resources.memory_limit()
    for bad in (0, -5, "x GB"):
        with pytest.raises(SpecError, match="limit"):
            resources.set_memory_limit(bad)


def test_check_memory_names_estimate_limit_and_argument():
    resources.set_memory_limit(2 ** 30)
    resources.check_memory(2 ** 30, "thing", "X")     # at the limit: fine
    with pytest.raises(ResourceError, match=r"about 3 GiB.*limit of 1 GiB.*reduce samples") as err:
        resources.check_memory(3 * 2 ** 30, "thing", "samples")
    assert isinstance(err.value, MemoryError) and isinstance(err.value, SymfieldError)


def test_env_var_reaches_an_entry_point(monkeypatch):
    X = np.random.default_rng(0).standard_normal((30, 2))
    monkeypatch.setenv(resources.ENV, "10kB")
    with pytest.raises(ResourceError, match="mean_field.*reduce the number of inputs X"):
        sf.mean_field(sf.DNN(3), X)
    monkeypatch.setenv(resources.ENV, "1GB")
    assert sf.mean_field(sf.DNN(3), X).C.shape == (3, 3, 30, 30)


# ------------------------------------------------------------------ mean field
def test_mean_field_reproducer_refused_without_allocating():
    resources.set_memory_limit("16GB")  # whatever the machine: 236 GB must not be attempted
    X = np.random.default_rng(0).standard_normal((6000, 2))
    t0 = time.perf_counter()
    with pytest.raises(ResourceError, match=r"mean_field.*GiB.*X.*keep='last'"):
        _, peak = _peak(lambda: sf.mean_field(sf.RNN(40, input="every"), X))
    assert time.perf_counter() - t0 < 5


@pytest.mark.parametrize("make, keep", [(lambda: sf.RNN(6, input="every"), "all"), (lambda: sf.RNN(6, input="every"), "last"),
                                        (lambda: sf.DNN(6), "all"), (lambda: sf.RNN(6), "all"),
                                        (lambda: sf.ResNet(5, r=0.5), "all")])
def test_mean_field_estimate_against_traced_peak(make, keep):
    spec, P = make(), 120
    X = np.random.default_rng(1).standard_normal((P, 2) if spec.input == "first" else (P, spec.T, 2))
    sf.mean_field(spec, X, keep=keep)   # compile outside the trace
    mf, peak = _peak(lambda: sf.mean_field(spec, X, keep=keep))
    est = stored_bytes(spec, P, keep, kernel_map(spec.phi_fn))
    assert 0.5 * peak <= est <= 3 * peak + 1 * MB, (peak, est)
    resources.set_memory_limit(est * 0.99)
    with pytest.raises(ResourceError, match="mean_field"):
        sf.mean_field(spec, X, keep=keep)


def test_mean_field_block_count_independent():
    P = 7
    # DNN: only the T diagonal blocks exist; RNN with input at every step: all T(T+1)/2 (+ two spare)
    assert stored_bytes(sf.DNN(5), P) == 8 * P * P * (5 + 2)
    assert stored_bytes(sf.RNN(5, input="every"), P) == 8 * P * P * (15 + 2)
    assert stored_bytes(sf.RNN(5, input="every"), P, keep="last") == 8 * P * P * (4 + 5 + 2)
    assert stored_bytes(sf.ResNet(5, r=0.5), P, keep="last") == 8 * P * P * (25 + 2)


# ------------------------------------------------------------------ one loop
def test_pair_count_equals_pair_space():
    for spec, P in ((sf.RNN(4), 3), (sf.DNN(5), 4), (sf.ResNet(4, r=0.5), 2),
                    (sf.NetworkSpec(T=5, share={"W": [[1, 2], [3, 4]]}), 3)):
        assert pair_count(spec, P) == pair_space(spec, P).n


def test_one_loop_estimate_against_traced_peak():
    spec, X = sf.RNN(4), np.random.default_rng(2).standard_normal((4, 2))
    sf.one_loop(spec, X)
    _, peak = _peak(lambda: sf.one_loop(spec, X))
    est = estimate_bytes(spec, 4)
    assert peak <= est <= 3 * peak, (peak, est)
    resources.set_memory_limit(est / 2)
    _, peak = _peak(lambda: pytest.raises(ResourceError, sf.one_loop, spec, X))
    assert peak < est / 10  # refused before the pair arrays exist


def test_kernel_covariance_checked_on_access():
    spec, X = sf.RNN(3), np.random.default_rng(3).standard_normal((3, 2))
    ol = sf.one_loop(spec, X)
    TP = 9
    resources.set_memory_limit(8 * TP ** 4 - 1)
    with pytest.raises(ResourceError, match="kernel_covariance.*covariance_block"):
        ol.kernel_covariance.dense()
    block = ol.covariance_block(1, 2, 2, 2)   # the per-block view still works
    resources.set_memory_limit(None)
    np.testing.assert_array_equal(block, ol.kernel_covariance.dense()[1, 2, :, :, 2, 2])


@pytest.mark.parametrize("scale", [100.0, 1000.0])
def test_one_loop_large_input_fast(scale):
    """erf four-point moments are a closed form (no nodes): a large input costs what a small one does."""
    sf.one_loop(sf.RNN(2), [[1.0]])   # compile
    t0 = time.perf_counter()
    ol = sf.one_loop(sf.RNN(2), [[scale]])
    assert time.perf_counter() - t0 < 5
    assert np.all(np.isfinite(ol.NDelta)) and np.all(np.diag(ol.NDelta) >= 0)
    with pytest.raises(ResourceError, match=r"nodes per dimension.*NODE_MAX.*rescale X"):  # the quadrature path
        sf.one_loop(sf.RNN(2), [[scale]], method="reference")


def test_one_loop_huge_input_clear_error():
    X = np.random.default_rng(4).standard_normal((2, 1)) * 1e150
    for spec in (sf.RNN(2), sf.DNN(3), sf.RNN(2, phi="erf")):
        with pytest.raises(SymfieldError) as err:   # ResourceError or NonFiniteError, never an internal one
            sf.one_loop(spec, X)
        assert "nodes must be" not in str(err.value)


def test_nodes_for_ordinary_unchanged_and_capped():
    for m in range(1, 5):
        v = np.array([0.0, 0.3, 1.0, 2.6, 9.0, 40.0])
        np.testing.assert_array_equal(nodes_for(m, v), [max(NODE_MIN[m], int(np.ceil(NODE_SCALE[m] * np.sqrt(x))))
                                                         for x in v])
        edge = (NODE_MAX[m] / NODE_SCALE[m]) ** 2      # largest variance within the cap
        assert nodes_for(m, [edge * (1 - 1e-9)])[0] <= NODE_MAX[m]
        with pytest.raises(ResourceError, match=f"NODE_MAX\\[{m}\\].*rescale X"):
            nodes_for(m, [1.0, edge * 1.01])
        with pytest.raises(ResourceError):
            nodes_for(m, [1e300])                      # no integer overflow
        for bad in (np.inf, np.nan, -1.0):
            with pytest.raises(NonFiniteError, match="X"):
                nodes_for(m, [bad])


def test_explicit_n_nodes_checked():
    X = [[1.0]]
    with pytest.raises(SpecError, match=r"n_nodes\[3\]"):
        sf.one_loop(sf.RNN(3), X, n_nodes={3: 0})
    with pytest.raises(ResourceError, match=r"n_nodes\[4\]"):
        sf.one_loop(sf.RNN(3), X, n_nodes={4: NODE_MAX[4] + 1})


# ------------------------------------------------------------------ simulators and iteration counts
def test_simulators_refuse_before_allocating():
    X = np.random.default_rng(5).standard_normal((50, 2))
    resources.set_memory_limit("50MB")
    # prior stores 2 x samples x (T P)^2 x 8 bytes = 2 x 1000 x 250^2 x 8 = 1 GB
    _, peak = _peak(lambda: pytest.raises(ResourceError, prior, sf.RNN(5), X, 8, 1000, seed=0))
    assert peak < 5 * MB
    with pytest.raises(ResourceError, match="reduce samples"):
        prior(sf.RNN(5), X, 8, 1000, seed=0)
    with pytest.raises(ResourceError, match="reduce chunk or N"):
        kernel_moments(sf.RNN(5), X, 64, 1000, seed=0, chunk=500)
    # valid calls under the limit work
    small = np.random.default_rng(6).standard_normal((2, 2))
    assert prior(sf.RNN(3), small, 8, 10, seed=0).emp.shape == (10, 3, 3, 2, 2)
    assert kernel_moments(sf.RNN(3), small, 8, 10, seed=0).samples == 10


def test_length_map_steps_bounded():
    t0 = time.perf_counter()
    with pytest.raises(SpecError, match=r"steps.*1e\+07"):
        sf.length_map(sf.RNN(3), 1.0, 10 ** 9)
    assert time.perf_counter() - t0 < 1
    resources.check_steps("steps", resources.MAX_STEPS)          # the bound itself is allowed
    resources.set_memory_limit("1MB")
    with pytest.raises(ResourceError, match="steps"):
        resources.check_steps("steps", 10 ** 6, bytes_per_step=40)
    assert len(sf.length_map(sf.RNN(3), 1.0, 5)) == 5


def test_linear_phi_any_scale_by_homogeneity():
    """Gauss-Hermite is exact for polynomial φ at every scale: the node count is capped, not refused, and
    with zero bias N Cov(C) of the linear network is homogeneous of degree 4 in X."""
    assert nodes_for(3, [1e6], polynomial=True)[0] == NODE_MAX[3]
    X = np.random.default_rng(7).standard_normal((2, 1))
    for spec in (sf.RNN(3, phi="linear", g=0.8), sf.DNN(3, phi="linear")):
        ref = sf.one_loop(spec, X).NDelta
        big = sf.one_loop(spec, X * 100).NDelta
        np.testing.assert_allclose(big / 1e8, ref, rtol=1e-9, atol=1e-12 * np.max(np.abs(ref)))


# ------------------------------------------------------------------------------------------ time limit
@pytest.fixture
def time_limit_of(monkeypatch):
    monkeypatch.delenv(resources.TIME_ENV, raising=False)
    yield sf.set_time_limit
    sf.set_time_limit(None)


def test_time_limit_precedence_and_parsing(time_limit_of, monkeypatch):
    assert sf.time_limit() == math.inf  # default: no limit
    monkeypatch.setenv(resources.TIME_ENV, "10min")
    assert sf.time_limit() == 600.0
    time_limit_of("2h")
    assert sf.time_limit() == 7200.0
    for bad in ("soon", -1, 0, math.nan, True, "5 parsecs"):
        with pytest.raises(SpecError, match="limit"):
            time_limit_of(bad)


def test_time_estimate_refuses_before_running(time_limit_of):
    """The cost model is operations / RATE: prior(N=4096, samples=10⁴) counts ~1e13 operations, far above
    one second; a small call passes the same limit (and is computed)."""
    time_limit_of(1.0)
    X = np.random.default_rng(0).standard_normal((3, 2))
    with pytest.raises(ResourceError, match=r"prior.*would take about .* s.*time limit of 1 s.*reduce samples"):
        sf.simulate.prior(sf.RNN(3), X, N=4096, samples=10 ** 4, seed=0)
    with pytest.raises(ResourceError, match=r"posterior.*reduce samples, burn, leapfrog"):
        sf.simulate.posterior(sf.RNN(1, phi="linear", bias="none", scaling="mean_field"), np.eye(3), np.ones((3, 1)),
                              N=2000, samples=10 ** 4, seed=0)
    with pytest.raises(ResourceError, match=r"mean_field.*reduce P or T"):
        sf.mean_field(sf.DNN(400), np.ones((400, 1)))
    assert np.isfinite(sf.simulate.prior(sf.RNN(2), X, N=8, samples=2, seed=0).emp).all()


def test_cost_model_rate_is_an_order_of_magnitude(time_limit_of):
    """The estimate is within a factor 30 of a measured run (mean_field, no compilation inside the timing)."""
    import time
    spec, X = sf.DNN(20, phi="erf"), np.random.default_rng(1).standard_normal((60, 3))
    sf.mean_field(spec, X[:2])
    t0 = time.perf_counter()
    sf.mean_field(spec, X)
    measured = time.perf_counter() - t0
    estimate = resources.check_time(mean_field_operations(spec, 60), "probe", "-")
    assert measured / 30 < estimate < 30 * measured, (estimate, measured)

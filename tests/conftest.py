import os
import tempfile

# generated modules of the test run go to a private cache unless the caller chose one
os.environ.setdefault("SYMFIELD_CACHE", os.path.join(tempfile.gettempdir(), "symfield-test-cache"))

#: factor by which tests/test_fuzz.py and tests/test_sweep.py enlarge their example counts / grids
FUZZ_LONG_FACTOR = 10


def pytest_addoption(parser):
    parser.addoption("--fuzz-long", action="store_true", default=False,
                     help=f"run the fuzz suite with {FUZZ_LONG_FACTOR}x the examples and the numerical sweep "
                          "on its large grid (minutes to hours)")


def pytest_configure(config):
    # read by the fuzz and sweep modules when they are imported (collected) after this hook
    if config.getoption("--fuzz-long", default=False):
        os.environ["SYMFIELD_FUZZ_SCALE"] = str(FUZZ_LONG_FACTOR)
    if os.environ.get("PYTEST_XDIST_WORKER"):
        # the README runs two pytest-xdist workers on two cores: one BLAS thread each, not two spinning
        from threadpoolctl import threadpool_limits
        config._symfield_blas_limit = threadpool_limits(1, user_api="blas")

"""symfield: the field theory of wide deep and recurrent networks as checked, compiled code.

    import symfield as sf
    net = sf.RNN(T=10, phi="erf", g=1.2, g_in=1.0, sigma_b2=0.1)
    mf = sf.mean_field(net, X)             # leading-order kernels, mf.C[t, s, mu, nu] (0-based times)
    sf.action(net).saddle_point()          # equations derived by differentiation
    sf.simulate.prior(net, X, N=512, samples=200, seed=1)   # finite-width ensemble
"""
import os

# Numba's OpenMP workers wait for the next parallel region by spinning a short while (10⁴ rounds, tens
# of microseconds) and then sleep: long spinning slows BLAS and other processes on a small machine,
# sleeping at once (OMP_WAIT_POLICY=PASSIVE) makes every region pay a wake-up (an RNN's 29 shells of
# P = 100 ran no faster on 2 threads than on 1).  The user's own settings win.
if "OMP_WAIT_POLICY" not in os.environ:
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")

from .codegen.cache import ensure_numba_cache_dir, install_numba_repair  # noqa: E402
ensure_numba_cache_dir()  # before Numba compiles anything: a read-only HOME must not break the import
install_numba_repair()    # corrupted .nbi/.nbc files of symfield's functions are deleted and recompiled

from . import gp, parallel  # noqa: E402
from .action import action  # noqa: E402
from .gauss import available_phis, get_phi, register_phi  # noqa: E402
from .errors import (AccuracyError, ConvergenceError, FixedPointError, NonFiniteError, NonFiniteKernel,  # noqa: E402
                     NotPositiveDefinite, NotSupportedError, ResourceError, SpecError, SpecTypeError, SymfieldError,
                     UnknownNonlinearity)
from .spec import DNN, RNN, NetworkSpec, ResNet, WeightPlan, as_dnn, convert_T  # noqa: E402
from .theory import fixed_point, length_map, mean_field  # noqa: E402
from .theory.feature_learning import critical_signal, feature_learning  # noqa: E402
from .theory.one_loop import one_loop  # noqa: E402
from .theory.response import optimal_r, response  # noqa: E402
from .resources import memory_limit, set_memory_limit, set_time_limit, time_limit  # noqa: E402

__version__ = "0.1.0"


def __getattr__(name):  # the simulator is imported lazily (it is not needed for theory-only use)
    if name == "simulate":
        import importlib
        return importlib.import_module(".simulate", __name__)
    raise AttributeError(f"module 'symfield' has no attribute {name!r}")


__all__ = ["AccuracyError", "ConvergenceError", "DNN", "FixedPointError", "RNN", "NetworkSpec", "NonFiniteError", "NonFiniteKernel",
           "NotPositiveDefinite", "NotSupportedError", "SpecTypeError", "UnknownNonlinearity", "ResNet", "ResourceError", "SpecError", "SymfieldError", "WeightPlan", "action", "as_dnn", "available_phis", "convert_T",
           "critical_signal", "feature_learning", "fixed_point", "get_phi", "gp", "length_map", "mean_field", "memory_limit",
           "one_loop", "optimal_r", "parallel", "register_phi", "response", "set_memory_limit", "set_time_limit",
           "simulate", "time_limit"]

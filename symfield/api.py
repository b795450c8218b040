"""One API shape (docs/conventions.md, "API shape"): every entry point takes ``(spec, X[, Y], ...)``
positionally (plus required sizes such as ``N, samples``), every option by keyword, each option name
with one meaning (:data:`OPTIONS`), times 0-based.

:func:`legacy_positional` keeps calls that passed options positionally working (DeprecationWarning);
:func:`renamed` resolves an option that was renamed (:data:`DEPRECATED`); :func:`check_spec` checks the
first argument.
"""
from __future__ import annotations

import functools
import inspect
import warnings

from .errors import SpecError, SpecTypeError

#: every keyword option of the public entry points and its one meaning
OPTIONS = {
    "seed": "randomness: int, numpy SeedSequence or None (fresh entropy)",
    "progress": "progress display: None = on when stderr is a terminal, False = off (never carriage returns in logs)",
    "estimator": ("nonlinear feature learning: dict(samples=, seed=, nodes=, control=) of the tilted-measure quadrature / "
                  "Monte Carlo (control=True: its control variate, for weak learning signals)"),
    "method": "algorithm: one_loop 'causal' | 'dense'; feature_learning 'matrix' | 'explicit' | 'reference'",
    "keep": "mean_field storage: 'all' blocks or only the 'last' shell",
    "n_nodes": "Gauss-Hermite nodes of the four-point moments (one_loop)",
    "chunk": "samples whose states are held in memory together (simulators)",
    "blas_threads": "BLAS threads while running (None: leave the setting alone)",
    "q_in": "input variance g_in²|x|²/D added at every step (length map)",
    "q_max": "upper bracket of the fixed-point search",
    "critical_tol": "|χ1 - 1| below which the phase counts as critical",
    "time": "0-based readout time (default T - 1)",
    "mf": "a MeanField of the same spec and X to reuse",
    "noise": "GP observation-noise variance σ_ε² added to the training kernel",
    "include_noise": "add the observation noise to the predictive variance",
    "supervised": "(P, T) boolean mask of the supervised sites (default: the last time)",
    "kappa": "likelihood (readout-noise) variance κ of the μP posterior",
    "readout": "where the output reads the network: GP 'last' | 0-based time | 'pooled' | list of times; "
               "feature_learning: readout mask 'shared' | 'untied' | (T, T) array (default: the declared v groups)",
    "return_cov": "also return the full predictive covariance (GP)",
    "steps": "continuation steps in the signal scale",
    "gtol": "gradient-norm tolerance of the maximiser",
    "xtol": "tolerance of a root or maximiser (threshold: in the signal; optimal_r: relative, in r)",
    "pairs": "pattern pairs (μ, ν) of the input kernel to perturb (response; default: all μ <= ν)",
    "pair": "the pattern pair (μ, ν) whose readout response is maximised (optimal_r)",
    "bounds": "search interval (low, high) of the residual-branch scale r (optimal_r)",
    "points": "log-spaced scan points that bracket the maximum (optimal_r)",
    "s_max": "largest signal scale searched for the threshold",
    "both_signs": "also return the mirror image of the broken branch",
    "overshoot": "signal scale up to which the symmetric branch is continued to detect a fold",
    "N": "network width",
    "samples": "stored samples (posterior: per chain)",
    "burn": "adapting HMC trajectories per chain before sampling",
    "thin": "HMC trajectories per stored sample",
    "chains": "independent HMC chains",
    "leapfrog": "leapfrog steps per HMC trajectory",
    "step": "initial leapfrog step (adapted during burn-in)",
    "target_accept": "HMC acceptance rate aimed at during burn-in",
    "eig_samples": "stored samples per chain whose hidden matrices are diagonalised",
    "scheduler": "where independent tasks run: None, 'serial', 'local:N', 'tcp://host:port' or a Dask Client",
    "checkpoint": "directory keeping one file per finished task (an interrupted run resumes)",
    "threads": "Numba threads (mean_field; default: chosen per call from the work and the free cores)",
}

#: old option names still accepted with a DeprecationWarning -> their replacement
DEPRECATED = {"solver": "method", "backend": "method", "readout_time": "time"}


def legacy_positional(*names: str):
    """Accept the keyword-only options ``names`` also positionally, in the order of the old signature,
    with a DeprecationWarning (``inspect.signature`` shows the new, keyword-only signature)."""
    def decorate(fn):
        n = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in inspect.signature(fn).parameters.values())

        @functools.wraps(fn)
        def wrapped(*args, **kw):
            if len(args) > n:
                extra = args[n:]
                if len(extra) > len(names):
                    raise SpecTypeError(f"{fn.__name__}() takes at most {n} positional arguments "
                                        f"(then options by keyword), got {len(args)}")
                given = names[:len(extra)]
                for name in given:
                    if name in kw:
                        raise SpecTypeError(f"{fn.__name__}() got multiple values for {name!r}")
                warnings.warn(f"{fn.__name__}(): pass {', '.join(given)} by keyword (positional options are "
                              "deprecated)", DeprecationWarning, stacklevel=2)
                kw.update(zip(given, extra))
                args = args[:n]
            return fn(*args, **kw)
        return wrapped
    return decorate


def renamed(new_value, old_value, old: str, new: str, default=None, where: str = ""):
    """The value of option ``new`` given either as ``new`` or as its deprecated name ``old``.

    Returns ``(value, name used)`` so that an error message can name the argument the caller wrote."""
    if old_value is None:
        return (default if new_value is None else new_value), new
    if new_value is not None:
        raise SpecTypeError(f"{where}: pass {new}= only ({old}= is its deprecated name)")
    warnings.warn(f"{where}: {old}= is deprecated, use {new}=", DeprecationWarning, stacklevel=3)
    return old_value, old


def check_spec(spec, name: str = "spec"):
    """Raise :class:`SpecTypeError` naming ``name`` unless ``spec`` is a NetworkSpec."""
    from .spec import NetworkSpec
    if not isinstance(spec, NetworkSpec):
        raise SpecTypeError(f"{name} must be a NetworkSpec (sf.RNN, sf.DNN, sf.ResNet or sf.NetworkSpec(...)), "
                            f"got {type(spec).__name__}")
    return spec


def check_choice(value, name: str, choices):
    """Raise :class:`SpecError` naming ``name`` unless ``value`` is one of ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise SpecError(f"{name} must be one of {', '.join(repr(c) for c in choices)}, got {value!r}")
    return value


def check_positive_int(name: str, value, minimum: int = 1) -> int:
    """``value`` as an int; raise :class:`SpecTypeError` / :class:`SpecError` naming ``name`` unless it is an
    integer >= ``minimum``."""
    import numpy as np
    kind = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise SpecTypeError(f"{name} must be {kind}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise SpecError(f"{name} must be {kind}, got {value!r}")
    return int(value)


def check_real(name: str, value, *, low=None, high=None, low_open: bool = False, high_open: bool = False,
               none_ok: bool = False) -> float | None:
    """``value`` as a finite float in the interval [low, high] (``*_open``: that end excluded).

    Raises :class:`SpecTypeError` naming ``name`` unless ``value`` is a real number (not a bool, string,
    complex or None unless ``none_ok``), :class:`SpecError` unless it is finite and inside the interval."""
    import math
    import numbers

    import numpy as np
    if value is None and none_ok:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise SpecTypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    try:
        v = float(value)
    except OverflowError:
        v = math.inf
    if not math.isfinite(v):
        raise SpecError(f"{name} must be a finite number, got {value!r}")
    if (low is not None and (v <= low if low_open else v < low)) or \
            (high is not None and (v >= high if high_open else v > high)):
        lo = "-inf" if low is None else f"{low:g}"
        hi = "inf" if high is None else f"{high:g}"
        raise SpecError(f"{name} must lie in {'(' if low_open or low is None else '['}{lo}, {hi}"
                        f"{')' if high_open or high is None else ']'}, got {value!r}")
    return v


def check_array(name: str, value, finite: bool = True):
    """``value`` as a float ndarray; raise :class:`SpecTypeError` naming ``name`` if it is not numeric or has
    complex entries, :class:`SpecError` if it is ragged or (``finite``) holds nan/inf."""
    import numpy as np
    if value is None:
        raise SpecTypeError(f"{name} must be a number or a numeric array, got None")
    try:
        arr = np.asarray(value)
    except ValueError as err:
        raise SpecError(f"{name} must be a rectangular numeric array ({err})") from None
    if arr.dtype.kind == "c":
        raise SpecTypeError(f"{name} must be real, got complex values (dtype {arr.dtype})")
    if arr.dtype.kind not in "biuf":
        try:
            arr = arr.astype(float) if arr.dtype.kind == "O" else None
        except OverflowError:
            raise SpecError(f"{name} has a value too large for a float ({str(value)[:40]})") from None
        except (TypeError, ValueError):
            arr = None
        if arr is None:
            raise SpecTypeError(f"{name} must be a number or a numeric array, got dtype "
                                f"{np.asarray(value).dtype} ({str(value)[:40]})") from None
    arr = np.asarray(arr, dtype=float)
    if finite and not np.all(np.isfinite(arr)):
        raise SpecError(f"{name} contains non-finite values (nan or inf)")
    return arr


def check_mean_field(mf, spec, X, name: str = "mf"):
    """``mf`` if it is a MeanField of ``spec`` and the inputs ``X``; else :class:`SpecError` naming ``name``
    (a precomputed object of other inputs would silently give the wrong answer)."""
    import numpy as np

    from .theory.mean_field import MeanField
    if not isinstance(mf, MeanField):
        raise SpecTypeError(f"{name} must be a MeanField (sf.mean_field(spec, X)), got {type(mf).__name__}")
    if mf.spec != spec:
        raise SpecError(f"{name} was computed for another network ({mf.spec.label}); pass mf=mean_field(spec, X)")
    Xc = spec.check_inputs(X)
    if mf.X.shape != Xc.shape or not np.array_equal(mf.X, Xc):
        raise SpecError(f"{name} was computed for other inputs than X; pass mf=mean_field(spec, X)")
    return mf


def check_flag(name: str, value) -> bool:
    """``value`` as a bool; raise :class:`SpecTypeError` naming ``name`` unless it is True or False."""
    import numpy as np
    if not isinstance(value, (bool, np.bool_)):
        raise SpecTypeError(f"{name} must be True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def check_mapping(name: str, value) -> dict:
    """``value`` as a dict; raise :class:`SpecTypeError` naming ``name`` unless it is a mapping."""
    from collections.abc import Mapping
    if not isinstance(value, Mapping):
        raise SpecTypeError(f"{name} must be a mapping (dict), got {type(value).__name__} {value!r}")
    return dict(value)


def check_index_pair(name: str, value, size: int) -> tuple[int, int]:
    """``value`` as a pair (i, j) of integers in 0..size-1; else :class:`SpecError` naming ``name``."""
    import numpy as np
    try:
        i, j = value
    except (TypeError, ValueError):
        raise SpecError(f"{name} must be a pair (i, j) of pattern indices 0..{size - 1}, got {value!r}") from None
    for v in (i, j):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or not 0 <= v < size:
            raise SpecError(f"{name} must be a pair (i, j) of pattern indices 0..{size - 1}, got {value!r}")
    return int(i), int(j)

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
    "progress": "print status lines on stderr",
    "method": "algorithm: one_loop 'causal' | 'dense'; feature_learning 'matrix' | 'explicit'",
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
    "readout": "readout mask: 'shared', 'untied' or a (T, T) array (default: the declared v groups)",
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
    """``value`` as an int; raise :class:`SpecError` naming ``name`` unless it is an integer >= ``minimum``."""
    import numpy as np
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        kind = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
        raise SpecError(f"{name} must be {kind}, got {value!r}")
    return int(value)

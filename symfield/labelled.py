"""Labelled results: the arrays of a result object as an ``xarray.Dataset`` (optional extra:
``pip install symfield[xarray]``).  Each result class's ``to_xarray()`` calls one function here.

Dimensions: ``t``, ``s`` (0-based times of the first and second kernel index), ``mu``, ``nu`` (patterns),
``sample`` (networks or posterior samples); coordinates are the integer labels.  Attributes: the spec
(``spec``: JSON of its declaration, rebuilt by :func:`spec_from_attrs`), its label and the conventions
(``conventions``), all NetCDF-safe (strings and numbers), so ``ds.to_netcdf(path, engine="scipy")`` works.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

KERNEL = ("t", "s", "mu", "nu")
CONVENTIONS = ("times 0-based (t = 0 is the first hidden state h_1); kernels C[t, s, mu, nu] = h_t,mu . h_s,nu / N; "
               "one-loop quantities N-scaled (N Cov, N(<C> - C_bar)); docs/conventions.md")


def _xarray():
    try:
        import xarray
    except ImportError as err:  # pragma: no cover - exercised only without the extra
        raise ImportError("to_xarray needs xarray: pip install symfield[xarray]") from err
    return xarray


def _plain(value):
    """A JSON-able form of a declaration field (SymPy expressions and arrays as text or lists)."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list, np.ndarray)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return str(value)


def spec_attrs(spec) -> dict:
    """NetCDF-safe attributes naming the declaration and the conventions."""
    from . import __version__
    if spec is None:
        return {"conventions": CONVENTIONS, "symfield_version": __version__}
    fields = {f.name: _plain(getattr(spec, f.name)) for f in dataclasses.fields(spec)}
    return {"spec": json.dumps(fields, sort_keys=True), "spec_label": spec.label, "T": spec.T,
            "phi": spec.phi_fn.name, "conventions": CONVENTIONS, "symfield_version": __version__}


def spec_from_attrs(attrs):
    """The NetworkSpec stored by :func:`spec_attrs` (per-step lists back to tuples)."""
    from .spec import NetworkSpec
    fields = json.loads(attrs["spec"])
    for name in ("g", "sigma_b2", "leak", "r"):
        if isinstance(fields.get(name), list):
            fields[name] = tuple(fields[name])
    return NetworkSpec(**fields)


def _coords(**sizes) -> dict:
    return {name: np.arange(n) for name, n in sizes.items() if n is not None}


def dataset(variables: dict, spec=None, attrs: dict | None = None, result: str = ""):
    """Dataset of ``variables`` {name: (dims, array)} with integer coordinates for every dimension."""
    xr = _xarray()
    sizes = {}
    for dims, arr in variables.values():
        sizes.update(zip(dims, np.shape(arr)))
    extra = {k: (json.dumps(_plain(v)) if isinstance(v, (dict, list, tuple)) else
                 (int(v) if isinstance(v, (bool, np.bool_)) else ("none" if v is None else v)))
             for k, v in (attrs or {}).items()}
    return xr.Dataset({k: (dims, np.asarray(a)) for k, (dims, a) in variables.items()},
                      coords=_coords(**sizes), attrs={**spec_attrs(spec), "result": result, **extra})


def mean_field(spec, X, blocks: dict, variances, keep: str):
    """MeanField: ``C`` (t, s, mu, nu) (keep='last': the kept shell (t, T-1), others NaN), ``variance``
    (t, mu) = C[t, t, mu, mu], inputs ``X`` (mu, t_in, d)."""
    T, P = spec.T, X.shape[0]
    C = np.full((T, T, P, P), np.nan if keep != "all" else 0.0)
    C[:, T - 1], C[T - 1, :] = 0.0, 0.0    # the kept shell: blocks outside the support are zero
    for (a, b), blk in blocks.items():
        C[a, b], C[b, a] = blk, blk.T
    variables = {"C": (KERNEL, C), "variance": (("t", "mu"), variances), "X": (("mu", "t_in", "d"), X)}
    return dataset(variables, spec, {"keep": keep}, "MeanField")


def one_loop(spec, C, mean_shift, terms: dict, variance, empirical_variance):
    """OneLoop: C̄, N(<C> - C̄) (total and by vertex), N Var C and N Var K̂, each (t, s, mu, nu)."""
    variables = {"C": (KERNEL, C), "mean_shift": (KERNEL, mean_shift), "variance": (KERNEL, variance),
                 "empirical_variance": (KERNEL, empirical_variance)}
    variables.update({f"mean_shift_{k}": (KERNEL, v) for k, v in terms.items()})
    return dataset(variables, spec, {}, "OneLoop")


def prior_ensemble(spec, X, N, seed, emp, aux, sigma_det, seconds):
    """PriorEnsemble: per-network kernels ``emp`` (K̂) and ``aux`` (C), (sample, t, s, mu, nu)."""
    variables = {"emp": (("sample", *KERNEL), emp), "aux": (("sample", *KERNEL), aux),
                 "sigma_det": (KERNEL, sigma_det), "X": (("mu", "t_in", "d"), X)}
    return dataset(variables, spec, {"N": N, "seed": str(seed), "seconds": seconds}, "PriorEnsemble")


def posterior_samples(spec, N, C, f, chain, W_top, acceptance, step, seed, seconds):
    """PosteriorSamples: kernels C (sample, t, s, mu, nu), outputs f (sample, mu, t), chain per sample,
    top |eigenvalue| of each hidden matrix (eig_sample, W_group; left out when none was diagonalised)."""
    variables = {"C": (("sample", *KERNEL), C), "f": (("sample", "mu", "t"), f), "chain": (("sample",), chain)}
    W_top = np.asarray(W_top, dtype=float)
    if W_top.size:   # (NetCDF 3 cannot hold an empty variable)
        variables["W_top"] = (("eig_sample", "W_group"), W_top.reshape(W_top.shape[0], -1))
    return dataset(variables, spec, {"N": N, "acceptance": acceptance, "step": step, "seed": str(seed),
                                     "seconds": seconds}, "PosteriorSamples")


def kernel_moments(spec, N, samples, arrays: dict):
    """KernelMoments: entrywise mean, variance and fourth central moment of K̂ ('emp') and C ('aux')."""
    return dataset({k: (KERNEL, v) for k, v in arrays.items()}, spec, {"N": N, "samples": samples},
                   "KernelMoments")


def gp_prediction(spec, mean, var, cov=None, C=None, readout=None):
    """GPPrediction: mean and var (mu) or, for several readout times, (mu, t) with coordinate t the
    readout times; cov (mu, nu) or (t, mu, s, nu); the output kernel on [train; test] (mu_all, nu_all)."""
    from .gp import readout_times
    mean, var = np.asarray(mean), np.asarray(var)
    several = mean.ndim == 2
    variables = {"mean": (("mu", "t") if several else ("mu",), mean), "var": (("mu", "t") if several else ("mu",), var)}
    if cov is not None:
        if several:
            n, m = mean.shape[1], mean.shape[0]
            variables["cov"] = (KERNEL[:1] + ("mu", "s", "nu"), cov.reshape(n, m, n, m))
        else:
            variables["cov"] = (("mu", "nu"), cov)
    if C is not None:
        variables["C"] = (("mu_all", "nu_all"), C)
    ds = dataset(variables, spec, {"readout": str(readout)}, "GPPrediction")
    if several and spec is not None:
        times = list(readout_times(spec, readout)[0])
        ds = ds.assign_coords(t=times, s=times) if "s" in ds.dims else ds.assign_coords(t=times)
    return ds


def feature_learning(spec, C, prediction, attrs: dict):
    """FeatureLearning: the kernel C (t, s, mu, nu) of the selected solution, the predictor f̄ (mu, t),
    scalars (action, phase, ...) as attributes."""
    return dataset({"C": (KERNEL, C), "prediction": (("mu", "t"), prediction)}, spec, attrs, "FeatureLearning")

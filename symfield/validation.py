"""Theory against simulation of one declaration: the measurements that validation tests and derivations fit.

It reads both :mod:`symfield.theory` and :mod:`symfield.simulate` (which never imports the theory).
"""
from __future__ import annotations

import numpy as np

from . import parallel
from .api import check_positive_int
from .simulate.projected import chunk_moments, moment_tasks, moments_result
from .theory import mean_field


def loglog_slope(widths, mse, var_log) -> tuple[float, float]:
    """Weighted least-squares slope of log MSE on log N and its standard error; ``var_log`` are the
    variances of log MSE (delta method: Var(d)/(S MSE²)).  A 1/N rate gives slope -1."""
    x, y, w = np.log(widths), np.log(mse), 1.0 / np.asarray(var_log)
    xm = (w * x).sum() / w.sum()
    sxx = (w * (x - xm) ** 2).sum()
    return float((w * (x - xm) * y).sum() / sxx), float(1.0 / np.sqrt(sxx))


def one_loop_measurements(spec, X, widths, samples, seed=0, progress=False, time_index=None, pattern=(0, 0), *,
                          scheduler=None, checkpoint=None):
    """N Var C(t,t) and N (<C(t,t)> - C̄(t,t)) of the auxiliary kernel, and N Var K̂(t,t) of the
    empirical kernel, at each width, with standard errors.

    Entry ``pattern`` = (α, β) (default (0, 0)), time ``time_index`` (default: the last).  Returns a
    dict of arrays over ``widths``.
    The error of N·Var uses the measured fourth central moment, Var(s²) ≈ (μ4 - σ⁴)/S.
    Width k is :func:`~symfield.simulate.kernel_moments` with seed ``(seed, k)``; the chunks of all widths
    are one list of tasks for ``scheduler`` (:mod:`symfield.parallel`), kept in ``checkpoint`` if given.
    """
    t = spec.T - 1 if time_index is None else time_index
    a, b = pattern
    C_bar = mean_field(spec, X).block(t, t)[a, b]
    Xc = spec.check_inputs(X)
    widths = [check_positive_int("widths", N) for N in widths]
    samples = check_positive_int("samples", samples)
    seed = tuple(seed) if isinstance(seed, (tuple, list)) else (seed,)
    per_width = [moment_tasks(spec, Xc, N, samples, (*seed, k), None) for k, N in enumerate(widths)]
    parts = parallel.map_tasks(chunk_moments, [task for tasks in per_width for task in tasks], scheduler=scheduler,
                               checkpoint=checkpoint, progress=progress, desc="one-loop widths")
    out = {k: [] for k in ("N", "var", "var_err", "shift", "shift_err", "emp_var", "emp_var_err")}
    start = 0
    for N, tasks in zip(widths, per_width):
        km = moments_result(spec, N, parts[start:start + len(tasks)])
        start += len(tasks)
        v = km.var("aux")[t, t, a, b]
        out["N"].append(N)
        out["var"].append(N * v)
        out["var_err"].append(N * km.var_sem("aux")[t, t, a, b])
        out["shift"].append(N * (km.mean("aux")[t, t, a, b] - C_bar))
        out["shift_err"].append(N * np.sqrt(v / samples))
        ve = km.var("emp")[t, t, a, b]
        out["emp_var"].append(N * ve)
        out["emp_var_err"].append(N * km.var_sem("emp")[t, t, a, b])
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}

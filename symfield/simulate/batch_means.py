"""Standard error of a Markov-chain mean by batch means (theory Sec. 12).

Each chain is cut into ``batches`` contiguous batches (sizes differ by at most one sample); the
standard error of the overall mean is the spread of all batch means over the square root of their
number,

    sem = std({B_cj}, ddof=1) / √(C·batches),   B_cj = mean of batch j of chain c.

Batches much longer than the autocorrelation time τ are nearly independent, so this is the standard
error of the correlated mean up to a relative bias O(τ/batch length); for iid samples in equal batches it
is unbiased.  Several batches per chain give more degrees of freedom than the C chain means alone (4 chains:
3 degrees of freedom, a heavy-tailed estimate); ``batches=1`` is the spread of the chain means.
"""
from __future__ import annotations

import numpy as np

from ..api import check_positive_int
from ..errors import SpecError


def batch_sem(values, chain=None, batches: int = 5) -> np.ndarray:
    """Batch-means standard error of the mean of ``values`` (samples along axis 0, any trailing shape);
    ``chain``: the chain index of every sample (None: one chain), samples of a chain in time order."""
    check_positive_int("batches", batches)
    v = np.asarray(values, dtype=float)
    if v.ndim == 0 or v.shape[0] == 0:
        raise SpecError("batch_sem: values must have at least one sample along axis 0")
    c = np.zeros(v.shape[0], dtype=np.int64) if chain is None else np.asarray(chain)
    if c.shape != (v.shape[0],):
        raise SpecError(f"batch_sem: chain must have one entry per sample ({v.shape[0]}), got shape {c.shape}")
    means = []
    for k in np.unique(c):
        own = v[c == k]
        if own.shape[0] < batches:
            raise SpecError(f"batch_sem: chain {k} has {own.shape[0]} samples, fewer than batches = {batches}")
        means += [b.mean(axis=0) for b in np.array_split(own, batches)]
    if len(means) < 2:
        raise SpecError("batch_sem needs at least two batch means (batches >= 2 for one chain)")
    return np.std(means, axis=0, ddof=1) / np.sqrt(len(means))

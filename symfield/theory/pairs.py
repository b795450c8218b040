"""Kernel field variables as unordered pairs of sites, in causal order (theory Sec. 8.1).

Sites are f = a·P + α for time a = 0..T-1 (0-based) and pattern α.  The field variables are the
unordered pairs u = {f1, f2} (f1 <= f2) with both times >= 1 (the first time step is
deterministic) whose block exists (a1 == a2, or M_a1a2 != 0).  They are ordered by
max(a1, a2), then min(a1, a2), then (f1, f2), so that F'(C) is strictly lower triangular.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..spec import NetworkSpec


@dataclass(frozen=True)
class PairSpace:
    T: int
    P: int
    pairs: np.ndarray       #: (n, 2) full-site indices f1 <= f2, causal order
    prev: np.ndarray        #: (n, 3) indices of the pairs {f1-P, f1-P}, {f2-P, f2-P}, {f1-P, f2-P}; -1 if time 0
    lookup: np.ndarray      #: (TP, TP) pair index of {f, f'} or -1 (not a field variable)

    @property
    def n(self) -> int:
        return len(self.pairs)

    def times(self) -> np.ndarray:
        return self.pairs // self.P

    def to_dense(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Scatter per-pair values into a (T, T, P, P) array (both orders of each pair)."""
        T, P = self.T, self.P
        out = np.full((T * P, T * P), fill, dtype=float)
        f1, f2 = self.pairs.T
        out[f1, f2] = values
        out[f2, f1] = values
        return out.reshape(T, P, T, P).transpose(0, 2, 1, 3)


def pair_space(spec: NetworkSpec, P: int, blocks: np.ndarray | None = None) -> PairSpace:
    """Pairs of sites with both times >= 1 in the blocks that exist (``blocks``: a (T, T) boolean
    array, default ``spec.block_exists``), in causal order."""
    T = spec.T
    f = np.arange(T * P)
    a = f // P
    F1, F2 = np.meshgrid(f, f, indexing="ij")
    A1, A2 = a[F1], a[F2]
    if blocks is None:
        blocks = spec.block_support()  # times >= 1 only: T = 1 has no pairs
    exists = np.asarray(blocks, bool)[A1, A2]
    keep = (F1 <= F2) & (A1 >= 1) & (A2 >= 1) & exists
    f1, f2 = F1[keep], F2[keep]
    a1, a2 = a[f1], a[f2]
    order = np.lexsort((f2, f1, np.minimum(a1, a2), np.maximum(a1, a2)))
    pairs = np.stack([f1[order], f2[order]], axis=1)
    lookup = -np.ones((T * P, T * P), dtype=np.int64)
    lookup[pairs[:, 0], pairs[:, 1]] = np.arange(len(pairs))
    lookup[pairs[:, 1], pairs[:, 0]] = np.arange(len(pairs))
    g1, g2 = pairs[:, 0] - P, pairs[:, 1] - P
    prev = np.stack([_lookup(lookup, g1, g1), _lookup(lookup, g2, g2), _lookup(lookup, g1, g2)], axis=1)
    return PairSpace(T, P, pairs, prev, lookup)


def _lookup(lookup, i, j):
    ok = (i >= 0) & (j >= 0)
    out = -np.ones(len(i), dtype=np.int64)
    out[ok] = lookup[i[ok], j[ok]]
    return out

"""The skip propagator of h_t = a_t h_{t-1} + ξ_t: h = A ξ with A_ts = a_{s+1}···a_t (s <= t), A_tt = 1.

A per-sample driving covariance D (of ξ) becomes the covariance of h, C = A D Aᵀ, on the time index
of every (P, P) block (theory.md, skip recursion).
"""
from __future__ import annotations

import numpy as np

from ..spec import NetworkSpec


def propagate(spec: NetworkSpec, D: np.ndarray) -> np.ndarray:
    """A D Aᵀ for kernels D (..., T, T, P, P); D itself (unchanged) when the declaration has no skip."""
    if not spec.has_skip:
        return D
    A = spec.skip_matrix()
    return np.einsum("ta,...abpq,sb->...tspq", A, D, A, optimize=True)  # two matmuls, not O(T⁴)

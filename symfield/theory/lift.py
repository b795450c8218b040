"""Kernel entries as linear functions of the field variables (theory.md, "Skip connections").

With skip coefficients a_t the update h_t = a_t h_{t-1} + ξ_t makes the kernel a linear image of the
driving covariance D = Cov(ξ), the auxiliary field of the action:

    C = 𝒜 D 𝒜ᵀ,     𝒜 = A ⊗ 1_P,     A_ts = a_{s+1} ··· a_t  (s <= t),  A_tt = 1.

The field variables are the unordered pairs x = {f1, f2} of D (:mod:`symfield.theory.pairs`), so

    ∂C_{s s'} / ∂D_x = 𝒜_{s f1} 𝒜_{s' f2} + [f1 != f2] 𝒜_{s f2} 𝒜_{s' f1}.

Without skip 𝒜 = 1, C = D, and every map here is a gather (the pair index of {s, s'}, or nothing).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sps

from ..spec import NetworkSpec
from .pairs import PairSpace


class Lift:
    """∂C/∂D between site pairs and the field variables of ``ps`` (see the module docstring)."""

    def __init__(self, spec: NetworkSpec, ps: PairSpace):
        self.ps = ps
        self.A = np.kron(spec.skip_matrix(), np.eye(ps.P)) if spec.has_skip else None
        self._lifted: dict = {}

    @property
    def identity(self) -> bool:
        return self.A is None

    def rows(self, s1, s2):
        """∂C_{s1[k] s2[k]} / ∂D_x as a (len(s1), n) matrix: sparse without skip, dense with it."""
        s1, s2 = np.asarray(s1), np.asarray(s2)
        n = self.ps.n
        if self.identity:
            ok = (s1 >= 0) & (s2 >= 0)
            idx = -np.ones(len(s1), dtype=np.int64)
            idx[ok] = self.ps.lookup[s1[ok], s2[ok]]
            keep = idx >= 0
            return sps.csr_matrix((np.ones(keep.sum()), (np.nonzero(keep)[0], idx[keep])), shape=(len(s1), n))
        f1, f2 = self.ps.pairs[:, 0], self.ps.pairs[:, 1]
        A1, A2 = self.A[s1], self.A[s2]
        return A1[:, f1] * A2[:, f2] + (f1 != f2) * (A1[:, f2] * A2[:, f1])

    def lifted(self, M: np.ndarray, s1, s2, cols) -> np.ndarray:
        """(∂C/∂D · M)[{s1, s2}, cols] elementwise for equal-shape index arrays (M: (n, m))."""
        s1, s2, cols = np.broadcast_arrays(np.asarray(s1), np.asarray(s2), np.asarray(cols))
        if self.identity:
            ok = (s1 >= 0) & (s2 >= 0)
            idx = np.where(ok, self.ps.lookup[np.maximum(s1, 0), np.maximum(s2, 0)], -1)
            return np.where(idx >= 0, M[np.maximum(idx, 0), cols], 0.0)
        Z = self._lifted.get(id(M))
        if Z is None:  # Z[:, :, v] = 𝒜 S(M[:, v]) 𝒜ᵀ with S the symmetric scatter of pair values
            TP = self.A.shape[0]
            S = np.zeros((TP, TP, M.shape[1]))
            f1, f2 = self.ps.pairs[:, 0], self.ps.pairs[:, 1]
            S[f1, f2] = M
            S[f2, f1] = M
            Z = np.einsum("ia,abv,jb->ijv", self.A, S, self.A, optimize=True)
            self._lifted = {id(M): Z}
        return Z[s1, s2, cols]

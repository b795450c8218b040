"""The one-loop kernel covariance N Cov(C[t,s,μ,ν], C[t',s',μ',ν']) as a lazy (T, T, P, P, T, T, P, P) array.

It is stored per pair of field variables, NΔ (n × n, theory Sec. 8.2): entry (x, y) of the dense array
is NΔ[u(x), u(y)] with u the pair index of the site pair {tP+μ, sP+ν} (either order), and 0 where a
site pair is not a field variable (time 0, a block that does not exist).  Reading blocks or index
tuples gathers from NΔ; the dense (TP)⁴ array is built only by :meth:`KernelCovariance.dense` (or
``np.asarray``) after a size check.
"""
from __future__ import annotations

import numpy as np

from ..errors import SpecError
from ..resources import check_memory
from .pairs import PairSpace


class KernelCovariance:
    """N Cov(C[t, s, μ, ν], C[t2, s2, μ2, ν2]), shape (T, T, P, P, T, T, P, P), read from ``NDelta`` (see module)."""

    def __init__(self, ps: PairSpace, NDelta: np.ndarray):
        self.ps, self.NDelta = ps, NDelta
        T, P = ps.T, ps.P
        self.shape = (T, T, P, P, T, T, P, P)
        self.ndim, self.dtype = 8, NDelta.dtype

    @property
    def nbytes_dense(self) -> int:
        """Bytes of the dense array, 8 (TP)⁴."""
        return 8 * int(np.prod(self.shape, dtype=float))

    def __repr__(self) -> str:
        return f"KernelCovariance(shape={self.shape}, {self.ps.n} pair variables, dense {self.nbytes_dense / 2**30:.3g} GiB)"

    def _axes(self, key) -> tuple[list, list]:
        """Per-axis index vectors and which axes an integer index drops (ints, slices, Ellipsis)."""
        key = key if isinstance(key, tuple) else (key,)
        if sum(k is Ellipsis for k in key) > 1:
            raise SpecError("kernel_covariance index: at most one Ellipsis")
        if Ellipsis in key:
            i = key.index(Ellipsis)
            key = key[:i] + (slice(None),) * (8 - len(key) + 1) + key[i + 1:]
        if len(key) > 8:
            raise SpecError(f"kernel_covariance has 8 axes (t, s, mu, nu, t2, s2, mu2, nu2), got {len(key)} indices")
        key = key + (slice(None),) * (8 - len(key))
        idx, drop = [], []
        for axis, (k, dim) in enumerate(zip(key, self.shape)):
            if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
                if not -dim <= k < dim:
                    raise IndexError(f"kernel_covariance index {k} is out of range for axis {axis} of size {dim}")
                idx.append(np.array([k % dim]))
                drop.append(axis)
            elif isinstance(k, slice):
                idx.append(np.arange(dim)[k])
            else:
                raise SpecError(f"kernel_covariance indices must be integers, slices or ..., got {k!r} for axis "
                                f"{axis} (use .dense() for fancy indexing)")
        return idx, drop

    def __getitem__(self, key) -> np.ndarray:
        idx, drop = self._axes(key)
        size = float(np.prod([len(i) for i in idx], dtype=float))
        check_memory(3 * 8.0 * size, f"kernel_covariance[{key!r}] ({size:.3g} entries)", "the index (read fewer entries)")
        t, s, mu, nu, t2, s2, mu2, nu2 = np.ix_(*idx)
        P, lookup = self.ps.P, self.ps.lookup
        x, y = lookup[t * P + mu, s * P + nu], lookup[t2 * P + mu2, s2 * P + nu2]
        out = np.where((x >= 0) & (y >= 0), self.NDelta[np.maximum(x, 0), np.maximum(y, 0)], 0.0)
        return out.reshape([len(i) for a, i in enumerate(idx) if a not in drop])

    def block(self, t: int, s: int, t2: int, s2: int) -> np.ndarray:
        """N Cov(C[t, s], C[t2, s2]) as a (P, P, P, P) array (0-based times)."""
        return self[t, s, :, :, t2, s2, :, :]

    def diagonal(self) -> np.ndarray:
        """N Var C[t, s, μ, ν], shape (T, T, P, P): the diagonal of NΔ scattered to both orders of each pair."""
        return self.ps.to_dense(np.diag(self.NDelta))

    def dense(self) -> np.ndarray:
        """The dense (T, T, P, P, T, T, P, P) array, after a size check (ResourceError above the memory limit)."""
        T, P = self.ps.T, self.ps.P
        TP = T * P
        check_memory(float(self.nbytes_dense), f"the dense kernel_covariance ((T P)^4 = {TP}^4 entries)",
                     "the number of inputs X, or read kernel_covariance[...] / .block / covariance_block / variance "
                     "instead")
        full = np.zeros((TP, TP, TP, TP))
        f1, f2 = self.ps.pairs.T
        for (x1, x2) in ((f1, f2), (f2, f1)):
            for (y1, y2) in ((f1, f2), (f2, f1)):
                full[x1[:, None], x2[:, None], y1[None, :], y2[None, :]] = self.NDelta
        return full.reshape(T, P, T, P, T, P, T, P).transpose(0, 2, 1, 3, 4, 6, 5, 7)

    def __array__(self, dtype=None, copy=None):
        out = self.dense()
        return out if dtype is None else out.astype(dtype)

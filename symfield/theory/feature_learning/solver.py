"""Maximise the μP action in congruence coordinates, and its Hessian spectrum by lag sector.

Each solve re-centres at its starting kernel C₀ = L Lᵀ and works with Z, C = L Z Lᵀ, stored as
svec(Z) (diagonal entries, and √2 × the upper off-diagonal entries, so that the Euclidean
product of svec vectors is the Frobenius product).  There the ln det term has Hessian −½·1
at the start, which makes the Newton–CG steps well conditioned for any T·P.  The gradient
and Hessian-vector products are those of :class:`~symfield.theory.feature_learning.action.LinearAction`
transformed by the congruence (Lᵀ G L).  A ``sector`` restricts the variables to entries of
given time lags |t − s| (lag 0 = the time-block-diagonal, symmetric sector).  Hessian spectra in the
same coordinates are in :mod:`.spectrum`.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np

from ...solve import maximize
from .action import LinearAction, NotPositiveDefinite


@lru_cache(maxsize=8)
def _svec_index(n: int):
    iu = np.triu_indices(n)
    w = np.where(iu[0] == iu[1], 1.0, np.sqrt(2.0))
    return iu, w


def svec(A: np.ndarray) -> np.ndarray:
    """Diagonal and √2 × upper entries of symmetric A (batched over leading axes)."""
    iu, w = _svec_index(A.shape[-1])
    return A[..., iu[0], iu[1]] * w


def smat(v: np.ndarray, n: int) -> np.ndarray:
    """Inverse of :func:`svec` (batched)."""
    iu, w = _svec_index(n)
    out = np.zeros(v.shape[:-1] + (n, n))
    vals = v / w
    out[..., iu[0], iu[1]] = vals
    out[..., iu[1], iu[0]] = vals
    return out


def sector_mask(act: LinearAction, lags) -> np.ndarray | None:
    """Boolean mask over svec entries whose lag |t − s| is in ``lags`` (None: all entries)."""
    if lags is None:
        return None
    iu, _ = _svec_index(act.n)
    lag = act.pr.lag()[iu[0], iu[1]]
    return np.isin(lag, np.atleast_1d(lags))


class Frame:
    """Congruence coordinates around C₀: value, gradient, Hessian-vector product in svec(Z)."""

    def __init__(self, act: LinearAction, C0: np.ndarray, mask: np.ndarray | None = None):
        self.act, self.n, self.mask = act, act.n, mask
        try:
            self.L = np.linalg.cholesky(C0)
        except np.linalg.LinAlgError:
            raise NotPositiveDefinite("starting kernel is not positive definite") from None
        self._key = None
        self._point = None

    def C(self, z: np.ndarray) -> np.ndarray:
        return self.L @ smat(z, self.n) @ self.L.T

    def z0(self) -> np.ndarray:
        return svec(np.eye(self.n))

    def _at(self, z):
        key = z.tobytes()
        if key != self._key:
            self._point = self.act.point(self.C(z))
            self._key = key
        return self._point

    def _proj(self, v):
        return v if self.mask is None else np.where(self.mask, v, 0.0)

    def value(self, z) -> float:
        try:
            return self.act.value_at(self._at(z))
        except NotPositiveDefinite:
            return -np.inf

    def grad(self, z) -> np.ndarray:
        G = self.act.grad_at(self._at(z))
        return self._proj(svec(self.L.T @ G @ self.L))

    def hessp(self, z, v) -> np.ndarray:
        D = self.L @ smat(self._proj(v), self.n) @ self.L.T
        H = self.act.hessp_at(self._at(z), D)
        return self._proj(svec(self.L.T @ H @ self.L))


class BlockFrame:
    """Congruence coordinates restricted to the symmetric sector (lag 0), evaluated block by block
    (:class:`~symfield.theory.feature_learning.blocks.Blocks`): z = concatenated svec(Z_t), C_t = L_t Z_t L_tᵀ."""

    def __init__(self, bl, C0: np.ndarray):
        self.bl, self.T, self.P = bl, bl.T, bl.P
        try:
            self.L = np.linalg.cholesky(bl.blocks(C0))
        except np.linalg.LinAlgError:
            raise NotPositiveDefinite("starting kernel is not positive definite") from None
        self.Lt = np.swapaxes(self.L, -1, -2)
        self._key = None
        self._point = None

    def Cb(self, z):
        return self.L @ smat(z.reshape(self.T, -1), self.P) @ self.Lt

    def C(self, z):
        return self.bl.full(self.Cb(z))

    def z0(self):
        return np.tile(svec(np.eye(self.P)), self.T)

    def _at(self, z):
        key = z.tobytes()
        if key != self._key:
            self._point = self.bl.point(self.Cb(z))
            self._key = key
        return self._point

    def value(self, z):
        try:
            return self.bl.value_at(self._at(z))
        except NotPositiveDefinite:
            return -np.inf

    def grad(self, z):
        return svec(self.Lt @ self.bl.grad_at(self._at(z)) @ self.L).reshape(-1)

    def hessp(self, z, v):
        D = self.L @ smat(v.reshape(self.T, -1), self.P) @ self.Lt
        return svec(self.Lt @ self.bl.hessp_at(self._at(z), D) @ self.L).reshape(-1)


def maximise(act: LinearAction, C0: np.ndarray, lags=None, gtol: float = 1e-9, maxiter: int = 200,
             label: str = "μP saddle point", blocks=None):
    """Local maximum of S/N from C₀ (restricted to ``lags`` if given); returns (C, TrustRegionResult).

    ``blocks`` (a :class:`~symfield.theory.feature_learning.blocks.Blocks`) with ``lags=0`` solves the symmetric
    sector block by block (O(T P³) per Hessian product instead of O(T³ P³))."""
    if blocks is not None and lags == 0:
        fr = BlockFrame(blocks, C0)
        res = maximize(fr.value, fr.grad, fr.hessp, fr.z0(), gtol=gtol, maxiter=maxiter, radius=0.5, label=label)
        return fr.C(res.x), res
    fr = Frame(act, C0, sector_mask(act, lags))
    res = maximize(fr.value, fr.grad, fr.hessp, fr.z0(), gtol=gtol, maxiter=maxiter, radius=0.5, label=label)
    C = fr.C(res.x)
    return 0.5 * (C + C.T), res

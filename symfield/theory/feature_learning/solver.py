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
from ...solve.trust_region import ROUNDOFF_FLOOR
from .action import LinearAction, NotPositiveDefinite
from .span import factor


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


def dead_coordinates(dead: np.ndarray) -> np.ndarray:
    """svec entries (i, j) of Z with i or j a dead (zero) column of a padded factor (batched)."""
    iu, _ = _svec_index(dead.shape[-1])
    return dead[..., iu[0]] | dead[..., iu[1]]


def off_span(hv: np.ndarray, v: np.ndarray, dead) -> np.ndarray:
    """The Hessian product with −½·v on the coordinates off the span (``dead``): C does not depend on them,
    and −½ is the ln det curvature of every live coordinate at the frame's centre, so spectra stay those of
    the live coordinates (no spurious zero eigenvalues)."""
    if dead is None:
        return hv
    return np.where(dead, -0.5 * v, hv)


class Frame:
    """Congruence coordinates around C₀: value, gradient, Hessian-vector product in svec(Z)."""

    def __init__(self, act: LinearAction, C0: np.ndarray, mask: np.ndarray | None = None):
        self.act, self.n, self.mask = act, act.n, mask
        sp = getattr(act, "span", None)  # the compiled explicit action has no span (nonsingular only)
        self.L, self.cond = factor(C0, sp, "starting kernel", condition=True)
        self.dead = None if sp is None else dead_coordinates(sp.dead)
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
        return self._proj(off_span(svec(self.L.T @ H @ self.L), v, self.dead))


class BlockFrame:
    """Congruence coordinates restricted to the symmetric sector (lag 0), evaluated block by block
    (:class:`~symfield.theory.feature_learning.blocks.Blocks`): z = concatenated svec(Z_t), C_t = L_t Z_t L_tᵀ."""

    def __init__(self, bl, C0: np.ndarray):
        self.bl, self.T, self.P = bl, bl.T, bl.P
        self.L, self.cond = factor(bl.blocks(C0), bl.span, "starting kernel", condition=True)
        self.Lt = np.swapaxes(self.L, -1, -2)
        self.dead = None if bl.span is None else dead_coordinates(bl.span.dead).reshape(-1)
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
        return off_span(svec(self.Lt @ self.bl.hessp_at(self._at(z), D) @ self.L).reshape(-1), v, self.dead)


def attainable_gtol(gtol: float, cond: float) -> float:
    """The gradient tolerance the frame can reach: gtol, raised to the round-off level ε·cond(C₀) of the
    gradient (Σ⁻¹ and C⁻¹ lose that many digits) but never above the ROUNDOFF_FLOOR·gtol that
    :func:`~symfield.solve.maximize` accepts at round-off anyway; stopping there saves the collapse of
    the trust radius by rejected steps that round-off causes."""
    return float(min(max(gtol, np.finfo(float).eps * cond), ROUNDOFF_FLOOR * gtol))


def maximise(act: LinearAction, C0: np.ndarray, lags=None, gtol: float = 1e-9, maxiter: int = 200,
             label: str = "μP saddle point", blocks=None):
    """Local maximum of S/N from C₀ (restricted to ``lags`` if given); returns (C, TrustRegionResult).

    ``blocks`` (a :class:`~symfield.theory.feature_learning.blocks.Blocks`) with ``lags=0`` solves the symmetric
    sector block by block (O(T P³) per Hessian product instead of O(T³ P³)).  The tolerance is
    :func:`attainable_gtol` (``at_roundoff`` set when it is above ``gtol``)."""
    fr = BlockFrame(blocks, C0) if blocks is not None and lags == 0 else Frame(act, C0, sector_mask(act, lags))
    tol = attainable_gtol(gtol, fr.cond)
    res = maximize(fr.value, fr.grad, fr.hessp, fr.z0(), gtol=tol, maxiter=maxiter, radius=0.5, label=label,
                   floor=ROUNDOFF_FLOOR * gtol / tol)
    res.at_roundoff = res.at_roundoff or res.grad_norm > gtol
    C = fr.C(res.x)
    return 0.5 * (C + C.T), res


def newton_error(act: LinearAction, C: np.ndarray, blocks=None, rtol: float = 1e-4) -> float:
    """The accuracy estimate of a stationary point C: max |ΔC| / max |C| with ΔC = L V Lᵀ the Newton
    correction, svec(V) = −H⁻¹ g (g, H: gradient and Hessian of S/N in the congruence coordinates at C,
    :class:`Frame`).  For C within the quadratic basin of the exact saddle point C*, C + ΔC = C* + O(|C − C*|²),
    so the estimate is |C − C*| to relative accuracy O(|C − C*|) (near a fold or threshold H is nearly
    singular and the estimate grows accordingly).  ``blocks`` (a :class:`~.blocks.Blocks`) with a
    time-block-diagonal C: the symmetric sector only (the gradient has no lag k >= 1 part there and the
    Hessian does not couple it to lag 0).  MINRES to relative residual ``rtol`` (H is symmetric)."""
    symmetric = blocks is not None and not np.any(C[act.pr.lag() > 0])
    dC = newton_correction(act, C, blocks if symmetric else None, rtol)
    return float(np.abs(dC).max() / np.abs(C).max())


def newton_correction(act: LinearAction, C: np.ndarray, blocks=None, rtol: float = 1e-4) -> np.ndarray:
    """ΔC = L V Lᵀ, svec(V) = −H⁻¹ g at C (:func:`newton_error`; ``blocks``: C block-diagonal, symmetric sector)."""
    import scipy.sparse.linalg as ssl

    fr = BlockFrame(blocks, C) if blocks is not None else Frame(act, C)
    z0 = fr.z0()
    g = fr.grad(z0)
    if not np.any(g):
        return np.zeros_like(C)
    H = ssl.LinearOperator((z0.size, z0.size), matvec=lambda v: fr.hessp(z0, np.ravel(v)), dtype=float)
    v = ssl.minres(H, -g, rtol=rtol, maxiter=10 * z0.size)[0]
    return fr.C(z0 + v) - fr.C(z0)

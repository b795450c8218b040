"""The task of a trained network: the data of a μP feature-learning problem on sites s = (t, μ), index
i = t·P + μ (time-major).  Shared by the theory (:mod:`symfield.theory.feature_learning`) and the
finite-width posterior sampler (:mod:`symfield.simulate.posterior`), so it lives beside the declaration.

Builds, from the declaration (:class:`NetworkSpec`) and (X, Y, supervised, κ), the arrays of the
terms in :mod:`.terms`:

    Σ(C) = A [Wm ∘ (B C Bᵀ) + Σdet] Aᵀ,  Wm_(tμ),(sν) = (branch mask)_ts g_t g_s    (theory Sec. 2)
    A(C) = κ 1 + σ_v² (M_out ∘ C)_SS,   y_S = Y at the supervised sites             (theory Sec. 3)

with the branch mask M_ts r_t r_s (M from the W groups), g_t the scale of the matrix producing state
t (no W at t = 1), Σdet = bias + input part (Π^bias, Π^in from the groups), the skip propagator
A_ts = a_{s+1}···a_t (``prop``, None without skip) and M_out the readout mask (default: the v groups).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .api import check_array, check_real
from .errors import SpecTypeError
from .spec import NetworkSpec, SpecError

READOUTS = ("shared", "untied")


def readout_mask(spec: NetworkSpec, readout=None) -> np.ndarray:
    """M_out (T, T): 'shared' all-ones, 'untied' δ_ts, an explicit (T, T) 0/1 array, or None = the
    declaration's readout groups (``spec.readout_mask()``)."""
    T = spec.T
    if readout is None:
        return spec.readout_mask()
    if isinstance(readout, str):
        if readout not in READOUTS:
            raise SpecError(f"readout must be one of {READOUTS}, a (T, T) mask or None, got {readout!r}")
        return np.ones((T, T)) if readout == "shared" else np.eye(T)
    m = np.asarray(readout, dtype=float)
    if m.shape != (T, T) or not np.all(np.isin(m, (0.0, 1.0))) or not np.allclose(m, m.T) \
            or not np.all(np.diag(m) == 1):
        raise SpecError(f"readout mask must be a symmetric (T, T) = ({T}, {T}) 0/1 array with unit diagonal")
    return m


def check_kappa(kappa) -> float:
    """kappa (likelihood variance, posterior temperature kappa/N): a finite number > 0."""
    return check_real("kappa", kappa, low=0, low_open=True)


def check_supervised(supervised, P: int, T: int) -> np.ndarray:
    """(P, T) boolean mask; None = endpoint task (t = T for every pattern); (T,) is broadcast."""
    if supervised is None:
        sup = np.zeros((P, T), dtype=bool)
        sup[:, -1] = True
        return sup
    arr = np.asarray(supervised)
    if arr.dtype != bool:
        if not np.all(np.isin(arr, (0, 1))):
            raise SpecError("supervised must be a boolean mask of shape (T,) or (P, T)")
        arr = arr.astype(bool)
    if arr.shape == (T,):
        arr = np.broadcast_to(arr, (P, T))
    if arr.shape != (P, T):
        raise SpecError(f"supervised must have shape (T,) = ({T},) or (P, T) = ({P}, {T}), got {arr.shape}")
    if not arr.any():
        raise SpecError("supervised selects no site: give at least one supervised (pattern, time)")
    return np.array(arr)


def check_targets(Y, P: int, T: int, sup: np.ndarray) -> np.ndarray:
    Y = check_array("Y", Y, finite=False)
    if Y.shape != (P, T):
        raise SpecError(f"Y must have shape (P, T) = ({P}, {T}), got {Y.shape}")
    if not np.all(np.isfinite(Y[sup])):
        raise SpecError("Y contains non-finite values at supervised sites")
    return Y


@dataclass
class FLProblem:
    """Validated μP problem (see the module docstring); build with :func:`problem`."""

    spec: NetworkSpec
    X: np.ndarray  # checked inputs (P, T or 1, D)
    Y: np.ndarray  # (P, T)
    supervised: np.ndarray  # (P, T) bool
    kappa: float
    mask_out: np.ndarray  # (T, T)
    sigma_det: np.ndarray = field(repr=False)  # (n, n)
    wmask: np.ndarray = field(repr=False)  # (n, n): M_ts g_t g_s
    sites_S: np.ndarray = field(repr=False)  # indices of supervised sites (time-major)
    mask_out_SS: np.ndarray = field(repr=False)
    prop: np.ndarray | None = field(default=None, repr=False)  # (n, n) skip propagator A ⊗ 1_P, None: no skip

    @property
    def T(self) -> int:
        return self.spec.T

    @property
    def P(self) -> int:
        return self.X.shape[0]

    @property
    def n(self) -> int:
        return self.T * self.P

    @property
    def sigma_v2(self) -> float:
        return float(self.spec.sigma_v) ** 2

    @property
    def y_S(self) -> np.ndarray:
        """Targets at the supervised sites, in site order."""
        return self.Y.T.reshape(-1)[self.sites_S]

    def with_targets(self, Y) -> "FLProblem":
        """The same problem with targets ``Y`` (same supervised set)."""
        return FLProblem(self.spec, self.X, check_targets(Y, self.P, self.T, self.supervised), self.supervised,
                         self.kappa, self.mask_out, self.sigma_det, self.wmask, self.sites_S, self.mask_out_SS,
                         self.prop)

    def to_sites(self, K: np.ndarray) -> np.ndarray:
        """(T, T, P, P) -> (n, n)."""
        return K.transpose(0, 2, 1, 3).reshape(self.n, self.n)

    def from_sites(self, C: np.ndarray) -> np.ndarray:
        """(n, n) -> (T, T, P, P)."""
        T, P = self.T, self.P
        return C.reshape(T, P, T, P).transpose(0, 2, 1, 3)

    def times(self) -> np.ndarray:
        """Time index (0-based) of every site."""
        return np.repeat(np.arange(self.T), self.P)

    def lag(self) -> np.ndarray:
        """|t - s| for every site pair (n, n)."""
        t = self.times()
        return np.abs(t[:, None] - t[None, :])

    def block_diagonal_invariant(self) -> bool:
        """Is the time-block-diagonal set of C stationary-invariant (the symmetric sector exists)?

        True when there is no skip and Σdet and the data term have no cross-time entries: then ∂S/∂C
        vanishes off the time-block diagonal at every time-block-diagonal C (only ln det C and Σ couple
        lags, and both preserve block-diagonality; a skip propagator A does not)."""
        if self.prop is not None:
            return False
        off = self.lag() > 0
        if np.any(self.sigma_det[off] != 0):
            return False
        t = self.times()[self.sites_S]
        cross = (t[:, None] != t[None, :]) & (self.mask_out_SS != 0)
        return not cross.any()


def site_arrays(spec: NetworkSpec, Xc: np.ndarray):
    """(Σdet, Wm, skip propagator or None) on the sites of checked inputs Xc (P, T or 1, D) (module docstring)."""
    P, T = Xc.shape[0], spec.T
    n = T * P
    sdet = np.zeros((n, n))
    for a in range(T):
        for b in range(T):
            sdet[a * P:(a + 1) * P, b * P:(b + 1) * P] = spec.sigma_det(Xc, a, b)
    gt = np.concatenate([[0.0], spec.g_values()]) if T > 1 else np.zeros(1)
    wm = np.kron(spec.branch_mask() * np.outer(gt, gt), np.ones((P, P)))
    prop = np.kron(spec.skip_matrix(), np.eye(P)) if spec.has_skip else None
    return sdet, wm, prop


def problem(spec: NetworkSpec, X, Y, supervised=None, kappa=1.0, readout=None) -> FLProblem:
    """Validate the inputs and build the site arrays of the μP action (module docstring).

    The input covariance may be singular (D < P, dependent or repeated patterns): the pre-activation
    Gaussian then lives on the span of the inputs (:mod:`symfield.theory.feature_learning.span`)."""
    if not isinstance(spec, NetworkSpec):
        raise SpecTypeError(f"spec must be a NetworkSpec (sf.RNN, sf.DNN, sf.NetworkSpec(...)), got {type(spec).__name__}")
    if spec.scaling != "mean_field":
        raise SpecError("feature learning needs the mean-field (μP) readout f = v·φ(h)/N: build the network "
                        "with scaling='mean_field'")
    Xc = spec.check_inputs(X)
    P, T = Xc.shape[0], spec.T
    kappa = check_kappa(kappa)
    sup = check_supervised(supervised, P, T)
    Y = check_targets(Y, P, T, sup)
    mout = readout_mask(spec, readout)
    sdet, wm, prop = site_arrays(spec, Xc)
    sites_S = np.flatnonzero(sup.T.reshape(-1))
    mS = np.kron(mout, np.ones((P, P)))[np.ix_(sites_S, sites_S)]
    return FLProblem(spec, Xc, Y, sup, kappa, mout, sdet, wm, sites_S, mS, prop)

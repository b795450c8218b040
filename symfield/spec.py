"""The declaration of a network, read by every theory and every simulator.

A network is declared once by its update rule and its sharing groups (docs/conventions.md):

    h_t = a_t h_{t-1} + r_t W_t φ(h_{t-1}) + U_t x_t + b_t,     h_0 = 0,   t = 1..T

* ``leak`` (a_t) and ``r`` (r_t): scalars or T-1 values for t = 2..T (a_1 and W_1 act on h_0 = 0).
* ``share``: which steps share a parameter, as groups of 1-based step numbers; W is numbered by its
  application k = 1..T-1 (W_k produces h_{k+1}), U, b and the readout v by step t = 1..T.  A group
  list must be a partition; ``"shared"`` (one group) and ``"fresh"`` (one group per step) are
  shorthands.  Parameters not named are fresh.
* ``bias``: ``"none"``, or the bias groups: ``"static"`` (one shared b), ``"fresh"`` (a new b per
  step) or the groups of ``share["b"]`` (then ``bias`` reads ``"grouped"`` unless they are one of
  the former).
* ``input``: ``"first"`` (x enters at step 1 only, X of shape (P, D)) or ``"every"`` (x^(t) at
  every step through U_t, X of shape (P, T, D); a (P, D) array is repeated over time).
* ``g`` (W_k ~ N(0, g_k²/N), scalar or T-1 values, one value per W group), ``g_in`` (U ~ N(0,
  g_in²/D)), ``sigma_b2`` (bias variance, scalar or T values, one value per b group).
* ``scaling``: ``"standard"`` readout W_out ~ N(0, g_out²/N) or ``"mean_field"`` (μP) readout
  f = v·φ(h)/N with v ~ N(0, sigma_v²).

Everything else is derived, never stored: the weight mask M_ts = δ_ts + [t, s >= 2, W_t = W_s]
(M multiplies the weight-generated kernel g² <φφ>, absent at t = 1), Π^bias_ts = [b_t = b_s],
Π^in_ts (first: δ_t1 δ_s1; every: [U_t = U_s]), the readout mask M^out_ts = [v_t = v_s] and the
:class:`WeightPlan` that the simulators draw from.  The presets :func:`RNN` (everything shared,
bias static), :func:`DNN` (everything fresh) and :func:`ResNet` (a DNN with skip a = 1 and branch
scale r) are the only places that name an architecture.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Mapping

import numpy as np

from .api import check_array, check_positive_int, check_real, check_spec
from .errors import SpecError, SpecTypeError
from .resources import MAX_STEPS as MAX_T

#: largest |value| of a gain, variance or coefficient (squares stay far from overflow; as phi_params)
PARAM_LIMIT = 1e8

INPUTS = ("first", "every")
BIASES = ("static", "fresh", "none", "grouped")
SCALINGS = ("standard", "mean_field")
READOUTS = ("phi", "h")
PARAMETERS = ("W", "U", "b", "v")


@dataclass(frozen=True)
class Preset:
    """What an architecture fixes: the sharing of W, U and v, the default bias and skip coefficient."""

    label: str
    shared: bool                 #: W, U and v one group (True) or fresh per step (False)
    bias: str                    #: default bias mode
    leak: float = 0.0            #: default skip coefficient a


#: the built-in architectures (the only place that names one)
PRESETS = {"rnn": Preset("RNN", True, "static"), "dnn": Preset("DNN", False, "fresh"),
           "resnet": Preset("ResNet", False, "fresh", leak=1.0)}


def _per_step(name: str, value, length: int, labels=None) -> np.ndarray:
    """A scalar or ``length`` finite non-negative values, equal within each group of ``labels``."""
    arr = np.atleast_1d(check_array(name, value, finite=False))
    if isinstance(value, (bool, np.bool_)) or np.asarray(value).dtype == bool:
        raise SpecTypeError(f"{name} must be a non-negative real number (or one per step), got {value!r}")
    if arr.ndim != 1 or arr.size not in (1, length):
        raise SpecError(f"{name} must be a scalar or have {length} entries, got shape {np.shape(value)}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or np.any(arr > PARAM_LIMIT):
        raise SpecError(f"{name} must be finite, non-negative and at most {PARAM_LIMIT:g}, got {value!r}")
    arr = np.broadcast_to(arr, (length,)).copy()
    if labels is not None:
        for grp in np.unique(labels):
            vals = arr[labels == grp]
            if not np.all(vals == vals[0]):
                raise SpecError(f"{name}: steps {list(np.flatnonzero(labels == grp) + 1)} share one parameter "
                                f"(an RNN shares its parameters over time); give one value per group, not "
                                f"{arr.size} different values")
    return arr


def _coefficients(name: str, value, T: int) -> float | tuple:
    """A finite scalar or T-1 finite values (steps 2..T): stored as a float or a tuple."""
    arr = np.atleast_1d(check_array(name, value, finite=False))
    if value is None or isinstance(value, (bool, np.bool_)) or arr.dtype == bool:
        raise SpecTypeError(f"{name} must be a real number or T-1 real numbers, got {value!r}")
    if arr.ndim != 1 or arr.size not in (1, max(T - 1, 1)):
        raise SpecError(f"{name} must be a scalar or have T-1 = {max(T - 1, 1)} entries (steps 2..T), "
                        f"got shape {np.shape(value)}")
    if not np.all(np.isfinite(arr)) or np.any(np.abs(arr) > PARAM_LIMIT):
        raise SpecError(f"{name} must be finite with |{name}| <= {PARAM_LIMIT:g}, got {value!r}")
    return float(arr[0]) if arr.size == 1 else tuple(float(v) for v in arr)


def _labels(name: str, groups, steps: int) -> np.ndarray:
    """Group label per step (0-based) from a partition of the 1-based steps 1..``steps``."""
    if isinstance(groups, str):
        if groups == "shared":
            return np.zeros(steps, dtype=np.int64)
        if groups == "fresh":
            return np.arange(steps, dtype=np.int64)
        raise SpecError(f"share[{name!r}] must be 'shared', 'fresh' or a list of groups of steps, got {groups!r}")
    labels = -np.ones(steps, dtype=np.int64)
    try:
        groups = [list(g) for g in groups]
    except TypeError:
        raise SpecError(f"share[{name!r}] must be a list of groups (lists of step numbers), got {groups!r}") from None
    for k, grp in enumerate(groups):
        if not grp:
            raise SpecError(f"share[{name!r}]: group {k + 1} is empty")
        for step in grp:
            if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 1 <= step <= steps:
                raise SpecError(f"share[{name!r}]: step {step!r} does not exist ({name} is numbered 1..{steps})")
            if labels[step - 1] >= 0:
                raise SpecError(f"share[{name!r}]: step {step} is in two groups")
            labels[step - 1] = k
    if np.any(labels < 0):
        raise SpecError(f"share[{name!r}]: steps {list(np.flatnonzero(labels < 0) + 1)} are in no group "
                        "(the groups must cover every step)")
    return labels


def _canonical(labels: np.ndarray) -> tuple:
    """Groups as a tuple of tuples of 1-based steps, in order of first appearance."""
    order = dict.fromkeys(int(x) for x in labels)
    return tuple(tuple(int(i) + 1 for i in np.flatnonzero(labels == grp)) for grp in order)


def skip_matrix(a):
    """A_ts = a_{s+1}···a_t for s <= t, A_tt = 1, zero above the diagonal (a: the T skip coefficients,
    0-based, a[0] unused): h = A ξ for h_t = a_t h_{t-1} + ξ_t.  A NumPy array for numbers, a SymPy
    Matrix if an entry is symbolic (the μP action's symbolic template)."""
    T = len(a)
    rows = [[1 if s == t else 0 for s in range(T)] for t in range(T)]
    for t in range(1, T):
        for s in range(t):
            rows[t][s] = a[t] * rows[t - 1][s]
    if any(hasattr(x, "free_symbols") and x.free_symbols for row in rows for x in row):
        import sympy as sp
        return sp.Matrix(rows)
    return np.array(rows, dtype=float)


def _same(labels: np.ndarray) -> np.ndarray:
    return (labels[:, None] == labels[None, :]).astype(float)


@dataclass(frozen=True)
class WeightPlan:
    """The declaration as the simulators read it: which matrix each step draws, with what scale.

    Arrays are indexed by the 0-based step t; a group label of -1 means "none at this step".
    """

    W: np.ndarray        #: (T,) group of the hidden matrix producing h_t (-1 at t = 0)
    U: np.ndarray        #: (T,) input-weight group used at step t (-1 where no input enters)
    b: np.ndarray        #: (T,) bias group (-1 everywhere without a bias)
    v: np.ndarray        #: (T,) readout group
    leak: np.ndarray     #: (T,) a_t (a_0 = 0)
    w_scale: np.ndarray  #: (T,) r_t g_t multiplying Z/√N of the matrix W[t] (0 at t = 0)
    b_scale: np.ndarray  #: (T,) bias standard deviation σ_t (0 without a bias)

    @staticmethod
    def _count(labels) -> int:
        return int(labels.max()) + 1 if labels.size and labels.max() >= 0 else 0

    @property
    def n_W(self) -> int:
        return self._count(self.W)

    @property
    def n_U(self) -> int:
        return self._count(self.U)

    @property
    def n_b(self) -> int:
        return self._count(self.b)


@dataclass(frozen=True)
class NetworkSpec:
    """A network declared by its update rule and sharing groups; see the module docstring.

    ``NetworkSpec(T=..., share=..., leak=..., r=...)`` declares any network;
    ``NetworkSpec("rnn" | "dnn" | "resnet", T, ...)`` starts from a preset.
    """

    arch: str | None = None
    T: int | None = None
    phi: Any = "erf"
    g: Any = 1.0
    g_in: float = 1.0
    sigma_b2: Any = 0.0
    input: str = "first"
    bias: str | None = None
    phi_params: Mapping[str, float] = field(default_factory=dict)
    scaling: str = "standard"
    readout: str = "phi"
    g_out: float = 1.0
    sigma_out2: float = 0.0
    sigma_v: float = 1.0
    share: Mapping[str, Any] = field(default_factory=dict)
    leak: Any = None
    r: Any = 1.0

    def __post_init__(self):
        if self.T is None and isinstance(self.arch, (int, np.integer)) and not isinstance(self.arch, bool):
            object.__setattr__(self, "T", self.arch)   # NetworkSpec(6, ...): T given positionally
            object.__setattr__(self, "arch", None)
        if self.arch is not None and self.arch not in PRESETS:
            raise SpecError(f"arch must be one of {tuple(PRESETS)} or None (a declaration by share=), "
                            f"got {self.arch!r}")
        if isinstance(self.T, bool) or not isinstance(self.T, (int, np.integer)) or self.T < 1:
            raise SpecError(f"T (number of hidden states) must be an integer >= 1, got {self.T!r}")
        object.__setattr__(self, "T", int(self.T))
        for name, value, allowed in (("input", self.input, INPUTS), ("scaling", self.scaling, SCALINGS),
                                     ("readout", self.readout, READOUTS)):
            if value not in allowed:
                raise SpecError(f"{name} must be one of {allowed}, got {value!r}")
        if self.T > MAX_T:
            raise SpecError(f"T must be at most {MAX_T:.0e} (every step stores (P, P) blocks), got {self.T!r}")
        for name in ("g_in", "g_out", "sigma_out2", "sigma_v"):
            check_real(name, getattr(self, name), low=0, high=PARAM_LIMIT)
        object.__setattr__(self, "share", self._checked_share())
        object.__setattr__(self, "bias", self._resolved_bias())
        preset = PRESETS.get(self.arch)
        leak = self.leak if self.leak is not None else (preset.leak if preset else 0.0)
        object.__setattr__(self, "leak", _coefficients("leak", leak, self.T))
        object.__setattr__(self, "r", _coefficients("r", self.r, self.T))
        _per_step("g", self.g, max(self.T - 1, 1), self.labels("W") if self.T > 1 else None)
        _per_step("sigma_b2", self.sigma_b2, self.T, self.labels("b"))
        if not isinstance(self.phi_params, Mapping):
            raise SpecTypeError(f"phi_params must be a mapping {{name: value}}, got {type(self.phi_params).__name__}")
        object.__setattr__(self, "phi_params", dict(self.phi_params))
        # resolve phi now so that an unknown name fails at construction
        from .gauss import get_phi
        get_phi(self.phi, **self.phi_params)

    # ------------------------------------------------------------ declaration
    def _checked_share(self) -> dict:
        if not isinstance(self.share, Mapping):
            raise SpecError(f"share must be a mapping from {PARAMETERS} to groups, got {type(self.share).__name__}")
        preset = PRESETS.get(self.arch)
        out = {}
        for name, groups in self.share.items():
            if name not in PARAMETERS:
                raise SpecError(f"share: unknown parameter {name!r} (one of {PARAMETERS})")
            labels = _labels(name, groups, self._steps(name))
            if preset is not None and name != "b" and not np.array_equal(labels, self._preset_labels(name)):
                kind = "shares it over all steps" if preset.shared else "draws it fresh at every step"
                raise SpecError(f"share[{name!r}]: the {preset.label} preset {kind}; declare "
                                f"NetworkSpec(T=..., share=...) for other groups")
            out[name] = _canonical(labels)
        return out

    def _steps(self, name: str) -> int:
        return max(self.T - 1, 1) if name == "W" else self.T

    def _preset_labels(self, name: str) -> np.ndarray:
        preset = PRESETS.get(self.arch)
        n = self._steps(name)
        shared = preset.shared if preset is not None else False
        return np.zeros(n, dtype=np.int64) if shared else np.arange(n, dtype=np.int64)

    def _resolved_bias(self) -> str:
        preset = PRESETS.get(self.arch)
        bias = self.bias
        if bias is not None and bias not in BIASES:
            raise SpecError(f"bias must be one of {BIASES[:3]} (or share={{'b': groups}}), got {bias!r}")
        if "b" in self.share:
            labels = _labels("b", self.share["b"], self.T)
            mode = "static" if (labels == 0).all() else ("fresh" if len(np.unique(labels)) == self.T else "grouped")
            if bias is None:
                bias = mode
            elif bias != mode:
                raise SpecError(f"bias={bias!r} contradicts share['b'] = {list(self.share['b'])} (which is "
                                f"{mode!r}); give one of them")
        if bias is None:
            bias = preset.bias if preset is not None else "fresh"
        if preset is not None and not preset.shared and bias not in ("fresh", "none"):
            raise SpecError(f"bias={bias!r} is inconsistent with a {preset.label}: its layers draw independent "
                            "biases (use 'fresh' or 'none')")
        return bias

    def labels(self, name: str) -> np.ndarray:
        """Group label of parameter ``name`` ('W', 'U', 'b', 'v') per step (0-based; W per application)."""
        if name not in PARAMETERS:
            raise SpecError(f"unknown parameter {name!r} (one of {PARAMETERS})")
        if name == "b" and "b" not in self.share:
            n = self.T
            return np.zeros(n, dtype=np.int64) if self.bias == "static" else np.arange(n, dtype=np.int64)
        if name in self.share:
            return _labels(name, self.share[name], self._steps(name))
        return self._preset_labels(name)

    def groups(self, name: str) -> tuple:
        """Sharing groups of parameter ``name`` as tuples of 1-based step numbers."""
        return _canonical(self.labels(name))

    @property
    def shares_weights(self) -> bool:
        """Whether two steps apply one W (a description for users; the library reads the masks)."""
        return any(len(grp) > 1 for grp in self.groups("W")) if self.T > 1 else False

    @property
    def label(self) -> str:
        """The preset's name, or 'custom' for a declaration by groups (for display only)."""
        return PRESETS[self.arch].label if self.arch in PRESETS else "custom"

    # ----------------------------------------------------------------- masks
    @cached_property
    def _weight_mask(self) -> np.ndarray:
        T = self.T
        M = np.eye(T)
        if T > 1:
            M[1:, 1:] = np.maximum(M[1:, 1:], _same(self.labels("W")))
        return M

    def weight_mask(self) -> np.ndarray:
        """M_ts = δ_ts + [t, s >= 2 and W_t, W_s one matrix] (0-based in the array; row 0 multiplies no W)."""
        return self._weight_mask.copy()

    def branch_mask(self) -> np.ndarray:
        """M_ts r_t r_s: the weight mask with the residual-branch scales (row and column 0 vanish, r_1 = 0)."""
        r = self.r_values()
        return self._weight_mask * np.outer(r, r)

    def bias_mask(self) -> np.ndarray:
        """Π^bias_ts = [b_t and b_s are one parameter] (0 without a bias)."""
        if self.bias == "none":
            return np.zeros((self.T, self.T))
        return _same(self.labels("b"))

    def input_mask(self) -> np.ndarray:
        """Π^in_ts: first step δ_t1 δ_s1; every step [U_t and U_s are one matrix]."""
        if self.input == "first":
            out = np.zeros((self.T, self.T))
            out[0, 0] = 1.0
            return out
        return _same(self.labels("U"))

    def readout_mask(self) -> np.ndarray:
        """M^out_ts = [v_t and v_s are one readout vector]."""
        return _same(self.labels("v"))

    def bias_weight(self, a: int, b: int) -> float:
        """Π^bias_ab (0-based times)."""
        return float(self._masks[0][a, b])

    def input_weight(self, a: int, b: int) -> float:
        """Π^in_ab (0-based times)."""
        return float(self._masks[1][a, b])

    @cached_property
    def _masks(self):
        return self.bias_mask(), self.input_mask()

    def leak_values(self) -> np.ndarray:
        """a_t for the T hidden states (0-based t; a_0 = 0 since h_0 = 0)."""
        return self._step_values(self.leak)

    def r_values(self) -> np.ndarray:
        """r_t for the T hidden states (0-based t; r_0 = 0: no W acts at the first step)."""
        return self._step_values(self.r)

    def _step_values(self, value) -> np.ndarray:
        out = np.zeros(self.T)
        out[1:] = value if np.ndim(value) == 0 else np.asarray(value)[: self.T - 1]
        return out

    def skip_matrix(self) -> np.ndarray:
        """The skip propagator A (T, T) of :func:`skip_matrix` for this declaration's leak."""
        return skip_matrix(self.leak_values())

    @property
    def has_skip(self) -> bool:
        """Whether some a_t != 0 (then C = A D Aᵀ with the driving covariance D, see theory.md)."""
        return bool(np.any(self.leak_values() != 0))

    @cached_property
    def _support(self) -> np.ndarray:
        """Which (a, b) kernel blocks can be non-zero: the driving covariance's support (M, Π^bias,
        Π^in), propagated by the skip coefficients (C_ts = a_s C_t,s-1 + X_ts, X_ts = a_t X_t-1,s + D_ts)."""
        T = self.T
        D = (self._weight_mask != 0) | (self._masks[0] != 0) | (self._masks[1] != 0)
        if not self.has_skip:
            return D
        a = self.leak_values() != 0
        C = np.zeros((T, T), bool)
        for s in range(T):
            X = np.zeros(T, bool)
            for t in range(T):
                X[t] = D[t, s] | (t > 0 and a[t] and X[t - 1])
                C[t, s] = X[t] | (s > 0 and a[s] and C[t, s - 1])
        return C | C.T

    def block_exists(self, a: int, b: int) -> bool:
        """Whether the (a, b) kernel block (0-based times) can be non-zero."""
        return bool(self._support[a, b])

    def block_support(self) -> np.ndarray:
        """(T, T) boolean: :meth:`block_exists` for every pair of times."""
        return self._support.copy()

    @cached_property
    def plan(self) -> WeightPlan:
        """The :class:`WeightPlan` of this declaration (what the simulators draw)."""
        T = self.T
        W = -np.ones(T, dtype=np.int64)
        W[1:] = self.labels("W")[: T - 1]
        if self.input == "first":
            U = -np.ones(T, dtype=np.int64)
            U[0] = 0
        else:
            U = self.labels("U")
        b = -np.ones(T, dtype=np.int64) if self.bias == "none" else self.labels("b")
        w_scale = np.zeros(T)
        w_scale[1:] = self.r_values()[1:] * self.g_values()
        b_scale = np.zeros(T) if self.bias == "none" else np.sqrt(self.sigma_b2_values())
        return WeightPlan(W, U, b, self.labels("v"), self.leak_values(), w_scale, b_scale)

    # ------------------------------------------------------- hyperparameters
    @cached_property
    def phi_fn(self):
        """The resolved :class:`~symfield.gauss.Nonlinearity`."""
        from .gauss import get_phi
        return get_phi(self.phi, **self.phi_params)

    @cached_property
    def _sigma_b2(self) -> np.ndarray:
        return self.sigma_b2_values()

    def g_values(self) -> np.ndarray:
        """g_a for the T-1 hidden weight matrices (entry a-2 produces layer a)."""
        return _per_step("g", self.g, max(self.T - 1, 1))[: self.T - 1]

    def sigma_b2_values(self) -> np.ndarray:
        """Bias variance at each of the T hidden states."""
        return _per_step("sigma_b2", self.sigma_b2, self.T)

    # ----------------------------------------------------------------- input
    def check_inputs(self, X) -> np.ndarray:
        """Validate X (real, finite numbers) and return it as an array of shape (P, T, D) (first: (P, 1, D))."""
        X = check_array("X", X, finite=False)
        if self.input == "first":
            if X.ndim != 2:
                raise SpecError(f"X must have shape (P, D) for input='first', got shape {X.shape}")
            X = X[:, None, :]
        else:
            if X.ndim == 2:
                X = np.repeat(X[:, None, :], self.T, axis=1)
            elif X.ndim != 3 or X.shape[1] != self.T:
                raise SpecError(f"X must have shape (P, T={self.T}, D) or (P, D) for input='every', "
                                f"got shape {X.shape}")
        if X.shape[0] < 1 or X.shape[-1] < 1:
            raise SpecError(f"X must have at least one pattern and one input dimension, got shape {X.shape}")
        if not np.all(np.isfinite(X)):
            raise SpecError("X contains non-finite values (nan or inf)")
        return X

    def sigma_det_parts(self, a: int, b: int) -> tuple[float, float]:
        """(σ² Π^bias_ab, g_in² Π^in_ab): Σdet_ab = first + second · x^(a)·x^(b)/D (0-based a, b)."""
        return float(self._bias_part[a, b]), self.input_weight(a, b) * self.g_in ** 2

    @cached_property
    def _bias_part(self) -> np.ndarray:
        """σ² Π^bias_ab = Π^bias_ab √(σ²_a σ²_b) as a (T, T) array (the bias part of Σdet)."""
        sb = self._sigma_b2
        return self.bias_mask() * np.sqrt(np.outer(sb, sb))

    def bias_part(self) -> np.ndarray:
        """σ² Π^bias_ab as a (T, T) array (0-based times)."""
        return self._bias_part.copy()

    def sigma_det(self, X, a: int, b: int) -> np.ndarray:
        """Deterministic (P, P) block Σdet_ab = σ² Π^bias_ab + g_in² x^(a)·x^(b)/D Π^in_ab (0-based a, b).

        ``X`` must already be checked (shape (P, T or 1, D)).
        """
        bias, w_in = self.sigma_det_parts(a, b)
        out = np.full((X.shape[0], X.shape[0]), bias)
        if w_in:
            out += w_in * input_gram(X, a, b)
        return out

    def with_(self, **changes) -> "NetworkSpec":
        return replace(self, **changes)


def input_gram(X: np.ndarray, a: int, b: int) -> np.ndarray:
    """x^(a)_mu · x^(b)_nu / D for checked inputs X of shape (P, T or 1, D) (0-based a, b)."""
    ta, tb = (a, b) if X.shape[1] > 1 else (0, 0)
    gram = X[:, ta] @ X[:, tb].T
    gram /= X.shape[2]
    return gram


# --------------------------------------------------------------------- presets
def RNN(T: int, **kw) -> NetworkSpec:
    """Recurrent network: one W, U and v shared over the T hidden states (bias default: static);
    ``leak=a`` gives the leaky RNN h_t = a h_{t-1} + W φ(h_{t-1}) + U x_t + b."""
    return NetworkSpec("rnn", T, **kw)


def DNN(T: int, **kw) -> NetworkSpec:
    """Deep feed-forward network of depth T with fresh weights per layer (bias default: fresh)."""
    return NetworkSpec("dnn", T, **kw)


def ResNet(T: int, r: Any = 1.0, **kw) -> NetworkSpec:
    """Residual network h_l = h_{l-1} + r W_l φ(h_{l-1}) + b_l, h_1 = U x + b_1 (arXiv:2305.07715):
    fresh weights per layer, skip coefficient 1, residual-branch scale ``r``."""
    return NetworkSpec("resnet", T, r=r, **kw)


def as_dnn(spec: NetworkSpec) -> NetworkSpec:
    """The DNN matching ``spec`` layer for layer (same g, σ², φ, input convention and update rule)."""
    check_spec(spec)
    bias = "none" if spec.bias == "none" else "fresh"
    return replace(spec, arch="dnn", bias=bias, share={})


def convert_T(applications_of_W: int) -> int:
    """Convert a source that counts applications of W into symfield's T (hidden states)."""
    n = check_positive_int("applications_of_W", applications_of_W, minimum=0)
    if n >= MAX_T:
        raise SpecError(f"applications_of_W must be below {MAX_T:.0e} (T = applications_of_W + 1), got {n!r}")
    return n + 1

"""Network specification shared by the theory and the finite-width simulator.

One type, :class:`NetworkSpec`, describes both architectures.  The only
difference between a DNN and an RNN is the weight-sharing mask

    M_ab = 1      (RNN: one W shared by all time steps)
    M_ab = δ_ab   (DNN: fresh weights per layer)

which multiplies the weight-generated part of the kernel,
C_ab = Σdet_ab + M_ab g² <φ(z_{a-1}) φ(z_{b-1})>.

Conventions (docs/conventions.md):

* ``T`` counts hidden states; the hidden-to-hidden W is applied T-1 times.
* ``input``: ``"first"`` (x enters at step 1 only, X has shape (P, D)) or
  ``"every"`` (x^(a) enters at every step, X has shape (P, T, D); a (P, D)
  array is repeated over time).  Π^in_ab = δ_a1 δ_b1 for "first"; for
  "every" the RNN shares W^in (Π^in = 1) and the DNN draws it per layer
  (Π^in = δ_ab).
* ``bias``: ``"static"`` (one bias shared over time, Π^bias = 1),
  ``"fresh"`` (new per step, Π^bias = δ_ab) or ``"none"``.  A DNN has
  independent layers, so its bias is always fresh (or none).
* ``g``, ``sigma_b2``: standard-deviation scale of W (variance g²/N) and bias
  variance; a DNN may give one value per layer (``g``: T-1 values for
  W^(1..T-1); ``sigma_b2``: T values).
* ``scaling``: ``"standard"`` readout W_out ~ N(0, g_out²/N) or
  ``"mean_field"`` (μP) readout f = v·φ(h)/N with v ~ N(0, sigma_v²).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any, Mapping, Sequence

import numpy as np

ARCHS = ("rnn", "dnn")
INPUTS = ("first", "every")
BIASES = ("static", "fresh", "none")
SCALINGS = ("standard", "mean_field")
READOUTS = ("phi", "h")


class SpecError(ValueError):
    """An invalid or inconsistent network specification or input array."""


def _per_layer(name: str, value, length: int, arch: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(value, dtype=float))
    if arr.ndim != 1 or arr.size not in (1, length):
        raise SpecError(f"{name} must be a scalar or have {length} entries, got shape {np.shape(value)}")
    if arr.size > 1 and arch == "rnn" and not np.all(arr == arr[0]):
        raise SpecError(f"{name}: an RNN shares its parameters over time; give one value, not {arr.size}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise SpecError(f"{name} must be finite and non-negative, got {value!r}")
    return np.broadcast_to(arr, (length,)).copy()


@dataclass(frozen=True)
class NetworkSpec:
    """A deep or recurrent network; see the module docstring for the conventions."""

    arch: str
    T: int
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

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise SpecError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if isinstance(self.T, bool) or not isinstance(self.T, (int, np.integer)) or self.T < 1:
            raise SpecError(f"T (number of hidden states) must be an integer >= 1, got {self.T!r}")
        object.__setattr__(self, "T", int(self.T))
        for name, value, allowed in (("input", self.input, INPUTS), ("scaling", self.scaling, SCALINGS),
                                     ("readout", self.readout, READOUTS)):
            if value not in allowed:
                raise SpecError(f"{name} must be one of {allowed}, got {value!r}")
        bias = self.bias if self.bias is not None else ("static" if self.arch == "rnn" else "fresh")
        if bias not in BIASES:
            raise SpecError(f"bias must be one of {BIASES}, got {bias!r}")
        if self.arch == "dnn" and bias == "static":
            raise SpecError("bias='static' is inconsistent with a DNN: its layers draw independent biases "
                            "(use 'fresh' or 'none')")
        object.__setattr__(self, "bias", bias)
        for name in ("g_in", "g_out", "sigma_out2", "sigma_v"):
            v = getattr(self, name)
            if not np.isscalar(v) or not np.isfinite(v) or v < 0:
                raise SpecError(f"{name} must be a finite non-negative number, got {v!r}")
        _per_layer("g", self.g, max(self.T - 1, 1), self.arch)
        _per_layer("sigma_b2", self.sigma_b2, self.T, self.arch)
        object.__setattr__(self, "phi_params", dict(self.phi_params))
        # resolve phi now so that an unknown name fails at construction
        from .gauss import get_phi
        get_phi(self.phi, **self.phi_params)

    # ----------------------------------------------------------------- masks
    @property
    def shares_weights(self) -> bool:
        return self.arch == "rnn"

    def weight_mask(self) -> np.ndarray:
        """M_ab: 1 for the RNN (shared W), δ_ab for the DNN."""
        return np.ones((self.T, self.T)) if self.shares_weights else np.eye(self.T)

    def bias_weight(self, a: int, b: int) -> float:
        """Π^bias_ab: static 1, fresh δ_ab, none 0 (0-based times)."""
        return {"static": 1.0, "fresh": float(a == b), "none": 0.0}[self.bias]

    def input_weight(self, a: int, b: int) -> float:
        """Π^in_ab: first step δ_a1 δ_b1; every step M_ab (W^in shared in the RNN, per layer in the DNN)."""
        if self.input == "first":
            return float(a == 0 and b == 0)
        return 1.0 if (self.shares_weights or a == b) else 0.0

    def bias_mask(self) -> np.ndarray:
        """Π^bias as a (T, T) array."""
        return np.array([[self.bias_weight(a, b) for b in range(self.T)] for a in range(self.T)])

    def input_mask(self) -> np.ndarray:
        """Π^in as a (T, T) array."""
        return np.array([[self.input_weight(a, b) for b in range(self.T)] for a in range(self.T)])

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
        return _per_layer("g", self.g, max(self.T - 1, 1), self.arch)[: self.T - 1]

    def sigma_b2_values(self) -> np.ndarray:
        """Bias variance at each of the T hidden states."""
        return _per_layer("sigma_b2", self.sigma_b2, self.T, self.arch)

    def block_exists(self, a: int, b: int) -> bool:
        """Whether the (a, b) kernel block (0-based times) can be non-zero: a == b or M_ab != 0."""
        return a == b or self.weight_mask()[a, b] != 0

    # ----------------------------------------------------------------- input
    def check_inputs(self, X) -> np.ndarray:
        """Validate X and return it as an array of shape (P, T, D) (first: (P, 1, D))."""
        X = np.asarray(X, dtype=float)
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


def RNN(T: int, **kw) -> NetworkSpec:
    """Recurrent network: one W shared over the T hidden states (bias default: static)."""
    return NetworkSpec("rnn", T, **kw)


def DNN(T: int, **kw) -> NetworkSpec:
    """Deep feed-forward network of depth T with fresh weights per layer (bias default: fresh)."""
    return NetworkSpec("dnn", T, **kw)


def as_dnn(spec: NetworkSpec) -> NetworkSpec:
    """The DNN matching ``spec`` layer for layer (same g, σ², φ and input convention)."""
    bias = "none" if spec.bias == "none" else "fresh"
    return replace(spec, arch="dnn", bias=bias)


def convert_T(applications_of_W: int) -> int:
    """Convert a source that counts applications of W into symfield's T (hidden states)."""
    if applications_of_W < 0:
        raise SpecError("the number of applications of W must be >= 0")
    return applications_of_W + 1

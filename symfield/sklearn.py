"""The NNGP kernel of any network as a scikit-learn kernel (optional extra: ``pip install symfield[sklearn]``).

    from sklearn.gaussian_process import GaussianProcessRegressor
    k = NNGPKernel(sf.RNN(T=8, phi="tanh", g=1.5, sigma_b2=0.1, input="every"), readout="pooled")
    gpr = GaussianProcessRegressor(kernel=k, alpha=1e-2).fit(X_train, y_train)   # g, sigma_b2, g_in fitted

The kernel is K^GP of :func:`symfield.gp.readout_kernel` for the spec with the hyperparameters ``g``
(every hidden-weight scale g_k), ``sigma_b2`` (every bias variance) and ``g_in`` substituted; its gradient
with respect to their logarithms (scikit-learn's ``theta``) comes from the tangent recursion of the
kernel (:func:`symfield.gp._block_with_tangent`; with skip coefficients carried through the skip map,
:func:`symfield.gp._skip_with_tangent`).  A hyperparameter that is 0 (or σ_b² without a bias) is held fixed
(its logarithm does not exist).  Gradients exist for every spec the kernel accepts.

For φ without closed form (tanh, a user's expression) <φφ> and its Price derivatives ½<φ''φ>, <φ'φ'> come
from the self-choosing dual kernel (Mehler sum, else graded panels) at accuracy ``tol`` (default
:data:`TOL` = 1e-9 of their scale, values and gradient alike), so that the gradient is the derivative of the
values: at the dual kernel's own 1e-6 the Mehler truncation error of the values, accepted below 1e-6 but
varying with the variance (-3e-9, -1.1e-8, -4.6e-8 at variance 8.7, 10, 12 and ρ = 1), put 5e-7 relative
errors between the gradient and finite differences of the values.  Where the dual kernel cannot certify
``tol`` it raises :class:`~symfield.errors.AccuracyError`.

The output amplitude g_out² is not a hyperparameter: compose ``ConstantKernel() * NNGPKernel(...)`` to fit it (a pooled readout averages the outputs, so its
prior variance is smaller than a single time's).

Inputs (scikit-learn passes 2-D arrays):

* ``input='first'``: X of shape (P, D).
* ``input='every'``: each row is the sequence x^(1), ..., x^(T) concatenated time-major, i.e.
  ``X3.reshape(P, T * D)`` of an array X3 of shape (P, T, D) (:func:`flatten_sequences`); a 3-D array is
  accepted as well where scikit-learn lets it through.
* ``readout`` a list of n times (several outputs, stacked): one more last column holding the readout
  index k in 0..n-1, so that a row (x, k) is the network's output at time ``readout[k]`` for the input x
  (:func:`stack_readouts` builds these rows and targets); the kernel between rows (x, k) and (x', k')
  is the (k, k') block of the stacked kernel, so one GP is fitted jointly over all readout times.
"""
from __future__ import annotations

import numpy as np

try:
    from sklearn.gaussian_process.kernels import Hyperparameter, Kernel
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError("symfield.sklearn needs scikit-learn: pip install symfield[sklearn]") from err

from . import gp
from .api import check_array, check_real, check_spec
from .errors import NotSupportedError, SpecError

#: default accuracy of <φφ> and its derivatives for φ without closed form (relative to their scale)
TOL = 1e-9


def flatten_sequences(X) -> np.ndarray:
    """(P, T, D) sequences as the (P, T·D) rows scikit-learn needs (time-major)."""
    X = check_array("X", X)
    if X.ndim != 3:
        raise SpecError(f"X must have shape (P, T, D), got {X.shape}")
    return X.reshape(X.shape[0], -1)


def stack_readouts(X, Y):
    """Rows (x, k) and targets for a list readout of n times: X (P, ...) and Y (P, n) (NaN: unsupervised)
    give the supervised rows [flattened x, k] and their targets Y[p, k], pattern-major."""
    X, Y = check_array("X", X), check_array("Y", Y, finite=False)
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise SpecError(f"Y must have shape (P={X.shape[0]}, n) for n readout times, got {Y.shape}")
    flat = X.reshape(X.shape[0], -1)
    p, k = np.nonzero(~np.isnan(Y))
    return np.column_stack([flat[p], k.astype(float)]), Y[p, k]


def _scalar(spec, name):
    values = np.atleast_1d(np.asarray(getattr(spec, name), dtype=float))
    if not np.all(values == values[0]):
        raise NotSupportedError(f"NNGPKernel: {name} of the spec varies over steps; give a scalar {name} "
                                "(the kernel's hyperparameter is one value)")
    return float(values[0])


class NNGPKernel(Kernel):
    """K^GP of ``spec`` read out at ``readout`` ('last', a 0-based time, 'pooled' or a list of times,
    see the module docstring) with hyperparameters ``g``, ``sigma_b2``, ``g_in`` (default: the spec's
    values) and their bounds (natural units; 'fixed' to hold one); ``tol``: accuracy of <φφ> for φ without
    closed form (module docstring).  The default bounds g, g_in ∈ [0.1, 5], σ_b² ∈ [1e-4, 2] are where the
    gradient was checked against finite differences (tests/test_sklearn.py, tanh up to variance ≈ 220 with
    collinear and identical inputs)."""

    def __init__(self, spec, readout="last", g=None, sigma_b2=None, g_in=None, g_bounds=(0.1, 5.0),
                 sigma_b2_bounds=(1e-4, 2.0), g_in_bounds=(0.1, 5.0), tol=TOL):
        check_spec(spec)
        gp.readout_times(spec, readout)
        check_real("tol", tol, low=1e-13, high=1e-3)
        self.spec = spec
        self.readout = readout
        self.g = _scalar(spec, "g") if g is None else g
        self.sigma_b2 = _scalar(spec, "sigma_b2") if sigma_b2 is None else sigma_b2
        self.g_in = spec.g_in if g_in is None else g_in
        self.g_bounds = g_bounds
        self.sigma_b2_bounds = sigma_b2_bounds
        self.g_in_bounds = g_in_bounds
        self.tol = tol

    # ------------------------------------------------------------ hyperparameters
    def _bounds(self, name):
        value = getattr(self, name)
        off = value == 0 or (name == "sigma_b2" and self.spec.bias == "none") or \
            (name == "g" and self.spec.T < 2)
        return "fixed" if off else getattr(self, f"{name}_bounds")

    @property
    def hyperparameter_g(self):
        return Hyperparameter("g", "numeric", self._bounds("g"))

    @property
    def hyperparameter_g_in(self):
        return Hyperparameter("g_in", "numeric", self._bounds("g_in"))

    @property
    def hyperparameter_sigma_b2(self):
        return Hyperparameter("sigma_b2", "numeric", self._bounds("sigma_b2"))

    def network(self):
        """The spec with the current hyperparameters."""
        return self.spec.with_(g=float(self.g), sigma_b2=float(self.sigma_b2), g_in=float(self.g_in))

    # ------------------------------------------------------------------- kernel
    def _kind(self):
        return gp.readout_times(self.spec, self.readout)

    def _inputs(self, X):
        """(patterns as the spec takes them, readout index per row or None)."""
        X = check_array("X", X)
        times, kind = self._kind()
        index = None
        if kind == "several":
            if X.ndim != 2 or X.shape[1] < 2:
                raise SpecError("X: a list readout needs rows (x, k) with the readout index k in the last column")
            index, X = X[:, -1], X[:, :-1]
            if not np.all((index == np.round(index)) & (index >= 0) & (index < len(times))):
                raise SpecError(f"X: the last column must hold readout indices 0..{len(times) - 1}")
            index = index.astype(np.int64)
        if self.spec.input == "every" and X.ndim == 2:
            if X.shape[1] % self.spec.T:
                raise SpecError(f"X has {X.shape[1]} columns, not T·D with T = {self.spec.T} (rows are the "
                                "sequences x^(1..T) concatenated; see symfield.sklearn.flatten_sequences)")
            X = X.reshape(X.shape[0], self.spec.T, -1)
        return X, index

    def _kernel(self, X, grad):
        X, index = self._inputs(X)
        out = gp.readout_kernel(self.network(), X, self.readout, grad=grad, tol=self.tol)
        if index is None:
            return out
        P = X.shape[0]
        rows = index * P + np.arange(P)  # row (x_p, k) is entry k·P + p of the stacked kernel
        if not grad:
            return out[np.ix_(rows, rows)]
        return out[0][np.ix_(rows, rows)], out[1][np.ix_(rows, rows)]

    def __call__(self, X, Y=None, eval_gradient=False):
        if Y is not None:
            if eval_gradient:
                raise ValueError("Gradient can only be evaluated when Y is None.")
            n = np.shape(X)[0]
            return self._kernel(np.concatenate([np.asarray(X, float), np.asarray(Y, float)]), False)[:n, n:]
        if not eval_gradient:
            return self._kernel(X, False)
        K, dK = self._kernel(X, True)
        free = [gp.HYPERPARAMETERS.index(h.name) for h in self.hyperparameters if not h.fixed]
        return K, dK[..., free]

    def diag(self, X):
        return np.diag(self(X)).copy()

    def is_stationary(self):
        return False

    def __repr__(self):
        return (f"NNGPKernel({self.spec.label} T={self.spec.T} phi={self.spec.phi_fn.name}, readout={self.readout!r}, "
                f"g={float(self.g):.4g}, sigma_b2={float(self.sigma_b2):.4g}, g_in={float(self.g_in):.4g})")

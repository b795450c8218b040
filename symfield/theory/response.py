"""Leading-order response function: how the kernel of a declared network answers an input perturbation.

The mean-field kernel is a map of the first hidden state's kernel C̄_11 = Σdet_11 (the input kernel
g_in² x·x'/D + σ²).  Its linear response (the field theory's response function ⟨δC δC̃⟩ = (2/N) J⁻¹
without the factor 2/N, arXiv:2305.07715, arXiv:2112.05589 Sec. 8) is the tangent of the
mean-field recursion (docs/theory.md, "Residual networks"):

    δD_ts = w_ts [∂₁E δC_{t-1,t-1} + ∂₂E δC_{s-1,s-1} + ∂₃E δC_{t-1,s-1}],   w_ts = M_ts r_t r_s g_s²,
    δX_ts = a_t δX_{t-1,s} + δD_ts,     δC_ts = a_s δC_{t,s-1} + δX_ts,     δC_11 = the perturbation,

with E(c11, c22, c12) = <φ(u)φ(v)> and its derivatives at the mean-field kernel (the action's derived
F' = m g² ∂E, compiled, as in the one loop; for φ without a closed form Price's theorem by the certified 2-site
moments, :func:`pair_slopes`).  The readout kernel K^out = σ_out² + g_out² E(C̄_TT) (readout='h': g_out² C̄_TT)
answers with δK^out = g_out² ∂E·δC_TT.  Everything is read from the declaration (skip coefficients,
branch mask, g): the same code gives DNN, RNN, ResNet and any custom network.

:func:`optimal_r` maximises the output response over the residual-branch scale r.  In the update rule
h_t = a_t h_{t-1} + r_t W_t φ(h_{t-1}) + ... the kernel depends on r and g only through r·g, so at fixed
g_in and σ² the maximiser obeys r*(g) = (r g)*/g; for large depth (ResNet, σ² = 0) the continuum limit
of :func:`large_depth_optimum` gives r* → sqrt(S*/(T-1))/g.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import sympy as sp
from scipy.integrate import solve_ivp
from scipy.optimize import minimize_scalar

from ..api import check_index_pair, check_mean_field, check_positive_int, check_real
from ..errors import NonFiniteError, NotSupportedError, SpecError, SpecTypeError
from ..resources import check_steps
from ..gauss import Nonlinearity, dual_kernel
from ..gauss.moments import closed_form
from ..gauss.registry import x as phi_arg
from ..spec import NetworkSpec
from .mean_field import MeanField, mean_field
from .one_loop import numeric_template_derivatives, template_derivatives


def pair_slopes(phi: Nonlinearity, c11, c22, c12, with_error: bool = False):
    """(3, *c12.shape): ∂E/∂c11, ∂E/∂c22, ∂E/∂c12 of E = <φ(u)φ(v)> at variances c11 (rows), c22 (columns) and
    covariances c12 — exact, or certified, or refused:

    * a smooth closed form of <φφ> or a sum of erfs: the compiled template derivatives
      (:func:`one_loop.template_derivatives`), error 0 (rounding);
    * φ positively homogeneous of degree 1 (ReLU, leaky ReLU; φ'' = δ is no function): ⟨φ(su)φ(v)⟩ = s E gives
      2 c11 ∂E/∂c11 + c12 ∂E/∂c12 = E, so ∂E/∂c11 = (E - c12 <φ'φ'>)/(2 c11) with E and <φ'φ'> from
      ``DualKernel.pair(with_error=True)`` (certified to ``dual.TOL`` of its scale, else AccuracyError);
    * otherwise Price's theorem ∂E/∂c12 = <φ'φ'>, ∂E/∂c11 = ½<φ''φ> by the certified 2-site moments
      (:func:`one_loop.numeric_template_derivatives`, ``hessian=False``: AccuracyError where a column misses
      ``moments.TOL`` of its absolute moment); a jump of φ' (hardtanh) puts δ terms into φ'', integrated as
      conditional integrals (``moments.delta_atoms``); NotSupportedError where φ itself jumps, naming why.

    ``with_error``: (slopes, absolute error estimates of the same shape)."""
    c11, c22, c12 = (np.asarray(a, dtype=float) for a in (c11, c22, c12))
    a11, a22, a12 = (np.ascontiguousarray(a).ravel() for a in np.broadcast_arrays(c11[:, None], c22[None, :], c12))
    if (phi.has_closed_form and not (phi.kinks(0) or phi.kinks(1))) or _is_erf_sum(phi):
        d = template_derivatives(phi, a11, a22, a12)[:, 1:4]
        err = np.zeros_like(d)
    elif _homogeneous(phi):
        d, err = _homogeneous_slopes(phi, a11, a22, a12)
    else:
        try:
            d, err = numeric_template_derivatives(phi, a11, a22, a12, with_error=True, hessian=False)
        except NotSupportedError as exc:
            raise NotSupportedError(f"the response needs ∂<phi phi>/∂c11 = ½<phi''(u) phi(v)> (Price's theorem) "
                                    f"for phi={phi.name!r}, whose moments are refused: {exc}") from None
        d, err = d[:, 1:4], err[:, 1:4]
    shape = (3,) + c12.shape
    slopes, errors = d.T.reshape(shape), err.T.reshape(shape)
    return (slopes, errors) if with_error else slopes


def _is_erf_sum(phi: Nonlinearity) -> bool:
    form = closed_form(phi)
    return form is not None and form[0] == "erf"


def _homogeneous(phi: Nonlinearity) -> bool:
    """φ(s x) = s φ(x) for every s > 0 (ReLU, leaky ReLU, c·x)."""
    return _homogeneous_expr(phi.expr)


@lru_cache(maxsize=None)
def _homogeneous_expr(expr: sp.Expr) -> bool:
    """On each half-line φ(±p) = c± p (p > 0): φ - p dφ/dp vanishes identically there."""
    p = sp.Symbol("p", positive=True)
    return all(sp.simplify(e - p * sp.diff(e, p)) == 0 for e in (expr.subs(phi_arg, p), expr.subs(phi_arg, -p)))


def _homogeneous_slopes(phi: Nonlinearity, c11, c22, c12):
    """(n, 3) slopes and errors of a degree-1 homogeneous φ by the scaling identity (:func:`pair_slopes`):
    ∂E/∂c11 = (E - c12 <φ'φ'>)/(2 c11), ∂E/∂c22 alike, ∂E/∂c12 = <φ'φ'>; a zero variance refuses
    (E ~ √c11 there: the slope is infinite)."""
    if np.any(c11 <= 0) or np.any(c22 <= 0):
        raise NonFiniteError(f"∂<phi phi>/∂c11 of phi={phi.name!r} is infinite at a zero pre-activation variance "
                             "(<phi phi> grows like its square root): the response needs non-zero input patterns")
    kernel = dual_kernel(phi)
    E = kernel.pair(c11, c22, c12, with_error=True)
    dE = kernel.pair(c11, c22, c12, orders=(1, 1), with_error=True)
    d = np.stack([(E.value - c12 * dE.value) / (2 * c11), (E.value - c12 * dE.value) / (2 * c22), dE.value], 1)
    spread = E.error + np.abs(c12) * dE.error
    return d, np.stack([spread / (2 * c11), spread / (2 * c22), dE.error], 1)


def _directed(slopes: np.ndarray, dvar_row: np.ndarray, dvar_col: np.ndarray, dc12: np.ndarray) -> np.ndarray:
    """∂E·δc for K directions: dvar_row (K, P), dvar_col (K, P), dc12 (K, P, P) -> (K, P, P)."""
    return slopes[0] * dvar_row[:, :, None] + slopes[1] * dvar_col[:, None, :] + slopes[2] * dc12


def _diag(block: np.ndarray) -> np.ndarray:
    return np.diagonal(block, axis1=-2, axis2=-1)


@dataclass
class Response:
    """Linear response of the mean-field kernels to the first state's kernel C̄_11.

    ``hidden[k, t]`` = ∂C̄_tt/∂C̄_11{κλ} (P, P) and ``output[k]`` = ∂K^out/∂C̄_11{κλ} (P, P) for the
    perturbed pattern pair ``pairs[k] = (κ, λ)`` (an unordered kernel entry: both C̄_11[κ, λ] and
    C̄_11[λ, κ] move).  t is 0-based (entry 0 is the perturbation itself).
    """

    spec: NetworkSpec
    mf: MeanField = field(repr=False)
    pairs: np.ndarray                      #: (K, 2) perturbed pattern pairs κ <= λ
    hidden: np.ndarray = field(repr=False)  #: (K, T, P, P)
    output: np.ndarray = field(repr=False)  #: (K, P, P)

    def _index(self, mu: int, nu: int) -> int:
        key = (min(mu, nu), max(mu, nu))
        hits = np.flatnonzero((self.pairs[:, 0] == key[0]) & (self.pairs[:, 1] == key[1]))
        if not hits.size:
            raise SpecError(f"pattern pair {key} was not perturbed (pairs: {self.pairs.tolist()})")
        return int(hits[0])

    def chi(self, mu: int = 0, nu: int = 1) -> np.ndarray:
        """χ_t = ∂C̄_tt[μ, ν]/∂C̄_11[μ, ν] for t = 1..T (array of T; χ_1 = 1)."""
        return self.hidden[self._index(mu, nu), :, mu, nu].copy()

    def output_chi(self, mu: int = 0, nu: int = 1) -> float:
        """∂K^out[μ, ν]/∂C̄_11[μ, ν]: the readout's sensitivity to the input kernel entry."""
        return float(self.output[self._index(mu, nu), mu, nu])


def _check_pairs(pairs, P: int) -> np.ndarray:
    if pairs is None:
        return np.array(np.triu_indices(P)).T
    arr = np.atleast_2d(np.asarray(pairs))
    if arr.ndim != 2 or arr.shape[1] != 2 or not np.issubdtype(arr.dtype, np.integer):
        raise SpecError(f"pairs must be a list of (mu, nu) integer pattern pairs, got {pairs!r}")
    if arr.min() < 0 or arr.max() >= P:
        raise SpecError(f"pairs: pattern indices must lie in 0..{P - 1}, got {pairs!r}")
    return np.sort(arr, axis=1)


def response(spec: NetworkSpec, X, *, pairs=None, mf: MeanField | None = None) -> Response:
    """Response of every equal-time kernel C̄_tt and of the readout kernel to C̄_11 (module docstring).

    ``pairs``: the pattern pairs (κ, λ) of C̄_11 to perturb (default: all κ <= λ); ``mf``: a mean field
    of ``spec`` on ``X`` already computed (keep='all').
    """
    if not isinstance(spec, NetworkSpec):
        raise SpecTypeError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
    mf = mean_field(spec, X) if mf is None else check_mean_field(mf, spec, X)
    C = mf.C
    T, P = spec.T, mf.P
    pairs = _check_pairs(pairs, P)
    K = len(pairs)
    phi = spec.phi_fn
    a = spec.leak_values()
    w = spec.branch_mask()
    g2 = np.concatenate([[0.0], spec.g_values() ** 2]) if T > 1 else np.zeros(1)
    var = np.stack([np.diag(C[t, t]) for t in range(T)])
    hidden = np.zeros((K, T, P, P))
    k = np.arange(K)
    hidden[k, 0, pairs[:, 0], pairs[:, 1]] = 1.0
    hidden[k, 0, pairs[:, 1], pairs[:, 0]] = 1.0
    dvar = np.zeros((K, T, P))
    dvar[:, 0] = _diag(hidden[:, 0])
    prev = np.zeros((K, T, P, P))  # δC[:, t, hi-1] for t <= hi-1
    prev[:, 0] = hidden[:, 0]
    for hi in range(1, T):
        cur = np.zeros((K, T, P, P))  # δC[:, t, hi]
        dX = np.zeros((K, P, P))
        for t in range(hi + 1):
            dD = 0.0
            if t >= 1 and w[t, hi] != 0:
                s = pair_slopes(phi, var[t - 1], var[hi - 1], C[t - 1, hi - 1])
                with np.errstate(over="ignore", invalid="ignore"):
                    dD = w[t, hi] * g2[hi] * _directed(s, dvar[:, t - 1], dvar[:, hi - 1], prev[:, t - 1])
            with np.errstate(over="ignore", invalid="ignore"):  # a non-finite step is reported below
                dX = a[t] * dX + dD
                before = prev[:, t] if t < hi else np.swapaxes(cur[:, hi - 1], 1, 2)
                cur[:, t] = dX + a[hi] * before
        cur[:, hi] = 0.5 * (cur[:, hi] + np.swapaxes(cur[:, hi], 1, 2))
        hidden[:, hi] = cur[:, hi]
        if not np.all(np.isfinite(cur[:, hi])):
            _non_finite(hi + 1)
        dvar[:, hi] = _diag(cur[:, hi])
        prev = cur
    last = hidden[:, T - 1]
    if spec.readout == "h":
        output = spec.g_out ** 2 * last
    else:
        s = pair_slopes(phi, var[T - 1], var[T - 1], C[T - 1, T - 1])
        with np.errstate(over="ignore", invalid="ignore"):
            output = spec.g_out ** 2 * _directed(s, dvar[:, T - 1], dvar[:, T - 1], last)
    if not (np.all(np.isfinite(hidden)) and np.all(np.isfinite(output))):
        _non_finite("the readout")
    return Response(spec, mf, pairs, hidden, output)


def _non_finite(where) -> None:
    """NonFiniteError for a response that overflowed at step ``where`` (1-based t, or "the readout")."""
    at = f"step t = {where}" if isinstance(where, int) else where
    raise NonFiniteError(f"the response is not finite at {at}: ∂C̄_tt/∂C̄_11 grows like the product of the slopes "
                         "g² ∂E over the steps and overflowed (or the slopes did); reduce the weight variances (g) or "
                         "the depth T of spec, or rescale X (the slopes grow as the pre-activation variances shrink)")


# --------------------------------------------------------------------------- optimal residual scale
@dataclass(frozen=True)
class OptimalR:
    """The residual-branch scale maximising the readout response of one pattern pair."""

    spec: NetworkSpec   #: the declaration at r = r*
    r: float            #: r*
    response: float     #: ∂K^out[μ, ν]/∂C̄_11[μ, ν] at r*
    grid: np.ndarray = field(repr=False)    #: (n, 2) scanned (r, response)


def _output_response(spec: NetworkSpec, X, pair) -> float:
    return response(spec, X, pairs=[pair]).output_chi(*pair)


def optimal_r(spec: NetworkSpec, X, *, pair=(0, 1), bounds=(1e-3, 1e2), points: int = 41,
              xtol: float = 1e-4) -> OptimalR:
    """r maximising the readout response ∂K^out[μ, ν]/∂C̄_11[μ, ν] of ``spec`` (r varied, all else kept).

    A log-spaced scan of ``points`` values in ``bounds`` brackets the maximum, Brent's method refines it
    (relative tolerance ``xtol`` in r).  Only the patterns of ``pair`` enter (the response of one kernel
    entry depends on its two patterns only).  Raises ValueError if the maximum lies on a bound.
    """
    if not isinstance(spec, NetworkSpec):
        raise SpecTypeError(f"spec must be a NetworkSpec, got {type(spec).__name__}")
    if spec.T < 2:
        raise SpecError("optimal_r needs T >= 2 (no residual branch acts at T = 1)")
    try:
        lo, hi = (check_real("bounds", b) for b in bounds)
    except (TypeError, ValueError) as err:
        raise SpecError(f"bounds must be (low, high) with 0 < low < high (finite), got {bounds!r}") from err
    if not 0 < lo < hi:
        raise SpecError(f"bounds must be 0 < low < high (finite), got {bounds!r}")
    points = check_positive_int("points", points, minimum=3)
    check_steps("points", points)
    xtol = check_real("xtol", xtol, low=0, low_open=True)
    X = spec.check_inputs(X)
    mu, nu = check_index_pair("pair", pair, X.shape[0])
    Xp = X[[mu, nu]] if mu != nu else X[[mu]]
    Xp = Xp[:, 0] if spec.input == "first" else Xp
    sub = (0, 1) if mu != nu else (0, 0)

    def neg_log(log_r: float) -> float:
        value = _output_response(spec.with_(r=float(np.exp(log_r))), Xp, sub)
        return -np.log(value) if value > 0 else np.inf

    grid = np.linspace(np.log(lo), np.log(hi), points)
    vals = np.array([neg_log(v) for v in grid])
    i = int(np.argmin(vals))
    if i in (0, points - 1):
        raise SpecError(f"the response is largest at the bound r = {np.exp(grid[i]):.3g}; widen bounds={bounds!r}")
    res = minimize_scalar(neg_log, bracket=(grid[i - 1], grid[i], grid[i + 1]), method="brent",
                          options={"xtol": xtol})
    r = float(np.exp(res.x))
    return OptimalR(spec.with_(r=r), r, float(np.exp(-res.fun)), np.column_stack([np.exp(grid), np.exp(-vals)]))


def large_depth_optimum(phi: Nonlinearity, c11: float, c12: float, S_max: float = 200.0) -> tuple[float, float]:
    """Continuum limit of the ResNet output response (skip 1, fresh weights, no bias) for T -> ∞ at fixed
    S = (T-1) r² g²: with s = (t-1) r² g² the kernel obeys dc/ds = E(c, c, c), dk/ds = E(c, c, k) from
    c(0) = c11, k(0) = c12, and log χ_out = ∫_0^S ∂₃E ds + log(g_out² ∂₃E(S)) + O(1/T).  Returns
    (S*, log χ_out(S*) - log g_out²), the maximiser of that expression, so that r* ≈ sqrt(S*/(T-1))/g.
    Needs a closed form of E and of ∂₃E (``phi.pair``, ``phi.dpair``)."""
    if not (phi.has_closed_form and phi.dpair_form is not None):
        raise NotImplementedError(f"large_depth_optimum needs closed forms of <phi phi> and <phi' phi'> (phi={phi.name!r})")
    c, k = sp.symbols("c k")
    E = sp.lambdify((c, k), phi.pair(c, c, k), "numpy")
    dE = sp.lambdify((c, k), phi.dpair(c, c, k), "numpy")

    def rhs(_s, y):
        return [E(y[0], y[0]), E(y[0], y[1]), dE(y[0], y[1])]

    sol = solve_ivp(rhs, (0.0, S_max), [c11, c12, 0.0], dense_output=True, rtol=1e-10, atol=1e-12)

    def neg(S):
        y = sol.sol(S)
        return -(y[2] + np.log(dE(y[0], y[1])))

    grid = np.linspace(0.0, S_max, 2001)
    vals = np.array([neg(S) for S in grid])
    i = int(np.argmin(vals))
    if i in (0, len(grid) - 1):
        raise ValueError(f"no interior maximum of the continuum response in 0 < S < {S_max}")
    res = minimize_scalar(neg, bracket=(grid[i - 1], grid[i], grid[i + 1]), method="brent", options={"xtol": 1e-10})
    return float(res.x), float(-res.fun)

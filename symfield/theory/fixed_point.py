"""Length map, its fixed point and the order/chaos slope χ1 (theory Sec. 6).

    length map:   q_{a+1} = σ² + q_in + g² <φ(z)²>_{z ~ N(0, q_a)}
    fixed point:  q* = σ² + q_in + g² <φ²>_{q*}
    slope:        F'(q*) = g² d<φ²>/dq = g² <φ'² + φφ''>_{q*}
    χ1 = g² <φ'(z)²>_{q*}:  χ1 < 1 ordered, χ1 > 1 chaotic.
    At q* = 0 both are limits q -> 0⁺ (one-sided difference; χ1 = g² (φ'(0⁻)² + φ'(0⁺)²)/2, e.g. ReLU g²/2).

q_in = g_in² |x|²/D when the input is injected at every step (0 for input='first').
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import sympy as sp
from scipy.optimize import brentq

from ..gauss import Nonlinearity
from ..gauss.panels import pair as panel_pair
from ..gauss.registry import x
from ..spec import NetworkSpec, SpecError
from .kernel_map import kernel_map

from ..api import check_positive_int, check_real, check_spec, legacy_positional  # noqa: E402
from ..errors import FixedPointError  # noqa: E402  (defined with the other errors)
from ..resources import check_steps  # noqa: E402


#: largest error estimate of a panel-rule <φ²> or <φ'²> relative to its value (else FixedPointError)
PANEL_RTOL = 1e-10


def _phi2(spec: NetworkSpec, q: float) -> float:
    """<φ(z)²>, z ~ N(0, q): the compiled kernel map for a closed form, else the graded panel rule
    (:mod:`symfield.gauss.panels`; kinks and any scale of q)."""
    phi = spec.phi_fn
    if not phi.has_closed_form:
        return _panel_square(phi, 0, q)
    a = np.array([q])
    return float(kernel_map(phi).expect(a, a, a[:, None])[0, 0])


def _dphi2(phi: Nonlinearity, q: float) -> float:
    """<φ'(z)²>, z ~ N(0, q): the closed form <φ'φ'>(q, q, q) where the registry has one, else the panel
    rule; at q = 0 for φ' with kinks the limit q -> 0⁺, (φ'(0⁻)² + φ'(0⁺)²)/2."""
    if q == 0 and phi.kinks():
        return _dphi2_at_zero(phi.key, phi)
    closed = _dphi2_closed(phi.key, phi)
    if closed is not None:
        return float(closed(q))
    return _panel_square(phi, 1, q)


def _panel_square(phi: Nonlinearity, order: int, q: float) -> float:
    """<φ^(order)(z)²>, z ~ N(0, q), by the panel rule, checked against its error estimate."""
    value, err = panel_pair(phi, q, q, q, (order, order))
    if not err <= PANEL_RTOL * abs(value) + 1e-300:
        raise FixedPointError(f"<phi^({order})^2> of phi {phi.name} at q = {q:.6g} has a quadrature error "
                              f"estimate {float(err):.3g} above {PANEL_RTOL:g} of its value {float(value):.6g}")
    return float(value)


@lru_cache(maxsize=None)
def _dphi2_closed(key: str, phi: Nonlinearity):
    """q -> <φ'²>_q from the registry's closed form <φ'(u)φ'(v)> at c11 = c22 = c12 = q, or None."""
    qs = sp.Symbol("q", positive=True)
    expr = phi.dpair(qs, qs, qs)
    return None if expr is None else sp.lambdify(qs, sp.simplify(expr), "numpy")


@lru_cache(maxsize=None)
def _dphi2_at_zero(key: str, phi: Nonlinearity) -> float:
    """lim_{q -> 0⁺} <φ'²>_q = (φ'(0⁻)² + φ'(0⁺)²)/2 (each side of 0 carries half the Gaussian mass)."""
    d2 = phi.derivative() ** 2
    return float((sp.limit(d2, x, 0, "-") + sp.limit(d2, x, 0, "+")) / 2)


def _uniform(spec: NetworkSpec) -> tuple[float, float]:
    gs, sb = spec.g_values(), spec.sigma_b2_values()
    if spec.T > 1 and (np.ptp(gs) > 0 or np.ptp(sb[1:]) > 0):
        raise SpecError("the length-map fixed point needs uniform g and sigma_b2 over layers")
    return float(gs[0] if len(gs) else np.atleast_1d(spec.g)[0]), float(sb[-1])


def _check_q_in(q_in) -> float:
    return check_real("q_in", q_in, low=0)


@legacy_positional("q_in")
def length_map(spec: NetworkSpec, q1: float, steps: int, *, q_in: float = 0.0) -> np.ndarray:
    """The sequence q_1..q_steps of the single-input length map starting at q1 (entry k: q at 0-based step k)."""
    check_steps("steps", steps, bytes_per_step=40)  # at most resources.MAX_STEPS; list of floats + array
    check_spec(spec)
    g, s2 = _uniform(spec)
    q_in = _check_q_in(q_in)
    q1 = check_real("q1", q1, low=0)
    steps = check_positive_int("steps", steps)
    q = [float(q1)]
    for _ in range(steps - 1):
        q.append(s2 + q_in + g ** 2 * _phi2(spec, q[-1]))
    return np.array(q)


@dataclass(frozen=True)
class FixedPoint:
    q: float        #: fixed point q*
    slope: float    #: F'(q*) = g² d<φ²>/dq, slope of the length map
    chi1: float     #: g² <φ'²>_{q*}
    phase: str      #: "ordered" (χ1 < 1), "chaotic" (χ1 > 1) or "critical" (|χ1 - 1| < tol)
    spec: NetworkSpec | None = None  #: the declaration solved

    @property
    def C(self) -> float:
        """The fixed-point kernel of one input, q* (a scalar: the equal-time variance at the fixed point)."""
        return self.q


@legacy_positional("q_in", "q_max", "critical_tol")
def fixed_point(spec: NetworkSpec, *, q_in: float = 0.0, q_max: float = 1e8, critical_tol: float = 1e-3) -> FixedPoint:
    """Solve q* = σ² + q_in + g² <φ²>_{q*} (bracketing) and report χ1 and the phase."""
    check_spec(spec)
    g, s2 = _uniform(spec)
    q_in = _check_q_in(q_in)
    check_real("q_max", q_max, low=0, low_open=True)
    check_real("critical_tol", critical_tol, low=0)
    base = s2 + q_in

    def excess(q):
        return base + g ** 2 * _phi2(spec, q) - q

    lo = base
    if lo == 0 and excess(1e-9) > 0:  # q = 0 is a fixed point but an unstable one: look above it
        lo = 1e-9
    if excess(lo) <= 0:  # then q* = base (only possible if g²<φ²>_base = 0)
        q = base
    else:
        hi = max(2 * lo, 1.0)
        while excess(hi) > 0:
            hi *= 2
            if hi > q_max:
                raise FixedPointError(f"the length map has no finite fixed point below {q_max:g} "
                                      f"(g={g}, sigma_b2={s2}, phi={spec.phi_fn.name})")
        q = brentq(excess, lo, hi, xtol=1e-14, rtol=1e-14)
    chi1 = g ** 2 * _dphi2(spec.phi_fn, q)
    h = 1e-5 * max(q, 1e-3)
    if q >= h:
        slope = g ** 2 * (_phi2(spec, q + h) - _phi2(spec, q - h)) / (2 * h)
    else:  # q* = 0 (σ_b² = 0 and a stable zero fixed point): one-sided, second order, no negative variance
        slope = g ** 2 * (4 * _phi2(spec, q + h) - _phi2(spec, q + 2 * h) - 3 * _phi2(spec, q)) / (2 * h)
    phase = "critical" if abs(chi1 - 1) < critical_tol else ("ordered" if chi1 < 1 else "chaotic")
    return FixedPoint(q, slope, chi1, phase, spec)

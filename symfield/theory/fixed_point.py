"""Length map, its fixed point and the order/chaos slope χ1 (theory Sec. 6).

    length map:   q_{a+1} = σ² + q_in + g² <φ(z)²>_{z ~ N(0, q_a)}
    fixed point:  q* = σ² + q_in + g² <φ²>_{q*}
    slope:        F'(q*) = g² d<φ²>/dq = g² <φ'² + φφ''>_{q*}
    χ1 = g² <φ'(z)²>_{q*}:  χ1 < 1 ordered, χ1 > 1 chaotic.

q_in = g_in² |x|²/D when the input is injected at every step (0 for input='first').
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from ..gauss.quadrature import expect
from ..spec import NetworkSpec, SpecError
from .kernel_map import kernel_map

from ..api import check_positive_int, check_spec, legacy_positional  # noqa: E402
from ..errors import FixedPointError  # noqa: E402  (defined with the other errors)


def _phi2(spec: NetworkSpec, q: float) -> float:
    """<φ(z)²>, z ~ N(0, q), from the compiled kernel map."""
    a = np.array([q])
    return float(kernel_map(spec.phi_fn).expect(a, a, a[:, None])[0, 0])


def _uniform(spec: NetworkSpec) -> tuple[float, float]:
    gs, sb = spec.g_values(), spec.sigma_b2_values()
    if spec.T > 1 and (np.ptp(gs) > 0 or np.ptp(sb[1:]) > 0):
        raise SpecError("the length-map fixed point needs uniform g and sigma_b2 over layers")
    return float(gs[0] if len(gs) else np.atleast_1d(spec.g)[0]), float(sb[-1])


def _check_q_in(q_in) -> float:
    if not np.isfinite(q_in) or q_in < 0:
        raise SpecError(f"q_in must be finite and non-negative, got {q_in!r}")
    return float(q_in)


@legacy_positional("q_in")
def length_map(spec: NetworkSpec, q1: float, steps: int, *, q_in: float = 0.0) -> np.ndarray:
    """The sequence q_1..q_steps of the single-input length map starting at q1 (entry k: q at 0-based step k)."""
    check_spec(spec)
    g, s2 = _uniform(spec)
    q_in = _check_q_in(q_in)
    if not np.isfinite(q1) or q1 < 0:
        raise SpecError(f"q1 must be a finite non-negative variance, got {q1!r}")
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
    chi1 = g ** 2 * expect(spec.phi_fn, [[q]], orders=[1, 1], sites=[0, 0], n=120)  # <φ'(z)²>
    h = 1e-5 * max(q, 1e-3)
    slope = g ** 2 * (_phi2(spec, q + h) - _phi2(spec, q - h)) / (2 * h)
    phase = "critical" if abs(chi1 - 1) < critical_tol else ("ordered" if chi1 < 1 else "chaotic")
    return FixedPoint(q, slope, chi1, phase, spec)

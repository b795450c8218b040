"""Trust-region Newton maximisation with a truncated (Steihaug) conjugate-gradient step.

Maximises f(x) given f, ∇f and Hessian-vector products x ↦ ∇²f(x)·v.  The quadratic model
m(p) = f + gᵀp + ½ pᵀHp is maximised inside ‖p‖ <= Δ by Steihaug CG: directions of positive
curvature of f (negative curvature of -f) go straight to the boundary, so the method climbs
away from saddle points once it is displaced from them.  A step is accepted when the actual
gain over the predicted gain exceeds η; f = -inf (outside the domain) rejects a step.
Converged when ‖∇f‖ <= gtol, or when ‖∇f‖ <= ``floor``·gtol and no step improves it any more (trust
radius collapsed, 30 accepted steps without halving ‖∇f‖, or iterations exhausted: the round-off floor;
``at_roundoff`` is then set).  Failure raises
:class:`ConvergenceError` with the history.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import ConvergenceError

#: default ``floor``: a gradient up to this multiple of gtol is accepted where it stalls at round-off
ROUNDOFF_FLOOR = 1e3


@dataclass
class TrustRegionResult:
    x: np.ndarray
    fun: float
    grad_norm: float
    iterations: int
    history: list = field(default_factory=list)
    at_roundoff: bool = False


def _to_boundary(z, d, radius):
    """τ >= 0 with ‖z + τ d‖ = radius."""
    a, b, c = d @ d, 2 * (z @ d), z @ z - radius ** 2
    return (-b + np.sqrt(max(b * b - 4 * a * c, 0.0))) / (2 * a)


def steihaug(g, hessp, radius, tol, max_cg):
    """Approximately maximise gᵀp + ½ pᵀHp for ‖p‖ <= radius; returns (p, hits_boundary)."""
    z = np.zeros_like(g)
    r = -g.copy()  # gradient of -m at z
    d = g.copy()
    rr = r @ r
    if np.sqrt(rr) <= tol:
        return z, False
    for _ in range(max_cg):
        Hd = -hessp(d)  # Hessian of -f
        dHd = d @ Hd
        if dHd <= 0:  # non-positive curvature of -f: go to the boundary
            return z + _to_boundary(z, d, radius) * d, True
        alpha = rr / dHd
        z_new = z + alpha * d
        if np.linalg.norm(z_new) >= radius:
            return z + _to_boundary(z, d, radius) * d, True
        r = r + alpha * Hd
        rr_new = r @ r
        if np.sqrt(rr_new) <= tol:
            return z_new, False
        d = -r + (rr_new / rr) * d
        rr, z = rr_new, z_new
    return z, False


def maximize(fun, grad, hessp, x0, gtol=1e-10, maxiter=200, radius=1.0, max_radius=1e3, eta=0.1,
             max_cg=None, floor=ROUNDOFF_FLOOR, label="trust-region maximisation") -> TrustRegionResult:
    """Maximise ``fun`` from ``x0`` (``hessp(x, v)`` is ∇²f(x)·v); raises ConvergenceError on failure."""
    x = np.asarray(x0, dtype=float).copy()
    f = fun(x)
    if not np.isfinite(f):
        raise ConvergenceError(f"{label}: the starting point is outside the domain (f = {f})")
    g = grad(x)
    gn = float(np.linalg.norm(g))
    history = [gn]
    max_cg = max_cg or min(max(50, 2 * x.size), 1000)
    for it in range(maxiter):
        if gn <= gtol:
            return TrustRegionResult(x, f, gn, it, history)
        tol = max(min(0.5, np.sqrt(gn)) * gn, 0.5 * gtol)  # no CG accuracy below the target
        p, boundary = steihaug(g, lambda v: hessp(x, v), radius, tol, max_cg)
        Hp = hessp(x, p)
        predicted = g @ p + 0.5 * (p @ Hp)
        if not predicted > 0:
            radius *= 0.25
            if radius < 1e-14:
                break
            continue
        x_new = x + p
        f_new = fun(x_new)
        rho = (f_new - f) / predicted if np.isfinite(f_new) else -np.inf
        if rho < 0.25:
            radius = 0.25 * np.linalg.norm(p)
        elif rho > 0.75 and boundary:
            radius = min(2 * radius, max_radius)
        if rho > eta:
            x, f = x_new, f_new
            g = grad(x)
            gn = float(np.linalg.norm(g))
            history.append(gn)
            if len(history) > 30 and gn <= floor * gtol and min(history[-30:]) > 0.5 * min(history[:-30]):
                return TrustRegionResult(x, f, gn, it + 1, history, at_roundoff=True)  # stagnated at round-off
        if radius < 1e-14:
            break
    if gn <= gtol:
        return TrustRegionResult(x, f, gn, maxiter, history)
    if gn <= floor * gtol:  # radius collapsed or iterations exhausted at the round-off floor
        return TrustRegionResult(x, f, gn, len(history), history, at_roundoff=True)
    raise ConvergenceError(f"{label} did not converge to |grad| <= {gtol:g} in {maxiter} iterations", history)

"""tanh as a finite sum of erfs, for moments with a closed form at every covariance.

    tanh(x) ≈ φ̃(x) = Σ_k a_k erf(b_k x),   |tanh(x) - φ̃(x)| <= TANH_ERF_SUM_ERROR for all real x,

with K = 4 terms, a_k > 0 and Σ_k a_k = 1 (so φ̃ → ±1 like tanh), the minimax fit over x >= 0 (the
error equioscillates at 8 points, x ≈ 0.2 … 5.1; derivations/tanh_erf_sum.py refits it).  φ̃ is a
sum of c·erf(κx), so its Gaussian moments are the erf closed forms term by term
(:func:`symfield.gauss.moments.closed_form`): exact at every covariance, also singular ones, at a cost
independent of the variance, and positive semi-definite covariances of products of φ̃ come out PSD.

Derivative errors max_x |φ̃⁽ⁿ⁾ - tanh⁽ⁿ⁾| (mpmath, x in [0, 8]): n = 1: 7.5e-5, 2: 5.8e-4, 3: 4.6e-3,
4: 3.6e-2 (tanh'''' reaches 4.09); Gaussian expectations smooth them out as the variance grows.
"""
from __future__ import annotations

import sympy as sp

from .registry import Nonlinearity, x

#: weights a_k and scales b_k of tanh(x) ≈ Σ_k a_k erf(b_k x)
TANH_ERF_SUM_WEIGHTS = (0.06095067536911329, 0.3741890086590681, 0.4583612960446095, 0.10649901992720912)
TANH_ERF_SUM_SCALES = (0.45405395647124475, 0.6719317358701103, 0.9882161171295455, 1.446932172069043)
#: max_x |tanh(x) - Σ_k a_k erf(b_k x)| (tests/test_erf_sums.py checks it with mpmath on a dense grid)
TANH_ERF_SUM_ERROR = 9.44e-6


def erf_sum_expr(weights, scales) -> sp.Expr:
    """Σ_k a_k erf(b_k x) as a SymPy expression in :data:`symfield.gauss.registry.x`."""
    return sp.Add(*[sp.Float(a) * sp.erf(sp.Float(b) * x) for a, b in zip(weights, scales)])


def _tanh_form(expr: sp.Expr):
    """(c, κ) with expr = c·tanh(κx) (c, κ numbers, κ > 0 after using tanh's oddness), else None."""
    c, k = sp.Wild("c", exclude=[x]), sp.Wild("k", exclude=[x])
    match = expr.match(c * sp.tanh(k * x))
    if not match or not (match[c].is_number and match[k].is_number) or match[c] == 0 or match[k] == 0:
        return None
    c, k = float(match[c]), float(match[k])
    return (c, k) if k > 0 else (-c, -k)


def erf_sum_surrogate(phi: Nonlinearity) -> Nonlinearity | None:
    """φ̃ = c Σ_k a_k erf(κ b_k x) for φ = c·tanh(κx) (error |c|·TANH_ERF_SUM_ERROR everywhere), else None."""
    form = _tanh_form(phi.expr)
    if form is None:
        return None
    c, k = form
    expr = erf_sum_expr([c * a for a in TANH_ERF_SUM_WEIGHTS], [k * b for b in TANH_ERF_SUM_SCALES])
    return Nonlinearity(f"{phi.name}_erfsum", expr, None, dict(phi.params))

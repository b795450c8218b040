"""Symbolic two-point kernels from Price's theorem (theory Sec. 5.1).

    ∂<φ(u)φ(v)>/∂Σ12 = <φ'(u)φ'(v)>,     ∂<φ(u)φ(v)>/∂Σ11 = ½<φ''(u)φ(v)>,

so <φφ>(Σ12) = <φφ>(0) + ∫_0^Σ12 <φ'φ'> dΣ12', with <φφ>(0) = <φ>_Σ11 <φ>_Σ22 = 0 for odd φ.
For φ' = A exp(-β x²) (erf: A = 2κ/√π, β = κ²) the integrand is a Gaussian integral,

    <exp(-½ zᵀ M z)>_Σ = det(I + Σ M)^(-1/2),   M = 2β I,

which gives <φ'φ'> = (4κ²/π) / √((1+2κ²Σ11)(1+2κ²Σ22) − 4κ⁴Σ12²) and, integrated,
<φφ> = (2/π) asin(2κ²Σ12 / √((1+2κ²Σ11)(1+2κ²Σ22))).
"""
from __future__ import annotations

import sympy as sp

from .registry import x as _x

c11, c22 = sp.symbols("c11 c22", positive=True)
c12 = sp.Symbol("c12", real=True)
kappa = sp.Symbol("kappa", positive=True)


def gaussian_quadratic_expectation(sigma: sp.Matrix, m: sp.Matrix, c=c12) -> sp.Expr:
    """<exp(-½ zᵀ M z)> for z ~ N(0, Σ): det(I + Σ M)^(-1/2).

    The determinant is written as a polynomial in ``c`` with factored coefficients, e.g.
    (1+2κ²Σ11)(1+2κ²Σ22) − 4κ⁴Σ12², which keeps later simplification cheap.
    """
    n = sigma.shape[0]
    det = sp.Poly(sp.expand((sp.eye(n) + sigma * m).det()), c)
    det = sum(sp.factor(coef) * c ** k for (k,), coef in det.terms())
    return 1 / sp.sqrt(det)


def price_derivative(pair_expr: sp.Expr, entry: str = "c12", a=c11, b=c22, c=c12) -> sp.Expr:
    """Price's theorem read backwards: the Gaussian expectation a derivative of ``pair_expr`` equals.

    ``entry='c12'``: ∂/∂Σ12 = <φ'(u)φ'(v)>;  ``'c11'``: 2 ∂/∂Σ11 = <φ''(u)φ(v)>;
    ``'c22'``: 2 ∂/∂Σ22 = <φ(u)φ''(v)>.
    """
    if entry == "c12":
        return sp.diff(pair_expr, c)
    if entry in ("c11", "c22"):
        return 2 * sp.diff(pair_expr, a if entry == "c11" else b)
    raise ValueError(f"entry must be 'c11', 'c22' or 'c12', got {entry!r}")


def price_integrate(dpair_expr: sp.Expr, at_zero=0, c=c12) -> sp.Expr:
    """<φφ>(Σ12) = <φφ>(0) + ∫_0^Σ12 <φ'φ'>(t) dt."""
    t = sp.Dummy("t", real=True)
    integrand = _map_radicands(dpair_expr.subs(c, t), sp.expand)
    return _map_radicands(at_zero + sp.integrate(integrand, (t, 0, c), conds="none"), sp.factor)


def _map_radicands(expr: sp.Expr, fn) -> sp.Expr:
    """Apply ``fn`` to the base of every square root (expand before integrating, factor after)."""
    return expr.replace(lambda e: e.is_Pow and e.exp in (sp.S.Half, -sp.S.Half),
                        lambda e: sp.Pow(fn(e.base), e.exp))


def _gaussian_derivative(phi_expr: sp.Expr):
    """(A, β) with dφ/dx = A exp(-β x²), or ValueError if φ' is not of that form."""
    d = sp.diff(phi_expr, _x)
    A, beta = sp.Wild("A", exclude=[_x]), sp.Wild("beta", exclude=[_x])
    match = d.match(A * sp.exp(-beta * _x ** 2))
    if not match or match[A] == 0:
        raise ValueError(f"phi' = {d} is not of the form A*exp(-beta*x**2)")
    return match[A], match[beta]


def derive_erf_dpair(k=kappa, a=c11, b=c22, c=c12) -> sp.Expr:
    """<φ'(u)φ'(v)> for φ = erf(κx), from the Gaussian integral of φ'(u)φ'(v) = A² exp(-β(u²+v²))."""
    A, beta = _gaussian_derivative(sp.erf(k * _x))
    sigma = sp.Matrix([[a, c], [c, b]])
    return A ** 2 * gaussian_quadratic_expectation(sigma, 2 * beta * sp.eye(2), c)


def derive_erf_pair(k=kappa, a=c11, b=c22, c=c12) -> sp.Expr:
    """<erf(κu) erf(κv)> derived by integrating <φ'φ'> in Σ12 from 0 (erf is odd: value 0 there)."""
    return price_integrate(derive_erf_dpair(k, a, b, c), 0, c)

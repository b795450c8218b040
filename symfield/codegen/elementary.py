"""Branch-free, SIMD-vectorisable replacements for elementary functions in generated loops.

LLVM cannot vectorise calls into libm's ``asin``; a polynomial it can.  For |y| <= 1/2,

    asin(y) = y p(y²),   p(z) ≈ asin(√z)/√z on [0, 1/4]

with p of degree 12, the interpolant at 13 Chebyshev nodes computed in 34-digit mpmath (near-minimax;
its error is below double rounding, where the Taylor series needs 23 terms for the same).  For
1/2 < |x| <= 1 the identity asin(a) = π/2 - 2 asin(sqrt((1 - a)/2)) maps back to y <= 1/2.  Both
branches are computed and selected, so the loop body has no jumps.  The polynomial in z = y² is evaluated by Estrin's scheme (pairs of terms combined with z, z², z⁴, ...), whose
dependency chain is log2(13) deep instead of Horner's 13.  The helper alone is compiled with
fastmath 'contract' (fused multiply-adds); LLVM inlines it into the kernel loops with that flag.
"""
from __future__ import annotations

from functools import lru_cache
from math import comb

ASIN_DEGREE = 12


def asin_taylor(n: int) -> list[float]:
    """The first ``n`` Taylor coefficients of asin(y)/y in powers of z = y²: (2k)! / (4^k (k!)² (2k+1))."""
    return [comb(2 * k, k) / (4 ** k * (2 * k + 1)) for k in range(n)]


@lru_cache(maxsize=None)
def asin_coefficients(degree: int = ASIN_DEGREE) -> tuple[float, ...]:
    """Coefficients c_k of p(z) = Σ c_k z^k ≈ asin(√z)/√z on [0, 1/4]: the interpolant at degree + 1
    Chebyshev nodes, solved in 34-digit arithmetic, rounded to double."""
    import mpmath as mp

    n = degree + 1
    with mp.workdps(34):
        nodes = [(1 + mp.cos(mp.pi * (k + mp.mpf(1) / 2) / n)) / 8 for k in range(n)]
        A = mp.matrix([[z ** j for j in range(n)] for z in nodes])
        b = mp.matrix([mp.asin(mp.sqrt(z)) / mp.sqrt(z) for z in nodes])
        c = mp.lu_solve(A, b)
        return tuple(float(c[j]) for j in range(n))


def estrin(coeffs: list[float], var: str = "z") -> tuple[list[str], str]:
    """Lines computing the powers var^(2^k) and an expression for Σ_k coeffs[k] var^k (Estrin)."""
    terms = [repr(c) for c in coeffs]
    lines, power = [], var
    while len(terms) > 1:
        terms = [f"({terms[i]} + {power} * {terms[i + 1]})" if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
        if len(terms) > 1:
            lines.append(f"{power}_2 = {power} * {power}")
            power = f"{power}_2"
    return lines, terms[0]


def asin_source(name: str = "_sf_asin") -> str:
    powers, poly = estrin(list(asin_coefficients()))
    body = "".join(f"    {line}\n" for line in powers)
    return (f"@njit(cache=True, error_model='numpy', fastmath={{'contract'}})\n"
            f"def {name}(x):\n"
            f"    a = abs(x)\n"
            f"    big = a > 0.5\n"
            f"    y = math.sqrt(0.5 * (1.0 - a)) if big else a\n"
            f"    z = y * y\n"
            f"{body}"
            f"    p = y * {poly}\n"
            f"    r = (math.pi / 2 - 2.0 * p) if big else p\n"
            f"    return math.copysign(r, x)\n")


#: SymPy function name -> (replacement name, source factory)
REPLACEMENTS = {"asin": ("_sf_asin", asin_source)}


# ---------------------------------------------------------------------------- overflow-free exp forms
def stable_exp(expr, var):
    """``expr`` rewritten so that no exp in it overflows where the value itself is finite.

    For a rational function R(E) of E = exp(y), y = α·var + β linear (and any other factors), e.g.
    softplus log(1 + e^{βx})/β, sigmoid, SiLU and all their derivatives, the value is kept as R(E)
    where y <= 0 (E <= 1) and rewritten in F = exp(-y) = 1/E where y > 0: R(1/F) cancelled to a
    ratio of polynomials in F, and log(P(F)/(F^k Q(F))) = k y + log(P(F)/Q(F)).  log(1 + t) becomes
    log1p(t).  Both branches are the same analytic function, so Piecewise((R(E), y <= 0), (R̃(F), True))
    has no kink (its derivative is the Piecewise of the branch derivatives).  Expressions whose exp
    arguments are not integer multiples of one linear y, or that already hold a Piecewise, are
    returned unchanged (with log(1 + t) -> log1p(t) only)."""
    import sympy as sp

    expr = sp.sympify(expr)
    atoms = [e for e in expr.atoms(sp.exp) if e.has(var)]
    if not atoms or expr.has(sp.Piecewise) or not _nonlinear_in(expr, atoms):
        return _log1p(expr)
    args = [sp.expand(e.args[0]) for e in atoms]
    if any(sp.Poly(a, var).degree() != 1 if a.is_polynomial(var) else True for a in args):
        return _log1p(expr)
    y = min(args, key=lambda a: abs(float(sp.Poly(a, var).coeffs()[0])))
    ratios = [sp.nsimplify(sp.simplify(a / y)) for a in args]
    if not all(r.is_integer for r in ratios):
        return _log1p(expr)
    E, F = sp.Dummy("E", positive=True), sp.Dummy("F", positive=True)
    in_E = expr.replace(lambda e: isinstance(e, sp.exp) and e.has(var),
                        lambda e: E ** sp.nsimplify(sp.simplify(sp.expand(e.args[0]) / y)))
    if in_E.has(sp.exp(y)) or not in_E.has(E):
        return _log1p(expr)
    neg = _rational_logs(in_E, E, 0)
    pos = _rational_logs(in_E.subs(E, 1 / F), F, y)
    return sp.Piecewise((_log1p(neg.subs(E, sp.exp(y))), y <= 0), (_log1p(pos.subs(F, sp.exp(-y))), True))


def _nonlinear_in(expr, atoms) -> bool:
    """True if an exp atom sits in a denominator or a log (where overflow gives inf/inf or log(inf))."""
    import sympy as sp

    for node in sp.preorder_traversal(expr):
        if isinstance(node, sp.log) and any(node.args[0].has(a) for a in atoms):
            return True
        if isinstance(node, sp.Pow) and node.exp.is_negative and any(node.base.has(a) for a in atoms):
            return True
    return False


def _rational_logs(expr, E, y):
    """Cancel the rational parts in E; log(P(E)/(E^k Q(E))) -> log(P/Q) + k·y (E = exp(-y), y the exponent
    of the positive branch; y = 0 on the other, where no power of E is split off)."""
    import sympy as sp

    def fix_log(node):
        arg = sp.cancel(sp.together(node.args[0]))
        num, den = sp.fraction(arg)
        shift = 0
        if y != 0:
            low_num = min(m[0] for m in sp.Poly(num, E).monoms())
            low_den = min(m[0] for m in sp.Poly(den, E).monoms())
            num, den = sp.cancel(num / E ** low_num), sp.cancel(den / E ** low_den)
            shift = (low_den - low_num) * y          # log(E^(low_num - low_den)) = -(low_num - low_den) y
        return sp.log(sp.expand(num) / sp.expand(den)) + shift if den != 1 else sp.log(sp.expand(num)) + shift

    expr = expr.replace(lambda e: isinstance(e, sp.log) and e.has(E), fix_log)
    terms = sp.Add.make_args(sp.expand(expr, log=False, power_exp=False))
    logs = sp.Add(*[t for t in terms if t.has(sp.log)])
    rest = sp.Add(*[t for t in terms if not t.has(sp.log)])
    return logs + sp.cancel(sp.together(rest))


def _log1p(expr):
    """log(1 + t) -> log1p(t) (accurate for small t)."""
    import sympy as sp
    from sympy.codegen.cfunctions import log1p

    def repl(node):
        a = node.args[0]
        if a.is_Add and 1 in a.args:
            return log1p(a - 1)
        return node
    return expr.replace(lambda e: isinstance(e, sp.log), repl)

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

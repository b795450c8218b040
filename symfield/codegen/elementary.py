"""Branch-free, SIMD-vectorisable replacements for elementary functions in generated loops.

LLVM cannot vectorise calls into libm's ``asin``; a polynomial it can.  For |x| <= 1/2,

    asin(y) = Σ_k (2k)! / (4^k (k!)² (2k+1)) y^(2k+1)     (k = 0..22: remainder < 3e-17 at y = 1/2)

and for 1/2 < |x| <= 1 the identity asin(a) = π/2 - 2 asin(sqrt((1 - a)/2)) maps back to
y <= 1/2.  Both branches are computed and selected, so the loop body has no jumps.  The polynomial
in z = y² is evaluated by Estrin's scheme (pairs of terms combined with z, z², z⁴, ...), whose
dependency chain is log2(23) deep instead of Horner's 23.
"""
from __future__ import annotations

from math import comb

ASIN_TERMS = 23


def asin_coefficients(n: int = ASIN_TERMS) -> list[float]:
    """Taylor coefficients of asin(y)/y in powers of y² (exact rationals rounded to double)."""
    return [comb(2 * k, k) / (4 ** k * (2 * k + 1)) for k in range(n)]


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
    powers, poly = estrin(asin_coefficients())
    body = "".join(f"    {line}\n" for line in powers)
    return (f"@njit(cache=True, error_model='numpy', inline='always')\n"
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

"""Branch-free, SIMD-vectorisable replacements for elementary functions in generated loops.

LLVM cannot vectorise calls into libm's ``asin``; a polynomial it can.  For |x| <= 1/2,

    asin(y) = Σ_k (2k)! / (4^k (k!)² (2k+1)) y^(2k+1)     (k = 0..22: remainder < 3e-17 at y = 1/2)

and for 1/2 < |x| <= 1 the identity asin(a) = π/2 - 2 asin(sqrt((1 - a)/2)) maps back to
y <= 1/2.  Both branches are computed and selected, so the loop body has no jumps.
"""
from __future__ import annotations

from math import comb

ASIN_TERMS = 23


def asin_coefficients(n: int = ASIN_TERMS) -> list[float]:
    """Taylor coefficients of asin(y)/y in powers of y² (exact rationals rounded to double)."""
    return [comb(2 * k, k) / (4 ** k * (2 * k + 1)) for k in range(n)]


def asin_source(name: str = "_sf_asin") -> str:
    coeffs = asin_coefficients()
    horner = repr(coeffs[-1])
    for c in reversed(coeffs[:-1]):
        horner = f"{c!r} + z * ({horner})"
    return (f"@njit(cache=True, error_model='numpy', inline='always')\n"
            f"def {name}(x):\n"
            f"    a = abs(x)\n"
            f"    big = a > 0.5\n"
            f"    y = math.sqrt(0.5 * (1.0 - a)) if big else a\n"
            f"    z = y * y\n"
            f"    p = y * ({horner})\n"
            f"    r = (math.pi / 2 - 2.0 * p) if big else p\n"
            f"    return math.copysign(r, x)\n")


#: SymPy function name -> (replacement name, source factory)
REPLACEMENTS = {"asin": ("_sf_asin", asin_source)}

"""Vectorisable elementary functions and loop hoisting used by generated kernels."""
import math

import mpmath as mp
import numpy as np
import sympy as sp

from symfield.codegen.elementary import asin_coefficients, asin_source, asin_taylor, estrin
from symfield.codegen.hoist import separate


def _compile(src):
    ns = {"math": math}
    exec("\n".join(line for line in src.splitlines() if not line.startswith("@njit")), ns)
    return ns


def test_polynomial_asin_against_mpmath():
    f = _compile(asin_source())["_sf_asin"]
    xs = np.concatenate([np.linspace(-1, 1, 4001), [0.5, np.nextafter(0.5, 1), -0.5, 1e-300, 0.0, -1e-12]])
    err = max(abs(f(float(v)) - float(mp.asin(mp.mpf(float(v))))) for v in xs)
    assert err < 5e-16


def test_asin_taylor_is_the_series():
    x = sp.Symbol("x")
    series = sp.series(sp.asin(x), x, 0, 2 * 12 + 1).removeO()
    for k, c in enumerate(asin_taylor(12)):
        assert abs(float(series.coeff(x, 2 * k + 1)) - c) < 1e-17


def test_fitted_polynomial_starts_like_the_series_and_beats_its_truncation():
    """The interpolant agrees with the Taylor coefficients where they dominate, and on [0, 1/2] is more
    accurate than the Taylor series truncated to the same number of terms (the reason to fit)."""
    fit = asin_coefficients()
    taylor = asin_taylor(len(fit))
    assert abs(fit[0] - 1) < 1e-15 and abs(fit[1] - taylor[1]) < 1e-12
    ys = np.linspace(1e-3, 0.5, 301)
    exact = np.array([float(mp.asin(mp.mpf(float(y)))) for y in ys])
    err = [np.max(np.abs(ys * np.polyval(c[::-1], ys * ys) - exact) / exact) for c in (fit, taylor)]
    assert err[0] < 1e-15 < err[1]


def test_estrin_equals_the_polynomial():
    coeffs = [0.3, -1.2, 0.7, 2.0, -0.1, 0.05, 1.5]
    lines, expr = estrin(coeffs)
    ns = {"z": 0.37}
    for line in lines:
        exec(line, ns)
    assert abs(eval(expr, ns) - np.polyval(coeffs[::-1], 0.37)) < 1e-15


def test_hoisting_splits_row_and_column_factors():
    c11, c22, c12 = sp.symbols("c11 c22 c12", real=True)
    e = sp.asin(2 * c12 / sp.sqrt((1 + 2 * c11) * (1 + 2 * c22))) + c11 * c22
    out, rows, cols = separate(e, c11, c22)
    assert len(rows) == 1 and len(cols) == 1
    back = out.subs({rows[0][0]: rows[0][1], cols[0][0]: cols[0][1]})
    vals = {c11: 0.7, c22: 1.3, c12: 0.4}
    assert abs(float((back - e).subs(vals))) < 1e-14

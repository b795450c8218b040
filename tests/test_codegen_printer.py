"""The one printer: printed-and-compiled (Numba, through the module builder) equals mpmath at random points."""
import zlib

import mpmath as mp
import numpy as np
import pytest
import sympy as sp
from sympy.printing.codeprinter import PrintMethodNotImplementedError

from symfield import codegen

x, y, z = sp.symbols("x y z", real=True)
c11, c22, c12 = sp.symbols("c11 c22 c12", positive=True)

#: name -> (expression in x, y, z, sampler of (x, y, z)); every rule of the printer and SymPy's defaults
CASES = {
    "asin": (sp.asin(x * y / 2), "unit"),
    "asin_nested": (sp.asin(sp.asin(x) / 2) + sp.asin(y), "unit"),
    "heaviside": (sp.Heaviside(x) * y + sp.Heaviside(y - z, 1), "wide"),
    "max_min": (sp.Max(x, y, z) - sp.Min(x, 2 * y, z, 0), "wide"),
    "erf": (sp.erf(x) * sp.exp(-y ** 2) + sp.erfc(z), "wide"),
    "sqrt": (sp.sqrt(1 + x ** 2) / sp.sqrt(2 + y ** 2) + (1 + z ** 2) ** sp.Rational(3, 2), "wide"),
    "abs_sign": (sp.Abs(x) * sp.sign(y) + z, "wide"),
    "piecewise": (sp.Piecewise((x ** 2, x > y), (-z, True)), "wide"),
    "elementary": (sp.tanh(x) + sp.log(1 + y ** 2) + sp.atan(z) + sp.cosh(x / 3) + sp.pi * sp.E, "wide"),
    "erf_kernel": (2 / sp.pi * sp.asin(2 * c12 / sp.sqrt((1 + 2 * c11) * (1 + 2 * c22))), "cov"),
}


def _points(kind, rng, n=200):
    if kind == "unit":
        return rng.uniform(-1, 1, (n, 3))
    if kind == "cov":  # c11, c22 > 0, |c12| <= sqrt(c11 c22)
        a, b = rng.uniform(0.01, 5, n), rng.uniform(0.01, 5, n)
        return np.stack([a, b, rng.uniform(-1, 1, n) * np.sqrt(a * b)], axis=1)
    return rng.uniform(-3, 3, (n, 3))


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    mp_cache = pytest.MonkeyPatch()
    mp_cache.setenv("SYMFIELD_CACHE", str(tmp_path_factory.mktemp("cache")))
    helpers: set = set()
    templates = []
    for name, (expr, kind) in CASES.items():
        args = (c11, c22, c12) if kind == "cov" else (x, y, z)
        templates.append((name, codegen.scalar_source(name, args, expr, helpers=helpers)))
        templates.append((f"{name}_libm", codegen.scalar_source(f"{name}_libm", args, expr, vectorise=False)))
    exprs = [expr for expr, kind in CASES.values() if kind != "cov"]
    templates.append(("vector", codegen.vector_source("vector", [("a", [x, y]), ("b", [z])], exprs)))
    templates.insert(0, ("helpers", codegen.helper_source(helpers)))
    mod = codegen.build_module("printer_test", "symfield.tests.printer", "printer rules", templates)
    yield mod, exprs
    mp_cache.undo()


def _reference(expr, args, points):
    f = sp.lambdify(args, expr, modules="mpmath")
    with mp.workdps(30):
        return np.array([float(f(*[mp.mpf(float(v)) for v in p])) for p in points])


@pytest.mark.parametrize("name", sorted(CASES))
def test_printed_function_equals_mpmath(compiled, name):
    mod, _ = compiled
    expr, kind = CASES[name]
    args = (c11, c22, c12) if kind == "cov" else (x, y, z)
    pts = _points(kind, np.random.default_rng(zlib.crc32(name.encode())))
    for fn in (getattr(mod, name), getattr(mod, f"{name}_libm")):
        got = np.array([fn(*p) for p in pts])
        ref = _reference(expr, args, pts)
        np.testing.assert_allclose(got, ref, rtol=2e-14, atol=2e-15)


def test_vector_function_equals_mpmath(compiled):
    mod, exprs = compiled
    pts = np.random.default_rng(3).uniform(-0.9, 0.9, (50, 3))
    ref = np.stack([_reference(e, (x, y, z), pts) for e in exprs], axis=1)
    out = np.empty(len(exprs))
    for p, r in zip(pts, ref):
        mod.vector(p[:2].copy(), p[2:].copy(), out)
        np.testing.assert_allclose(out, r, rtol=2e-14, atol=2e-15)


def test_heaviside_at_zero_and_explicit_value(compiled):
    """H(0) = 0 by the printer's convention (SymPy's default would be 1/2); an explicit H0 is honoured."""
    mod, _ = compiled
    assert mod.heaviside(0.0, 2.0, 1.0) == 1.0      # H(0)·2 = 0 (not 1), H(1 - 0) = 1
    assert mod.heaviside(0.0, 1.0, 1.0) == 1.0      # H(0)·1 = 0, H(0; H0 = 1) = 1
    assert mod.heaviside(1e-300, 1.0, 2.0) == 1.0   # H(1e-300)·1 = 1, H(-1; 1) = 0
    assert mod.heaviside(-0.0, 5.0, 6.0) == 0.0
    printed = codegen.Printer().doprint(sp.Heaviside(x, sp.Rational(1, 3)))
    assert eval(printed, {"x": 0.0}) == 1 / 3 and eval(printed, {"x": -1.0}) == 0.0


def test_max_and_asin_rules_print_as_documented():
    pr = codegen.Printer()
    assert pr.doprint(sp.Max(x, y, z)) == "max(max(x, y), z)"
    assert pr.doprint(sp.asin(x)) == "_sf_asin(x)" and pr.helpers == {"asin"}
    assert codegen.Printer(vectorise=False).doprint(sp.asin(x)) == "math.asin(x)"


def test_distributions_are_not_printable():
    with pytest.raises(PrintMethodNotImplementedError):
        codegen.scalar_source("f", [x], sp.DiracDelta(x))
    with pytest.raises(PrintMethodNotImplementedError):
        codegen.vector_source("f", [("a", [x])], [sp.DiracDelta(x)])

"""The one printer: SymPy expressions as Numba-compilable Python source.

Rules on top of SymPy's ``PythonCodePrinter`` (which already prints erf, erfc, sqrt, exp, log, tanh,
gamma, Abs, sign, Piecewise, pi, E as ``math``/builtin calls):

- ``asin``: the vectorisable polynomial helper of :mod:`symfield.codegen.elementary` (``vectorise=True``)
  or ``math.asin``;
- ``Heaviside(x)``: ``1.0 if x > 0 else 0.0``, i.e. H(0) = 0 (the derivative of ReLU = Max(0, x) taken
  from the left), not SymPy's default 1/2; an explicit ``Heaviside(x, H0)`` with H0 != 1/2 honours H0;
- ``Max``/``Min``: nested two-argument ``max``/``min`` calls;
- ``DiracDelta`` and anything else unknown: ``PrintMethodNotImplementedError`` (strict printing).

Two function shapes: :func:`scalar_source` (``def f(*args): return expr``) and :func:`vector_source`
(``def f(in0, in1, out)`` filling ``out`` with a list of expressions).  Both hoist common subexpressions.
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from .elementary import REPLACEMENTS

HEADER = "import math\nfrom numba import njit, prange\n"
_SETTINGS = {"fully_qualified_modules": True, "standard": "python3"}


class Printer(PythonCodePrinter):
    """``math``-module printer with the rules listed in the module docstring.

    Functions listed in :data:`symfield.codegen.elementary.REPLACEMENTS` are printed as calls to
    vectorisable helpers when ``vectorise`` is set; their names are collected in ``self.helpers``.
    """

    def __init__(self, settings=None, vectorise=True):
        super().__init__(dict(_SETTINGS, **(settings or {})))
        self.vectorise = vectorise
        self.helpers: set[str] = set()

    def _print_asin(self, expr):
        if self.vectorise:
            self.helpers.add("asin")
            return f"{REPLACEMENTS['asin'][0]}({self._print(expr.args[0])})"
        return f"math.asin({self._print(expr.args[0])})"

    def _print_Heaviside(self, expr):
        arg = self._print(expr.args[0])
        if len(expr.pargs) == 1:  # no H0, or SymPy's default 1/2 (indistinguishable): H(0) = 0
            return f"(1.0 if ({arg}) > 0 else 0.0)"
        at0 = repr(float(expr.args[1]))
        return f"(1.0 if ({arg}) > 0 else ({at0} if ({arg}) == 0 else 0.0))"

    def _fold(self, name, expr):
        """Nested two-argument calls: Max(a, b, c) -> max(max(a, b), c)."""
        args = [self._print(a) for a in expr.args]
        out = args[0]
        for a in args[1:]:
            out = f"{name}({out}, {a})"
        return out

    def _print_Max(self, expr):
        return self._fold("max", expr)

    def _print_Min(self, expr):
        return self._fold("min", expr)


def _collect(printer: Printer, helpers: set | None, lines: list[str]) -> str:
    """Function text; helpers are prepended (``helpers is None``) or added to the caller's set."""
    if helpers is None and printer.helpers:
        return helper_source(printer.helpers) + "\n\n" + "\n".join(lines) + "\n"
    if helpers is not None:
        helpers.update(printer.helpers)
    return "\n".join(lines) + "\n"


def scalar_source(name: str, args, expr, cse: bool = True, inline: bool = False, vectorise: bool = True,
                  helpers: set | None = None) -> str:
    """Source of ``def name(*args): return expr`` with common subexpressions hoisted.

    The module must start with :data:`HEADER`; the helper functions whose names are added to
    ``helpers`` must be included with :func:`helper_source` (or pass ``vectorise=False``).
    """
    printer = Printer(vectorise=vectorise)
    deco = ("@njit(cache=True, error_model='numpy', inline='always')" if inline
            else "@njit(cache=True, error_model='numpy')")
    lines = [deco, f"def {name}({', '.join(str(a) for a in args)}):"]
    if cse:
        subs, (reduced,) = sp.cse([sp.sympify(expr)], symbols=sp.numbered_symbols("_x"))
    else:
        subs, reduced = [], sp.sympify(expr)
    for sym, sub in subs:
        lines.append(f"    {sym} = {printer.doprint(sub)}")
    lines.append(f"    return {printer.doprint(reduced)}")
    return _collect(printer, helpers, lines)


def vector_source(name: str, inputs: list[tuple[str, list[sp.Symbol]]], exprs: list[sp.Expr],
                  vectorise: bool = False, helpers: set | None = None) -> str:
    """Source of an njit function evaluating ``exprs`` into ``out``::

        @njit(cache=True, error_model='numpy')
        def name(in0, in1, out):       # in0, in1: 1-D float arrays; out: 1-D, len(exprs)
            a = in0[0]; b = in0[1]; ...
            _x0 = ...                  # common subexpressions shared by all outputs
            out[0] = ...; out[1] = ...
            return out

    ``inputs``: (argument name, the symbols it carries in order).  asin prints as ``math.asin``
    unless ``vectorise`` (then as for :func:`scalar_source`).
    """
    printer = Printer(vectorise=vectorise)
    args = [arg for arg, _ in inputs]
    lines = ["@njit(cache=True, error_model='numpy')", f"def {name}({', '.join(args)}, out):"]
    for arg, syms in inputs:
        for k, s in enumerate(syms):
            lines.append(f"    {s} = {arg}[{k}]")
    subs, reduced = sp.cse(list(exprs), symbols=sp.numbered_symbols("_x"), optimizations="basic")
    for sym, sub in subs:
        lines.append(f"    {sym} = {printer.doprint(sub)}")
    for k, e in enumerate(reduced):
        lines.append(f"    out[{k}] = {printer.doprint(e)}")
    lines.append("    return out")
    return _collect(printer, helpers, lines)


def helper_source(names) -> str:
    """Source of the vectorisable helpers ``names`` (keys of REPLACEMENTS)."""
    return "\n\n".join(REPLACEMENTS[n][1]() for n in sorted(names))

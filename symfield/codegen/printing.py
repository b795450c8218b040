"""Print SymPy scalar expressions as Numba-compilable Python source."""
from __future__ import annotations

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter

from .elementary import REPLACEMENTS

HEADER = "import math\nfrom numba import njit, prange\n"


class _Printer(PythonCodePrinter):
    """``math``-module printer (Numba supports ``math.erf``, ``math.asin``, ...).

    Functions listed in :data:`symfield.codegen.elementary.REPLACEMENTS` are printed as calls to
    vectorisable helpers; their names are collected in ``self.helpers``.
    """

    def __init__(self, settings=None, vectorise=True):
        super().__init__(settings)
        self.vectorise = vectorise
        self.helpers: set[str] = set()

    def _print_asin(self, expr):
        if self.vectorise:
            self.helpers.add("asin")
            return f"{REPLACEMENTS['asin'][0]}({self._print(expr.args[0])})"
        return f"math.asin({self._print(expr.args[0])})"

    def _print_Heaviside(self, expr):
        return f"(1.0 if ({self._print(expr.args[0])}) > 0 else 0.0)"

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


def scalar_source(name: str, args, expr, cse: bool = True, inline: bool = False, vectorise: bool = True,
                  helpers: set | None = None) -> str:
    """Source of ``def name(*args): return expr`` with common subexpressions hoisted.

    The module must start with :data:`HEADER`; the helper functions whose names are added to
    ``helpers`` must be included with :func:`helper_source` (or pass ``vectorise=False``).
    """
    printer = _Printer({"fully_qualified_modules": True, "standard": "python3"}, vectorise=vectorise)
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
    if helpers is None and printer.helpers:
        return helper_source(printer.helpers) + "\n\n" + "\n".join(lines) + "\n"
    if helpers is not None:
        helpers.update(printer.helpers)
    return "\n".join(lines) + "\n"


def helper_source(names) -> str:
    """Source of the vectorisable helpers ``names`` (keys of REPLACEMENTS)."""
    return "\n\n".join(REPLACEMENTS[n][1]() for n in sorted(names))

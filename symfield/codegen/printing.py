"""Print SymPy scalar expressions as Numba-compilable Python source."""
from __future__ import annotations

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter


class _Printer(PythonCodePrinter):
    """``math``-module printer (Numba supports ``math.erf``, ``math.asin``, ...)."""

    def _print_Heaviside(self, expr):
        return f"(1.0 if ({self._print(expr.args[0])}) > 0 else 0.0)"

    def _print_Max(self, expr):
        args = [self._print(a) for a in expr.args]
        out = args[0]
        for a in args[1:]:
            out = f"max({out}, {a})"
        return out

    def _print_Min(self, expr):
        args = [self._print(a) for a in expr.args]
        out = args[0]
        for a in args[1:]:
            out = f"min({out}, {a})"
        return out


def scalar_source(name: str, args, expr, cse: bool = True, decorator: str = "@njit(cache=True, fastmath=False)") -> str:
    """Source of ``def name(*args): return expr`` with common subexpressions hoisted.

    The module that includes it must ``import math`` and ``from numba import njit``.
    """
    printer = _Printer({"fully_qualified_modules": True, "standard": "python3"})
    lines = [decorator, f"def {name}({', '.join(str(a) for a in args)}):"]
    if cse:
        subs, (reduced,) = sp.cse([sp.sympify(expr)], symbols=sp.numbered_symbols("_x"))
    else:
        subs, reduced = [], sp.sympify(expr)
    for sym, sub in subs:
        lines.append(f"    {sym} = {printer.doprint(sub)}")
    lines.append(f"    return {printer.doprint(reduced)}")
    return "\n".join(lines) + "\n"

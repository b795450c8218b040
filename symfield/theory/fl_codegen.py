"""Print a list of SymPy expressions as one Numba function filling an output vector.

``vector_source(name, inputs, exprs)`` emits

    @njit(cache=True)
    def name(in0, in1, out):       # in0, in1: 1-D float arrays; out: 1-D, len(exprs)
        a = in0[0]; b = in0[1]; ...
        _x0 = ...                  # common subexpressions shared by all outputs
        out[0] = ...; out[1] = ...

The module (``codegen.HEADER`` + sources) goes through :func:`symfield.codegen.load_module`.
"""
from __future__ import annotations

import sympy as sp
from sympy.printing.pycode import PythonCodePrinter


def _printer():
    return PythonCodePrinter({"fully_qualified_modules": True, "standard": "python3"})


def vector_source(name: str, inputs: list[tuple[str, list[sp.Symbol]]], exprs: list[sp.Expr]) -> str:
    """Source of an njit function evaluating ``exprs`` into ``out`` (see the module docstring)."""
    pr = _printer()
    args = [arg for arg, _ in inputs]
    lines = ["@njit(cache=True, error_model='numpy')", f"def {name}({', '.join(args)}, out):"]
    for arg, syms in inputs:
        for k, s in enumerate(syms):
            lines.append(f"    {s} = {arg}[{k}]")
    subs, reduced = sp.cse(list(exprs), symbols=sp.numbered_symbols("_x"), optimizations="basic")
    for sym, sub in subs:
        lines.append(f"    {sym} = {pr.doprint(sub)}")
    for k, e in enumerate(reduced):
        lines.append(f"    out[{k}] = {pr.doprint(e)}")
    lines.append("    return out")
    return "\n".join(lines) + "\n"

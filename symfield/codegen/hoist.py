"""Loop-invariant hoisting for block loops: subexpressions of one row or one column variable.

A kernel f(c11, c22, c12) evaluated over a block (rows i carry c11, columns j carry c22) often
contains factors of c11 alone or c22 alone, e.g. erf's 1/sqrt(1 + 2κ²c11).  ``separate`` replaces
each maximal such subexpression by a symbol, so the generated loop computes it once per row or
column instead of once per entry.  Variances are positive, which lets SymPy split
sqrt((1 + 2c11)(1 + 2c22)) into its row and column factors.
"""
from __future__ import annotations

import sympy as sp


def separate(expr: sp.Expr, row: sp.Symbol, col: sp.Symbol):
    """Return (expr', row_defs, col_defs); defs are lists of (symbol, expression in row / col)."""
    rp, cp = sp.Symbol(row.name, positive=True), sp.Symbol(col.name, positive=True)
    e = sp.sympify(expr).subs({row: rp, col: cp})
    defs = {rp: {}, cp: {}}

    def walk(node):
        if node.is_Atom:
            return node
        free = node.free_symbols
        for var, prefix in ((rp, "r"), (cp, "q")):
            if free == {var}:
                table = defs[var]
                if node not in table:
                    table[node] = sp.Symbol(f"{prefix}{len(table)}", real=True)
                return table[node]
        return node.func(*[walk(a) for a in node.args])

    out = walk(e).subs({rp: row, cp: col})
    row_defs = [(s, x.subs(rp, row)) for x, s in defs[rp].items()]
    col_defs = [(s, x.subs(cp, col)) for x, s in defs[cp].items()]
    return out, row_defs, col_defs

"""The matrix-calculus rules of the action layer (registered once), each verified numerically and symbolically.

SymPy's MatrixSymbol calculus is not used (it returns d ln det C/dC = 0 in SymPy 1.14).  Each
rule states a gradient with respect to a symmetric matrix X in the ordered convention
d f = tr(G dX) = ⟨G, dX⟩_F, and carries

* ``f(X, ctx)`` and ``grad(X, ctx)`` in NumPy (checked by central finite differences), and
* ``f_sym(X, ctx)`` and ``grad_sym(X, ctx)`` on explicit SymPy matrices (checked against
  ``sympy.diff`` of the components; the unordered-pair derivative of an off-diagonal
  entry is twice the ordered gradient entry).

The operators are those the μP action's :class:`~symfield.theory.feature_learning.action.LinearAction` uses
(:mod:`symfield.theory.feature_learning.terms`), so the verified code is the code that runs.
``verify_numeric`` and ``verify_symbolic`` return the largest error; the tests call them for every
registered rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import sympy as sp

from ..theory.feature_learning.terms import (embed, embed_sym, propagate, propagate_adjoint, propagator, restrict,
                                            shift, shift_sym, unshift, unshift_sym)


@dataclass(frozen=True)
class Rule:
    name: str
    statement: str
    f: Callable
    grad: Callable
    f_sym: Callable
    grad_sym: Callable


RULES: dict[str, Rule] = {}


def register(rule: Rule) -> Rule:
    RULES[rule.name] = rule
    return rule


register(Rule("logdet", "d ln det X = tr(X⁻¹ dX)",
              lambda X, c: np.linalg.slogdet(X)[1], lambda X, c: np.linalg.inv(X),
              lambda X, c: sp.log(X.det()), lambda X, c: X.inv()))
register(Rule("trace_inverse_product", "d tr(X⁻¹ Y) = −tr(X⁻¹ Y X⁻¹ dX)",
              lambda X, c: np.trace(np.linalg.solve(X, c["Y"])),
              lambda X, c: -np.linalg.inv(X) @ c["Y"] @ np.linalg.inv(X),
              lambda X, c: (X.inv() * c["Y"]).trace(), lambda X, c: -X.inv() * c["Y"] * X.inv()))
register(Rule("trace_product", "d tr(Y X) = tr(Y dX)",
              lambda X, c: np.trace(c["Y"] @ X), lambda X, c: c["Y"],
              lambda X, c: (c["Y"] * X).trace(), lambda X, c: c["Y"]))
register(Rule("quadratic_inverse", "d yᵀX⁻¹y = −tr(X⁻¹y yᵀX⁻¹ dX)",
              lambda X, c: c["y"] @ np.linalg.solve(X, c["y"]),
              lambda X, c: -np.outer(np.linalg.solve(X, c["y"]), np.linalg.solve(X, c["y"])),
              lambda X, c: (c["y"].T * X.inv() * c["y"])[0, 0],
              lambda X, c: -(X.inv() * c["y"]) * (X.inv() * c["y"]).T))
register(Rule("hadamard_mask", "⟨Γ, M ∘ dX⟩ = ⟨M ∘ Γ, dX⟩: d f(M ∘ X) = tr((M ∘ f'(M ∘ X)) dX)",
              lambda X, c: np.trace(c["Y"] @ (c["M"] * X)), lambda X, c: c["M"] * c["Y"],
              lambda X, c: (c["Y"] * X.multiply_elementwise(c["M"])).trace(),
              lambda X, c: c["Y"].multiply_elementwise(c["M"])))
register(Rule("backshift", "⟨Γ, B dX Bᵀ⟩ = ⟨Bᵀ Γ B, dX⟩",
              lambda X, c: np.trace(c["Y"] @ shift(X, c["P"])), lambda X, c: unshift(c["Y"], c["P"]),
              lambda X, c: (c["Y"] * shift_sym(X, c["P"])).trace(), lambda X, c: unshift_sym(c["Y"], c["P"])))
register(Rule("restriction", "⟨Γ, (dX)_SS⟩ = ⟨E_S Γ, dX⟩",
              lambda X, c: np.trace(c["Ys"] @ restrict(X, c["S"])),
              lambda X, c: embed(c["Ys"], c["S"], X.shape[0]),
              lambda X, c: (c["Ys_sym"] * X.extract(list(c["S"]), list(c["S"]))).trace(),
              lambda X, c: embed_sym(c["Ys_sym"], c["S"], X.shape[0])))
register(Rule("propagator", "⟨Γ, A dX Aᵀ⟩ = ⟨Aᵀ Γ A, dX⟩ (skip propagator A_ts = a_{s+1}···a_t)",
              lambda X, c: np.trace(c["Y"] @ propagate(X, c["A"])), lambda X, c: propagate_adjoint(c["Y"], c["A"]),
              lambda X, c: (c["Y"] * c["A_sym"] * X * c["A_sym"].T).trace(),
              lambda X, c: c["A_sym"].T * c["Y"] * c["A_sym"]))


def _context(n: int, rng, symbolic: bool = False) -> dict:
    P = 1 if n < 4 else 2
    Y = rng.standard_normal((n, n))
    Y = Y + Y.T
    M = (rng.random((n, n)) < 0.6).astype(float)
    M = np.triu(M) + np.triu(M, 1).T
    S = np.sort(rng.choice(n, size=max(1, n - 1), replace=False))
    Ys = Y[np.ix_(S, S)]
    Pa = P if n % P == 0 else 1
    A = propagator(rng.uniform(-1.0, 1.0, n // Pa), Pa)
    ctx = {"Y": Y, "M": M, "P": P, "y": rng.standard_normal(n), "S": S, "Ys": Ys, "A": A}
    if symbolic:
        ctx = dict(ctx, Y=sp.Matrix(Y), M=sp.Matrix(M), y=sp.Matrix(ctx["y"]), Ys_sym=sp.Matrix(Ys),
                   A_sym=sp.Matrix(A))
    return ctx


def _random_spd(n, rng):
    A = rng.standard_normal((n, n))
    return A @ A.T / n + np.eye(n)


def verify_numeric(rule: Rule, n: int = 5, seed: int = 0, h: float = 1e-6) -> float:
    """Largest relative error of ⟨grad, D⟩ against a central difference along random symmetric D."""
    rng = np.random.default_rng(seed)
    X, ctx = _random_spd(n, rng), _context(n, rng)
    G = rule.grad(X, ctx)
    worst = 0.0
    for _ in range(4):
        D = rng.standard_normal((n, n))
        D = D + D.T
        fd = (rule.f(X + h * D, ctx) - rule.f(X - h * D, ctx)) / (2 * h)
        worst = max(worst, abs(fd - np.sum(G * D)) / max(1.0, abs(fd)))
    return worst


def verify_symbolic(rule: Rule, n: int = 3, seed: int = 0) -> float:
    """Largest error of the rule against sympy.diff on explicit components (random point)."""
    rng = np.random.default_rng(seed)
    syms = {}
    X = sp.zeros(n, n)
    for i in range(n):
        for j in range(i, n):
            syms[(i, j)] = sp.Symbol(f"x_{i}_{j}", real=True)
            X[i, j] = X[j, i] = syms[(i, j)]
    ctx = _context(n, rng, symbolic=True)
    f = rule.f_sym(X, ctx)
    G = rule.grad_sym(X, ctx)
    point = dict(zip(syms.values(), [float(v) for v in _upper(_random_spd(n, rng))]))
    worst = 0.0
    for (i, j), s in syms.items():
        comp = sp.diff(f, s)  # unordered-pair derivative
        ordered = G[i, j] if i == j else G[i, j] + G[j, i]
        worst = max(worst, abs(float(comp.subs(point)) - float(ordered.subs(point))))
    return worst


def _upper(A):
    n = A.shape[0]
    return [A[i, j] for i in range(n) for j in range(i, n)]

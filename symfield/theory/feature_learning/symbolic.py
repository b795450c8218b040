"""Explicit-component derivation of the μP action and its saddle-point equations (small T·P).

For a problem with n = T·P <= :data:`MAX_SITES` sites every kernel entry is a SymPy symbol
``c_i_j`` (one per unordered pair i <= j), the hyperparameters are symbols, and

    S/N = ½ [ ln det C − ln det Σ(C) − tr(Σ⁻¹C) + n − y_Sᵀ A(C)⁻¹ y_S ]        (theory Sec. 5)

is built from explicit matrices (det, adjugate: no MatrixSymbol calculus) with the templates of
:mod:`.terms` (Σ(C) = A[Wm ∘ (BCBᵀ) + Σdet]Aᵀ, A(C), S/N; the branch scales r_t g_t and the skip
coefficients a_t are symbols).  Its gradient and Hessian are taken component by component with
``sympy.diff`` and compiled through :mod:`symfield.codegen` into one cached Numba module.  :func:`two_field_equations` derives the
forward–backward pair of Sec. 4 from the two-field action of the Gaussian tilted measure

    S(C, Ĉ)/N = −½ tr(ĈC) − ½ ln det(1 − ΣĈ) − ½ y_Sᵀ A⁻¹ y_S.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import sympy as sp

from ... import codegen
from .action import NotPositiveDefinite
from .problem import FLProblem
from .terms import action_value, data_matrix_sym, propagator, sigma_sym

#: largest number of sites for the explicit-component derivation (the expressions grow fast)
MAX_SITES = 4


def _check_size(pr: FLProblem):
    if pr.n > MAX_SITES:
        raise ValueError(f"explicit components are derived for T·P <= {MAX_SITES} sites (got {pr.n}); "
                         f"use the matrix rules (symfield.theory.feature_learning.action.LinearAction) for larger problems")


@dataclass
class Symbols:
    """Symbols of the explicit action: kernel entries, Σdet entries, targets and hyperparameters."""

    n: int
    c: dict  # (i, j) -> symbol, i <= j
    sd: dict  # (i, j) -> symbol for non-zero Σdet entries
    gt: list  # r_t g_t of the matrix producing state t (t = 1..T-1, 0-based)
    y: list  # supervised targets
    a: list = field(default_factory=list)  # skip coefficients a_t (t = 1..T-1, 0-based) if there is a skip
    kappa: sp.Symbol = field(default_factory=lambda: sp.Symbol("kappa", positive=True))
    sv2: sp.Symbol = field(default_factory=lambda: sp.Symbol("sv2", positive=True))

    def C(self) -> sp.Matrix:
        return sp.Matrix(self.n, self.n, lambda i, j: self.c[(min(i, j), max(i, j))])

    def hyper(self) -> list:
        return [*self.sd.values(), *self.gt, *self.a, *self.y, self.kappa, self.sv2]

    def hyper_values(self, pr: FLProblem) -> np.ndarray:
        sd = [pr.sigma_det[i, j] for (i, j) in self.sd]
        gt = list(pr.spec.plan.w_scale[1:])
        a = list(pr.spec.leak_values()[1:]) if self.a else []
        return np.array([*sd, *gt, *a, *pr.y_S, pr.kappa, pr.sigma_v2], dtype=float)


def symbols_for(pr: FLProblem) -> Symbols:
    n = pr.n
    c = {(i, j): sp.Symbol(f"c_{i}_{j}", real=True) for i in range(n) for j in range(i, n)}
    sd = {(i, j): sp.Symbol(f"sd_{i}_{j}", real=True) for i in range(n) for j in range(i, n)
          if pr.sigma_det[i, j] != 0}
    gt = [sp.Symbol(f"g_{t + 1}", positive=True) for t in range(1, pr.T)]
    y = [sp.Symbol(f"y_{k}", real=True) for k in range(pr.sites_S.size)]
    a = [sp.Symbol(f"a_{t + 1}", real=True) for t in range(1, pr.T)] if pr.prop is not None else []
    return Symbols(n, c, sd, gt, y, a=a)


def sigma_matrix(pr: FLProblem, sy: Symbols, C: sp.Matrix) -> sp.Matrix:
    """Σ(C) (:func:`.terms.sigma_sym`) with symbolic r_t g_t, Σdet entries and skip coefficients."""
    n = pr.n
    t = pr.times()
    g = [sp.Integer(0)] + list(sy.gt)
    weight = sp.Matrix(n, n, lambda i, j: g[t[i]] * g[t[j]] if pr.wmask[i, j] != 0 else 0)
    sdet = sp.Matrix(n, n, lambda i, j: sy.sd.get((min(i, j), max(i, j)), 0))
    prop = propagator([0] + list(sy.a), pr.P) if sy.a else None
    return sigma_sym(C, weight, sdet, pr.P, prop)


def A_matrix(pr: FLProblem, sy: Symbols, C: sp.Matrix) -> sp.Matrix:
    """A(C) (:func:`.terms.data_matrix_sym`)."""
    S = list(pr.sites_S)
    return data_matrix_sym(C.extract(S, S), pr.mask_out_SS, sy.kappa, sy.sv2)


def action_expr(pr: FLProblem, sy: Symbols) -> sp.Expr:
    """S/N on explicit components (module docstring)."""
    C = sy.C()
    Sig = sigma_matrix(pr, sy, C)
    A = A_matrix(pr, sy, C)
    detS = Sig.det(method="berkowitz")
    trace = (Sig.adjugate() * C).trace() / detS
    yv = sp.Matrix(sy.y)
    data = (yv.T * A.adjugate() * yv)[0, 0] / A.det(method="berkowitz")
    return action_value(sp.log(C.det(method="berkowitz")), sp.log(detS), trace, pr.n, data)


@lru_cache(maxsize=32)
def _derive(key):
    pr = _PENDING.pop(key)
    sy = symbols_for(pr)
    S = action_expr(pr, sy)
    cs = list(sy.c.values())
    grad = [sp.diff(S, c) for c in cs]
    hess = [sp.diff(grad[a], cs[b]) for a in range(len(cs)) for b in range(a, len(cs))]
    return sy, S, grad, hess


_PENDING: dict = {}


def _structure_key(pr: FLProblem):
    """Everything the symbolic expressions depend on (not the numeric hyperparameters)."""
    return (pr.T, pr.P, tuple(map(tuple, (pr.wmask != 0).astype(int))), pr.prop is not None,
            tuple(map(tuple, (pr.sigma_det != 0).astype(int))), tuple(pr.sites_S),
            tuple(map(tuple, pr.mask_out_SS.astype(int))))


def derive(pr: FLProblem):
    """(symbols, S/N, [∂S/∂c_u], [∂²S/∂c_u∂c_v, u <= v]) for the unordered kernel entries."""
    _check_size(pr)
    key = _structure_key(pr)
    _PENDING[key] = pr
    try:
        return _derive(key)
    finally:
        _PENDING.pop(key, None)


def module_source(pr: FLProblem) -> str:
    """One module with action(*c, *hyper) -> S/N, gradient(...) and hessian(...) -> tuples (``codegen.module_text``)."""
    sy, S, grad, hess = derive(pr)
    cs = list(sy.c.values())
    args = [*cs, *sy.hyper()]
    notes = [f"unordered kernel entries: {[str(c) for c in cs]}", f"hyper: {[str(h) for h in sy.hyper()]}"]
    templates = [("action", codegen.scalar_source("action", args, S, vectorise=False)),
                 ("gradient", codegen.scalar_source("gradient", args, sp.Tuple(*grad), vectorise=False)),
                 ("hessian", codegen.scalar_source("hessian", args, sp.Tuple(*hess), vectorise=False))]
    return codegen.module_text("symfield.theory.feature_learning.symbolic", f"explicit-component μP action, "
                               f"T={pr.T}, P={pr.P}, supervised sites {list(pr.sites_S)}", templates, notes)


class ExplicitAction:
    """Compiled explicit-component action with the interface of LinearAction (point/value_at/grad_at/hessp_at)."""

    def __init__(self, pr: FLProblem):
        self.pr, self.n, self.P = pr, pr.n, pr.P
        self.symbols = derive(pr)[0]
        src = module_source(pr)
        self.module = codegen.load_module(src, f"fl_explicit_T{pr.T}_P{pr.P}")
        self.hyper = self.symbols.hyper_values(pr)
        self.iu = np.triu_indices(self.n)
        self.m = self.iu[0].size

    def _c(self, C):
        return C[self.iu].tolist()

    def point(self, C):
        for M, name in ((C, "C"),):
            try:
                np.linalg.cholesky(M)
            except np.linalg.LinAlgError:
                raise NotPositiveDefinite(f"{name} is not positive definite") from None
        return C

    def value_at(self, C) -> float:
        return float(self.module.action(*self._c(C), *self.hyper))

    def value(self, C) -> float:
        try:
            return self.value_at(self.point(C))
        except NotPositiveDefinite:
            return -np.inf

    def grad_unordered(self, C) -> np.ndarray:
        return np.array(self.module.gradient(*self._c(C), *self.hyper), dtype=float)

    def grad_at(self, C) -> np.ndarray:
        """Ordered symmetric gradient: G_ii = ∂S/∂c_ii, G_ij = ½ ∂S/∂c_ij (i ≠ j)."""
        g = self.grad_unordered(C)
        G = np.zeros((self.n, self.n))
        half = np.where(self.iu[0] == self.iu[1], 1.0, 0.5)
        G[self.iu] = g * half
        G[self.iu[1], self.iu[0]] = g * half
        return G

    def grad(self, C):
        return self.grad_at(self.point(C))

    def hessian_unordered(self, C) -> np.ndarray:
        h = np.array(self.module.hessian(*self._c(C), *self.hyper), dtype=float)
        H = np.zeros((self.m, self.m))
        iu = np.triu_indices(self.m)
        H[iu] = h
        H[iu[1], iu[0]] = h
        return H

    def hessp_at(self, C, D):
        """Ordered dG along D (batched), from the unordered Hessian: dg_u = Σ_v H_uv D_v."""
        H = self.hessian_unordered(C)
        dg = D[..., self.iu[0], self.iu[1]] @ H
        half = np.where(self.iu[0] == self.iu[1], 1.0, 0.5)
        out = np.zeros(D.shape)
        out[..., self.iu[0], self.iu[1]] = dg * half
        out[..., self.iu[1], self.iu[0]] = dg * half
        return out


def two_field_equations(pr: FLProblem):
    """Forward (∂/∂Ĉ) and backward (∂/∂C) equations of the two-field action, component by component.

    Returns (symbols, Ĉ symbols, S(C, Ĉ)/N, forward list, backward list) with one unordered
    derivative per entry u (the saddle point sets each to zero)."""
    _check_size(pr)
    sy = symbols_for(pr)
    n = pr.n
    ch = {(i, j): sp.Symbol(f"ch_{i}_{j}", real=True) for i in range(n) for j in range(i, n)}
    Ch = sp.Matrix(n, n, lambda i, j: ch[(min(i, j), max(i, j))])
    C = sy.C()
    Sig = sigma_matrix(pr, sy, C)
    A = A_matrix(pr, sy, C)
    yv = sp.Matrix(sy.y)
    data = (yv.T * A.adjugate() * yv)[0, 0] / A.det(method="berkowitz")
    S2 = -sp.Rational(1, 2) * (Ch * C).trace() - sp.Rational(1, 2) * sp.log(
        (sp.eye(n) - Sig * Ch).det(method="berkowitz")) - sp.Rational(1, 2) * data
    forward = [sp.diff(S2, v) for v in ch.values()]
    backward = [sp.diff(S2, v) for v in sy.c.values()]
    return sy, ch, S2, forward, backward

"""The unified DNN/RNN action object: saddle point by differentiation, LaTeX, compilation hooks."""
from __future__ import annotations

from dataclasses import dataclass

import sympy as sp

from ..gauss import Nonlinearity
from ..spec import NetworkSpec
from . import template as tp


@dataclass(frozen=True)
class SaddlePoint:
    """Saddle-point equations of the action, obtained by differentiating the pair template.

    ``kernel``: C_u = Σdet_u + M g² E(c11, c22, c12)   (from ∂S/∂C~_u = 0)
    ``conjugate``: C~_u = M_w g² C~_w ∂E_w/∂C_u  (from ∂S/∂C_u = 0), solved by C~ = 0.
    ``closed``: the kernel equation with E replaced by φ's closed form (None without one).
    """

    kernel: sp.Eq
    conjugate: sp.Eq
    closed: sp.Eq | None
    phi: Nonlinearity

    @property
    def rhs(self) -> sp.Expr:
        """Right-hand side of the kernel equation, closed form substituted where available."""
        return (self.closed if self.closed is not None else self.kernel).rhs

    def equations(self) -> list[sp.Eq]:
        return [eq for eq in (self.kernel, self.conjugate, self.closed) if eq is not None]

    def latex(self) -> str:
        return "\n".join(sp.latex(eq) for eq in self.equations())

    def __str__(self) -> str:
        lines = [f"kernel:    {sp.sstr(self.kernel)}", f"conjugate: {sp.sstr(self.conjugate)}   (solved by Ct = 0)"]
        if self.closed is not None:
            lines.append(f"phi={self.phi.name}: {sp.sstr(self.closed)}")
        return "\n".join(lines)


class Action:
    """S[C, C~] of a :class:`NetworkSpec` (theory Sec. 3.3; the DNN is the RNN with mask M = δ_ab)."""

    def __init__(self, spec: NetworkSpec):
        self.spec = spec
        self.phi = spec.phi_fn

    @property
    def template(self) -> sp.Expr:
        """Pair template S_u + S_w (see :mod:`symfield.action.template`)."""
        return tp.pair_template()

    def saddle_point(self) -> SaddlePoint:
        """Differentiate the template: ∂S/∂C~_u = 0 gives the kernel map, ∂S/∂C_u = 0 the conjugate."""
        S = self.template
        kernel_sol = sp.solve(sp.diff(S, tp.Ct_u), tp.C_u)
        if len(kernel_sol) != 1:
            raise RuntimeError(f"expected one solution of dS/dCt_u = 0 for C_u, got {kernel_sol}")
        kernel = sp.Eq(tp.C_u, kernel_sol[0])
        ct_sol = sp.solve(sp.diff(S, tp.C_u), tp.Ct_u)
        conjugate = sp.Eq(tp.Ct_u, ct_sol[0])
        closed_E = self.phi.pair(tp.c11, tp.c22, tp.c12)
        closed = None
        if closed_E is not None:
            closed = sp.Eq(tp.C_u, kernel.rhs.subs(tp.E(tp.c11, tp.c22, tp.c12), closed_E))
        return SaddlePoint(kernel, conjugate, closed, self.phi)

    def derivatives(self) -> dict:
        """Hessian blocks and cubic vertices of S, differentiated on the pair template.

        ``Fp[i]  = ∂F_u/∂c_i = 2 ∂²S/∂C~_u∂c_i``          (J = 1 - F', theory Sec. 8.1)
        ``Fpp[i, j] = 2 ∂³S/∂C~_u∂c_i∂c_j``                 (F'' vertex)
        ``K = 4 ∂²S/∂C~_u∂C~_v``  in units of Q = Cov(Φ_u, Φ_v)  (S^(2)_{C~C~} = K/4)
        with c = (c11, c22, c12); closed form of E substituted where φ has one.
        """
        S = self.template
        pair = self.phi.pair
        if pair is not None:
            S = S.replace(tp.E, lambda a, b, c: pair(a, b, c))
        Fp = [sp.simplify(2 * sp.diff(S, tp.Ct_u, c)) for c in tp.ARGS]
        Fpp = {(i, j): 2 * sp.diff(S, tp.Ct_u, tp.ARGS[i], tp.ARGS[j]) for i in range(3) for j in range(i, 3)}
        K = 4 * sp.diff(tp.second_cumulant_term(), tp.Ct_u, tp.Ct_v)
        return {"Fp": Fp, "Fpp": Fpp, "K": K}

    def compiled(self):
        """Generated module with ``pair_action(C_u, Ct_u, C_w, Ct_w, c11, c22, c12, d1, d2, sdet, sdet_w, m, m_w, g2)``,
        the pair template with φ's closed form substituted (for finite-difference checks)."""
        from .. import codegen
        if not self.phi.has_closed_form:
            raise NotImplementedError(f"phi {self.phi.name!r} has no closed form; the action template "
                                      "cannot be compiled symbolically")
        S = self.template.replace(tp.E, lambda a, b, c: self.phi.pair(a, b, c))
        args = (tp.C_u, tp.Ct_u, tp.C_w, tp.Ct_w, tp.c11, tp.c22, tp.c12, tp.d1, tp.d2, tp.sdet, tp.sdet_w,
                tp.m, tp.m_w, tp.g2)
        return codegen.build_module(f"action_{self.phi.key}", "symfield.action", "the pair template of the unified "
                                    "action", [("pair_action", codegen.scalar_source("pair_action", args, S))],
                                    [f"S = {sp.sstr(S)}"])

    def mask(self):
        """The weight-sharing mask M_ab of the spec (RNN 1, DNN δ_ab)."""
        return self.spec.weight_mask()

    def latex(self) -> str:
        """The action in LaTeX, general form and the pair template it is differentiated on."""
        s = self.spec
        M = _mask_latex(s)
        phi = sp.latex(self.phi.expr.subs(sp.Symbol("x", real=True), sp.Symbol("z")))
        general = (r"S[C,\tilde C] = -\frac{1}{2}\sum_{u=\{s,s'\}} \tilde C_u\left(C_u-\Sigma^{\rm det}_u\right)"
                   r" + \ln\left\langle \exp\Big(\frac{g^2}{2}\sum_{u} M_{ab}\,\tilde C_u\,"
                   r"\phi(z_{s-1})\,\phi(z_{s'-1})\Big)\right\rangle_{z\sim\mathcal N(0,C)}")
        lines = [general,
                 rf"M_{{ab}} = {M}\quad(\text{{{s.label}}}),\qquad \phi(z) = {phi},\qquad T = {s.T}",
                 r"\text{pair template (first order in }\tilde C\text{):}\quad " + sp.latex(self.template)]
        return "\n".join(lines)

    def __str__(self) -> str:
        return (f"S = -1/2 sum_u Ct_u (C_u - Sigma_det_u) + ln < exp(g^2/2 sum_u M_ab Ct_u phi(z_s-1) phi(z_s'-1)) >\n"
                f"M = {_mask_text(self.spec)}; "
                f"phi(x) = {self.phi.expr}\npair template: {sp.sstr(self.template)}")


def _mask_text(spec: NetworkSpec) -> str:
    groups = spec.groups("W")
    if len(groups) == 1:
        return "1 (one W shared by all steps)"
    if all(len(g) == 1 for g in groups):
        return "delta_ab (fresh W per step)"
    return f"[W_a = W_b] (W shared within groups {[list(g) for g in groups]})"


def _mask_latex(spec: NetworkSpec) -> str:
    groups = spec.groups("W")
    if len(groups) == 1:
        return "1"
    if all(len(g) == 1 for g in groups):
        return r"\delta_{ab}"
    return r"[W_a = W_b]"


def action(spec: NetworkSpec) -> Action:
    """The unified action of ``spec``."""
    if not isinstance(spec, NetworkSpec):
        raise TypeError(f"spec must be a NetworkSpec (sf.DNN / sf.RNN), got {type(spec).__name__}")
    return Action(spec)

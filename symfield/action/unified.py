"""The GP (NNGP, standard scaling) action of any declared network: saddle point by differentiation,
LaTeX, compilation.  One instance of the action layer (:mod:`symfield.action.base`)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sympy as sp

from ..gauss import Nonlinearity, get_phi
from ..spec import NetworkSpec
from . import template as tp
from .base import BaseAction, Expectation, Field, matrix_latex


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
    skip: bool = False  #: the field is the driving covariance D (kernel: D_u = ...), C = 𝒜 D 𝒜ᵀ

    @property
    def rhs(self) -> sp.Expr:
        """Right-hand side of the kernel equation, closed form substituted where available."""
        return (self.closed if self.closed is not None else self.kernel).rhs

    def equations(self) -> list[sp.Eq]:
        return [eq for eq in (self.kernel, self.conjugate, self.closed) if eq is not None]

    def latex(self) -> str:
        return "\n".join(tp.latex(eq) for eq in self.equations())

    def __str__(self) -> str:
        lines = [f"kernel:    {sp.sstr(self.kernel)}", f"conjugate: {sp.sstr(self.conjugate)}   (solved by Ct = 0)"]
        if self.closed is not None:
            lines.append(f"phi={self.phi.name}: {sp.sstr(self.closed)}")
        if self.skip:
            lines.append(SKIP_NOTE)
        return "\n".join(lines)


SKIP_NOTE = ("skip a_t != 0: the field is the driving covariance D; c11, c22, c12 are entries of C = A D A^T "
             "(A_ts = a_{s+1}...a_t), l_i = dC/dD_u (symfield.theory.lift)")


class GPAction(BaseAction):
    """S[C, C~] of a :class:`NetworkSpec` in standard scaling (theory Sec. 3.3; the DNN is the RNN with
    mask M = δ_ab).  With skip coefficients the field is the driving covariance D, C = 𝒜 D 𝒜ᵀ."""

    def __init__(self, spec: NetworkSpec | None, phi: Nonlinearity | None = None):
        super().__init__(spec)
        self.phi = phi if phi is not None else spec.phi_fn
        self.skip = spec is not None and spec.has_skip
        name = "D" if self.skip else "C"
        meaning = ("driving covariance Cov(ξ) of ξ_t = r_t W_t φ(h_t-1) + U_t x_t + b_t; C = 𝒜 D 𝒜ᵀ" if self.skip
                   else "pre-activation kernel")
        self.fields = (Field(name, "Ct", "unordered site pairs u = {s, s'}, s = (t, μ)", meaning),)

    @classmethod
    def for_phi(cls, phi) -> "GPAction":
        """The pair template of ``phi`` alone (it does not depend on the declaration): no spec."""
        return cls(None, phi if isinstance(phi, Nonlinearity) else get_phi(phi))

    @property
    def template(self) -> sp.Expr:
        """Pair template S_u + S_w (see :mod:`symfield.action.template`; for D with skip coefficients)."""
        return tp.skip_pair_template() if self.skip else tp.pair_template()

    @property
    def expectations(self) -> tuple:
        """E(c11, c22, c12) = <φ(z1) φ(z2)>, z ~ N(0, [[c11, c12], [c12, c22]]) (closed form or None)."""
        return (Expectation("E", "<phi(z1) phi(z2)>, z ~ N(0, [[c11, c12], [c12, c22]])",
                            self.phi.pair(tp.c11, tp.c22, tp.c12)),)

    def saddle_point(self) -> SaddlePoint:
        """Differentiate the template: ∂S/∂C~_u = 0 gives the kernel map, ∂S/∂C_u = 0 the conjugate."""
        S = self.template
        field = tp.D_u if self.skip else tp.C_u
        kernel_sol = sp.solve(sp.diff(S, tp.Ct_u), field)
        if len(kernel_sol) != 1:
            raise RuntimeError(f"expected one solution of dS/dCt_u = 0 for {field}, got {kernel_sol}")
        kernel = sp.Eq(field, kernel_sol[0])
        ct_sol = sp.solve(sp.diff(S, field), tp.Ct_u)
        conjugate = sp.Eq(tp.Ct_u, ct_sol[0])
        closed_E = self.phi.pair(tp.c11, tp.c22, tp.c12)
        closed = None
        if closed_E is not None:
            closed = sp.Eq(field, kernel.rhs.subs(tp.E(tp.c11, tp.c22, tp.c12), closed_E))
        return SaddlePoint(kernel, conjugate, closed, self.phi, self.skip)

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
        """Generated module with ``pair_action(*args)``, the pair template with φ's closed form substituted
        (for finite-difference checks); ``args`` are :meth:`compiled_args` (without skip: C_u, Ct_u, C_w,
        Ct_w, c11, c22, c12, d1, d2, sdet, sdet_w, m, m_w, g2)."""
        from .. import codegen
        if not self.phi.has_closed_form:
            raise NotImplementedError(f"phi {self.phi.name!r} has no closed form; the action template "
                                      "cannot be compiled symbolically")
        S = self.template.replace(tp.E, lambda a, b, c: self.phi.pair(a, b, c))
        args = self.compiled_args()
        tag = f"action_{self.phi.key}" + ("_skip" if self.skip else "")
        return codegen.build_module(tag, "symfield.action", "the pair template of the unified "
                                    "action", [("pair_action", codegen.scalar_source("pair_action", args, S))],
                                    [f"S = {sp.sstr(S)}"])

    def compiled_args(self) -> tuple:
        """Argument symbols of the compiled ``pair_action``."""
        if self.skip:
            return (tp.D_u, tp.Ct_u, tp.D_w, tp.Ct_w, tp.c11, tp.c22, tp.c12, tp.d1, tp.d2, tp.c12_w, tp.l1, tp.l2,
                    tp.l12, tp.sdet, tp.sdet_w, tp.m, tp.m_w, tp.g2)
        return (tp.C_u, tp.Ct_u, tp.C_w, tp.Ct_w, tp.c11, tp.c22, tp.c12, tp.d1, tp.d2, tp.sdet, tp.sdet_w,
                tp.m, tp.m_w, tp.g2)

    def mask(self):
        """The weight-sharing mask M_ab of the spec (RNN 1, DNN δ_ab)."""
        return self.spec.weight_mask()

    def latex(self) -> str:
        """The action in LaTeX: general form, the declaration's masks (weight or branch mask, skip
        propagator) and the pair template it is differentiated on."""
        f = "D" if self.skip else "C"
        phi = sp.latex(self.phi.expr.subs(sp.Symbol("x", real=True), sp.Symbol("z")))
        general = (rf"S[{f},\tilde C] = -\frac{{1}}{{2}}\sum_{{u=\{{s,s'\}}}} \tilde C_u\left({f}_u-\Sigma^{{\rm det}}_u\right)"
                   r" + \ln\left\langle \exp\Big(\frac{g^2}{2}\sum_{u} M_{ab}\,\tilde C_u\,"
                   r"\phi(z_{s-1})\,\phi(z_{s'-1})\Big)\right\rangle_{z\sim\mathcal N(0,C)}")
        lines = [general]
        s = self.spec
        if s is not None:
            lines.append(rf"M_{{ab}} = {_mask_latex(s)}\quad(\text{{{s.label}}}),\qquad \phi(z) = {phi},\qquad T = {s.T}")
            if np.any(s.r_values()[1:] != 1):
                lines.append(r"M_{ab} \to M_{ab}\,r_a r_b = " + matrix_latex(s.branch_mask())
                             + r"\quad\text{(branch mask)}")
            if self.skip:
                from ..theory.feature_learning.terms import propagator
                lines.append(r"C = \mathcal A D \mathcal A^{\rm T},\quad \mathcal A = A\otimes 1_P,\quad A = "
                             + matrix_latex(propagator(s.leak_values(), 1)) + r"\quad\text{(skip propagator, } A_{ts} = "
                             r"a_{s+1}\cdots a_t\text{; the field is the driving covariance } D\text{)}")
        else:
            lines.append(rf"\phi(z) = {phi}")
        lines.append(r"\text{pair template (first order in }\tilde C\text{):}\quad " + tp.latex(self.template))
        return "\n".join(lines)

    def __str__(self) -> str:
        f = "D" if self.skip else "C"
        out = (f"S = -1/2 sum_u Ct_u ({f}_u - Sigma_det_u) + ln < exp(g^2/2 sum_u M_ab Ct_u phi(z_s-1) phi(z_s'-1)) >\n"
               + (f"M = {_mask_text(self.spec)}; " if self.spec is not None else "")
               + f"phi(x) = {self.phi.expr}\npair template: {sp.sstr(self.template)}")
        if self.spec is not None and np.any(self.spec.r_values()[1:] != 1):
            out += f"\nbranch mask M_ab r_a r_b = {self.spec.branch_mask().tolist()}"
        if self.skip:
            out += "\n" + SKIP_NOTE
        return out


#: the GP action under its former name
Action = GPAction


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
    return r"[W_a = W_b] = " + matrix_latex(spec.weight_mask())


def action(spec: NetworkSpec, *args, **kw):
    """The action of ``spec`` (dispatch on ``spec.scaling``, :func:`symfield.action.dispatch.action`)."""
    from .dispatch import action as dispatch
    return dispatch(spec, *args, **kw)

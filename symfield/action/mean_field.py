"""The μP (mean-field) action of any declared network (feature_learning_mup.md Secs. 3–5), one
instance of the action layer, built from the feature-learning package's single formulas
(:mod:`symfield.theory.feature_learning.terms`: Σ(C), A(C), S/N):

    S(C, Ĉ)/N = −½ tr(ĈC) + ln ∫dh N(h; 0, Σ(C)) e^{½ φ(h)ᵀ Ĉ φ(h)} − ½ y_Sᵀ A(C)⁻¹ y_S,
    Σ(C) = 𝒜 [(M ∘ r rᵀ ∘ g gᵀ) ⊗ 1_P ∘ (B C Bᵀ) + Σdet] 𝒜ᵀ,   A(C) = κ 1 + σ_v² (M_out ∘ C)_SS.

Fields C and Ĉ live on sites s = (t, μ).  For linear φ the tilted integral is Gaussian,
−½ ln det(1 − ΣĈ), and eliminating Ĉ gives S/N = ½[ln det C − ln det Σ − tr(Σ⁻¹C) + n − y_Sᵀ A⁻¹ y_S].

The action needs a task (X, Y, supervised, κ, readout).  ``MeanFieldAction(spec)`` without data is the
action of the symbolic default task: P = 1 pattern x = (1,), endpoint supervision; its equations carry
the Σdet entries, r_t g_t, a_t, the targets y_k, κ and σ_v² as symbols (numbers enter only when
evaluated).  Equations on explicit components need n = T·P <= 4 sites (the expressions grow fast);
:meth:`MeanFieldAction.numeric` (matrix rules) works at any size.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import sympy as sp

from ..spec import NetworkSpec, SpecError
from .base import BaseAction, Expectation, Field, matrix_latex

#: patterns of the symbolic default task (``sf.action(net)`` for a μP net without data)
DEFAULT_P = 1

FORWARD = "C = <phi(h) phi(h)^T>,  p(h) ~ N(h; 0, Sigma(C)) exp(1/2 phi(h)^T Chat phi(h))"
BACKWARD = ("Chat = B^T[(M o r r^T o g g^T) o A^T(Sigma^-1 <h h^T> Sigma^-1 - Sigma^-1) A] B "
            "+ sigma_v^2 E_S[M_out o w w^T],  w = A(C)^-1 y_S")


@dataclass
class MeanFieldSaddlePoint:
    """Saddle-point equations of the two-field μP action on explicit components, derived by
    differentiation (:func:`symfield.theory.feature_learning.symbolic.two_field_equations`):
    ``forward[k]`` = ∂(S/N)/∂ĉ_u (zero: C = ⟨φφᵀ⟩ under the tilted measure) and ``backward[k]`` =
    ∂(S/N)/∂c_u (zero: the backward equation for Ĉ), one per unordered site pair u = ``pairs[k]``."""

    problem: object
    symbols: object                 #: :class:`~symfield.theory.feature_learning.symbolic.Symbols`
    conjugates: dict                #: (i, j) -> symbol ĉ_ij
    action: sp.Expr                 #: S(C, Ĉ)/N
    forward: list
    backward: list
    _fn: object = field(default=None, repr=False)

    @property
    def pairs(self) -> list:
        return list(self.symbols.c)

    def equations(self) -> list[sp.Eq]:
        return [sp.Eq(e, 0) for e in (*self.forward, *self.backward)]

    def residuals(self, C: np.ndarray, Chat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(forward, backward) values at site matrices C, Ĉ (n, n) with the problem's hyperparameters."""
        if self._fn is None:
            args = [*self.symbols.c.values(), *self.conjugates.values(), *self.symbols.hyper()]
            self._fn = sp.lambdify(args, [*self.forward, *self.backward], cse=True)
        iu = tuple(np.array(self.pairs).T)
        out = np.array(self._fn(*C[iu], *Chat[iu], *self.symbols.hyper_values(self.problem)), dtype=float)
        return out[:len(self.forward)], out[len(self.forward):]

    def latex(self) -> str:
        return "\n".join(sp.latex(eq) for eq in self.equations())

    def __str__(self) -> str:
        return (f"forward:  {FORWARD}\nbackward: {BACKWARD}\n"
                f"derived on {len(self.pairs)} unordered entries c_i_j (and ch_i_j): d(S/N)/d ch_u = 0, d(S/N)/d c_u = 0")


class MeanFieldAction(BaseAction):
    """The μP action S(C, Ĉ)/N of a declared network and a task (module docstring)."""

    fields = (Field("C", "Chat", "sites s = (t, μ), n = T·P", "representational kernel φ(h)φ(h)ᵀ/N"),)

    def __init__(self, spec: NetworkSpec, X=None, Y=None, supervised=None, kappa=1.0, readout=None):
        from ..theory.feature_learning.problem import problem
        super().__init__(spec)
        if spec.scaling != "mean_field":
            raise SpecError("scaling: the μP action needs a mean-field network (scaling='mean_field'); "
                            "use GPAction for standard scaling")
        self.symbolic_default = X is None
        if X is None:
            if Y is not None or supervised is not None:
                raise SpecError("X: give the inputs X with Y/supervised (or neither, for the symbolic default task)")
            X = np.ones((DEFAULT_P, 1))
        P = spec.check_inputs(X).shape[0]
        Y = np.zeros((P, spec.T)) if Y is None else Y
        self.problem = problem(spec, X, Y, supervised, kappa, readout)
        self.phi = spec.phi_fn

    # ------------------------------------------------------------ layer interface
    def _need_linear(self, what: str):
        if self.phi.name != "linear":
            raise NotImplementedError(
                f"{what}: the μP action is derived in closed form for linear φ (Gaussian tilted measure); for "
                f"phi={self.phi.name!r} the forward–backward equations with the tilted measure are evaluated by "
                "symfield.theory.feature_learning.tilted (ImportanceTilted)")

    @cached_property
    def _two_field(self):
        from ..theory.feature_learning.symbolic import two_field_equations
        self._need_linear("saddle_point")
        return two_field_equations(self.problem)

    @property
    def template(self) -> sp.Expr:
        """S(C, Ĉ)/N on explicit site components (linear φ: the tilted integral is −½ ln det(1 − ΣĈ))."""
        return self._two_field[2]

    @property
    def expectations(self) -> tuple:
        """⟨φφᵀ⟩ and ⟨hhᵀ⟩ under the tilted measure; closed (Gaussian, (Σ⁻¹ − Ĉ)⁻¹) for linear φ."""
        from ..theory.feature_learning.tilted import GaussianTilted
        closed = GaussianTilted() if self.phi.name == "linear" else None
        return (Expectation("<phi phi^T>, <h h^T>", "p(h) ~ N(h; 0, Sigma(C)) exp(1/2 phi(h)^T Chat phi(h)); "
                            "linear phi: both (Sigma^-1 - Chat)^-1 (GaussianTilted), else ImportanceTilted", closed),)

    def saddle_point(self) -> MeanFieldSaddlePoint:
        """∂S/∂Ĉ = 0 (forward) and ∂S/∂C = 0 (backward), derived component by component (n <= 4)."""
        sy, ch, S2, fwd, bwd = self._two_field
        return MeanFieldSaddlePoint(self.problem, sy, ch, S2, fwd, bwd)

    def derivatives(self) -> dict:
        """With Ĉ eliminated (linear φ): ``action`` S/N, ``gradient`` [∂S/∂c_u], ``hessian``
        [∂²S/∂c_u∂c_v, u <= v] on the unordered entries ``symbols.c`` (explicit components, n <= 4)."""
        from ..theory.feature_learning.symbolic import derive
        self._need_linear("derivatives")
        sy, S, grad, hess = derive(self.problem)
        return {"symbols": sy, "action": S, "gradient": grad, "hessian": hess}

    def numeric(self):
        """S/N, gradient and Hessian products at any size from the verified matrix rules (:class:`LinearAction`)."""
        from ..theory.feature_learning.action import LinearAction
        self._need_linear("numeric")
        return LinearAction(self.problem)

    def compiled(self):
        """The generated module (``action``, ``gradient``, ``hessian`` of the unordered entries and
        hyperparameters), built through :mod:`symfield.codegen` and cached."""
        from ..theory.feature_learning.symbolic import ExplicitAction
        self._need_linear("compiled")
        return ExplicitAction(self.problem).module

    # ------------------------------------------------------------------ display
    def _masks(self) -> dict:
        s, pr = self.spec, self.problem
        out = {"branch": s.branch_mask(), "readout": pr.mask_out}
        if s.has_skip:
            from ..theory.feature_learning.terms import propagator
            out["skip"] = propagator(s.leak_values(), 1)
        return out

    def latex(self) -> str:
        """The action with the declaration's masks: branch mask M ∘ r rᵀ, skip propagator A, readout mask."""
        m = self._masks()
        prop = r"\mathcal A" if "skip" in m else ""
        propT = r"\mathcal A^{\rm T}" if "skip" in m else ""
        lines = [r"\frac{S(C,\hat C)}{N} = -\tfrac12\,\mathrm{tr}(\hat C C) + \ln\int dh\,\mathcal N\big(h;0,\Sigma(C)\big)"
                 r"\,e^{\frac12\phi(h)^{\rm T}\hat C\phi(h)} - \tfrac12\,y_{\mathcal S}^{\rm T}A(C)^{-1}y_{\mathcal S}",
                 rf"\Sigma(C) = {prop}\big[(M\circ r r^{{\rm T}}\circ g g^{{\rm T}})\otimes 1_P \circ (BCB^{{\rm T}})"
                 rf" + \Sigma^{{\rm det}}\big]{propT},\qquad A(C) = \kappa 1 + \sigma_v^2 (M_{{\rm out}}\circ C)_{{\mathcal S\mathcal S}}",
                 r"M\circ r r^{\rm T} = " + matrix_latex(m["branch"]) + r"\quad\text{(branch mask)}"]
        if "skip" in m:
            lines.append(r"\mathcal A = A\otimes 1_P,\quad A = " + matrix_latex(m["skip"])
                         + r"\quad\text{(skip propagator, } A_{ts} = a_{s+1}\cdots a_t\text{)}")
        lines.append(r"M_{\rm out} = " + matrix_latex(m["readout"]) + r"\quad\text{(readout mask)}")
        if self.phi.name == "linear":
            lines.append(r"\phi(h) = h:\quad \frac{S}{N} = \tfrac12\big[\ln\det C - \ln\det\Sigma(C) - \mathrm{tr}"
                         r"(\Sigma^{-1}C) + n - y_{\mathcal S}^{\rm T}A(C)^{-1}y_{\mathcal S}\big]")
        task = "symbolic default task (P = 1, endpoint)" if self.symbolic_default else f"P = {self.problem.P}"
        lines.append(rf"\text{{{self.spec.label}, T = {self.spec.T}, {task}}}")
        return "\n".join(lines)

    def __str__(self) -> str:
        m = self._masks()
        out = ["S(C,Chat)/N = -1/2 tr(Chat C) + ln int dh N(h; 0, Sigma(C)) exp(1/2 phi^T Chat phi) - 1/2 y_S^T A(C)^-1 y_S",
               "Sigma(C) = " + ("A " if "skip" in m else "") + "[(M o r r^T o g g^T) (x) 1_P o (B C B^T) + Sigma_det]"
               + (" A^T" if "skip" in m else "") + ",  A(C) = kappa 1 + sigma_v^2 (M_out o C)_SS",
               f"branch mask M o r r^T = {m['branch'].tolist()}"]
        if "skip" in m:
            out.append(f"skip propagator A = {m['skip'].tolist()}")
        out.append(f"readout mask M_out = {m['readout'].tolist()}")
        out += [f"forward:  {FORWARD}", f"backward: {BACKWARD}"]
        return "\n".join(out)

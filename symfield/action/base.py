"""The action layer: what every action of symfield declares (issue "Declare a network once", part 2).

An action S[fields] of a declared network has

* ``spec`` (the :class:`~symfield.spec.NetworkSpec`, None for a φ-only GP template),
* ``fields``: its field variables (:class:`Field`: name, conjugate, where they live, meaning),
* ``template``: the SymPy template the equations are derived from (GP: the site-pair template
  S_u + S_w; μP: the two-field action S(C, Ĉ)/N on explicit site components),
* ``expectations``: the Gaussian expectations it needs (:class:`Expectation`),
* ``saddle_point()`` (derived by differentiation), ``derivatives()``, ``latex()``, ``compiled()``
  (a module built by :mod:`symfield.codegen`).

Instances: :class:`~symfield.action.unified.GPAction` (NNGP, standard scaling) and
:class:`~symfield.action.mean_field.MeanFieldAction` (μP); :func:`~symfield.action.dispatch.action`
picks one from ``spec.scaling``.  Matrix functions (ln det, tr Σ⁻¹C, ...) are differentiated by the
verified rules of :mod:`symfield.action.rules`.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import sympy as sp


@dataclass(frozen=True)
class Field:
    """One field of an action: ``name`` and its ``conjugate``, the variables it lives on, its meaning."""

    name: str
    conjugate: str
    on: str
    meaning: str


@dataclass(frozen=True)
class Expectation:
    """A Gaussian expectation the action needs: ``name``, its ``statement`` and a closed form (or None)."""

    name: str
    statement: str
    closed: object = None


class BaseAction(ABC):
    """Common interface of the actions (module docstring)."""

    fields: tuple = ()

    def __init__(self, spec):
        self.spec = spec

    @property
    @abstractmethod
    def template(self) -> sp.Expr:
        """The SymPy template the equations are derived from."""

    @property
    @abstractmethod
    def expectations(self) -> tuple:
        """The Gaussian expectations the action needs (tuple of :class:`Expectation`)."""

    @abstractmethod
    def saddle_point(self):
        """The saddle-point equations, derived by differentiating :attr:`template`."""

    @abstractmethod
    def derivatives(self) -> dict:
        """Derivatives of the action beyond the saddle point (Hessian blocks, vertices)."""

    @abstractmethod
    def latex(self) -> str:
        """The action in LaTeX, with the declaration's masks."""

    @abstractmethod
    def compiled(self):
        """A generated module (through :mod:`symfield.codegen`) that evaluates the template."""

    def __repr__(self) -> str:
        label = self.spec.label if self.spec is not None else "φ-only"
        return f"{type(self).__name__}({label}, fields={[f.name for f in self.fields]})"


def matrix_latex(M) -> str:
    """A small numeric matrix in LaTeX with exact-looking entries (0.5 -> 1/2)."""
    return sp.latex(sp.Matrix(np.asarray(M, dtype=float)).applyfunc(lambda v: sp.nsimplify(v, rational=True)))

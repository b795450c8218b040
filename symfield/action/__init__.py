"""The action layer: one interface (:mod:`.base`), two instances — the GP action (:class:`GPAction`,
standard scaling) and the μP action (:class:`MeanFieldAction`); :func:`action` dispatches on
``spec.scaling``; matrix rules in :mod:`.rules`."""
from .base import BaseAction, Expectation, Field
from .dispatch import action
from .unified import Action, GPAction, SaddlePoint

__all__ = ["Action", "BaseAction", "Expectation", "Field", "GPAction", "MeanFieldAction", "SaddlePoint", "action"]


def __getattr__(name):
    if name in ("MeanFieldAction", "MeanFieldSaddlePoint"):  # imported lazily: it reads the μP package
        from . import mean_field
        return getattr(mean_field, name)
    raise AttributeError(name)

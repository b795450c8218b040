"""Every error symfield raises on purpose derives from :class:`SymfieldError`.

The subclasses also derive from the built-in exception a caller would expect (``ValueError`` for a
bad declaration, ``FloatingPointError`` for a non-finite result, ...), so ``except ValueError`` keeps
working.
"""
from __future__ import annotations


class SymfieldError(Exception):
    """Base class of the errors symfield raises on purpose."""


class SpecError(SymfieldError, ValueError):
    """An invalid or inconsistent network declaration or input array; the message names the field."""


class SpecTypeError(SpecError, TypeError):
    """An argument of the wrong type (e.g. ``spec`` that is not a NetworkSpec); also a ``TypeError``."""


class NotSupportedError(SymfieldError, NotImplementedError):
    """A valid declaration that the requested computation does not handle (yet); the message says what does."""


class NonFiniteError(SymfieldError, FloatingPointError):
    """A computation produced nan or inf where a finite number was required."""


class ResourceError(SymfieldError, MemoryError):
    """A computation would need more memory or time than allowed; estimated before allocating."""


class UnknownNonlinearity(SymfieldError, KeyError):
    """A φ name that is not registered (see ``symfield.register_phi``)."""

    def __str__(self):
        return str(self.args[0])


class NonFiniteKernel(NonFiniteError):
    """The kernel map produced nan/inf (e.g. a covariance outside the domain of φ's closed form)."""


class AccuracyError(SymfieldError, ValueError):
    """A numeric method cannot reach its documented accuracy for these arguments (the message names them)."""


class FixedPointError(SymfieldError, RuntimeError):
    """No finite fixed point of the length map was found."""


class NotPositiveDefinite(SymfieldError, ValueError):
    """C or Σ(C) is not positive definite (outside the domain of the μP action)."""


class ConvergenceError(SymfieldError, RuntimeError):
    """A solver did not converge; ``history`` holds its residual (gradient-norm) history."""

    def __init__(self, message: str, history=()):
        self.history = list(history)
        tail = ", ".join(f"{r:.3g}" for r in self.history[-8:])
        super().__init__(f"{message} (last residuals: {tail})" if self.history else message)


__all__ = ["AccuracyError", "ConvergenceError", "FixedPointError", "NonFiniteError", "NonFiniteKernel", "NotPositiveDefinite",
           "NotSupportedError", "ResourceError", "SpecError", "SpecTypeError", "SymfieldError", "UnknownNonlinearity"]

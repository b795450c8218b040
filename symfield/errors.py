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


class NonFiniteError(SymfieldError, FloatingPointError):
    """A computation produced nan or inf where a finite number was required."""


class ResourceError(SymfieldError, MemoryError):
    """A computation would need more memory or time than allowed; estimated before allocating."""


__all__ = ["NonFiniteError", "ResourceError", "SpecError", "SymfieldError"]

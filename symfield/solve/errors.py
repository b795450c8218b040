"""Errors raised by the solvers (they carry the residual history)."""
from __future__ import annotations

from ..errors import ConvergenceError  # noqa: E402,F401  (defined with the other errors)

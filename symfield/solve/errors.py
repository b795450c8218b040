"""Errors raised by the solvers (they carry the residual history)."""
from __future__ import annotations


class ConvergenceError(RuntimeError):
    """A solver did not converge; ``history`` holds its residual (gradient-norm) history."""

    def __init__(self, message: str, history=()):
        self.history = list(history)
        tail = ", ".join(f"{r:.3g}" for r in self.history[-8:])
        super().__init__(f"{message} (last residuals: {tail})" if self.history else message)

"""Generic solvers: trust-region Newton maximisation, continuation with step refinement, errors.

Nothing here knows about networks: an objective is given as value / gradient / Hessian-vector
callables on a flat vector, and continuation works on any ``solve(s, guess)``.
"""
from .continuation import ContinuationPath, continue_in
from .errors import ConvergenceError
from .trust_region import TrustRegionResult, maximize

__all__ = ["ContinuationPath", "ConvergenceError", "TrustRegionResult", "continue_in", "maximize"]

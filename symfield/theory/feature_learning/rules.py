"""The verified matrix-calculus rules live in the action layer (:mod:`symfield.action.rules`);
re-exported here for the feature-learning package."""
from ...action.rules import RULES, Rule, register, verify_numeric, verify_symbolic

__all__ = ["RULES", "Rule", "register", "verify_numeric", "verify_symbolic"]

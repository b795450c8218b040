"""Unified action of DNNs and RNNs, and its derivatives."""
from .unified import Action, SaddlePoint, action

__all__ = ["Action", "SaddlePoint", "action"]

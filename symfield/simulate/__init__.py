"""Finite-width simulation: prior ensembles of DNNs/RNNs built from a NetworkSpec (theory Sec. 8.9)."""
from .draws import NetworkDraw, draw_network, forward
from .prior import PriorEnsemble, prior

__all__ = ["NetworkDraw", "PriorEnsemble", "draw_network", "forward", "prior"]

"""Finite-width simulation: prior ensembles of DNNs/RNNs built from a NetworkSpec (theory Sec. 8.9)."""
from .draws import NetworkDraw, draw_network, forward
from .posterior import posterior
from .prior import PriorEnsemble, prior
from .projected import KernelMoments, kernel_moments

__all__ = ["KernelMoments", "NetworkDraw", "PriorEnsemble", "draw_network", "forward", "kernel_moments", "posterior",
           "prior"]

"""Finite-width simulation of any declared network, read from ``spec.plan`` (theory Sec. 8.9): prior
ensembles, projected kernel moments, posterior samplers."""
from .draws import NetworkDraw, draw_network, forward
from .posterior import posterior
from .prior import PriorEnsemble, prior
from .projected import KernelMoments, kernel_moments
from .trajectory import posterior_trajectory

__all__ = ["KernelMoments", "NetworkDraw", "PriorEnsemble", "draw_network", "forward", "kernel_moments", "posterior",
           "posterior_trajectory", "prior"]

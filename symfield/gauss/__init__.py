"""Gaussian expectations of nonlinearities: symbolic closed forms and numeric quadrature."""
from .registry import Nonlinearity, UnknownNonlinearity, available_phis, get_phi, register_phi, x

__all__ = ["Nonlinearity", "UnknownNonlinearity", "available_phis", "get_phi", "register_phi", "x"]

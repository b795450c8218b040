"""Theory: leading-order kernels (mean field), fixed points."""
from .fixed_point import FixedPoint, FixedPointError, fixed_point, length_map
from .kernel_map import KernelMap, kernel_map
from .mean_field import MeanField, NonFiniteKernel, mean_field

__all__ = ["FixedPoint", "FixedPointError", "KernelMap", "MeanField", "NonFiniteKernel", "fixed_point",
           "kernel_map", "length_map", "mean_field"]

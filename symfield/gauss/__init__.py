"""Gaussian expectations of nonlinearities: symbolic closed forms and numeric quadrature.

- registry:   φ by name, closed forms <φφ> (``pair``) and <φ'φ'> (``dpair``)
- price:      symbolic derivation of the erf kernel by Price's theorem
- quadrature: Numba Gauss–Hermite for 1- to 4-point expectations of φ and its derivatives
- dual:       fast numeric dual kernel (Mehler expansion) for φ without a closed form, handing what it cannot
              certify to the panel rule; ``DualKernel.pair(..., with_error=True)``: value, error estimate, method
- panels:     graded Gauss–Kronrod panels for <φφ> at any variance and correlation, with an error estimate
- reference:  mpmath reference values (tests only)
"""
from .dual import DualKernel, PairEstimate, dual_kernel
from .price import derive_erf_dpair, derive_erf_pair, gaussian_quadratic_expectation, price_derivative, price_integrate
from .quadrature import DEFAULT_NODES, cholesky_factors, collapse_sites, expect, expect2_block, expect_batch, hermite_nodes
from .registry import Nonlinearity, UnknownNonlinearity, available_phis, get_phi, register_phi, x

__all__ = ["DEFAULT_NODES", "DualKernel", "Nonlinearity", "PairEstimate", "UnknownNonlinearity", "available_phis",
           "cholesky_factors", "collapse_sites", "derive_erf_dpair", "derive_erf_pair", "dual_kernel", "expect",
           "expect2_block", "expect_batch", "gaussian_quadratic_expectation", "get_phi", "hermite_nodes",
           "price_derivative", "price_integrate", "register_phi", "x"]

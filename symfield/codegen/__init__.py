"""Generated code as real, cached modules: one printer, one module builder.

SymPy expressions are printed to Python source (:mod:`symfield.codegen.printing`), assembled from
named templates under a header naming their generator (:mod:`symfield.codegen.builder`), written to a
cache directory under a content-hashed name with an atomic rename, imported, and their functions
decorated with ``numba.njit(cache=True)``.  A second process finds the same file and Numba's on-disk
cache next to it, so nothing is regenerated or recompiled.  A file whose content does not match its
hash (half-written, edited, corrupt) is rewritten.

Cache location: ``$SYMFIELD_CACHE`` or ``~/.cache/symfield``.
"""
from .builder import IMPORTS, build_module, module_text, registry
from .builder import load as load_module
from .cache import cache_dir, derived_source, module_path
from .printing import HEADER, Printer, helper_source, scalar_source, vector_source

__all__ = ["HEADER", "IMPORTS", "Printer", "build_module", "cache_dir", "derived_source", "helper_source", "load_module",
           "module_path", "module_text", "registry", "scalar_source", "vector_source"]

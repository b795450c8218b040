"""Generated code as real, cached modules.

SymPy expressions are printed to Python source (see :mod:`symfield.codegen.printing`),
written to a cache directory under a content-hashed name with an atomic rename, imported,
and their functions decorated with ``numba.njit(cache=True)``.  A second process finds the
same file and Numba's on-disk cache next to it, so nothing is regenerated or recompiled.
A file whose content does not match its hash (half-written, edited, corrupt) is rewritten.

Cache location: ``$SYMFIELD_CACHE`` or ``~/.cache/symfield``.
"""
from .cache import cache_dir, load_module, module_path
from .printing import HEADER, helper_source, scalar_source

__all__ = ["HEADER", "cache_dir", "helper_source", "load_module", "module_path", "scalar_source"]

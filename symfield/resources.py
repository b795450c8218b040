"""Sizes known before allocation: a memory limit and the checks every entry point makes against it.

The limit is, in order of precedence: :func:`set_memory_limit`, the environment variable
``SYMFIELD_MEMORY_LIMIT`` (bytes, or a size such as "8GB", "512MiB"), the available memory
(``MemAvailable`` of /proc/meminfo, else ``os.sysconf``), else no limit.  An estimate above it raises
:class:`~symfield.errors.ResourceError` naming the estimate, the limit and the argument to change.
"""
from __future__ import annotations

import math
import numbers
import os
import re

from .errors import ResourceError, SpecError

ENV = "SYMFIELD_MEMORY_LIMIT"
#: bound on iteration counts (e.g. ``length_map(steps=...)``)
MAX_STEPS = 10 ** 7
GiB = 2 ** 30
_UNITS = {"": 1, "b": 1, "k": 10 ** 3, "kb": 10 ** 3, "m": 10 ** 6, "mb": 10 ** 6, "g": 10 ** 9, "gb": 10 ** 9,
          "t": 10 ** 12, "tb": 10 ** 12, "kib": 2 ** 10, "mib": 2 ** 20, "gib": 2 ** 30, "tib": 2 ** 40}
_override: float | None = None


def parse_size(value, name: str = ENV) -> float:
    """Bytes of ``value``: a number or a string like "8GB", "1.5 GiB", "4096"."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        size = float(value)
    else:
        match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([a-zA-Z]*)\s*", str(value))
        unit = match.group(2).lower() if match else None
        if unit not in _UNITS:
            raise SpecError(f"{name} must be a size in bytes or like '8GB'/'512MiB', got {value!r}")
        try:
            size = float(match.group(1)) * _UNITS[unit]
        except ValueError:
            raise SpecError(f"{name} must be a size in bytes or like '8GB'/'512MiB', got {value!r}") from None
    if not size > 0:
        raise SpecError(f"{name} must be a positive size, got {value!r}")
    return size


def set_memory_limit(limit=None) -> None:
    """Set the memory limit (bytes or a size string); ``None`` returns to the environment/default."""
    global _override
    _override = None if limit is None else parse_size(limit, "limit")


def available_memory() -> float:
    """Available memory in bytes (MemAvailable, else free pages by sysconf), inf if unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return float(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return math.inf


def memory_limit() -> float:
    """The memory limit in bytes (see the module docstring for its precedence)."""
    if _override is not None:
        return _override
    env = os.environ.get(ENV)
    if env:
        return parse_size(env)
    return available_memory()


def _gib(nbytes: float) -> str:
    return f"{nbytes / GiB:.3g} GiB"


def check_memory(nbytes: float, what: str, argument: str) -> None:
    """Raise ResourceError if the estimate ``nbytes`` for ``what`` exceeds :func:`memory_limit`."""
    limit = memory_limit()
    if not nbytes <= limit:
        raise ResourceError(f"{what} would need about {_gib(nbytes)}, above the memory limit of {_gib(limit)} "
                            f"({ENV} or symfield.resources.set_memory_limit); reduce {argument}")


def check_steps(name: str, steps, maximum: int = MAX_STEPS, bytes_per_step: int = 8) -> None:
    """Bound an iteration count: SpecError naming ``name`` above ``maximum``, then the memory of its output."""
    if isinstance(steps, numbers.Real) and not isinstance(steps, bool) and steps > maximum:
        raise SpecError(f"{name} must be at most {maximum:.0e} (iteration count bound), got {steps!r} "
                        f"(about {_gib(float(steps) * bytes_per_step)} of output)")
    if isinstance(steps, numbers.Real) and not isinstance(steps, bool) and steps > 0:
        check_memory(float(steps) * bytes_per_step, f"{name}={steps!r}", name)


__all__ = ["MAX_STEPS", "available_memory", "check_memory", "check_steps", "memory_limit", "parse_size",
           "set_memory_limit"]

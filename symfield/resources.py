"""Sizes known before allocation: memory and time limits and the checks every entry point makes against them.

The memory limit is, in order of precedence: :func:`set_memory_limit`, the environment variable
``SYMFIELD_MEMORY_LIMIT`` (bytes, or a size such as "8GB", "512MiB"), the available memory
(``MemAvailable`` of /proc/meminfo, else ``os.sysconf``), else no limit.  The time limit is
:func:`set_time_limit`, else ``SYMFIELD_TIME_LIMIT`` (seconds, or "90s", "10min", "2h"), else none.
An estimate above a limit raises :class:`~symfield.errors.ResourceError` naming the estimate, the limit
and the argument to change.

Time is estimated by a deliberately simple cost model: the entry point counts its floating-point
operations (dominant loops only) and :func:`check_time` divides them by :data:`RATE`, a single-core
rate for this code's compiled kernels (checked against a timed mean_field within a factor 30 by
tests/test_resources.py).  It is an order of
magnitude, meant to refuse a call that would run for hours, not to predict seconds.
"""
from __future__ import annotations

import math
import numbers
import os
import re

from .errors import ResourceError, SpecError

ENV = "SYMFIELD_MEMORY_LIMIT"
TIME_ENV = "SYMFIELD_TIME_LIMIT"
#: floating-point operations per second assumed by the time estimates (see the module docstring)
RATE = 1e9
#: bound on iteration counts (e.g. ``length_map(steps=...)``)
MAX_STEPS = 10 ** 7
GiB = 2 ** 30
_UNITS = {"": 1, "b": 1, "k": 10 ** 3, "kb": 10 ** 3, "m": 10 ** 6, "mb": 10 ** 6, "g": 10 ** 9, "gb": 10 ** 9,
          "t": 10 ** 12, "tb": 10 ** 12, "kib": 2 ** 10, "mib": 2 ** 20, "gib": 2 ** 30, "tib": 2 ** 40}
_override: float | None = None
_time_override: float | None = None
_TIME_UNITS = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600, "d": 86400}


def _parse_amount(value, name: str, units: dict, examples: str) -> float:
    """A positive amount given as a number or a string "<number><unit>" with a unit of ``units``."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        amount = float(value)
    else:
        match = re.fullmatch(r"\s*([0-9.eE+]+)\s*([a-zA-Z]*)\s*", str(value))
        try:
            amount = float(match.group(1)) * units[match.group(2).lower()]
        except (AttributeError, KeyError, ValueError):
            raise SpecError(f"{name} must be a number or like {examples}, got {value!r}") from None
    if not amount > 0:
        raise SpecError(f"{name} must be positive, got {value!r}")
    return amount


def parse_size(value, name: str = ENV) -> float:
    """Bytes of ``value``: a number or a string like "8GB", "1.5 GiB", "4096"."""
    return _parse_amount(value, name, _UNITS, "'8GB'/'512MiB' (bytes)")


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


def parse_seconds(value, name: str = TIME_ENV) -> float:
    """Seconds of ``value``: a number or a string like "90", "90s", "10min", "2h"."""
    return _parse_amount(value, name, _TIME_UNITS, "'90s'/'10min'/'2h' (seconds)")


def set_time_limit(limit=None) -> None:
    """Set the time limit (seconds or a string like "10min"); ``None`` returns to the environment/default."""
    global _time_override
    _time_override = None if limit is None else parse_seconds(limit, "limit")


def time_limit() -> float:
    """The time limit in seconds: :func:`set_time_limit`, else ``SYMFIELD_TIME_LIMIT``, else inf."""
    if _time_override is not None:
        return _time_override
    env = os.environ.get(TIME_ENV)
    return parse_seconds(env) if env else math.inf


def check_time(operations: float, what: str, argument: str) -> float:
    """Raise ResourceError if ``operations`` / :data:`RATE` seconds for ``what`` exceed :func:`time_limit`;
    return the estimate in seconds."""
    seconds = float(operations) / RATE
    limit = time_limit()
    if not seconds <= limit:
        raise ResourceError(f"{what} would take about {seconds:.3g} s (estimate: {float(operations):.3g} operations "
                            f"at {RATE:.0e}/s), above the time limit of {limit:.3g} s ({TIME_ENV} or "
                            f"symfield.set_time_limit); reduce {argument}")
    return seconds


def check_steps(name: str, steps, maximum: int = MAX_STEPS, bytes_per_step: int = 8) -> None:
    """Bound an iteration count: SpecError naming ``name`` above ``maximum``, then the memory of its output."""
    if isinstance(steps, numbers.Real) and not isinstance(steps, bool) and steps > maximum:
        raise SpecError(f"{name} must be at most {maximum:.0e} (iteration count bound), got {steps!r} "
                        f"(about {_gib(float(steps) * bytes_per_step)} of output)")
    if isinstance(steps, numbers.Real) and not isinstance(steps, bool) and steps > 0:
        check_memory(float(steps) * bytes_per_step, f"{name}={steps!r}", name)


__all__ = ["MAX_STEPS", "RATE", "available_memory", "check_memory", "check_steps", "check_time", "memory_limit",
           "parse_seconds", "parse_size", "set_memory_limit", "set_time_limit", "time_limit"]

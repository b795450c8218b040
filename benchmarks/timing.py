"""Shared timing helper of the benchmark scripts (run them as ``python benchmarks/<script>.py``)."""
import time


def best_time(fn, repeat: int):
    """Best wall time of ``repeat`` calls after one warm-up call (compilation, caches); and the last result."""
    fn()
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out

"""Single-threaded BLAS around compiled parallel loops.

After a multi-threaded BLAS call, OpenBLAS's worker threads keep spinning for a while; a Numba
``prange`` loop started in that window shares the cores with them and runs at about half speed
(measured: 4.3 ms -> 8.4 ms per erf block, P = 2000, 2 cores).  The small matrix products of the
theory (input Gram matrices) are therefore run on one BLAS thread.
"""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=None)
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def single_threaded():
    """Context manager limiting BLAS to one thread (cheap: the library scan is done once)."""
    return _controller().limit(limits=1, user_api="blas")

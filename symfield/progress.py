"""Progress display for long loops: one helper, used by every loop that can run for seconds.

``progress_bar(total, desc, enabled)`` returns a context-managed bar with ``update(n)`` and
``set_postfix_str(s)``.  It draws a tqdm bar on stderr only when ``enabled`` is true *and*
stderr is a terminal (so nothing writes carriage returns into a log file); otherwise, when
``enabled`` is true, it writes at most one plain line per ``log_every`` seconds (newline-terminated)
and a final line; when ``enabled`` is false it does nothing.
``enabled=None`` means "on if stderr is a terminal".
"""
from __future__ import annotations

import sys
import time


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class _LineProgress:
    """Newline-only status lines for logs (no carriage returns)."""

    def __init__(self, total, desc, stream, log_every):
        self.total, self.desc, self.stream, self.log_every = total, desc, stream, log_every
        self.n, self.postfix = 0, ""
        self._t0 = self._last = time.perf_counter()

    def update(self, n=1):
        self.n += n
        now = time.perf_counter()
        if now - self._last >= self.log_every:
            self._last = now
            self._write(now)

    def set_postfix_str(self, s, refresh=True):
        self.postfix = str(s)

    def _write(self, now):
        of = f"/{self.total}" if self.total is not None else ""
        extra = f", {self.postfix}" if self.postfix else ""
        print(f"{self.desc}: {self.n}{of} ({now - self._t0:.1f} s{extra})", file=self.stream, flush=True)

    def close(self):
        self._write(time.perf_counter())

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class _NoProgress:
    n = 0

    def update(self, n=1):
        self.n += n

    def set_postfix_str(self, s, refresh=True):
        pass

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def progress_bar(total: int | None = None, desc: str = "", enabled: bool | None = None, *,
                 stream=None, log_every: float = 10.0):
    """A progress bar for a loop of ``total`` steps (see the module docstring for when it draws)."""
    if enabled is not None and not isinstance(enabled, (bool, int)):
        from .errors import SpecTypeError
        raise SpecTypeError(f"progress must be True, False or None, got {enabled!r}")
    stream = sys.stderr if stream is None else stream
    tty = _is_tty(stream)
    if enabled is None:
        enabled = tty
    if not enabled:
        return _NoProgress()
    if tty:
        try:
            from tqdm.auto import tqdm
        except ImportError:  # tqdm is a dependency, but degrade to lines rather than fail
            return _LineProgress(total, desc, stream, log_every)
        return tqdm(total=total, desc=desc, file=stream, leave=False, dynamic_ncols=True)
    return _LineProgress(total, desc, stream, log_every)

"""Independent tasks (ensemble chunks, HMC chains, validation widths, sweep points) on one or many processes.

    from symfield import parallel
    results = parallel.map_tasks(fn, tasks, scheduler="local:2", checkpoint="out/sweep.ckpt")

``scheduler`` (every public ensemble / sweep function takes it and passes it here):

    None          the process default: in-process, unless :func:`using` / :func:`set_default` chose another
    "serial"      in-process, one task after the other (no Dask import)
    "local:N"     a ``dask.distributed.LocalCluster`` of N worker processes with one thread each, started once
                  per process and reused (:func:`close` shuts it down)
    "tcp://h:p"   an existing Dask scheduler (``dask scheduler`` + ``dask worker ... --nthreads 1``)
    a Client      a ``dask.distributed.Client`` the caller made

Results do not depend on where a task runs: every task carries its own seeds (the nested seed map of
:mod:`symfield.simulate.draws`), results are returned in task order and reduced in that order, so a
run on k workers is bit-identical to the serial run.  A worker that dies costs its tasks a retry
(Dask reschedules them on the others; ``retries`` counts failures raised by a task).

``checkpoint``: a directory; each finished task is written there as one file (its result and a
fingerprint of the function and task).  A rerun with the same directory loads the finished tasks and
runs only the others; a file written for a different task raises (never a silently mixed result).

A sweep (threshold scans, phase diagrams) is a list of grid points mapped by one call::

    def point(args):                          # module-level: workers import it
        g, kappa, seed = args
        return feature_learning(spec(g), X, Y, kappa=kappa, seed=seed).order_parameter
    grid = [(g, kappa, seed) for g in gs for kappa in kappas]
    values = parallel.map_tasks(point, grid, scheduler=scheduler, checkpoint=out / "grid")
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import pickle
import re
from pathlib import Path

import numpy as np

from .errors import NotSupportedError, SpecError, SpecTypeError
from .progress import progress_bar

SCHEDULER_HELP = ("where independent tasks run: 'serial' (default), 'local:N' (N local worker processes) "
                  "or the address of a Dask scheduler, tcp://host:port")

_LOCAL = re.compile(r"local:(\d+)\Z")
_ADDRESS = re.compile(r"(tcp|tls|inproc|ucx|ws|wss)://\S+\Z")
_default = [None]
_clients: dict = {}  # scheduler string -> (Client, LocalCluster or None), one per process


def check_scheduler(scheduler):
    """The scheduler argument, validated (module docstring); raises SpecError naming ``scheduler``."""
    if scheduler is None or scheduler == "serial":
        return scheduler
    if isinstance(scheduler, str):
        m = _LOCAL.match(scheduler)
        if m:
            if int(m.group(1)) < 1:
                raise SpecError(f"scheduler 'local:N' needs N >= 1 workers, got {scheduler!r}")
            return scheduler
        if _ADDRESS.match(scheduler):
            return scheduler
        raise SpecError(f"scheduler must be None, 'serial', 'local:N' or a scheduler address 'tcp://host:port', "
                        f"got {scheduler!r}")
    if type(scheduler).__name__ == "Client" and hasattr(scheduler, "submit"):
        return scheduler
    raise SpecTypeError(f"scheduler must be None, a string ('serial', 'local:N', 'tcp://host:port') or a "
                        f"dask.distributed Client, got {type(scheduler).__name__}")


def set_default(scheduler) -> None:
    """Make ``scheduler`` the one used when a function is called with ``scheduler=None``."""
    _default[0] = check_scheduler(scheduler)


@contextlib.contextmanager
def using(scheduler):
    """Context in which ``scheduler=None`` means ``scheduler``."""
    previous = _default[0]
    set_default(scheduler)
    try:
        yield
    finally:
        _default[0] = previous


def resolve(scheduler):
    """None (in-process) or a Dask Client for ``scheduler`` (the process default when None)."""
    scheduler = check_scheduler(scheduler)
    if scheduler is None:
        scheduler = _default[0]
    if scheduler is None or scheduler == "serial":
        return None
    if not isinstance(scheduler, str):
        return scheduler
    if scheduler in _clients and _clients[scheduler][0].status == "running":
        return _clients[scheduler][0]
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:  # pragma: no cover - the extra is installed in CI
        raise NotSupportedError(f"scheduler={scheduler!r} needs Dask: pip install 'symfield[distributed]'") from None
    m = _LOCAL.match(scheduler)
    cluster = None
    if m:
        import logging
        # one thread per worker, and no Numba / BLAS threads inside it: the workers are the parallelism
        cluster = LocalCluster(n_workers=int(m.group(1)), threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address=":0", silence_logs=logging.ERROR,
                               env={"NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                                    "MKL_NUM_THREADS": "1"})
        client = Client(cluster)
    else:
        try:
            client = Client(scheduler, timeout="10s")
        except OSError as err:
            raise SpecError(f"scheduler={scheduler!r}: cannot connect ({err})") from None
    _clients[scheduler] = (client, cluster)
    return client


def workers(scheduler=None) -> int:
    """Number of worker threads that run tasks of ``scheduler`` (1 in-process)."""
    client = resolve(scheduler)
    if client is None:
        return 1
    return max(1, sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values()))


def close() -> None:
    """Shut down the local clusters and clients this process started."""
    while _clients:
        _, (client, cluster) = _clients.popitem()
        client.close()
        if cluster is not None:
            cluster.close()


def split(n: int, parts: int) -> list[tuple[int, int]]:
    """``range(n)`` cut into ``min(parts, n)`` contiguous (start, stop) pieces of nearly equal size."""
    parts = max(1, min(int(parts), n))
    edges = [n * i // parts for i in range(parts + 1)]
    return list(zip(edges[:-1], edges[1:]))


def _token(obj, h) -> None:
    """Feed a content description of ``obj`` to the hash ``h``: arrays by their bytes, dataclasses (a
    NetworkSpec) by their declared fields (not their caches), containers recursively."""
    if isinstance(obj, np.ndarray):
        h.update(f"array{obj.dtype}{obj.shape}".encode())
        h.update(np.ascontiguousarray(obj).tobytes())
    elif isinstance(obj, (tuple, list)):
        h.update(f"{type(obj).__name__}{len(obj)}(".encode())
        for item in obj:
            _token(item, h)
        h.update(b")")
    elif isinstance(obj, dict):
        _token(sorted(obj.items(), key=lambda kv: repr(kv[0])), h)
    elif isinstance(obj, np.random.SeedSequence):
        _token(("SeedSequence", obj.entropy, tuple(obj.spawn_key)), h)
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        _token((type(obj).__qualname__, [getattr(obj, f.name) for f in dataclasses.fields(obj)]), h)
    elif obj is None or isinstance(obj, (bool, int, float, complex, str, bytes, np.generic)):
        h.update(repr(obj).encode())
    else:
        try:
            h.update(pickle.dumps(obj, protocol=4))
        except Exception:
            raise SpecError(f"checkpoint: cannot fingerprint a task part of type {type(obj).__name__}") from None


def _fingerprint(fn, task) -> str:
    h = hashlib.sha256(f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}".encode())
    _token(task, h)
    return h.hexdigest()


class _Checkpoint:
    """One file ``task-<index>.pkl`` per finished task in ``directory``, holding (fingerprint, result)."""

    def __init__(self, directory, fn, tasks):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.prints = [_fingerprint(fn, t) for t in tasks]

    def path(self, i: int) -> Path:
        return self.dir / f"task-{i:06d}.pkl"

    def load(self) -> dict:
        done = {}
        for i, fp in enumerate(self.prints):
            p = self.path(i)
            if p.exists():
                with open(p, "rb") as f:
                    stored, result = pickle.load(f)
                if stored != fp:
                    raise SpecError(f"checkpoint {p} was written by a different function or task; pass an empty "
                                    "checkpoint directory for a new run")
                done[i] = result
        return done

    def save(self, i: int, result) -> None:
        tmp = self.path(i).with_suffix(f".tmp{os.getpid()}")
        with open(tmp, "wb") as f:
            pickle.dump((self.prints[i], result), f, protocol=4)
        os.replace(tmp, self.path(i))  # atomic: an interrupted write leaves no half file


def run_tasks(fn, tasks, *, scheduler=None, checkpoint=None, progress=False, desc="tasks", retries: int = 2):
    """Yield ``(index, fn(tasks[index]))`` as tasks finish (any order); see :func:`map_tasks`."""
    tasks = list(tasks)
    ckpt = None if checkpoint is None else _Checkpoint(checkpoint, fn, tasks)
    done = {} if ckpt is None else ckpt.load()
    yield from done.items()
    todo = [i for i in range(len(tasks)) if i not in done]
    client = resolve(scheduler)
    with progress_bar(len(todo), desc, progress) as bar:
        if client is None:
            results = ((i, fn(tasks[i])) for i in todo)
        else:
            from dask.distributed import as_completed
            futures = {client.submit(fn, tasks[i], pure=False, retries=retries): i for i in todo}
            results = ((futures[fut], fut.result()) for fut in as_completed(futures))
        try:
            for i, result in results:
                if ckpt is not None:
                    ckpt.save(i, result)
                bar.update(1)
                yield i, result
        finally:  # a failed task or an abandoned generator: stop what is still queued
            if client is not None:
                client.cancel(list(futures))


def map_tasks(fn, tasks, *, scheduler=None, checkpoint=None, progress=False, desc="tasks", retries: int = 2) -> list:
    """``[fn(t) for t in tasks]``, the tasks run where ``scheduler`` says (module docstring).

    ``fn`` must be importable by the workers (a module-level function) unless in-process; ``checkpoint``:
    directory of finished tasks (resumes an interrupted run); ``progress``: a bar over the tasks."""
    tasks = list(tasks)
    out = [None] * len(tasks)
    for i, result in run_tasks(fn, tasks, scheduler=scheduler, checkpoint=checkpoint, progress=progress,
                               desc=desc, retries=retries):
        out[i] = result
    return out

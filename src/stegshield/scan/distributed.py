"""Run a scan on a Dask distributed cluster (``scan --scheduler ADDRESS`` / ``--cluster local``).

Files are sent to the workers in small batches, at most a few batches per worker thread in
flight, and results stream back as batches finish. Workers read the files themselves, so
the paths must be visible to them under the same names (a shared file system), and
stegshield must be installed in the workers' environment. Each worker process builds its
detector suite once and reuses it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from itertools import islice
from pathlib import Path
from typing import Any

from ..runtime import tune_malloc
from .scanner import Scanner, ScanOptions, ScanResult

__all__ = ["BATCH", "scan_distributed"]

#: Files per task: large enough to hide the scheduler's per-task cost (~1 ms), small enough
#: to stream results and balance load.
BATCH = 8
_SCANNERS: dict[ScanOptions, Scanner] = {}
_LOCK = threading.Lock()


def _scanner(options: ScanOptions) -> Scanner:
    with _LOCK:
        sc = _SCANNERS.get(options)
        if sc is None:
            tune_malloc()
            sc = _SCANNERS[options] = Scanner(options)
        return sc


def scan_batch(paths: Sequence[str], options: ScanOptions) -> list[ScanResult]:
    """Worker-side task: scan ``paths`` with a cached scanner."""
    sc = _scanner(options)
    return [sc.scan_path(p) for p in paths]


def _batches(paths: Iterable[str | Path], size: int) -> Iterator[list[str]]:
    it = iter(paths)
    while chunk := [str(p) for p in islice(it, size)]:
        yield chunk


def scan_distributed(paths: Iterable[str | Path], options: ScanOptions, *,
                     scheduler: str | None = None, local_workers: int | None = None,
                     client: Any = None, batch: int = BATCH,
                     processes: bool = True) -> Iterator[ScanResult]:
    """Scan ``paths`` on a cluster, yielding results as batches complete.

    Give an existing ``client``, a ``scheduler`` address (``tcp://host:8786``), or
    ``local_workers`` to start a throw-away ``LocalCluster`` (one thread per worker).
    """
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("Dask is not installed: pip install 'dask[distributed]'") from exc
    with ExitStack() as stack:
        if client is None:
            if scheduler:
                client = stack.enter_context(Client(scheduler, timeout="30s"))
            else:
                cluster = stack.enter_context(LocalCluster(
                    n_workers=local_workers or 1, threads_per_worker=1, processes=processes,
                    dashboard_address=None, silence_logs=logging.ERROR))
                client = stack.enter_context(Client(cluster))
        threads = sum(client.nthreads().values()) or 1
        window = max(2, 3 * threads)
        chunks = _batches(paths, batch)
        pending: dict[Any, list[str]] = {}

        def submit() -> Any | None:
            chunk = next(chunks, None)
            if chunk is None:
                return None
            fut = client.submit(scan_batch, chunk, options, pure=False)
            pending[fut] = chunk
            return fut

        first = [f for f in (submit() for _ in range(window)) if f is not None]
        ac = as_completed(first)
        for fut in ac:
            chunk = pending.pop(fut)
            try:
                results = fut.result()
            except Exception as exc:  # a worker died or the task failed
                msg = f"cluster task failed: {type(exc).__name__}: {exc}".splitlines()[0]
                results = [ScanResult(path=p, verdict="error", error=msg) for p in chunk]
            fut.release()
            nxt = submit()
            if nxt is not None:
                ac.add(nxt)
            yield from results

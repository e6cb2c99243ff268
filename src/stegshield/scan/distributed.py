"""Run a scan on a Dask distributed cluster (``scan --scheduler ADDRESS`` / ``--cluster local``).

Files are sent to the workers in small batches, at most a few batches per worker thread in
flight, and results stream back as batches finish. Workers read the files themselves, so
the paths must be visible to them under the same names (a shared file system), and
stegshield must be installed in the workers' environment. Each worker process builds its
detector suite once and reuses it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import StegshieldError
from ..runtime import tune_malloc

if TYPE_CHECKING:  # NumPy loads when a scan runs (the scan command imports ClusterError)
    from .scanner import Scanner, ScanOptions, ScanResult

__all__ = ["BATCH", "ClusterError", "scan_distributed"]


class ClusterError(StegshieldError, RuntimeError):
    """The Dask cluster could not be reached, or went away during the scan (one line)."""


#: How long to try to reach a scheduler.
CONNECT_TIMEOUT = "30s"
#: Seconds between checks that the client is still connected while results are awaited.
_POLL = 2.0

#: Files per task: large enough to hide the scheduler's per-task cost (~1 ms), small enough
#: to stream results and balance load.
BATCH = 8
_SCANNERS: dict[ScanOptions, Scanner] = {}
_LOCK = threading.Lock()


def _scanner(options: ScanOptions) -> Scanner:
    from .scanner import Scanner

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
    """The paths as given, ``size`` at a time."""
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
        from dask.distributed import Client, LocalCluster, wait
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("Dask is not installed: pip install 'dask[distributed]'") from exc
    from .scanner import ScanResult

    with ExitStack() as stack:
        if client is None:
            if scheduler:
                try:
                    client = stack.enter_context(Client(scheduler, timeout=CONNECT_TIMEOUT))
                except (OSError, ValueError, TypeError) as exc:  # unreachable, bad address
                    raise ClusterError(f"cannot reach the Dask scheduler {scheduler}: "
                                       f"{str(exc).splitlines()[0] if str(exc) else exc!r}"
                                       ) from None
            else:
                cluster = stack.enter_context(LocalCluster(
                    n_workers=local_workers or 1, threads_per_worker=1, processes=processes,
                    dashboard_address=None, silence_logs=logging.ERROR))
                client = stack.enter_context(Client(cluster))
        threads = sum(client.nthreads().values()) or 1
        window = max(2, 3 * threads)
        chunks = _batches(paths, batch)
        pending: dict[Any, list[str]] = {}

        def submit() -> None:
            chunk = next(chunks, None)
            if chunk is not None:  # absolute paths: workers may run in another folder
                absolute = [os.path.abspath(p) for p in chunk]
                pending[client.submit(scan_batch, absolute, options, pure=False)] = chunk

        for _ in range(window):
            submit()
        while pending:
            try:
                done, _ = wait(list(pending), timeout=_POLL, return_when="FIRST_COMPLETED")
            except TimeoutError:
                if client.status not in ("running", "connecting"):  # the scheduler is gone
                    left = sum(len(c) for c in pending.values()) + sum(len(c) for c in chunks)
                    raise ClusterError(f"lost the Dask scheduler ({client.status}); "
                                       f"{left} file(s) not scanned") from None
                continue
            for fut in done:
                chunk = pending.pop(fut)
                try:
                    results = fut.result()
                except Exception as exc:  # a worker died or the task failed
                    msg = f"cluster task failed: {type(exc).__name__}: {exc}".splitlines()[0]
                    results = [ScanResult(path=p, verdict="error", error=msg) for p in chunk]
                fut.release()
                submit()
                for r, given in zip(results, chunk, strict=True):
                    r.path = given  # shown as the user gave it
                    yield r

"""Watch a directory and scan images as they arrive (``stegshield watch``).

* File-system events come from watchdog (inotify on Linux); each path is **debounced**: it is
  scanned once it has had no event for ``debounce`` seconds and its size and mtime are stable,
  so a file being copied is scanned once, complete.
* Temporary names (``.name``, ``name~``, ``*.tmp``, ``*.part``, ``*.crdownload``, ``*.swp``)
  are ignored; an unchanged file (same size and mtime) is not rescanned.
* Alerts go to a JSON-lines log (written at once), a webhook (POST of the JSON; at most
  64 KiB of its reply is read) and/or a command, the last two from a separate thread so a
  slow webhook never delays scanning or the log. Bad files are reported and skipped; FIFOs
  and devices are never opened.
* SIGINT / SIGTERM stop it cleanly: pending alerts are sent first, within a timeout; alerts
  still unsent then are counted in a one-line error (exit 2). A watched directory that
  disappears stops the watch with an error.
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..cli_support import FiniteFloatRange
from .commands import (
    calibration_option,
    check_suite,
    detector_option,
    fail,
    fpr_option,
    make_options,
    max_pixels_option,
    threshold_option,
)
from .loader import IMAGE_EXTENSIONS

if TYPE_CHECKING:  # NumPy / SciPy load when the command runs
    from .scanner import Scanner, ScanResult

__all__ = ["AlertSink", "Watcher", "ignored_name", "watch"]

#: Bytes of a webhook's reply that are read (an endless reply exhausted memory).
_REPLY_BYTES = 65536
_TEMP_SUFFIXES = (".tmp", ".temp", ".part", ".partial", ".crdownload", ".swp", ".download")
_RANK = {"clean": 0, "too_small": 0, "error": 0, "suspicious": 1, "alert": 2}


def ignored_name(path: str | os.PathLike[str]) -> bool:
    """Whether a file name looks temporary, hidden or is not an image."""
    name = Path(path).name
    low = name.lower()
    if not name or name.startswith(".") or name.endswith("~") or low.endswith(_TEMP_SUFFIXES):
        return True
    return Path(low).suffix not in IMAGE_EXTENSIONS


@dataclass
class AlertSink:
    """Where alerts go; every channel is optional."""

    log: Path | None = None
    webhook: str | None = None
    command: str | None = None
    webhook_timeout: float = 5.0
    command_timeout: float = 60.0
    retries: int = 2
    errors: list[str] = field(default_factory=list)

    @property
    def sends(self) -> bool:
        """Whether alerts go out (webhook, command), which :meth:`send` does off-thread."""
        return bool(self.webhook or self.command)

    def deliver(self, event: dict[str, Any]) -> None:
        """Send one alert event to every configured channel (errors are recorded, not raised)."""
        self.record(event)
        self.send(event)

    def record(self, event: dict[str, Any]) -> None:
        """Append the event to the log (fast and local: done at once, never queued)."""
        if self.log is None:
            return
        try:
            with open(self.log, "a", encoding="utf-8") as f:
                f.write(json.dumps(event, separators=(",", ":")) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            self._error(f"alert log {self.log}: {exc.strerror or exc}")

    def send(self, event: dict[str, Any]) -> None:
        """POST the event to the webhook and run the command (slow: the alert thread)."""
        line = json.dumps(event, separators=(",", ":"))
        if self.webhook:
            self._post(line.encode("utf-8"))
        if self.command:
            self._run(event, line)

    def _error(self, message: str) -> None:
        self.errors.append(message)
        click.echo(f"stegshield: warning: {message}", err=True)

    def _post(self, body: bytes) -> None:
        assert self.webhook is not None
        req = urllib.request.Request(self.webhook, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": "stegshield-watch"})
        for attempt in range(self.retries + 1):
            try:
                with urllib.request.urlopen(req, timeout=self.webhook_timeout) as resp:
                    resp.read(_REPLY_BYTES)  # the reply is not needed: never read it all
                return
            except (urllib.error.URLError, OSError, ValueError) as exc:
                if attempt == self.retries:
                    self._error(f"webhook {self.webhook}: {getattr(exc, 'reason', exc)}")
                else:
                    time.sleep(0.5 * 2 ** attempt)

    def _run(self, event: dict[str, Any], line: str) -> None:
        assert self.command is not None
        path = str(event.get("path", ""))
        argv = [path if a == "{}" else a for a in shlex.split(self.command)]
        env = dict(os.environ, STEGSHIELD_PATH=path,
                   STEGSHIELD_VERDICT=str(event.get("verdict", "")),
                   STEGSHIELD_SCORE=str(event.get("score", "")))
        try:
            proc = subprocess.run(argv, input=line + "\n", text=True, env=env,
                                  timeout=self.command_timeout, capture_output=True,
                                  check=False)
            if proc.returncode != 0:
                self._error(f"--exec exited with status {proc.returncode}")
        except (OSError, subprocess.TimeoutExpired) as exc:
            self._error(f"--exec {argv[0] if argv else ''}: {exc}")


class Watcher:
    """Debounced scanning of new and changed images under ``root``."""

    def __init__(self, root: Path, scanner: Scanner, sink: AlertSink, *,
                 debounce: float = 1.0, recursive: bool = True, min_verdict: str = "alert",
                 on_result: Callable[[ScanResult], None] | None = None) -> None:
        self.root, self.scanner, self.sink = root, scanner, sink
        self.debounce, self.recursive = debounce, recursive
        self.min_rank = _RANK[min_verdict]
        self.on_result = on_result
        self.stop_event = threading.Event()
        self.ready = threading.Event()
        self._pending: dict[str, float] = {}
        self._stat: dict[str, tuple[int, int]] = {}
        self._seen: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()
        self._alerts: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.scanned = 0
        self.alerts = 0
        self.unsent = 0  # alerts queued for the webhook / command and not yet sent

    # -- events -------------------------------------------------------------------------
    def notify(self, path: str) -> None:
        """Record an event on ``path`` (called from the watchdog thread)."""
        if ignored_name(path):
            return
        with self._lock:
            self._pending[path] = time.monotonic()

    def add_existing(self) -> None:
        """Queue every image already present (``--scan-existing``)."""
        pattern = "**/*" if self.recursive else "*"
        for p in sorted(self.root.glob(pattern)):
            if p.is_file():
                self.notify(str(p))

    def _due(self) -> list[str]:
        now = time.monotonic()
        due = []
        with self._lock:
            for path, t in list(self._pending.items()):
                if now - t < self.debounce:
                    continue
                try:
                    st = os.stat(path)
                except OSError:
                    del self._pending[path]  # deleted or moved away meanwhile
                    continue
                if not stat.S_ISREG(st.st_mode):  # a FIFO or device: never opened
                    del self._pending[path]
                    continue
                sig = (st.st_size, st.st_mtime_ns)
                if self._stat.get(path) != sig:  # still growing: wait one more period
                    self._stat[path] = sig
                    self._pending[path] = now
                    continue
                del self._pending[path]
                self._stat.pop(path, None)
                if self._seen.get(path) == sig:
                    continue  # touched, not changed
                self._seen[path] = sig
                due.append(path)
        return due

    # -- work ---------------------------------------------------------------------------
    def scan_due(self) -> int:
        """Scan every path whose debounce period is over; returns how many were scanned."""
        from .scanner import ScanResult

        paths = self._due()
        for path in paths:
            if self.stop_event.is_set():
                break
            try:
                r = self.scanner.scan_path(path)
            except Exception as exc:  # never let one file stop the watcher
                r = ScanResult(path=path, verdict="error", error=f"internal error: {exc}")
            self.scanned += 1
            if self.on_result is not None:
                self.on_result(r)
            if _RANK.get(r.verdict, 0) >= self.min_rank and r.verdict in _RANK:
                self.alerts += 1
                event = {"time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": r.verdict,
                         **r.to_json()}
                self.sink.record(event)
                if self.sink.sends:
                    with self._lock:
                        self.unsent += 1
                    self._alerts.put(event)
        return len(paths)

    def _alert_loop(self) -> None:
        while True:
            event = self._alerts.get()
            if event is None:
                return
            try:
                self.sink.send(event)
            except Exception as exc:  # pragma: no cover - send records its own errors
                click.echo(f"stegshield: warning: alert delivery failed: {exc}", err=True)
            with self._lock:
                self.unsent -= 1

    def run(self, poll: float = 0.1, on_start: Callable[[], None] | None = None) -> None:
        """Watch until :attr:`stop_event` is set (by a signal handler or another thread).

        ``on_start`` is called once the file-system observer is running.
        """
        from watchdog.events import FileSystemEvent, FileSystemEventHandler
        from watchdog.observers import Observer

        watcher = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                if event.is_directory or event.event_type not in (
                        "created", "modified", "moved", "closed"):
                    return
                target = getattr(event, "dest_path", "") or event.src_path
                watcher.notify(os.fsdecode(target))

        observer = Observer()
        observer.schedule(Handler(), str(self.root), recursive=self.recursive)
        observer.daemon = True
        sender = threading.Thread(target=self._alert_loop, name="stegshield-alerts",
                                  daemon=True)
        sender.start()
        observer.start()
        self.ready.set()
        if on_start is not None:
            on_start()
        try:
            while not self.stop_event.wait(poll):
                self.scan_due()
                if not self.root.is_dir():
                    raise WatchError(f"{self.root}: the watched directory is gone")
        finally:
            observer.stop()
            observer.join(timeout=5)
            self._alerts.put(None)
            sender.join(timeout=self.sink.webhook_timeout * (self.sink.retries + 1) + 5)


class WatchError(RuntimeError):
    """The watch cannot go on (one line)."""


def _print_result(r: ScanResult) -> None:
    from .output import printable_path

    score = f"{r.score:.4f}" if r.score is not None else "-"  # as scan shows it
    extra = f"  ({r.error})" if r.error else ""
    click.echo(f"{r.verdict:<10} {score:>6} {printable_path(r.path)}{extra}")


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--webhook", metavar="URL", help="POST each alert (JSON) to this URL.")
@click.option("--exec", "command", metavar="CMD",
              help="Run CMD for each alert (no shell; {} is replaced by the image path; the "
              "alert JSON is on stdin; $STEGSHIELD_PATH, $STEGSHIELD_VERDICT and $STEGSHIELD_SCORE "
              "are set).")
@click.option("--log", "log", type=click.Path(dir_okay=False, path_type=Path),
              help="Append each alert as a JSON line to this file.")
@click.option("--debounce", type=FiniteFloatRange(min=0), default=1.0, show_default=True,
              help="Seconds a file must be quiet (and its size stable) before it is scanned.")
@click.option("--no-recursive", is_flag=True, help="Watch the top directory only.")
@click.option("--scan-existing", is_flag=True, help="Also scan the images already there.")
@click.option("--min-verdict", type=click.Choice(["alert", "suspicious"]), default="alert",
              show_default=True, help="Lowest verdict that raises an alert.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing per scanned file.")
@detector_option
@fpr_option
@threshold_option
@calibration_option
@max_pixels_option
def watch(directory: Path, webhook: str | None, command: str | None, log: Path | None,
          debounce: float, no_recursive: bool, scan_existing: bool, min_verdict: str,
          quiet: bool, detector: str, fpr: float | None, threshold: float | None,
          calibration: Path | None, max_pixels: int) -> None:
    """Scan new and changed images in DIRECTORY as they arrive; raise alerts.

    Runs until Ctrl-C or SIGTERM. Without --log, --webhook or --exec, alerts are printed only.
    """
    if webhook and not webhook.startswith(("http://", "https://")):
        fail("--webhook must be an http:// or https:// URL")
    if command and not shlex.split(command):
        fail("--exec needs a command")
    if log is not None:  # alerts that cannot be logged would only be warned about, one by one
        try:
            with open(log, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            fail(f"--log {log}: {exc.strerror or exc}")
    from ..runtime import tune_malloc

    scanner = check_suite(make_options(detector, fpr, threshold, max_pixels,
                                       calibration=calibration))
    tune_malloc()
    sink = AlertSink(log=log, webhook=webhook, command=command)
    watcher = Watcher(directory, scanner, sink, debounce=debounce,
                      recursive=not no_recursive, min_verdict=min_verdict,
                      on_result=None if quiet else _print_result)

    def stop(signum: int, frame: object) -> None:
        watcher.stop_event.set()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    if scan_existing:
        watcher.add_existing()
    try:
        watcher.run(on_start=lambda: click.echo(
            f"stegshield: watching {directory} (detector {scanner.suite.mode}; "
            f"{scanner.thresholds.describe()}); Ctrl-C to stop", err=True))
    except WatchError as exc:
        fail(f"{exc}; scanned {watcher.scanned}, alerts {watcher.alerts}")
    click.echo(f"stegshield: stopped; scanned {watcher.scanned}, alerts {watcher.alerts}",
               err=True)
    if watcher.unsent:  # the log has them; the webhook / command never saw them
        fail(f"{watcher.unsent} alert(s) not sent to the webhook/--exec before the shutdown "
             "deadline" + (f" (they are in {log})" if log is not None else ""))
    sys.exit(0)

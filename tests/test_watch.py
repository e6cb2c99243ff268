"""``stegshield watch``: debouncing, alerts (log, webhook, command), bad files, clean stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("watchdog")

from stegshield.analysis.synthetic import lsb_replace, synthetic_cover
from stegshield.scan import Scanner, ScanOptions
from stegshield.scan.watch import AlertSink, Watcher, ignored_name


def _cover(seed: int) -> np.ndarray:
    return synthetic_cover(np.random.default_rng(seed), (128, 128), channels=3)


def _save_stego(path: Path, seed: int = 1) -> None:
    Image.fromarray(lsb_replace(_cover(seed), 0.6, np.random.default_rng(seed))).save(path)


def _wait(cond: Callable[[], bool], timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(ScanOptions(detector="classical"))


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, object]]]]:
    received: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_port}/hook", received
    server.shutdown()


def test_ignored_names() -> None:
    assert ignored_name("/x/.hidden.png") and ignored_name("/x/a.png~")
    assert ignored_name("/x/a.png.part") and ignored_name("/x/a.txt")
    assert not ignored_name("/x/photo.JPG") and not ignored_name("/x/scan.tiff")


def test_debounce_and_unchanged_files(tmp_path: Path, scanner: Scanner) -> None:
    w = Watcher(tmp_path, scanner, AlertSink(), debounce=0.1)
    p = tmp_path / "a.png"
    Image.fromarray(_cover(2)).save(p)
    w.notify(str(p))
    w.notify(str(p))
    assert w.scan_due() == 0  # still inside the debounce period
    time.sleep(0.15)
    w.scan_due()  # first look records size/mtime (stability check)
    time.sleep(0.15)
    assert w.scan_due() + w.scanned >= 1
    time.sleep(0.15)
    w.scan_due()
    assert w.scanned == 1
    w.notify(str(p))  # touched but unchanged: not rescanned
    time.sleep(0.15)
    w.scan_due()
    time.sleep(0.15)
    w.scan_due()
    assert w.scanned == 1


def test_watch_raises_alerts_and_survives_bad_files(
        tmp_path: Path, scanner: Scanner, webhook: tuple[str, list[dict[str, object]]]) -> None:
    url, received = webhook
    watched = tmp_path / "in"
    (watched / "sub").mkdir(parents=True)
    log = tmp_path / "alerts.jsonl"
    marker = tmp_path / "exec.txt"
    cmd = (f"{sys.executable} -c \"import sys,os; open(sys.argv[1],'a').write("
           f"os.environ['STEGSHIELD_VERDICT'] + ' ' + sys.argv[2] + chr(10))\" "
           f"{marker} {{}}")
    sink = AlertSink(log=log, webhook=url, command=cmd)
    results: list[str] = []
    w = Watcher(watched, scanner, sink, debounce=0.2,
                on_result=lambda r: results.append(f"{Path(r.path).name}:{r.verdict}"))
    t = threading.Thread(target=w.run, kwargs={"poll": 0.05}, daemon=True)
    t.start()
    try:
        assert w.ready.wait(10)
        (watched / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        Image.fromarray(_cover(3)).save(watched / "clean.png")
        (watched / ".partial.png").write_bytes(b"ignored")
        _save_stego(watched / "sub" / "stego.png")
        assert _wait(lambda: len(received) >= 1 and marker.exists()), results
        assert _wait(lambda: len(results) >= 3), results
    finally:
        w.stop_event.set()
        t.join(timeout=15)
    assert not t.is_alive()
    assert sorted(results) == ["broken.png:error", "clean.png:clean", "stego.png:alert"]
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert len(lines) == 1 and lines[0]["verdict"] == "alert"
    assert lines[0]["path"].endswith("stego.png") and lines[0]["sha256"]
    assert received[0]["path"] == lines[0]["path"]
    assert marker.read_text().startswith("alert ") and "stego.png" in marker.read_text()
    assert not sink.errors


def test_sink_reports_unreachable_webhook(tmp_path: Path) -> None:
    sink = AlertSink(webhook="http://127.0.0.1:9/none", retries=0, webhook_timeout=1)
    sink.deliver({"path": "x"})
    assert sink.errors and "webhook" in sink.errors[0]


def test_watch_command_stops_on_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "alerts.jsonl"
    code = ("from stegshield.scan.commands import watch; "
            f"watch([{str(tmp_path)!r}, '--detector', 'classical', '--debounce', '0.1', "
            f"'--log', {str(log)!r}], prog_name='stegshield watch')")
    proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert "watching" in line, line
        _save_stego(tmp_path / "s.png", seed=4)
        assert _wait(lambda: log.exists() and log.read_text().count("\n") >= 1)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped; scanned 1, alerts 1" in err
    assert "alert" in out and "s.png" in out


def test_webhook_reply_is_never_read_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """An endless webhook reply was read whole: the watcher's memory grew without bound."""
    import urllib.request

    from stegshield.scan import watch as watch_mod

    asked: list[object] = []

    class Endless:
        def __enter__(self) -> Endless:
            return self

        def __exit__(self, *a: object) -> None:
            pass

        def read(self, n: int | None = None) -> bytes:
            asked.append(n)
            if n is None or n < 0:
                raise MemoryError("read the endless reply whole")
            return b"x" * n

    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: Endless())
    sink = AlertSink(webhook="http://127.0.0.1:9/hook", retries=0)
    sink.send({"path": "x"})
    assert asked == [watch_mod._REPLY_BYTES] and not sink.errors


def test_log_is_written_at_once_and_unsent_alerts_are_counted(tmp_path: Path,
                                                              scanner: Scanner) -> None:
    """The log waited behind a slow webhook, and alerts still queued at shutdown were
    dropped without a word (log lines included)."""
    watched = tmp_path / "in"
    watched.mkdir()
    log = tmp_path / "alerts.jsonl"
    class SlowSink(AlertSink):
        def send(self, event: dict[str, object]) -> None:  # a slow webhook
            time.sleep(2.0)

    sink = SlowSink(log=log, webhook="http://127.0.0.1:9/hook", webhook_timeout=0.0, retries=0)
    w = Watcher(watched, scanner, sink, debounce=0.1)
    for i in range(4):
        _save_stego(watched / f"s{i}.png", seed=10 + i)
        w.notify(str(watched / f"s{i}.png"))
    time.sleep(0.15)
    w.scan_due()  # first look: sizes recorded
    time.sleep(0.15)
    assert w.scan_due() == 4
    assert log.read_text().count("\n") == 4  # at once, not behind the webhook
    t = threading.Thread(target=w.run, kwargs={"poll": 0.05}, daemon=True)
    t.start()
    assert w.ready.wait(10)
    w.stop_event.set()
    t.join(30)
    assert w.alerts == 4 and 0 < w.unsent < 4  # 5 s of deadline, 2 s per alert


def test_fifo_in_a_watched_folder_is_skipped(tmp_path: Path, scanner: Scanner) -> None:
    """A FIFO named *.png froze the watcher (and SIGTERM could not stop it)."""
    import os

    os.mkfifo(tmp_path / "pipe.png")
    _save_stego(tmp_path / "s.png")
    results: list[str] = []
    w = Watcher(tmp_path, scanner, AlertSink(), debounce=0.0,
                on_result=lambda r: results.append(Path(r.path).name))
    w.add_existing()
    done = threading.Event()
    threading.Thread(target=lambda: (w.scan_due(), w.scan_due(), done.set()),
                     daemon=True).start()
    if not done.wait(10):
        with open(tmp_path / "pipe.png", "wb"):
            pass
        pytest.fail("the watcher blocked on a FIFO")
    assert results == ["s.png"]


def test_watch_start_and_output_checks(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """An unwritable --log was accepted (each alert then lost with a warning); a file name
    with terminal escapes was printed raw; scores showed 3 decimals (1.000 for 0.9999)."""
    from click.testing import CliRunner

    from stegshield.scan.scanner import ScanResult
    from stegshield.scan.watch import _print_result, watch

    r = CliRunner().invoke(watch, [str(tmp_path), "--log", str(tmp_path / "no" / "a.jsonl")])
    assert r.exit_code == 2 and "--log" in r.output and "Traceback" not in r.output
    _print_result(ScanResult(path="esc\x1b]0;PWNED\x07.png", verdict="clean", score=0.9999))
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\\x1b" in out and "0.9999" in out


def test_watched_directory_that_disappears_stops_the_watch(tmp_path: Path,
                                                           scanner: Scanner) -> None:
    """The watcher kept running, watching nothing, and exited 0 on Ctrl-C."""
    from stegshield.scan.watch import WatchError

    watched = tmp_path / "in"
    watched.mkdir()
    w = Watcher(watched, scanner, AlertSink())
    errors: list[str] = []

    def run() -> None:
        try:
            w.run(poll=0.05)
        except WatchError as exc:
            errors.append(str(exc))

    t = threading.Thread(target=run, daemon=True)
    t.start()
    assert w.ready.wait(10)
    watched.rmdir()
    t.join(10)
    assert errors and "gone" in errors[0]

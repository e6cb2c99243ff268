"""The ``serve`` command: HTTP API + web page with uvicorn."""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

import click

from ..cli_support import FiniteFloatRange
from ..scan.commands import (
    calibration_option,
    detector_option,
    fail,
    fpr_option,
    threshold_option,
    warn,
)

__all__ = ["TOKEN_ENV", "serve"]

TOKEN_ENV = "STEGSHIELD_API_TOKEN"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_token(path: Path) -> str:
    """The token in ``path`` (UTF-8 text, surrounding blanks dropped)."""
    try:
        return path.read_bytes().decode("utf-8").strip()
    except UnicodeDecodeError:
        fail(f"--token-file {path}: not valid UTF-8 text")
    except OSError as exc:
        fail(f"--token-file {path}: {exc.strerror or exc}")


def _check_port(host: str, port: int) -> None:
    """Fail now, in one line, when ``host:port`` cannot be listened on (in use, no such
    address); uvicorn would print a log and exit 3."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
            sock.bind((host, port))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default).")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option("--token-file", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help=f"Require this API token (else ${TOKEN_ENV} if set; none by default).")
@click.option("--max-upload-mb", type=FiniteFloatRange(min=0.01), default=64.0,
              show_default=True, help="Largest request body accepted.")
@click.option("--max-pixels", type=click.IntRange(min=1), default=50_000_000,
              show_default=True, help="Largest image accepted (width x height).")
@click.option("--max-files", type=click.IntRange(min=1), default=32, show_default=True,
              help="Most images in one /v1/scan request.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Concurrent CPU jobs  [default: one per CPU].")
@detector_option
@fpr_option
@threshold_option
@calibration_option
@click.option("--save-uploads", type=click.Path(file_okay=False, path_type=Path),
              help="Keep a copy of every scanned upload here (named by SHA-256); off by "
              "default: uploads are never written to disk.")
@click.option("--header-timeout", type=FiniteFloatRange(min=0.1), default=10.0,
              show_default=True, help="Seconds a client may take to send a request's line and "
              "headers (slow clients otherwise hold connections for ever).")
@click.option("--body-timeout", type=FiniteFloatRange(min=0.1), default=300.0,
              show_default=True, help="Seconds a request body may take to arrive (then 408).")
@click.option("--log-level", type=click.Choice(["critical", "error", "warning", "info",
                                                "debug"]), default="info", show_default=True)
def serve(host: str, port: int, token_file: Path | None, max_upload_mb: float,
          max_pixels: int, max_files: int, workers: int | None, detector: str,
          fpr: float | None, threshold: float | None, calibration: Path | None,
          save_uploads: Path | None, header_timeout: float, body_timeout: float,
          log_level: str) -> None:
    """Serve the HTTP API and the web page (docs at /docs, health at /healthz)."""
    try:
        import uvicorn

        from .app import ServerConfig, create_app
    except ImportError as exc:
        fail(f"the server needs fastapi, uvicorn and python-multipart ({exc.name} is missing)")
    if fpr is not None and threshold is not None:
        fail("give either --fpr or --threshold, not both")
    token = _read_token(token_file) if token_file else os.environ.get(TOKEN_ENV)
    if token is not None and not token:
        fail("the API token must not be empty")
    if token is not None and not (token.isascii() and token.isprintable()):
        # HTTP headers carry ASCII: such a token could never be sent, so nothing would work
        fail("the API token must be printable ASCII (it travels in an HTTP header)")
    if save_uploads is not None:
        try:
            save_uploads.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            fail(f"--save-uploads {save_uploads}: {exc.strerror or exc}")
    _check_port(host, port)
    if not _is_loopback(host) and token is None:
        warn(f"listening on {host} without an API token: anyone who can reach it can use it "
             f"(set ${TOKEN_ENV} or --token-file)")
    if calibration is not None:  # fail now, not on the first request
        from ..scan.suite import SuiteError, build_suite

        calibration = calibration.resolve()
        try:
            build_suite(detector, calibration)
        except SuiteError as exc:
            fail(str(exc))
    cfg = ServerConfig(token=token, max_upload_bytes=int(max_upload_mb * 1024 * 1024),
                       max_files=max_files, max_pixels=max_pixels, detector=detector,
                       fpr=0.01 if fpr is None else fpr, threshold=threshold,
                       save_uploads=save_uploads, calibration=calibration,
                       body_timeout=body_timeout,
                       # on loopback, only loopback names: no DNS-rebinding page gets in
                       allowed_hosts=(("127.0.0.1", "localhost", "::1", host.strip("[]"))
                                      if _is_loopback(host) else None))
    if workers:
        cfg.workers = workers
    app = create_app(cfg)
    click.echo(f"stegshield: serving on http://{host}:{port}/ (API docs at /docs)", err=True)
    from .protocol import timed_h11

    uvicorn.run(app, host=host, port=port, log_level=log_level, server_header=False,
                http=timed_h11(header_timeout))

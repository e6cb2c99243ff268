"""The HTTP API (FastAPI) and the web page, served by one process.

* ``GET /healthz``; ``POST /v1/scan`` (one or several images -> the JSON objects of
  ``stegshield scan --format jsonl``); ``POST /v1/hide``; ``POST /v1/reveal``;
  ``POST /v1/encrypt`` and ``/v1/decrypt`` when :mod:`stegshield.cipher` is installed;
  ``GET /`` the web page; ``/docs`` (Swagger UI) and ``/openapi.json`` the API description.
  The docs page loads Swagger UI from this server (the copy that the ``fastapi-offline``
  package ships), never from a CDN; there is no ``/redoc`` (ReDoc fetches its logo from one).
* Uploads are parsed in memory with a size limit (:mod:`.multipart`) and never written to
  disk unless ``save_uploads`` is set; decoded images are bounded by ``max_pixels``.
* CPU work runs in worker threads (at most ``workers`` at once), so a slow request never
  blocks the event loop and health checks answer while scans run.
* Optional bearer token on every ``/v1`` route (``Authorization: Bearer T`` or ``X-API-Token``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from .. import __version__
from ..crypto.container import Payload
from ..crypto.kdf import DEFAULT_KDF, KdfParams
from ..imaging import (
    ImageError,
    OutputExistsError,
    atomic_write,
    encode_image,
    open_image,
    output_format,
)
from ..imaging.io import MAX_PIXELS_HINT
from ..runtime import tune_malloc
from ..scan.scanner import Scanner, ScanOptions, ScanResult
from ..scan.suite import DETECTOR_CHOICES, SuiteError
from ..stego.errors import (
    COST_NAMES,
    DEFAULT_RATE,
    MAX_RATE,
    IntegrityError,
    NoHiddenDataError,
    StegoError,
)
from .multipart import FormData, FormError, parse_form

__all__ = ["ApiError", "ServerConfig", "create_app"]

T = TypeVar("T")
log = logging.getLogger(__name__)
DEFAULT_MAX_UPLOAD = 64 * 1024 * 1024
DEFAULT_SERVER_PIXELS = 50_000_000
_HIDE_FORMATS = {"png": ("PNG", "image/png"), "webp": ("WEBP", "image/webp"),
                 "bmp": ("BMP", "image/bmp"), "tiff": ("TIFF", "image/tiff")}
_COSTS = COST_NAMES
_PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
             "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'")
#: The docs page: FastAPI's page has an inline start-up script and Swagger UI sets inline
#: styles; nothing may come from another origin.
_DOCS_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
             "script-src 'self' 'unsafe-inline'; connect-src 'self'; font-src 'self' data:; "
             "frame-ancestors 'none'; base-uri 'none'")
#: Where the Swagger UI files are served from.
DOCS_ASSETS = "/docs-assets"


@dataclass
class ServerConfig:
    """Limits and defaults of one server process."""

    token: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD
    max_files: int = 32
    max_pixels: int = DEFAULT_SERVER_PIXELS
    detector: str = "auto"
    fpr: float = 0.01
    threshold: float | None = None
    save_uploads: Path | None = None
    calibration: Path | None = None
    """A photograph fit for ``detector`` (``scan --calibration``); requests that pick another
    detector use its shipped thresholds."""
    workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    kdf: KdfParams = DEFAULT_KDF
    body_timeout: float = 300.0
    """Seconds a request body may take to arrive (408 after that)."""
    allowed_hosts: tuple[str, ...] | None = None
    """Host names accepted in the ``Host`` header (``serve`` on loopback: the loopback names,
    so a DNS-rebinding page cannot become same-origin); None accepts any."""


class ApiError(Exception):
    """An error answered as ``{"detail": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _no_cli_hint(message: str) -> str:
    """``message`` without the command-line advice an API client cannot follow."""
    return message.replace(" " + MAX_PIXELS_HINT, "").replace(
        " (lower --max-pixels)", "")


def _check_output(name: str, fmt_key: str, mode: str) -> None:
    """Raise :class:`ImageError` when ``fmt_key`` cannot keep an image of ``mode`` exactly
    (the command line's rules: no grayscale WebP, no alpha in BMP)."""
    probe = f"out.{fmt_key}"
    try:
        output_format(probe, mode)
    except ImageError as exc:
        reason, _, hint = str(exc).replace(probe, name, 1).partition("; use ")
        hint = re.sub(r"(?<![^ ])\.(?=[a-z])", "", hint)  # ".png or .tiff" -> "png or tiff"
        raise ImageError(reason + (f"; use {hint}" if hint else "")) from None


def _validation_detail(errors: Sequence[Any]) -> str:
    """FastAPI's list of request validation errors as one line."""
    parts = []
    for err in errors:
        loc = [str(x) for x in err.get("loc", ())]
        where = (f"{loc[0]} parameter {'.'.join(loc[1:])!r}" if len(loc) > 1
                 else "".join(loc) or "request")
        parts.append(f"{where}: {' '.join(str(err.get('msg', 'invalid')).split())}")
    return "; ".join(parts) or "invalid request"


#: Extension of a saved upload, by the format it decoded as.
_SAVED_EXT = {"PNG": ".png", "JPEG": ".jpg", "MPO": ".jpg", "BMP": ".bmp", "DIB": ".bmp",
              "TIFF": ".tif", "PPM": ".ppm", "WEBP": ".webp", "GIF": ".gif"}


def _static_dir() -> Path:
    return Path(str(resources.files("stegshield.server") / "static"))


def _docs_assets_dir() -> Path | None:
    """The Swagger UI files shipped by ``fastapi-offline`` (``None`` if missing)."""
    try:
        path = Path(str(resources.files("fastapi_offline") / "static"))
    except ModuleNotFoundError:
        return None
    return path if (path / "swagger-ui-bundle.js").is_file() else None


def _form_schema(fields: dict[str, dict[str, Any]], required: list[str]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {
        "schema": {"type": "object", "properties": fields, "required": required}}}}}


_FILE = {"type": "string", "format": "binary"}


def cipher_available() -> bool:
    """Whether the image cipher (``stegshield.cipher``) offers its array/bytes API."""
    try:
        from .. import cipher

        return callable(cipher.encrypt_image) and callable(cipher.decrypt_image)
    except (ImportError, AttributeError):
        return False


def _add_cipher_routes(app: FastAPI, cfg: ServerConfig, work: Callable[..., Awaitable[Any]],
                       read_form: Callable[[Request], Awaitable[FormData]],
                       image_part: Callable[[FormData], tuple[str, bytes]],
                       password: Callable[[FormData], bytes]) -> None:
    """``/v1/encrypt`` and ``/v1/decrypt`` (password only; key files stay on the CLI)."""
    from .. import cipher

    def encrypt_bytes(data: bytes, pw: bytes) -> bytes:
        png, _ = cipher.encrypt_image(data, password=pw, kdf=cfg.kdf,
                                      max_pixels=cfg.max_pixels)
        return bytes(png)

    def decrypt_bytes(data: bytes, pw: bytes) -> bytes:
        dec = cipher.decrypt_image(data, password=pw, max_pixels=cfg.max_pixels,
                                   max_kdf=cfg.kdf)  # never a header's (forged) cost
        return encode_image(dec.pixels, dec.mode, "PNG")

    def _errors(exc: Exception, name: str) -> ApiError:
        if isinstance(exc, cipher.WrongKeyError):
            return ApiError(403, str(exc))
        if isinstance(exc, cipher.CipherIntegrityError):
            return ApiError(409, str(exc).replace("<bytes>", name))
        return ApiError(422, _no_cli_hint(str(exc).replace("<bytes>", name)))

    form_doc = _form_schema({"image": _FILE, "password": {"type": "string",
                                                          "format": "password"}},
                            ["image", "password"])
    png_doc = {200: {"content": {"image/png": {}}, "description": "PNG image"}}

    async def cipher_png(fn: Callable[..., bytes], data: bytes, pw: bytes, name: str,
                         suffix: str) -> Response:
        try:
            out = await work(fn, data, pw)
        except (ImageError, cipher.CipherError) as exc:
            raise _errors(exc, name) from exc
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).stem)[:64] or "image"
        return Response(out, media_type="image/png", headers={
            "Content-Disposition": f'attachment; filename="{stem}_{suffix}.png"',
            "Cache-Control": "no-store"})

    @app.post("/v1/encrypt", tags=["cipher"], response_class=Response, responses=png_doc,
              openapi_extra=form_doc)
    async def encrypt(request: Request) -> Response:
        """Encrypt an image into a cipher-image PNG (same size; header in a PNG chunk)."""
        form = await read_form(request)
        name, data = image_part(form)
        return await cipher_png(encrypt_bytes, data, password(form), name, "cipher")

    @app.post("/v1/decrypt", tags=["cipher"], response_class=Response, responses=png_doc,
              openapi_extra=form_doc)
    async def decrypt(request: Request) -> Response:
        """Decrypt a cipher-image (403 wrong password, 409 altered) into a PNG."""
        form = await read_form(request)
        name, data = image_part(form)
        return await cipher_png(decrypt_bytes, data, password(form), name, "plain")


def _add_docs(app: FastAPI, cfg: ServerConfig) -> None:
    """``/docs`` with local assets; with a token, an "Authorize" button.

    The pages and ``/openapi.json`` stay public (they hold no secret); "Try it out" on a
    ``/v1`` route needs the token, entered once with "Authorize" (kept for the tab only).
    """
    assets = _docs_assets_dir()
    if cfg.token is not None:
        base_openapi = app.openapi

        def openapi_with_auth() -> dict[str, Any]:
            if app.openapi_schema is None:
                schema = base_openapi()
                schema.setdefault("components", {})["securitySchemes"] = {
                    "bearer": {"type": "http", "scheme": "bearer",
                               "description": "the API token (--token-file)"},
                    "apiToken": {"type": "apiKey", "in": "header", "name": "X-API-Token"}}
                for path, ops in schema.get("paths", {}).items():
                    if path.startswith("/v1/"):
                        for op in ops.values():
                            op["security"] = [{"bearer": []}, {"apiToken": []}]
            return app.openapi_schema  # type: ignore[return-value]

        app.openapi = openapi_with_auth  # type: ignore[method-assign]
    if assets is None:  # not installed: no docs page rather than one that calls a CDN
        return
    app.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        return get_swagger_ui_html(
            openapi_url=f"{root}{app.openapi_url}", title=f"{app.title} - API",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None})  # no call to validator.swagger.io


def create_app(config: ServerConfig | None = None) -> FastAPI:
    """Build the application (no network or disk access until requests arrive)."""
    cfg = config or ServerConfig()
    tune_malloc()
    limiter = anyio.CapacityLimiter(cfg.workers)
    scanners: dict[str, Scanner] = {}
    scanners_lock = threading.Lock()
    has_cipher = cipher_available()
    app = FastAPI(title="stegshield", version=__version__,
                  description="Scan images for hidden data; hide and reveal sealed messages.",
                  docs_url=None, redoc_url=None)  # the CDN-based pages; offline ones below

    def scanner_for(detector: str | None) -> Scanner:
        key = detector or cfg.detector
        if key not in DETECTOR_CHOICES:
            raise ApiError(422, f"unknown detector {key!r}; choose from "
                           f"{', '.join(DETECTOR_CHOICES)}")
        with scanners_lock:
            if key not in scanners:
                own = cfg.calibration is not None and key == cfg.detector
                opts = ScanOptions(detector=key, fpr=cfg.fpr, threshold=cfg.threshold,
                                   max_pixels=cfg.max_pixels,
                                   calibration=str(cfg.calibration) if own else None)
                try:
                    scanners[key] = Scanner(opts)
                except SuiteError as exc:
                    raise ApiError(422, str(exc)) from exc
            return scanners[key]

    async def work(fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(partial(fn, *args), limiter=limiter)

    def check_token(request: Request) -> None:
        if cfg.token is None:
            return
        given = request.headers.get("x-api-token")
        auth = request.headers.get("authorization", "")
        if given is None and auth.lower().startswith("bearer "):
            given = auth[7:].strip()
        if given is None or not hmac.compare_digest(given.encode(), cfg.token.encode()):
            raise ApiError(401, "missing or wrong API token")

    async def read_form(request: Request) -> FormData:  # the token: checked by _guard
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > cfg.max_upload_bytes:
            raise ApiError(413, f"request too large (limit {cfg.max_upload_bytes:,} bytes)")
        try:
            return await parse_form(request.headers.get("content-type"), request.stream(),
                                    max_bytes=cfg.max_upload_bytes,
                                    max_parts=cfg.max_files + 16,
                                    timeout=cfg.body_timeout)
        except FormError as exc:
            raise ApiError(exc.status, str(exc)) from exc

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if exc.status in (408, 413):  # the rest of the body is not read: end the connection
            headers["Connection"] = "close"
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)

    @app.exception_handler(FormError)
    async def _form_error(request: Request, exc: FormError) -> JSONResponse:
        return await _api_error(request, ApiError(exc.status, str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError
                                ) -> JSONResponse:
        return JSONResponse({"detail": _validation_detail(exc.errors())}, status_code=422)

    @app.middleware("http")
    async def _guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                     ) -> Response:
        """Refuse other Host names (DNS rebinding) and, on the API, requests a page of another
        origin makes through the user's browser: without a token, a cross-site form POST
        needs no CORS preflight and would run (and, with --save-uploads, write files)."""
        host = request.headers.get("host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        if cfg.allowed_hosts is not None and name.strip("[]").lower() not in cfg.allowed_hosts:
            return JSONResponse({"detail": f"unexpected Host header {host!r}"}, status_code=400)
        if request.url.path.startswith("/v1/"):
            try:  # the token first: no query validation, no detail, for a caller without one
                check_token(request)
            except ApiError as exc:
                return JSONResponse({"detail": str(exc)}, status_code=exc.status,
                                    headers={"WWW-Authenticate": "Bearer"})
            origin = request.headers.get("origin")
            site = request.headers.get("sec-fetch-site")
            if site == "cross-site" or (origin is not None and origin != "null"
                                        and origin.split("://", 1)[-1] != host):
                return JSONResponse({"detail": "cross-origin request refused"},
                                    status_code=403)
        return await call_next(request)

    @app.middleware("http")
    async def _headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]
                       ) -> Response:
        response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        path = request.url.path
        if path == "/" or path.startswith("/static/"):
            response.headers.setdefault("Content-Security-Policy", _PAGE_CSP)
            response.headers.setdefault("X-Frame-Options", "DENY")
        elif path == "/docs":
            response.headers.setdefault("Content-Security-Policy", _DOCS_CSP)
            response.headers.setdefault("X-Frame-Options", "DENY")
        return response

    @app.get("/healthz", tags=["service"])
    async def healthz() -> dict[str, Any]:
        """Liveness: answers at once, even while scans run."""
        return {"status": "ok", "version": __version__, "auth": cfg.token is not None,
                "max_upload_bytes": cfg.max_upload_bytes, "max_pixels": cfg.max_pixels,
                "max_files": cfg.max_files, "cipher": has_cipher,
                "save_uploads": cfg.save_uploads is not None}

    def _save(data: bytes, filename: str, ext: str) -> None:
        """Keep a copy of an upload, named by its content hash and the extension of the
        format it decoded as (``.bin`` otherwise; never the client's: no .html or .php
        copies); a failure is logged, never a lost scan."""
        assert cfg.save_uploads is not None
        target = cfg.save_uploads / f"{hashlib.sha256(data).hexdigest()}{ext}"
        try:
            atomic_write(target, data)
        except OutputExistsError:
            pass  # the name is the content hash: an earlier or parallel request saved it
        except (ImageError, OSError) as exc:
            log.warning("upload %r not saved: %s", filename, exc)

    def _scan_all(sc: Scanner, files: list[tuple[str, bytes]]) -> list[ScanResult]:
        out = []
        for name, data in files:
            r = sc.scan_bytes(data, name)
            if cfg.save_uploads is not None:  # kept as evidence, never with the client's
                _save(data, name, _SAVED_EXT.get(r.format or "", ".bin"))  # extension
            out.append(r)
        return out

    @app.post("/v1/scan", tags=["scan"], openapi_extra=_form_schema(
        {"files": {"type": "array", "items": _FILE,
                   "description": "one or several images (field name 'files' or 'file')"}},
        ["files"]))
    async def scan(request: Request, heatmap: bool = False,
                   detector: str | None = None) -> dict[str, Any]:
        """Scan uploaded images; each result is the JSON object of ``scan --format jsonl``.

        ``heatmap=true`` adds the per-tile scores of each image.
        """
        form = await read_form(request)
        parts = form.files("files", "file") or form.files()
        if not parts:
            raise ApiError(422, "no image uploaded (send multipart field 'files')")
        if len(parts) > cfg.max_files:
            raise ApiError(413, f"too many files (at most {cfg.max_files} per request)")
        sc = await work(scanner_for, detector)  # a learned detector takes seconds to build
        files = [(p.filename or f"upload-{i}", p.data) for i, p in enumerate(parts)]
        results = []
        for name, data in files:  # one thread job per image: other requests interleave
            results.extend(await work(_scan_all, sc, [(name, data)]))
        for r in results:
            if r.error:
                r.error = _no_cli_hint(r.error)
        return {"detector": sc.suite.mode, "thresholds": sc.thresholds.describe(),
                "results": [r.to_json(heatmap=heatmap) for r in results]}

    def _image_part(form: FormData) -> tuple[str, bytes]:
        parts = form.files("image", "file", "files") or form.files()
        if not parts:
            raise ApiError(422, "no image uploaded (send multipart field 'image')")
        return parts[0].filename or "image", parts[0].data

    def _password(form: FormData) -> bytes:
        """The password's bytes as sent (as on the command line, UTF-8 or not)."""
        pw = form.value("password")
        if not pw:
            raise ApiError(422, "a non-empty 'password' field is required")
        return pw

    def _image_error(exc: ImageError, name: str) -> ApiError:
        return ApiError(422, _no_cli_hint(str(exc).replace("<bytes>", name)))

    def _hide(data: bytes, name: str, payload: Payload, password: bytes, rate: float,
              cost: str, fmt_key: str) -> tuple[bytes, dict[str, Any]]:
        from ..stego.embed import hide_array

        img = open_image(data, cfg.max_pixels)
        _check_output(name, fmt_key, img.mode)
        stego, report = hide_array(img.pixels, img.mode, payload, password, rate=rate,
                                   cost=cost, kdf=cfg.kdf)
        from ..stego.api import hide_notes

        # what the command line warns about, in ASCII (a header is Latin-1 at best)
        notes = "; ".join(hide_notes(img, rate)).replace("±", "+/-")
        return encode_image(stego, img.mode, _HIDE_FORMATS[fmt_key][0]), {
            "payload_bytes": report.payload_bytes, "embedded_bytes": report.embedded_bytes,
            "changes": report.changes, "rate": round(report.rate, 5),
            "lossy_source": img.lossy_source, **({"notes": notes} if notes else {})}

    @app.post("/v1/hide", tags=["stego"], response_class=Response,
              responses={200: {"content": {"image/png": {}}, "description": "stego image"}},
              openapi_extra=_form_schema({
                  "image": _FILE, "message": {"type": "string"}, "payload": _FILE,
                  "password": {"type": "string", "format": "password"},
                  "rate": {"type": "number", "default": DEFAULT_RATE, "maximum": MAX_RATE},
                  "cost": {"type": "string", "enum": list(_COSTS), "default": "hill"},
                  "format": {"type": "string", "enum": list(_HIDE_FORMATS), "default": "png"}},
                  ["image", "password"]))
    async def hide(request: Request) -> Response:
        """Hide a message (or a file) in an image, sealed with a password.

        Returns the stego image; ``X-Stegshield-*`` headers describe the embedding.
        """
        form = await read_form(request)
        name, data = _image_part(form)
        password = _password(form)
        message = form.value("message")  # bytes as sent, as on the command line
        files = form.files("payload")
        if (message is None) == (not files):
            raise ApiError(422, "give either 'message' or a 'payload' file")
        payload = (Payload(message, is_text=True) if message is not None
                   else Payload(files[0].data, is_text=False,
                                name=Path(files[0].filename or "").name))
        try:
            rate = float(form.text("rate") or DEFAULT_RATE)
        except ValueError:
            raise ApiError(422, "'rate' must be a number") from None
        if not 0 < rate <= MAX_RATE:
            raise ApiError(422, f"'rate' must be in (0, {MAX_RATE}]")
        cost = form.text("cost") or "hill"
        if cost not in _COSTS:
            raise ApiError(422, f"'cost' must be one of {', '.join(_COSTS)}")
        fmt_key = (form.text("format") or "png").lower()
        if fmt_key not in _HIDE_FORMATS:
            raise ApiError(422, f"'format' must be one of {', '.join(_HIDE_FORMATS)}")
        media = _HIDE_FORMATS[fmt_key][1]
        try:
            out, info = await work(_hide, data, name, payload, password, rate, cost, fmt_key)
        except ImageError as exc:
            raise _image_error(exc, name) from exc
        except StegoError as exc:
            raise ApiError(422, str(exc)) from exc
        stem = re.sub(r"[^A-Za-z0-9._-]", "_", Path(name).stem)[:64] or "image"
        headers = {"Content-Disposition": f'attachment; filename="{stem}_stego.{fmt_key}"',
                   "Cache-Control": "no-store"}
        headers.update({f"X-Stegshield-{k.replace('_', '-').title()}": str(v)
                        for k, v in info.items()})
        return Response(out, media_type=media, headers=headers)

    def _reveal(data: bytes, password: bytes) -> Payload:
        from ..stego.embed import reveal_array

        img = open_image(data, cfg.max_pixels)
        # a small upload must not become a response of hundreds of megabytes
        return reveal_array(img.pixels, img.mode, password, kdf=cfg.kdf,
                            max_bytes=cfg.max_upload_bytes)

    @app.post("/v1/reveal", tags=["stego"], openapi_extra=_form_schema(
        {"image": _FILE, "password": {"type": "string", "format": "password"}},
        ["image", "password"]))
    async def reveal(request: Request) -> JSONResponse:
        """Recover what was hidden under a password (404: nothing found, 409: altered)."""
        form = await read_form(request)
        name, data = _image_part(form)
        password = _password(form)
        try:
            payload = await work(_reveal, data, password)
        except ImageError as exc:
            raise _image_error(exc, name) from exc
        except NoHiddenDataError as exc:
            raise ApiError(404, str(exc)) from exc
        except IntegrityError as exc:
            raise ApiError(409, str(exc)) from exc
        except StegoError as exc:
            raise ApiError(422, str(exc)) from exc
        body: dict[str, Any] = {"is_text": payload.is_text, "name": payload.name,
                                "size": len(payload.data), "text": None, "data_base64": None}
        if payload.is_text:
            body["text"] = payload.data.decode("utf-8", errors="replace")
            if "\ufffd" in body["text"] and body["text"].encode() != payload.data:
                # not UTF-8 (a Latin-1 message): the exact bytes as well
                body["data_base64"] = base64.b64encode(payload.data).decode("ascii")
        else:
            body["data_base64"] = base64.b64encode(payload.data).decode("ascii")
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    if has_cipher:
        _add_cipher_routes(app, cfg, work, read_form, _image_part, _password)

    _add_docs(app, cfg)
    static = _static_dir()

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(static / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=static), name="static")
    return app

"""In-memory ``multipart/form-data`` parsing with hard limits (uploads never touch the disk).

Starlette's own form parser spools large files to temporary files; this one keeps every part
in memory and stops reading as soon as the request exceeds ``max_bytes``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
from python_multipart import MultipartParser
from python_multipart.multipart import parse_options_header

__all__ = ["FormData", "FormError", "Part", "parse_form"]


class FormError(Exception):
    """Bad or oversized form; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Part:
    """One form field: a file when ``filename`` is not ``None``."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


@dataclass
class FormData:
    """Parsed fields in order of arrival."""

    parts: list[Part] = field(default_factory=list)

    def files(self, *names: str) -> list[Part]:
        """File parts whose field name is one of ``names`` (any file part if none given)."""
        return [p for p in self.parts
                if p.filename is not None and (not names or p.name in names)]

    def value(self, name: str) -> bytes | None:
        """The bytes of the first non-file field called ``name``."""
        for p in self.parts:
            if p.name == name and p.filename is None:
                return p.data
        return None

    def text(self, name: str) -> str | None:
        """The first non-file field called ``name``, decoded as UTF-8 (422 if it is not)."""
        data = self.value(name)
        try:
            return None if data is None else data.decode("utf-8", errors="strict")
        except UnicodeDecodeError:
            raise FormError(f"form field {name!r} is not valid UTF-8", 422) from None


class _Collector:
    def __init__(self, max_parts: int) -> None:
        self.form = FormData()
        self.max_parts = max_parts
        self._hname = bytearray()
        self._hvalue = bytearray()
        self._headers: dict[str, str] = {}
        self._buf = bytearray()

    ended = False  # the closing boundary was seen

    def on_end(self) -> None:
        self.ended = True

    def on_part_begin(self) -> None:
        self._headers, self._buf = {}, bytearray()
        if len(self.form.parts) >= self.max_parts:
            raise FormError(f"too many form fields (at most {self.max_parts})", 413)

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._hname += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._hvalue += data[start:end]

    def on_header_end(self) -> None:
        self._headers[self._hname.decode("latin-1").lower()] = self._hvalue.decode("latin-1")
        self._hname, self._hvalue = bytearray(), bytearray()

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self._buf += data[start:end]

    def on_part_end(self) -> None:
        disp = self._headers.get("content-disposition", "")
        _, opts = parse_options_header(disp)
        name = opts.get(b"name", b"").decode("utf-8", errors="replace")
        fname = opts.get(b"filename")
        self.form.parts.append(Part(
            name=name,
            filename=None if fname is None else fname.decode("utf-8", errors="replace"),
            content_type=self._headers.get("content-type", "application/octet-stream"),
            data=bytes(self._buf)))
        self._buf = bytearray()


async def parse_form(content_type: str | None, stream: AsyncIterator[bytes], *,
                     max_bytes: int, max_parts: int = 64,
                     timeout: float | None = None) -> FormData:
    """Parse a multipart body from ``stream``; raise :class:`FormError` on bad input, or with
    status 408 when the whole body takes longer than ``timeout`` seconds (a stalled or
    trickling upload would otherwise hold its memory and a connection for ever)."""
    ctype, opts = parse_options_header(content_type or "")
    if ctype != b"multipart/form-data" or b"boundary" not in opts:
        raise FormError("expected multipart/form-data", 415)
    col = _Collector(max_parts)
    callbacks = {k: getattr(col, k) for k in (
        "on_part_begin", "on_header_field", "on_header_value", "on_header_end",
        "on_part_data", "on_part_end", "on_end")}
    total = 0
    try:
        parser = MultipartParser(opts[b"boundary"], callbacks)  # type: ignore[arg-type]
        with anyio.fail_after(timeout):
            async for chunk in stream:
                total += len(chunk)
                if total > max_bytes:
                    raise FormError(f"request too large (limit {max_bytes:,} bytes)", 413)
                parser.write(chunk)
        parser.finalize()
    except TimeoutError:
        raise FormError(f"request body not received within {timeout:g} s", 408) from None
    except FormError:
        raise
    except Exception as exc:  # e.g. a boundary over 256 characters
        raise FormError(f"malformed multipart body ({type(exc).__name__})") from exc
    if not col.ended:  # cut short: its last part would be dropped without a word
        raise FormError("malformed multipart body (no closing boundary)")
    return col.form

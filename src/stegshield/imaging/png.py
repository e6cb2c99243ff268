"""A fast, dependency-free PNG writer for 8-bit L, LA, RGB and RGBA arrays, and a check that a
PNG's pixel stream is complete.

Pillow's PNG writer spends seconds on a 12-megapixel photo at its default settings. Here the
rows use the PNG "Sub" filter (vectorised with numpy) and the deflate stream is compressed in
independent chunks on several threads (zlib releases the GIL), joined as pigz does: every chunk
but the last ends with a sync flush, so the concatenation is one valid deflate stream
(RFC 1950/1951, PNG specification ISO/IEC 15948). zlib's run-length strategy (Z_RLE) suits
Sub-filtered photographs: on a 12 MP photo it took 0.44 s of CPU against 0.85 s for level 1,
and the file was 12 % smaller; flat areas still compress as runs.

Pillow decodes a PNG whose zlib stream ends properly but holds fewer rows than the header
declares without an error, filling the missing rows in; :func:`png_shortfall` finds those
files by inflating the stream and counting its bytes (PNG specification, sections 7 and 8).
"""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import numpy as np

_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
_CHUNK = 4 << 20


_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}  # PNG colour type -> samples per pixel
#: Adam7 passes: (x0, y0, dx, dy)
_ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
          (0, 1, 1, 2))


def _needed(w: int, h: int, depth: int, colour: int, interlace: int) -> int:
    """Bytes of filtered scanlines (a filter byte per row) that the header declares."""
    bits = depth * _CHANNELS[colour]
    if interlace != 1:
        return h * (1 + (w * bits + 7) // 8)
    total = 0
    for x0, y0, dx, dy in _ADAM7:
        pw, ph = (w - x0 + dx - 1) // dx, (h - y0 + dy - 1) // dy
        if pw > 0 and ph > 0:
            total += ph * (1 + (pw * bits + 7) // 8)
    return total


def png_shortfall(data: bytes) -> tuple[int, int] | None:
    """``(bytes found, bytes needed)`` when the pixel stream of the PNG file ``data`` (its
    IDAT chunks, inflated) holds fewer bytes than its header declares; ``None`` when it is
    complete or cannot be parsed (the decoder reports those). Memory stays bounded: the
    stream is inflated 1 MiB at a time and only counted."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR" or len(data) < 33:
        return None
    w, h, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    if colour not in _CHANNELS:
        return None
    need = _needed(w, h, depth, colour, interlace)
    inflater = zlib.decompressobj()
    view = memoryview(data)
    got, pos, seen = 0, 8, False
    try:
        while pos + 8 <= len(data) and got <= need and not inflater.eof:
            n = int.from_bytes(data[pos:pos + 4], "big")
            tag = data[pos + 4:pos + 8]
            if tag == b"IDAT":
                seen = True
                # 64 KiB pieces: unconsumed_tail is a copy, so feeding a whole 90 MB chunk
                # copied its rest once per MiB inflated (quadratic; our writer makes one IDAT)
                body = view[pos + 8:pos + 8 + n]
                for off in range(0, len(body), 1 << 16):
                    buf: bytes | memoryview = body[off:off + (1 << 16)]
                    while buf and got <= need and not inflater.eof:
                        got += len(inflater.decompress(buf, 1 << 20))
                        buf = inflater.unconsumed_tail
                    if got > need or inflater.eof:
                        break
            elif seen or tag == b"IEND":  # the IDAT chunks are consecutive
                break
            pos += 12 + n
    except zlib.error:
        return None
    return (got, need) if seen and got < need else None


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def _deflate_piece(args: tuple[bytes, bool, int]) -> bytes:
    data, last, level = args
    c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, zlib.Z_RLE)
    return c.compress(data) + c.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _zlib_parallel(raw: bytes, level: int, threads: int) -> bytes:
    pieces = [raw[i:i + _CHUNK] for i in range(0, len(raw), _CHUNK)] or [b""]
    jobs = [(p, i == len(pieces) - 1, level) for i, p in enumerate(pieces)]
    if threads > 1 and len(pieces) > 1:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            parts = list(pool.map(_deflate_piece, jobs))
    else:
        parts = [_deflate_piece(j) for j in jobs]
    return b"\x78\x01" + b"".join(parts) + struct.pack(">I", zlib.adler32(raw))


def encode_png(pixels: np.ndarray, level: int = 1, threads: int = 2) -> bytes:
    """Encode an 8-bit HxW or HxWxC (C in 1..4) array as PNG bytes."""
    if pixels.dtype != np.uint8:
        raise ValueError("encode_png needs uint8 pixels")
    arr = pixels if pixels.ndim == 3 else pixels[:, :, None]
    h, w, c = arr.shape
    if c not in _COLOR_TYPE or h < 1 or w < 1:
        raise ValueError(f"cannot encode array of shape {pixels.shape} as PNG")
    rows = np.ascontiguousarray(arr).reshape(h, w * c)
    raw = np.empty((h, w * c + 1), dtype=np.uint8)
    raw[:, 0] = 1  # filter type Sub
    raw[:, 1:c + 1] = rows[:, :c]
    np.subtract(rows[:, c:], rows[:, :-c], out=raw[:, c + 1:])  # wraps mod 256 as PNG wants
    ihdr = struct.pack(">IIBBBBB", w, h, 8, _COLOR_TYPE[c], 0, 0, 0)
    idat = _zlib_parallel(raw.tobytes(), level, threads)
    head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
    return head + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")

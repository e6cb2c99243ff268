"""PNG chunks for cipher-images (PNG specification, ISO/IEC 15948; zlib/deflate RFC 1950/1951).

Insert and read a private ancillary chunk, and write / read the *stored* PNGs that cipher-images
are: their pixels are incompressible by design, so deflate "stored" blocks (no compression)
with filter type None cost only a copy and a checksum, where compressing would spend time and
make the file no smaller.

Chunk layout: length (4, big-endian) || type (4) || data || CRC-32 of type and data. The
cipher header travels in a private, ancillary, *unsafe-to-copy* chunk ``stSH`` placed just
before ``IEND``: lower-case first letter (ancillary: viewers ignore it), lower-case second
(private), upper-case third (reserved bit), upper-case fourth (unsafe to copy: an editor that
changes the pixels must drop it, since the header is bound to them).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_IEND = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
_CHANNELS = {v: k for k, v in _COLOR_TYPE.items()}
_STORED = 65535  # largest deflate stored block
_IDAT_MAX = 1 << 30  # split the IDAT data into chunks of at most 1 GiB


class PngChunkError(ValueError):
    """The PNG chunk structure is broken: bad signature, length, CRC or ordering."""


def make_chunk(ctype: bytes, data: bytes) -> bytes:
    """One serialised chunk of type ``ctype`` (4 ASCII letters) holding ``data``."""
    if len(ctype) != 4 or not ctype.isalpha():
        raise ValueError("a chunk type is four ASCII letters")
    return (struct.pack(">I", len(data)) + ctype + data
            + struct.pack(">I", zlib.crc32(ctype + data)))


def insert_chunk(png: bytes, ctype: bytes, data: bytes) -> bytes:
    """``png`` with a ``ctype`` chunk holding ``data`` inserted just before ``IEND``."""
    if not png.startswith(PNG_SIGNATURE) or not png.endswith(_IEND):
        raise PngChunkError("not a PNG stream ending in IEND")
    return b"".join((memoryview(png)[:-len(_IEND)], make_chunk(ctype, data), _IEND))


def iter_chunks(png: bytes) -> list[tuple[bytes, int, int]]:
    """Walk all chunks, verifying every CRC; return ``(type, data offset, data length)``.

    Raises :class:`PngChunkError` on a bad signature, truncation, CRC mismatch, data after
    ``IEND`` or a stream that does not start with ``IHDR`` and end with ``IEND``.
    """
    if not png.startswith(PNG_SIGNATURE):
        raise PngChunkError("bad PNG signature")
    mv = memoryview(png)
    pos, end, chunks = len(PNG_SIGNATURE), len(png), []
    while pos < end:
        if end - pos < 12:
            raise PngChunkError("truncated chunk")
        (length,) = struct.unpack_from(">I", png, pos)
        if length > 0x7FFFFFFF or pos + 12 + length > end:
            raise PngChunkError("chunk length out of range")
        ctype = bytes(mv[pos + 4:pos + 8])
        (crc,) = struct.unpack_from(">I", png, pos + 8 + length)
        if zlib.crc32(mv[pos + 4:pos + 8 + length]) != crc:
            raise PngChunkError(f"CRC mismatch in chunk {ctype!r}")
        chunks.append((ctype, pos + 8, length))
        pos += 12 + length
        if ctype == b"IEND":
            break
    if pos != end:
        raise PngChunkError("data after IEND")
    if not chunks or chunks[0][0] != b"IHDR" or chunks[-1][0] != b"IEND":
        raise PngChunkError("PNG must start with IHDR and end with IEND")
    return chunks


def read_chunk(png: bytes, ctype: bytes) -> bytes | None:
    """The data of the single ``ctype`` chunk, ``None`` if absent (CRCs all verified).

    Raises :class:`PngChunkError` when the structure is broken or ``ctype`` occurs twice.
    """
    found = [(off, n) for t, off, n in iter_chunks(png) if t == ctype]
    if len(found) > 1:
        raise PngChunkError(f"more than one {ctype!r} chunk")
    if not found:
        return None
    off, n = found[0]
    return png[off:off + n]


def mentions_chunk(png: bytes, ctype: bytes) -> bool:
    """Whether a (possibly damaged) PNG stream seems to carry ``ctype``.

    True when the type occurs anywhere, or when walking the chunk lengths (ignoring CRCs)
    finds a type one bit away from it: so one flipped bit in our chunk still reads as "this
    cipher-image was damaged" rather than "not a cipher-image".
    """
    if ctype in png:
        return True
    pos = len(PNG_SIGNATURE)
    while pos + 8 <= len(png):
        (length,) = struct.unpack_from(">I", png, pos)
        found = png[pos + 4:pos + 8]
        if sum(bin(a ^ b).count("1") for a, b in zip(found, ctype, strict=True)) <= 1:
            return True
        pos += 12 + length
    return False


def ihdr_size(png: bytes) -> tuple[int, int]:
    """(width, height) from the IHDR chunk (call after :func:`iter_chunks` succeeded)."""
    w, h = struct.unpack_from(">II", png, len(PNG_SIGNATURE) + 8)
    return int(w), int(h)


def encode_stored_png(pixels: np.ndarray, extra: list[tuple[bytes, bytes]]) -> bytes:
    """Encode uint8 HxW or HxWxC (C 1..4) pixels as PNG with stored deflate blocks, filter
    None, and the ``(type, data)`` chunks of ``extra`` placed before ``IEND``."""
    arr = pixels if pixels.ndim == 3 else pixels[:, :, None]
    h, w, c = arr.shape
    if pixels.dtype != np.uint8 or c not in _COLOR_TYPE or h < 1 or w < 1:
        raise ValueError(f"cannot encode array of shape {pixels.shape} as PNG")
    row = w * c + 1
    raw = np.empty((h, row), dtype=np.uint8)
    raw[:, 0] = 0  # filter type None
    raw[:, 1:] = arr.reshape(h, w * c)
    flat = raw.reshape(-1)
    total = flat.size
    full, rem = divmod(total, _STORED)
    n_blocks = full + (1 if rem else 0)
    z = np.empty(2 + total + 5 * n_blocks + 4, dtype=np.uint8)
    z[:2] = (0x78, 0x01)  # zlib header: deflate, 32 KiB window, no dictionary
    if full:
        fb = z[2:2 + full * (_STORED + 5)].reshape(full, _STORED + 5)
        fb[:, :5] = (0, 0xFF, 0xFF, 0, 0)  # BFINAL 0, BTYPE 00, LEN 65535, NLEN 0
        fb[:, 5:] = flat[:full * _STORED].reshape(full, _STORED)
        if not rem:
            fb[-1, 0] = 1
    if rem:
        tail = z[2 + full * (_STORED + 5):-4]
        tail[:5] = (1, rem & 0xFF, rem >> 8, ~rem & 0xFF, (~rem >> 8) & 0xFF)
        tail[5:] = flat[full * _STORED:]
    z[-4:] = np.frombuffer(struct.pack(">I", zlib.adler32(flat)), dtype=np.uint8)
    parts: list[bytes | memoryview] = [
        PNG_SIGNATURE, make_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, _COLOR_TYPE[c],
                                                       0, 0, 0))]
    zmv = memoryview(z)
    for start in range(0, z.size, _IDAT_MAX):
        piece = zmv[start:start + _IDAT_MAX]
        parts += [struct.pack(">I", len(piece)) + b"IDAT", piece,
                  struct.pack(">I", zlib.crc32(piece, zlib.crc32(b"IDAT")))]
    parts += [make_chunk(t, d) for t, d in extra]
    parts.append(_IEND)
    return b"".join(parts)


def decode_stored_png(png: bytes, chunks: list[tuple[bytes, int, int]]) -> np.ndarray | None:
    """Fast path for PNGs like :func:`encode_stored_png` writes: 8-bit, not interlaced, every
    row filter None. Returns the pixels, or ``None`` for any other PNG (decode it with Pillow).

    ``chunks`` comes from :func:`iter_chunks`. Raises :class:`PngChunkError` if the image
    data is corrupt (bad deflate stream or checksum, wrong length).
    """
    ihdr = [(off, n) for t, off, n in chunks if t == b"IHDR"]
    if len(ihdr) != 1 or ihdr[0][1] != 13:
        return None
    w, h, depth, ctype, comp, filt, interlace = struct.unpack_from(">IIBBBBB", png, ihdr[0][0])
    if depth != 8 or ctype not in _CHANNELS or (comp, filt, interlace) != (0, 0, 0):
        return None
    c = _CHANNELS[ctype]
    idat = [(off, n) for t, off, n in chunks if t == b"IDAT"]
    if not idat:
        raise PngChunkError("no image data")
    mv = memoryview(png)
    data = mv[idat[0][0]:idat[0][0] + idat[0][1]] if len(idat) == 1 else b"".join(
        mv[off:off + n] for off, n in idat)
    expected = h * (w * c + 1)
    d = zlib.decompressobj()
    try:
        raw = d.decompress(data, expected)
        extra = b""
        while d.unconsumed_tail and not extra:  # finish the trailer, refuse any more output
            extra = d.decompress(d.unconsumed_tail, 1)
    except zlib.error as exc:
        raise PngChunkError(f"corrupt image data ({exc})") from exc
    if len(raw) != expected or extra or not d.eof or d.unused_data:
        raise PngChunkError("image data has the wrong length")
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(h, w * c + 1)
    if rows[:, 0].any():
        return None  # filtered rows: leave them to Pillow
    pixels = rows[:, 1:].reshape(h, w, c)
    return np.ascontiguousarray(pixels if c > 1 else pixels[:, :, 0])

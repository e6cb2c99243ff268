"""Safe image loading and saving.

Loading refuses what cannot be carried without loss (palette, 16-bit, multi-frame images),
bounds the pixel count before decoding (decompression bombs) and turns every decoder failure
into one :class:`ImageError`. Saving writes only lossless formats, atomically, and never
replaces an existing file unless asked to.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np
from PIL import Image

from ..errors import StegshieldError
from .png import encode_png, png_shortfall

#: Default limit on width × height; raise it with ``max_pixels`` / ``--max-pixels``.
DEFAULT_MAX_PIXELS = 64_000_000

# Pillow's own bomb guard (Image.MAX_IMAGE_PIXELS) is left as the host application set it:
# we check the size ourselves before decoding, and the command line, whose --max-pixels may
# go above Pillow's limit, lifts it for its own process (cli.main).

LOSSLESS_EXTENSIONS = {
    ".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF",
    ".pgm": "PPM", ".ppm": "PPM", ".pnm": "PPM", ".webp": "WEBP",
}
LOSSY_EXTENSIONS = {".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".jp2", ".j2k", ".heic", ".avif"}
_CARRIER_MODES = {"L": 1, "LA": 1, "RGB": 3, "RGBA": 3}


class ImageError(StegshieldError):
    """An image could not be read or written; the message is one line for the user."""


class OutputExistsError(ImageError):
    """The output exists and ``force`` was not given."""


def already_exists(path: str | os.PathLike[str]) -> OutputExistsError:
    """The error for an output that exists and may not be replaced."""
    return OutputExistsError(f"{path}: already exists (replace it with --force, or force=True "
                             "in Python)")


@dataclass
class LoadedImage:
    """Decoded pixels (uint8 HxW or HxWxC) with their mode and source format."""

    pixels: np.ndarray
    mode: str
    format: str
    lossy: bool = False
    """Lossily compressed WebP or TIFF pixels (see :func:`webp_is_lossy`); JPEG is known by
    format."""
    metadata: tuple[str, ...] = ()
    """Metadata the file had and the pixels do not carry (EXIF, ICC profile, text, XMP)."""

    @property
    def carrier_channels(self) -> int:
        """Channels that may carry data (alpha never does)."""
        return _CARRIER_MODES[self.mode]

    @property
    def lossy_source(self) -> bool:
        return self.lossy or self.format in _LOSSY_FORMATS


_LOSSY_FORMATS = frozenset({"JPEG", "MPO"})


def webp_is_lossy(fp: IO[bytes]) -> bool:
    """Whether the WebP file ``fp`` holds lossy (VP8) rather than lossless (VP8L) pixels, from
    its RIFF chunks (the first image chunk, or the first animation frame's); ``fp``'s position
    is restored.  Unknown layouts count as lossless (nothing is claimed)."""
    pos = fp.tell()
    try:
        fp.seek(0)
        head = fp.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
            return False
        for _ in range(64):  # ICCP, ANIM, ALPH ... come before the image data
            chunk = fp.read(8)
            if len(chunk) < 8:
                return False
            fourcc, size = chunk[:4], int.from_bytes(chunk[4:], "little")
            if fourcc in (b"VP8 ", b"VP8L"):
                return fourcc == b"VP8 "
            if fourcc == b"ANMF":  # frame header (16 bytes), then the frame's own chunks
                frame = fp.read(24)
                return frame[16:20] == b"VP8 " or (
                    frame[16:20] == b"ALPH" and _after_alph_is_vp8(fp, frame))
            fp.seek(size + (size & 1), io.SEEK_CUR)
        return False
    finally:
        fp.seek(pos)


def _after_alph_is_vp8(fp: IO[bytes], frame: bytes) -> bool:
    size = int.from_bytes(frame[20:24], "little")
    fp.seek(size + (size & 1), io.SEEK_CUR)
    return fp.read(4) == b"VP8 "


def _decoder_args(img: Image.Image) -> Iterator[tuple[object, object]]:
    """(raw mode, decoder arguments) of each tile, read before ``load()`` empties them: the
    raw mode tells the file's bit depth where Pillow's mode does not."""
    for tile in getattr(img, "tile", None) or ():
        args = tile[3] if len(tile) > 3 else None
        yield (args[0] if isinstance(args, tuple) and args else args), args


def has_deep_samples(img: Image.Image) -> bool:
    """True when the file stores more than 8 bits per sample although Pillow reports an 8-bit
    mode (16-bit RGB/RGBA/LA PNG, 16-bit RGB TIFF): decoding would drop the low byte."""
    for raw, args in _decoder_args(img):
        # PNG/TIFF raw modes such as RGB;16B (BMP's BGR;16 is 5-6-5 bits per pixel: lossless)
        if (img.format in ("PNG", "TIFF") and isinstance(raw, str)
                and (";16" in raw or ";32" in raw)):
            return True
        if (img.format == "PPM" and isinstance(args, tuple) and len(args) > 1
                and isinstance(args[1], int) and args[1] > 255):  # ('RGB', maxval 65535)
            return True
    bits = getattr(img, "tag_v2", {}).get(258) if img.format == "TIFF" else None
    return bits is not None and max(bits if isinstance(bits, tuple) else (bits,)) > 8


#: What a size-limit error advises (the server strips it: its clients cannot follow it).
MAX_PIXELS_HINT = "(raise it with --max-pixels, or max_pixels= in Python)"

#: The formats we decode (Pillow would also open ICO/ICNS, which decode an embedded PNG of
#: any size inside ``Image.open``, before any pixel limit can be checked).
OPEN_FORMATS = ("PNG", "JPEG", "BMP", "DIB", "TIFF", "PPM", "WEBP", "GIF")  # JPEG opens MPO too
#: Scans in a JPEG beyond which decoding is refused: a progressive JPEG has about ten, and a
#: small file repeating a scan thousands of times costs minutes of CPU to decode.
MAX_JPEG_SCANS = 256


def jpeg_scans(data: bytes, limit: int = MAX_JPEG_SCANS) -> int:
    """Start-of-scan markers of the first image in a JPEG file, found by walking its segments
    (metadata segments and anything after the end-of-image marker are skipped, so a large
    EXIF block or an appended video cannot count); stops counting past ``limit``."""
    size = len(data)
    if data[:2] != b"\xff\xd8":
        return 0
    n, i = 0, 2
    while i + 1 < size:
        if data[i] != 0xFF:  # not at a marker: resynchronise
            i = data.find(b"\xff", i)
            if i < 0:
                break
            continue
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:  # end of image
            break
        if marker in (0x00, 0x01) or 0xD0 <= marker <= 0xD7:  # no length field
            i += 2
            continue
        if i + 4 > size:
            break
        i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
        if marker != 0xDA:
            continue
        n += 1
        if n > limit:
            break
        while True:  # entropy-coded data: up to a marker that is not a stuffed 0xFF or RST
            j = data.find(b"\xff", i)
            if j < 0 or j + 1 >= size:
                return n
            if data[j + 1] == 0x00 or 0xD0 <= data[j + 1] <= 0xD7:
                i = j + 2
                continue
            i = j
            break
    return n


def png_truncation(img: Image.Image, read: Callable[[], bytes]) -> str | None:
    """"truncated PNG ..." when the decoded PNG ``img`` holds rows that Pillow filled in (with
    zeros, without an error) because its pixel stream ended early; else None.  ``read`` gives
    the file's bytes; it is called, and ``png_shortfall`` (a second pass through zlib, as long
    as decoding) run, only when rows may be filled: interlaced, or a zero sample in the last
    pixel."""
    if img.format != "PNG":
        return None
    if not img.info.get("interlace"):
        last = img.getpixel((img.size[0] - 1, img.size[1] - 1))
        if not (0 in last if isinstance(last, tuple) else last == 0):
            return None
    short = png_shortfall(read())
    if short is None:
        return None
    return f"truncated PNG: its pixel data ends after {short[0]:,} of {short[1]:,} bytes"


def max_file_bytes(max_pixels: int) -> int:
    """The largest image file read for a pixel limit: 8 bytes per pixel (16-bit RGBA,
    uncompressed) plus 64 MiB of metadata, so a huge non-image file in a scanned folder, a
    watched inbox or a pipe cannot exhaust memory."""
    return 8 * max_pixels + 64 * 2**20


def is_multi_frame(img: Image.Image) -> bool:
    """Whether ``img`` has more than one frame or page, without counting them (Pillow counts
    TIFF pages by walking every one: quadratic in a file of many tiny pages)."""
    return bool(getattr(img, "is_animated", False))


def _refusal(img: Image.Image) -> str | None:
    mode = img.mode
    if is_multi_frame(img):
        return "animated / multi-frame images are not supported (extract one frame first)"
    if has_deep_samples(img):
        return ("16-bit images are not supported yet (8 bits per channel only; decoding would "
                "drop the low byte of every sample)")
    if mode in {"P", "PA"}:
        return ("palette images are not supported (their pixels index a colour table); "
                "convert to RGB first")
    if mode in {"I;16", "I;16B", "I;16L", "I;16N", "I", "F"}:
        return "16-bit and floating-point images are not supported yet (8 bits per channel only)"
    if mode == "1":
        return "1-bit (bilevel) images are not supported (8 bits per channel only)"
    if mode not in {"L", "LA", "RGB", "RGBA"}:
        return f"image mode {mode} is not supported (use grayscale, RGB or RGBA)"
    return None


@contextlib.contextmanager
def _checked(source: str | os.PathLike[str] | bytes, max_pixels: int
             ) -> Iterator[tuple[Image.Image, IO[bytes]]]:
    """Open ``source`` lazily and apply the size limit and refusals before any decoding;
    yields the image and its open file (the one the caller may re-read, never the path)."""
    label = "<bytes>" if isinstance(source, bytes) else str(source)
    try:
        fp = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    except OSError as exc:
        raise ImageError(f"{label}: cannot open: {exc.strerror or exc}") from exc
    if not fp.seekable():  # a pipe: read it once (bounded as scan bounds files) into memory
        limit = max_file_bytes(max_pixels)
        chunks, total = [], 0
        with fp:  # in pieces: read(limit + 1) reserves the whole limit (576 MB) at once
            try:
                while total <= limit and (piece := fp.read(min(1 << 20, limit + 1 - total))):
                    chunks.append(piece)
                    total += len(piece)
            except OSError as exc:
                raise ImageError(f"{label}: cannot read: {exc.strerror or exc}") from exc
        data = b"".join(chunks)
        if len(data) > limit:
            raise ImageError(f"{label}: more than {limit:,} bytes, too large for the pixel "
                             f"limit of {max_pixels:,} {MAX_PIXELS_HINT}")
        fp = io.BytesIO(data)
    with fp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            img = Image.open(fp, formats=OPEN_FORMATS)
        except Image.DecompressionBombError as exc:  # Pillow's guard, below --max-pixels
            raise ImageError(f"{label}: too many pixels for Pillow's bomb guard ({exc})"
                             ) from exc
        except Exception as exc:
            raise ImageError(f"{label}: not a recognised image file") from exc
        with img:
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(f"{label}: {w}x{h} = {w * h:,} pixels exceeds the limit of "
                                 f"{max_pixels:,} {MAX_PIXELS_HINT}")
            try:
                reason = _refusal(img)
                if reason is None and img.format in ("JPEG", "MPO"):
                    pos = fp.tell()
                    fp.seek(0)
                    n = jpeg_scans(fp.read())
                    fp.seek(pos)
                    if n > MAX_JPEG_SCANS:
                        reason = (f"a JPEG with more than {MAX_JPEG_SCANS} scans (a normal one "
                                  "has a few dozen at most): refused, decoding it would take "
                                  "minutes")
            except Exception as exc:  # a damaged page list, a broken header field
                raise ImageError(f"{label}: corrupt image ({exc})") from exc
            if reason:
                raise ImageError(f"{label}: {reason}")
            if img.format == "WEBP":
                img.info["stegshield.lossy"] = webp_is_lossy(fp)
            elif img.format == "TIFF":
                img.info["stegshield.lossy"] = img.info.get("compression") in _LOSSY_TIFF
            yield img, fp


#: TIFF compressions that lose information (WebP inside TIFF may be lossy: assume so).
_LOSSY_TIFF = frozenset({"jpeg", "tiff_jpeg", "webp"})


def _gray_bits(img: Image.Image) -> int:
    """Bits per sample of a grey PNG (1, 2, 4 decode scaled to 0..255), else 8."""
    low = {"1": 1, "L;2": 2, "L;4": 4}
    return next((low[raw] for raw, _ in _decoder_args(img) if raw in low), 8)


def _mode(img: Image.Image) -> str:
    """The mode we decode to: an L or RGB image with a tRNS transparent colour becomes LA or
    RGBA, so that its transparency survives as an alpha channel (which is never modified)."""
    if img.mode in ("L", "RGB") and "transparency" in img.info:
        return img.mode[0] + "A" if img.mode == "L" else "RGBA"
    return img.mode


def _metadata(img: Image.Image) -> tuple[str, ...]:
    """The metadata of ``img`` that decoding to pixels leaves behind (outputs never carry
    it): named for the user's warning.  Reads only what the header gave (``getexif`` would
    decode a whole PNG to look past its pixels); never raises."""
    try:
        return _metadata_names(img)
    except Exception:  # a damaged metadata block must not stop a hide: just not named
        return ()


def _metadata_names(img: Image.Image) -> tuple[str, ...]:
    found = []
    raw = img.info.get("exif")
    if raw:
        exif = Image.Exif()
        exif.load(raw)
        turn = exif.get(0x0112, 1)
        found.append("EXIF" + (f" (orientation {turn}: the output displays unrotated)"
                               if turn not in (1, None) else ""))
    if img.info.get("icc_profile"):
        found.append("ICC colour profile")
    if img.format == "PNG" and any(isinstance(v, str) for k, v in img.info.items()
                                   if k != "XML:com.adobe.xmp"):
        found.append("text chunks")  # those before the pixels (img.text would decode them)
    if img.info.get("xmp") or img.info.get("XML:com.adobe.xmp"):
        found.append("XMP")
    return tuple(found)


def open_image(source: str | os.PathLike[str] | bytes,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode an image file (or bytes) into a :class:`LoadedImage`, or raise :class:`ImageError`."""
    label = "<bytes>" if isinstance(source, bytes) else str(source)
    with _checked(source, max_pixels) as (img, fp):
        try:
            bits = _gray_bits(img)  # from the tile list, which load() empties
            metadata = _metadata(img)
            img.load()
            fmt, mode = img.format or "?", _mode(img)
            if mode == "LA" and img.mode == "L":  # tRNS grey key: as scaled by the decoder
                key = int(img.info["transparency"]) * 255 // (2**bits - 1)
                gray = np.asarray(img)
                arr = np.stack([gray, np.where(gray == key, 0, 255).astype(np.uint8)], -1)
            else:
                arr = np.asarray(img if mode == img.mode else img.convert(mode))
        except Exception as exc:
            raise ImageError(f"{label}: corrupt or truncated image ({exc})") from exc
        lossy = bool(img.info.get("stegshield.lossy", False))
        try:  # the bytes just decoded, re-read from the same open file (a pipe is in memory)
            why = png_truncation(img, lambda: (fp.seek(0), fp.read())[1])
        except OSError as exc:
            raise ImageError(f"{label}: cannot read: {exc.strerror or exc}") from exc
        if why:
            raise ImageError(f"{label}: {why}")
    if arr.dtype != np.uint8:
        raise ImageError(f"{label}: unsupported sample type {arr.dtype}")
    return LoadedImage(pixels=np.array(arr, copy=True), mode=mode, format=fmt, lossy=lossy,
                       metadata=metadata)


@dataclass(frozen=True)
class ImageInfo:
    """What the header says, without decoding the pixels."""

    width: int
    height: int
    mode: str
    format: str
    lossy: bool = False
    metadata: tuple[str, ...] = ()

    @property
    def lossy_source(self) -> bool:
        return self.lossy or self.format in _LOSSY_FORMATS


def probe_image(source: str | os.PathLike[str] | bytes,
                max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Read only the header: size, mode and format, with the same refusals as :func:`open_image`."""
    with _checked(source, max_pixels) as (img, _):
        return ImageInfo(img.size[0], img.size[1], _mode(img), img.format or "?",
                         bool(img.info.get("stegshield.lossy", False)), _metadata(img))


def output_format(path: str | os.PathLike[str], mode: str) -> str:
    """The lossless format for ``path``'s extension, or raise :class:`ImageError`."""
    ext = Path(path).suffix.lower()
    if ext in LOSSY_EXTENSIONS:
        raise ImageError(f"{path}: {ext} is a lossy (or palette) format and would not keep the "
                         "pixels exactly; write .png, .bmp, .tiff, .webp (lossless) or .pgm/.ppm")
    fmt = LOSSLESS_EXTENSIONS.get(ext)
    if fmt is None:
        raise ImageError(f"{path}: unknown output extension {ext or '(none)'}; use .png, .bmp, "
                         ".tiff, .webp, .pgm or .ppm")
    if fmt == "BMP" and mode in {"LA", "RGBA"}:
        raise ImageError(f"{path}: BMP readers drop the alpha channel; use .png or .tiff")
    if fmt == "WEBP" and mode in {"L", "LA"}:
        raise ImageError(f"{path}: WebP has no grayscale mode (it would be stored as colour "
                         "and the data lost); use .png")
    if fmt == "PPM" and mode not in {"L", "RGB"}:
        raise ImageError(f"{path}: PGM/PPM cannot store an alpha channel; use .png")
    if fmt == "PPM" and ext == ".pgm" and mode != "L":
        raise ImageError(f"{path}: .pgm is grayscale only; use .ppm or .png for colour")
    if fmt == "PPM" and ext == ".ppm" and mode != "RGB":
        raise ImageError(f"{path}: .ppm is for colour; use .pgm or .png for grayscale")
    return fmt


#: Array rank and channels of each mode.
_MODE_SHAPES = {"L": (2, 1), "LA": (3, 2), "RGB": (3, 3), "RGBA": (3, 4)}


def pixel_shape(width: int, height: int, mode: str) -> tuple[int, ...]:
    """The shape of the pixel array of a ``mode`` image (H×W for L, H×W×C otherwise)."""
    ndim, channels = _MODE_SHAPES[mode]
    return (height, width) if ndim == 2 else (height, width, channels)


def array_mismatch(pixels: object, mode: str) -> str | None:
    """Why ``pixels`` is not a uint8 image of ``mode`` (H×W for L, H×W×C), or None; shared by
    the writers and the array-level hide and reveal."""
    if mode not in _MODE_SHAPES:
        return f"unknown mode {mode!r}; use one of {', '.join(_MODE_SHAPES)}"
    ndim, channels = _MODE_SHAPES[mode]
    if (isinstance(pixels, np.ndarray) and pixels.dtype == np.uint8 and pixels.ndim == ndim
            and (ndim == 2 or pixels.shape[2] == channels)):
        return None
    what = (f"{pixels.dtype} array of shape {pixels.shape}"
            if isinstance(pixels, np.ndarray) else type(pixels).__name__)
    return (f"a {what} is not a {mode} image (uint8, "
            f"{'H×W' if ndim == 2 else f'H×W×{channels}'})")


def header_size(path: str | os.PathLike[str]) -> tuple[int, int] | None:
    """(width, height) from an image file's header, or None when unreadable (for pairing
    files by size; no checks, no decoding)."""
    try:
        with Image.open(path) as img:
            return img.size
    except (OSError, ValueError):
        return None


def encode_image(pixels: np.ndarray, mode: str, fmt: str) -> bytes:
    """Encode pixels losslessly in ``fmt`` (PNG, BMP, TIFF, PPM, WEBP); ``pixels`` must be a
    uint8 array of ``mode``'s shape (an RGBA array written as "RGB" was scrambled)."""
    wrong = array_mismatch(pixels, mode)
    if wrong:
        raise ImageError(wrong)
    if fmt == "PNG":
        return encode_png(pixels)
    buf = io.BytesIO()
    img = Image.fromarray(pixels, mode=mode) if pixels.ndim == 3 else Image.fromarray(pixels)
    if img.mode != mode:
        img = img.convert(mode)
    kwargs: dict[str, object] = {}
    if fmt == "WEBP":
        kwargs = {"lossless": True, "exact": True, "quality": 100, "method": 0}
    elif fmt == "TIFF":
        kwargs = {"compression": "tiff_adobe_deflate"}
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _umask() -> int:
    """The process umask, read without changing it (Linux), else the common 022."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def atomic_write(path: str | os.PathLike[str], data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``path`` atomically; never replace an existing file unless ``force``."""
    target = Path(path)
    directory = target.parent if str(target.parent) else Path(".")
    if not directory.is_dir():
        raise ImageError(f"{path}: directory {directory} does not exist")
    if target.exists() and not force:
        raise already_exists(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise ImageError(f"{path}: cannot write in {directory}: {exc.strerror or exc}") from None
    try:
        # mkstemp creates 0600; give the file the mode a plain open() would (or keep the
        # mode of the file being replaced)
        mode = target.stat().st_mode & 0o7777 if target.exists() else 0o666 & ~_umask()
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if force:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if the target appeared meanwhile: no clobbering
            except FileExistsError as exc:
                raise already_exists(path) from exc
            except OSError:
                if target.exists():
                    raise already_exists(path) from None
                os.replace(tmp, target)  # filesystems without hard links
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def check_not_input(output: str | os.PathLike[str],
                    inputs: Iterable[tuple[str, str | os.PathLike[str] | None]]) -> None:
    """Raise :class:`ImageError` when ``output`` names one of the ``(what, path)`` inputs (the
    same file, through a symlink or a hard link too): outputs never replace their inputs, even
    with ``--force``.  One ``stat`` per input (a scan may name thousands); an output that does
    not exist yet cannot be an input."""
    try:
        out = os.stat(output)
    except OSError:
        return
    for what, path in inputs:
        if path is None:
            continue
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (out.st_dev, out.st_ino):
            raise ImageError(f"{output}: refusing to overwrite the {what}")


def save_image(path: str | os.PathLike[str], pixels: np.ndarray, mode: str,
               force: bool = False) -> None:
    """Save ``pixels`` losslessly to ``path`` (format from the extension), atomically."""
    fmt = output_format(path, mode)
    if Path(path).exists() and not force:
        raise already_exists(path)
    atomic_write(path, encode_image(pixels, mode, fmt), force=force)

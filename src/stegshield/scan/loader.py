"""Decode any common image for *scanning* (more permissive than ``imaging.open_image``).

Hiding refuses palette, 16-bit and animated images; a scanner must still look at them. Here:

* GIF / APNG / multi-page TIFF: the first frame is scanned (noted);
* palette images are expanded to RGB(A) (palette-index embedding is not analysed: noted, and the
  result is marked less reliable);
* 16-bit images are reduced to their high byte (low-byte payloads are invisible: less reliable);
* JPEG (and lossy WebP) is scanned in the pixel domain, which pixel-LSB detectors were not
  designed for (less reliable);
* the pixel count is bounded *before* decoding (decompression bombs).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from ..imaging import DEFAULT_MAX_PIXELS, ImageError, has_deep_samples, webp_is_lossy
from ..imaging.io import (
    MAX_JPEG_SCANS,
    MAX_PIXELS_HINT,
    OPEN_FORMATS,
    is_multi_frame,
    jpeg_scans,
    png_truncation,
)

__all__ = ["IMAGE_EXTENSIONS", "ScanImage", "load_for_scan"]

#: Extensions picked up when walking directories (explicit file arguments are always tried).
IMAGE_EXTENSIONS = frozenset({
    ".png", ".bmp", ".dib", ".tif", ".tiff", ".pgm", ".ppm", ".pnm", ".pbm", ".webp", ".gif",
    ".jpg", ".jpeg", ".jpe", ".jfif",
})
_LOSSY_FORMATS = {"JPEG", "MPO"}
_DIRECT_MODES = {"L", "LA", "RGB", "RGBA"}
_WIDE_MODES = {"I;16", "I;16B", "I;16L", "I;16N", "I"}


@dataclass
class ScanImage:
    """Pixels ready for the detectors plus what the scanner should tell the user about them."""

    pixels: np.ndarray
    format: str
    mode: str
    """The file's own mode (before any conversion)."""
    frames: int = 1
    reliable: bool = True
    notes: list[str] = field(default_factory=list)

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])


def _to_8bit(img: Image.Image) -> np.ndarray:
    arr = np.asarray(img)
    if arr.dtype == np.uint16 or img.mode.startswith("I;16"):
        return (arr.astype(np.uint32) >> 8).astype(np.uint8)
    # mode "I" (32-bit int): PNG/TIFF 16-bit grey often decodes as "I" holding 0..65535
    big = int(arr.max()) if arr.size else 0
    shift = 8 if big > 255 else 0
    return (np.clip(arr, 0, 65535).astype(np.uint32) >> shift).astype(np.uint8)


def _convert(img: Image.Image, scan: ScanImage) -> np.ndarray:
    mode = img.mode
    if mode in _DIRECT_MODES:
        return np.asarray(img)
    if mode in {"P", "PA"}:
        has_alpha = mode == "PA" or "transparency" in img.info
        scan.reliable = False
        scan.notes.append("palette image expanded to RGB, less reliable (a dithered palette "
                          "looks like LSB embedding; palette-index hiding is not analysed)")
        return np.asarray(img.convert("RGBA" if has_alpha else "RGB"))
    if mode in _WIDE_MODES:
        scan.reliable = False
        scan.notes.append("16-bit image reduced to 8 bits (data in the low byte is not seen)")
        return _to_8bit(img)
    if mode == "1":
        scan.reliable = False
        scan.notes.append("1-bit image: LSB detectors do not apply")
        return np.asarray(img.convert("L"))
    if mode == "F":
        raise ImageError("floating-point images cannot be scanned")
    if mode not in {"CMYK", "YCbCr", "LAB", "HSV", "RGBX", "La", "RGBa"}:
        raise ImageError(f"image mode {mode} cannot be scanned")
    if mode in {"CMYK", "LAB", "HSV"}:
        scan.reliable = False
        scan.notes.append(f"{mode} image converted to RGB")
    return np.asarray(img.convert("RGB"))


def load_for_scan(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> ScanImage:
    """Decode ``data`` (a whole image file) into a :class:`ScanImage` or raise ``ImageError``.

    Messages carry no file name: the caller prefixes it.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            img = Image.open(io.BytesIO(data), formats=OPEN_FORMATS)
        except Image.DecompressionBombError as exc:  # Pillow's guard, below --max-pixels
            raise ImageError(f"too many pixels for Pillow's bomb guard ({exc})") from exc
        except Exception as exc:
            raise ImageError("not a recognised image file") from exc
        with img:
            w, h = img.size
            if w * h > max_pixels:
                raise ImageError(f"{w}x{h} = {w * h:,} pixels exceeds the limit of "
                                 f"{max_pixels:,} {MAX_PIXELS_HINT}")
            fmt = img.format or "?"
            if fmt in ("JPEG", "MPO") and jpeg_scans(data) > MAX_JPEG_SCANS:
                raise ImageError(f"a JPEG with more than {MAX_JPEG_SCANS} scans (a normal one "
                                 "has a few dozen at most): not decoded, it would take minutes")
            try:
                # TIFF pages are not counted (Pillow walks them all: quadratic); 0 = several
                frames = (1 if not is_multi_frame(img) else 0 if fmt == "TIFF"
                          else int(getattr(img, "n_frames", 1) or 1))
            except Exception as exc:  # a damaged page list
                raise ImageError(f"corrupt image ({exc})") from exc
            scan = ScanImage(pixels=np.zeros((0, 0), np.uint8), format=fmt, mode=img.mode,
                             frames=frames)
            try:
                if frames != 1:
                    img.seek(0)
                # 16-bit colour that Pillow decodes to 8 bits (seen in the tile list, which
                # load() empties)
                if img.mode in _DIRECT_MODES and has_deep_samples(img):
                    scan.reliable = False
                    scan.notes.append("16-bit image reduced to 8 bits (data in the low byte "
                                      "is not seen)")
                img.load()
                why = png_truncation(img, lambda: data)
                if why:
                    raise ImageError(why)
                arr = _convert(img, scan)
            except ImageError:
                raise
            except MemoryError:
                raise
            except Exception as exc:
                raise ImageError(f"corrupt or truncated image ({exc})") from exc
    if frames != 1:  # what the other frames hide is not seen
        scan.reliable = False
        scan.notes.append(f"first of {frames or 'several'} frames scanned, less reliable")
    if fmt in _LOSSY_FORMATS:
        scan.reliable = False
        scan.notes.append("JPEG: scanned in pixels, less reliable (no DCT-domain analysis)")
    elif fmt == "WEBP" and webp_is_lossy(io.BytesIO(data)):
        scan.reliable = False
        scan.notes.append("lossy WebP: scanned in pixels, less reliable (compression noise)")
    elif fmt == "GIF" and "palette" not in " ".join(scan.notes):
        scan.reliable = False
    if arr.dtype != np.uint8:
        raise ImageError(f"unsupported sample type {arr.dtype}")
    if arr.ndim == 3 and arr.shape[2] == 2:  # LA
        arr = arr[:, :, 0]
    scan.pixels = np.ascontiguousarray(arr)
    return scan

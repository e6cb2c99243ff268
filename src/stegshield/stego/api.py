"""File-level hide / reveal / capacity: the Python API the command line mirrors."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from ..crypto.container import Payload
from ..crypto.kdf import DEFAULT_KDF, KdfParams
from ..imaging import (
    DEFAULT_MAX_PIXELS,
    ImageInfo,
    LoadedImage,
    atomic_write,
    check_not_input,
    encode_image,
    open_image,
    output_format,
    probe_image,
)
from ..imaging.io import already_exists
from .embed import (
    DEFAULT_RATE,
    MAX_RATE,
    HideReport,
    capacity_bytes,
    carrier_count,
    check_cover,
    cost_maps,
    embed_sealed,
    reveal_array,
    start_secrets,
    warm_up,
)

PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Capacity:
    """Payload bytes that fit in an image at the default and at the maximum rate."""

    width: int
    height: int
    mode: str
    carrier_samples: int
    default_rate: float
    default_bytes: int
    max_rate: float
    max_bytes: int


def capacity(cover: PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Capacity:
    """How many bytes ``cover`` can hold (before compression, without a file name)."""
    img = open_image(cover, max_pixels)
    n = carrier_count(img.pixels.shape, img.mode)
    return Capacity(
        width=img.pixels.shape[1], height=img.pixels.shape[0], mode=img.mode,
        carrier_samples=n, default_rate=DEFAULT_RATE, default_bytes=capacity_bytes(n),
        max_rate=MAX_RATE, max_bytes=capacity_bytes(n, MAX_RATE),
    )


def hide_notes(info: ImageInfo | LoadedImage, rate: float) -> tuple[str, ...]:
    """What a user should know before hiding in a cover described by ``info`` (its header,
    or the decoded image) at ``rate``."""
    notes = []
    if rate > DEFAULT_RATE:
        notes.append(f"rate {rate:g} is above the default {DEFAULT_RATE:g}: the stego image is "
                     "easier to detect")
    if info.lossy_source:
        kind = {"WEBP": "lossy WebP", "TIFF": "lossy TIFF"}.get(info.format, "JPEG")
        notes.append(f"the cover was {kind}-compressed: decompressed {kind} pixels with ±1 "
                     "changes can be detected by compatibility analysis; prefer "
                     "never-compressed covers")
    if info.metadata:
        notes.append(f"the stego image does not carry the cover's {', '.join(info.metadata)}")
    return tuple(notes)


def hide(cover: PathLike, output: PathLike, payload: Payload, password: bytes, *,
         rate: float = DEFAULT_RATE, cost: str = "hill", force: bool = False,
         max_pixels: int = DEFAULT_MAX_PIXELS, kdf: KdfParams = DEFAULT_KDF,
         compress: bool = True) -> HideReport:
    """Hide ``payload`` in the image ``cover`` and write the stego image to ``output``.

    The output format follows ``output``'s extension and must be lossless. The cover is never
    modified; ``output`` is written atomically and only replaced when ``force`` is set. The
    report's ``notes`` say what the command line warns about (:func:`hide_notes`).
    Pipeline: the header gives the shape, so both Argon2id derivations and the numba start-up
    run on other threads while the cover decodes (Pillow and argon2-cffi drop the GIL).
    """
    check_not_input(output, [("cover image", cover)])
    if Path(output).exists() and not force:
        raise already_exists(output)
    info = probe_image(cover, max_pixels)
    fmt = output_format(output, info.mode)  # refuse a lossy output before any work
    shape = (info.height, info.width)
    with ThreadPoolExecutor(max_workers=3) as pool:
        warm = pool.submit(warm_up, cost)
        secrets = start_secrets(pool, shape, info.mode, payload, password, kdf, compress)
        img = open_image(cover, max_pixels)
        check_cover(img.pixels, img.mode, cost)
        warm.result()
        maps = cost_maps(img.pixels, img.mode, cost)
        stego, report = embed_sealed(img.pixels, img.mode, len(payload.data), secrets, maps,
                                     rate=rate, cost=cost)
    del maps
    atomic_write(output, encode_image(stego, img.mode, fmt), force=force)
    return replace(report, notes=hide_notes(info, rate))


def reveal(stego: PathLike | bytes, password: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
           kdf: KdfParams = DEFAULT_KDF) -> Payload:
    """Recover the payload hidden in the image ``stego`` (a path or the file's bytes)."""
    img = open_image(stego, max_pixels)
    return reveal_array(img.pixels, img.mode, password, kdf=kdf)

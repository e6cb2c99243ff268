"""File-level hide / reveal / capacity: the Python API the command line mirrors."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..crypto.container import Payload
from ..crypto.kdf import DEFAULT_KDF, KdfParams
from ..imaging import (
    DEFAULT_MAX_PIXELS,
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


def hide(cover: PathLike, output: PathLike, payload: Payload, password: bytes, *,
         rate: float = DEFAULT_RATE, cost: str = "hill", force: bool = False,
         max_pixels: int = DEFAULT_MAX_PIXELS, kdf: KdfParams = DEFAULT_KDF,
         compress: bool = True) -> HideReport:
    """Hide ``payload`` in the image ``cover`` and write the stego image to ``output``.

    The output format follows ``output``'s extension and must be lossless. The cover is never
    modified; ``output`` is written atomically and only replaced when ``force`` is set.
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
    return report


def reveal(stego: PathLike | bytes, password: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS,
           kdf: KdfParams = DEFAULT_KDF) -> Payload:
    """Recover the payload hidden in the image ``stego`` (a path or the file's bytes)."""
    img = open_image(stego, max_pixels)
    return reveal_array(img.pixels, img.mode, password, kdf=kdf)

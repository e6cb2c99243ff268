"""Generated test images (no files needed)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import ndimage


def natural_like(h: int, w: int, channels: int = 0, seed: int = 0) -> np.ndarray:
    """A photo-like uint8 image: smooth random field + texture + mild sensor noise."""
    rng = np.random.default_rng(seed)
    shape = (h, w) if channels == 0 else (h, w, channels)
    sigma = (6, 6) if channels == 0 else (6, 6, 0)
    base = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    base = (base - base.min()) / (np.ptp(base) + 1e-9) * 200 + 25
    texture = rng.normal(0, 6, size=shape) * (np.linspace(0, 1, w)[None, :, None]
                                              if channels else np.linspace(0, 1, w)[None, :])
    return np.clip(np.rint(base + texture), 0, 255).astype(np.uint8)


def smooth_tile(rng: np.random.Generator, n: int) -> np.ndarray:
    """An n x n uint8 tile: a smooth sinusoidal pattern plus mild noise."""
    yy, xx = np.mgrid[:n, :n]
    base = 120 + 60 * np.sin(xx / 5.0) * np.cos(yy / 7.0)
    return np.clip(base + rng.normal(0, 4, (n, n)), 0, 255).astype(np.uint8)


def tile_corpus(root: Path, tile: int, counts: dict[str, int], seed: int = 0) -> Path:
    """A tiny cover corpus in ``root``: ``counts[split]`` tiles of ``tile`` px per split, one
    source photo per tile, and the ``manifest.jsonl`` that training reads."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    rows = []
    for split, n in counts.items():
        (root / split / str(tile)).mkdir(parents=True)
        for i in range(n):
            p = f"{split}/{tile}/t{i}.png"
            Image.fromarray(smooth_tile(rng, tile)).save(root / p)
            rows.append({"path": p, "split": split, "tile": tile, "group": f"{split}{i}"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root

"""Generated test images (no files needed)."""

from __future__ import annotations

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

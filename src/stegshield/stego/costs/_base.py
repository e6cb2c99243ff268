"""Limits and input checks shared by every cost map (pure numpy: no numba import)."""

from __future__ import annotations

import numpy as np

__all__ = ["MAX_COST", "as_image", "finalize"]

MAX_COST = 1e10
"""Largest cost returned by the cost maps (stands in for "infinite", i.e. wet)."""


def as_image(x: np.ndarray, dtype: type = np.float32) -> np.ndarray:
    """Validate a 2-D one-channel image and convert it to a contiguous float array."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D one-channel image, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("empty image")
    if not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"unsupported dtype {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=dtype)
    if np.issubdtype(arr.dtype, np.floating) and not np.isfinite(out).all():
        raise ValueError("image contains non-finite values")
    return out


def finalize(rho: np.ndarray) -> np.ndarray:
    """Return a float64 cost map, finite and positive (clipped to ``(0, MAX_COST]``)."""
    out = np.asarray(rho, dtype=np.float64)
    out = np.nan_to_num(out, nan=MAX_COST, posinf=MAX_COST)
    return np.clip(out, np.finfo(np.float64).tiny, MAX_COST, out=out)

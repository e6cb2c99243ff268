"""HILL cost map.

B. Li, M. Wang, J. Huang, X. Li, "A new cost function for spatial image steganography",
ICIP 2014: ``rho = (1 / (|X ⊗ H_KB| ⊗ L_3)) ⊗ L_15`` with the KB high-pass filter ``H_KB``
and ``L_k`` the ``k x k`` averaging filter.  Borders are mirrored (``d c b a | a b c d``).
"""

from __future__ import annotations

import numpy as np

from ._base import MAX_COST, as_image

__all__ = ["hill"]

# Floor applied to the smoothed residual before taking the reciprocal (flat areas).
_FLOOR = float(np.finfo(np.float32).eps)
_TINY32 = float(np.finfo(np.float32).tiny)


def hill_f32(x: np.ndarray) -> np.ndarray:
    """HILL costs as float32 (the C kernel's native output; half the memory of float64)."""
    arr = np.asarray(x)
    if arr.dtype == np.uint8 and arr.ndim == 2:
        pixels = np.ascontiguousarray(arr)
    else:
        img = as_image(arr, np.float64)
        if img.min() < 0 or img.max() > 255 or not np.array_equal(img, np.rint(img)):
            raise ValueError("HILL needs integer pixel values in 0..255")
        pixels = img.astype(np.uint8)
    from ... import _native  # imported here: the cost constants load without the C build

    out = np.empty(pixels.shape, dtype=np.float32)
    _native.hill(pixels, pixels.shape[0], pixels.shape[1], out, _FLOOR, _TINY32, MAX_COST)
    return out


def hill(x: np.ndarray) -> np.ndarray:
    """HILL costs of a ±1 change for a 2-D one-channel image (Li et al., ICIP 2014).

    Uses the KB filter ``[[-1, 2, -1], [2, -4, 2], [-1, 2, -1]] / 4`` (separable, applied as
    two 1-D second differences), a 3x3 and a 15x15 mean filter, all with mirrored borders.
    Returns float64 costs, finite and positive.
    """
    return hill_f32(x).astype(np.float64)

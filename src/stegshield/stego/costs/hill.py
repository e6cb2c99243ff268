"""HILL cost map.

B. Li, M. Wang, J. Huang, X. Li, "A new cost function for spatial image steganography",
ICIP 2014: ``rho = (1 / (|X ⊗ H_KB| ⊗ L_3)) ⊗ L_15`` with the KB high-pass filter ``H_KB``
and ``L_k`` the ``k x k`` averaging filter.  Borders are mirrored (``d c b a | a b c d``).
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._common import MAX_COST, as_image

__all__ = ["hill"]

# Floor applied to the smoothed residual before taking the reciprocal (flat areas).
_FLOOR = float(np.finfo(np.float32).eps)
_TINY = float(np.finfo(np.float64).tiny)


@nb.njit(cache=True, nogil=True, inline="always")
def _refl(k: int, n: int) -> int:
    """Index ``k`` mirrored into ``[0, n)`` with symmetric (half-sample) extension."""
    k %= 2 * n
    return 2 * n - 1 - k if k >= n else k


@nb.njit(cache=True, nogil=True)
def _mirror_fill(src: np.ndarray, buf: np.ndarray, r: int) -> None:
    """``buf[j] = src[refl(j - r)]`` for ``j < src.size + 2r`` (modulo only at the edges)."""
    n = src.size
    for j in range(n):
        buf[j + r] = src[j]
    for j in range(r):
        buf[j] = src[_refl(j - r, n)]
        buf[n + r + j] = src[_refl(n + j, n)]


@nb.njit(cache=True, nogil=True)
def _row_box(src: np.ndarray, buf: np.ndarray, out: np.ndarray, r: int) -> None:
    """``out[j] = sum_{|d| <= r} src[refl(j + d)]`` via a mirrored row buffer ``buf``."""
    _mirror_fill(src, buf, r)
    n = src.size
    for j in range(n):
        out[j] = buf[j]
    for d in range(1, 2 * r + 1):
        for j in range(n):
            out[j] += buf[j + d]


@nb.njit(cache=True, nogil=True)
def _hill_f32(x: np.ndarray, floor: float, tiny: float, big: float) -> np.ndarray:
    H, W = x.shape
    f0 = np.float32(0.0)
    two = np.float32(2.0)
    quarter = np.float32(0.25)
    ninth = np.float32(1.0 / 9.0)
    fl = np.float32(floor)
    # |X ⊗ KB / 4|; KB = -[1, -2, 1]^T [1, -2, 1], so two 1-D second differences.
    res = np.empty((H, W), dtype=np.float32)
    v = np.empty(W, dtype=np.float32)
    buf = np.empty(W + 14, dtype=np.float32)
    for i in range(H):
        a = x[_refl(i - 1, H)]
        b = x[i]
        c = x[_refl(i + 1, H)]
        for j in range(W):
            v[j] = a[j] - two * b[j] + c[j]
        _mirror_fill(v, buf, 1)
        row = res[i]
        for j in range(W):
            row[j] = abs(quarter * (buf[j] - two * buf[j + 1] + buf[j + 2]))
    # 1 / max(|R| ⊗ L_3, floor)
    inv = np.empty((H, W), dtype=np.float32)
    for i in range(H):
        a = res[_refl(i - 1, H)]
        b = res[i]
        c = res[_refl(i + 1, H)]
        for j in range(W):
            v[j] = a[j] + b[j] + c[j]
        row = inv[i]
        _row_box(v, buf, row, 1)
        for j in range(W):
            row[j] = np.float32(1.0) / max(row[j] * ninth, fl)
    # (...) ⊗ L_15, written straight to float64 and clipped to (0, big]
    out = np.empty((H, W), dtype=np.float64)
    acc = np.empty(W, dtype=np.float32)
    p2 = np.empty(W + 13, dtype=np.float32)
    p4 = np.empty(W + 11, dtype=np.float32)
    for i in range(H):
        for j in range(W):
            acc[j] = f0
        for d in range(-7, 8):
            src = inv[_refl(i + d, H)]
            for j in range(W):
                acc[j] += src[j]
        # 15-wide row sum by doubling: 8 + 4 + 2 + 1 taps from partial sums p8, p4, p2.
        _mirror_fill(acc, buf, 7)
        for j in range(W + 13):
            p2[j] = buf[j] + buf[j + 1]
        for j in range(W + 11):
            p4[j] = p2[j] + p2[j + 2]
        orow = out[i]
        for j in range(W):
            val = np.float64(p4[j] + p4[j + 4] + p4[j + 8] + p2[j + 12] + buf[j + 14]) / 225.0
            orow[j] = min(max(val, tiny), big)
    return out


def hill(x: np.ndarray) -> np.ndarray:
    """HILL costs of a ±1 change for a 2-D one-channel image (Li et al., ICIP 2014).

    Uses the KB filter ``[[-1, 2, -1], [2, -4, 2], [-1, 2, -1]] / 4`` (separable, applied as
    two 1-D second differences), a 3x3 and a 15x15 mean filter, all with mirrored borders.
    Returns float64 costs, finite and positive.
    """
    return _hill_f32(as_image(x, np.float32), _FLOOR, _TINY, MAX_COST)

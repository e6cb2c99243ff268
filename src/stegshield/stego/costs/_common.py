"""Shared helpers for the spatial-domain cost maps."""

from __future__ import annotations

import numba as nb
import numpy as np

from ...runtime import jit_cache
from ._base import MAX_COST, as_image, finalize

_CACHE = jit_cache(__file__)  # on-disk numba cache where it can be written

__all__ = ["DB8_DEC_HI", "DB8_DEC_LO", "MAX_COST", "as_image", "finalize", "wavelet_costs"]

# Minimum-phase Daubechies scaling filter with 8 vanishing moments (16 taps, sum = sqrt(2)),
# obtained by spectral factorisation of Daubechies' polynomial
# P(y) = sum_{k<8} C(7+k, k) y^k (I. Daubechies, "Ten Lectures on Wavelets", 1992, Sec. 6.1).
_DB8 = np.array(
    [
        5.4415842243103967e-02,
        3.1287159091429978e-01,
        6.7563073629728920e-01,
        5.8535468365420618e-01,
        -1.5829105256348078e-02,
        -2.8401554296154657e-01,
        4.7248457391295336e-04,
        1.2874742662047875e-01,
        -1.7369301001807808e-02,
        -4.4088253930794616e-02,
        1.3981027917398263e-02,
        8.7460940474057454e-03,
        -4.8703529934515603e-03,
        -3.9174037337694824e-04,
        6.7544940645056846e-04,
        -1.1747678412476935e-04,
    ]
)
DB8_DEC_LO = _DB8[::-1].copy()
"""1-D low-pass decomposition filter ``h`` of the Daubechies-8 wavelet."""
DB8_DEC_HI = (-1.0) ** np.arange(1, 17) * _DB8
"""1-D high-pass decomposition filter ``g`` of the Daubechies-8 wavelet."""


@nb.njit(cache=_CACHE, nogil=True)
def _corr_valid(x: np.ndarray, k: np.ndarray, axis: int) -> np.ndarray:
    """'Valid' 1-D correlation along ``axis``: ``out[.., u, ..] = sum_t k[t] x[.., u + t, ..]``."""
    H, W = x.shape
    L = k.size
    kk = k.astype(x.dtype)
    if axis == 0:
        out = np.zeros((H - L + 1, W), dtype=x.dtype)
        for i in range(H - L + 1):
            row = out[i]
            for t in range(L):
                c = kk[t]
                src = x[i + t]
                for j in range(W):
                    row[j] += c * src[j]
    else:
        out = np.zeros((H, W - L + 1), dtype=x.dtype)
        for i in range(H):
            row = out[i]
            src = x[i]
            for t in range(L):
                c = kk[t]
                for j in range(W - L + 1):
                    row[j] += c * src[j + t]
    return out


def _directional_residuals(xp: np.ndarray) -> list[np.ndarray]:
    """Residuals ``W_k = K_k * X`` ('valid' 2-D convolution) of the Daubechies-8 filter bank.

    ``K_1 = h g^T`` (vertical low-pass, horizontal high-pass), ``K_2 = g h^T``,
    ``K_3 = g g^T``; a convolution is a correlation with the reversed 1-D filters.
    """
    lo, hi = DB8_DEC_LO[::-1].copy(), DB8_DEC_HI[::-1].copy()
    a = _corr_valid(xp, hi, 1)
    b = _corr_valid(xp, lo, 1)
    return [_corr_valid(a, lo, 0), _corr_valid(b, hi, 0), _corr_valid(a, hi, 0)]


def wavelet_costs(x: np.ndarray, transform: str, sigma: float = 1.0) -> list[np.ndarray]:
    """Per-direction aggregates ``xi_k`` for S-UNIWARD / WOW on the symmetric-padded image.

    ``transform == "uniward"``: ``xi_k = sum_{u,v} |K_k[u - i, v - j]| / (sigma + |W_k[u, v]|)``
    (Holub et al. 2014); ``transform == "wow"``: the same footprint sum of ``|W_k|``
    (Holub & Fridrich 2012).  The image is mirror-padded by the filter length so that every
    footprint is complete; residuals are computed in the dtype of ``x``.  A unit change at
    ``(i, j)`` alters ``W_k[u, v]`` by ``K_k[u - i, v - j]`` (convolution), hence the footprint
    sum is a correlation with ``|K_k|``; with 16-tap filters the valid outputs are offset by one
    pixel.
    """
    if transform not in ("uniward", "wow"):
        raise ValueError(f"unknown transform {transform!r}")
    H, W = x.shape
    L = DB8_DEC_LO.size
    xp = np.pad(x, L, mode="symmetric")
    kernels = [(DB8_DEC_LO, DB8_DEC_HI), (DB8_DEC_HI, DB8_DEC_LO), (DB8_DEC_HI, DB8_DEC_HI)]
    out = []
    for (col, row), w in zip(kernels, _directional_residuals(xp), strict=True):
        # The footprint sums add positive terms only, so float32 is accurate enough there.
        w = np.abs(w).astype(np.float32, copy=False)
        if transform == "uniward":
            w += np.float32(sigma)
            np.reciprocal(w, out=w)
        xi = _corr_valid(_corr_valid(w, np.abs(row), 1), np.abs(col), 0)
        out.append(xi[1 : H + 1, 1 : W + 1])
    return out

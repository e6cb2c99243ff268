"""WOW (Wavelet Obtained Weights) cost map.

V. Holub, J. Fridrich, "Designing steganographic distortion using directional filters",
IEEE WIFS 2012.  Embedding suitabilities ``xi_k = |W_k| ⋆ |K_k|`` of the Daubechies-8
directional residuals are aggregated with the reciprocal Hölder norm
``rho = (sum_k xi_k^p)^(-1/p)``, ``p = -1``, i.e. ``rho = sum_k 1 / xi_k``.
"""

from __future__ import annotations

import numpy as np

from ._common import MAX_COST, as_image, finalize, wavelet_costs

__all__ = ["wow"]


def wow(x: np.ndarray, p: float = -1.0) -> np.ndarray:
    """WOW costs of a ±1 change for a 2-D one-channel image (Holub & Fridrich, WIFS 2012)."""
    if not p < 0:
        raise ValueError("p must be negative")
    xi = wavelet_costs(as_image(x, np.float64), "wow")
    floor = 1.0 / MAX_COST
    if p == -1.0:
        rho = np.reciprocal(np.maximum(xi[0], floor))
        for k in (1, 2):
            rho += np.reciprocal(np.maximum(xi[k], floor))
        return finalize(rho)
    acc = sum(np.maximum(k, floor) ** p for k in xi)
    return finalize(acc ** (-1.0 / p))

"""S-UNIWARD cost map (spatial domain).

V. Holub, J. Fridrich, T. Denemark, "Universal distortion function for steganography in an
arbitrary domain", EURASIP J. Inf. Secur. 2014:1.  With the undecimated Daubechies-8 filter
bank ``K_1 = h g^T``, ``K_2 = g h^T``, ``K_3 = g g^T`` and residuals ``W_k = K_k * X``, the
cost of a ±1 change at ``(i, j)`` is
``rho_ij = sum_k sum_{u,v} |K_k[u - i, v - j]| / (sigma + |W_k[u, v]|)``.
"""

from __future__ import annotations

import numpy as np

from ._common import as_image, finalize, wavelet_costs

__all__ = ["suniward"]


def suniward(x: np.ndarray, sigma: float = 1.0) -> np.ndarray:
    """S-UNIWARD costs of a ±1 change for a 2-D one-channel image (sigma = 1 as in the paper)."""
    if not sigma > 0:
        raise ValueError("sigma must be > 0")
    xi = wavelet_costs(as_image(x, np.float32), "uniward", sigma)
    return finalize(xi[0] + xi[1] + xi[2])

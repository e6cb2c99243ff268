"""Key-derived embedding positions: a keyed pseudo-random permutation of ``range(n)``.

The permutation is a balanced Feistel network (Luby & Rackoff 1988) on the smallest even-bit
domain ``2^(2b) >= n`` with a keyed 64-bit mixing round function, restricted to ``[0, n)`` by
cycle walking (Black & Rogaway, "Ciphers with arbitrary finite domains", CT-RSA 2002). Only the
first ``k`` outputs are computed, so the cost grows with the payload, not the image. Pure integer
arithmetic in numpy: identical on every platform and numpy version.

The positions spread the payload over the whole image; their secrecy is a bonus, the payload's
secrecy rests on the AEAD (see ``stegshield.crypto``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

_ROUNDS = 6
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (a bijective 64-bit mixer)."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def _round_keys(key: bytes) -> np.ndarray:
    if len(key) < 16:
        raise ValueError("position key must be at least 16 bytes")
    words = np.frombuffer((key * 4)[: 8 * _ROUNDS], dtype=">u8").astype(np.uint64)
    return words ^ np.arange(1, _ROUNDS + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)


@njit(cache=True, nogil=True)
def _perm_kernel(start: int, k: int, n: int, half_bits: int, rk: np.ndarray) -> np.ndarray:
    mask = np.uint64((1 << half_bits) - 1)
    hb = np.uint64(half_bits)
    m1 = np.uint64(0xBF58476D1CE4E5B9)
    m2 = np.uint64(0x94D049BB133111EB)
    s30, s27, s31 = np.uint64(30), np.uint64(27), np.uint64(31)
    out = np.empty(k, dtype=np.int64)
    limit = np.uint64(n)
    for i in range(k):
        x = np.uint64(start + i)
        while True:  # cycle walking
            left = x >> hb
            right = x & mask
            for r in range(rk.shape[0]):
                z = right ^ rk[r]
                z = (z ^ (z >> s30)) * m1
                z = (z ^ (z >> s27)) * m2
                z = z ^ (z >> s31)
                left, right = right, left ^ (z & mask)
            x = (left << hb) | right
            if x < limit:
                break
        out[i] = np.int64(x)
    return out


def permuted_indices(key: bytes, n: int, k: int, start: int = 0) -> np.ndarray:
    """Positions ``pi(start) .. pi(start + k - 1)`` of a keyed permutation ``pi`` of range(n)."""
    if not 0 <= start <= start + k <= n:
        raise ValueError(f"cannot take {k} positions from {start} of {n}")
    if k == 0:
        return np.empty(0, dtype=np.int64)
    half_bits = max(1, ((n - 1).bit_length() + 1) // 2)
    return _perm_kernel(start, k, n, half_bits, _round_keys(key))


def keyed_bits(key: bytes, indices: np.ndarray) -> np.ndarray:
    """One pseudo-random bit per index (e.g. the sign of a ±1 change)."""
    k = np.frombuffer(key[:8], dtype=">u8").astype(np.uint64)[0]
    with np.errstate(over="ignore"):
        return (_mix(indices.astype(np.uint64) ^ k) >> np.uint64(63)).astype(np.uint8)

"""Key-derived embedding positions: a keyed pseudo-random permutation of ``range(n)``.

The permutation is a balanced Feistel network (Luby & Rackoff 1988) on the smallest even-bit
domain ``2^(2b) >= n`` with a keyed 64-bit mixing round function, restricted to ``[0, n)`` by
cycle walking (Black & Rogaway, "Ciphers with arbitrary finite domains", CT-RSA 2002). Only the
first ``k`` outputs are computed, so the cost grows with the payload, not the image. Integer
arithmetic in C (``stegshield._native.feistel``): identical on every platform and numpy version.

The positions spread the payload over the whole image; their secrecy is a bonus, the payload's
secrecy rests on the AEAD (see ``stegshield.crypto``).
"""

from __future__ import annotations

import numpy as np

from .. import _native

_ROUNDS = 6
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser (a bijective 64-bit mixer); works in place on ``x``."""
    x ^= x >> np.uint64(30)
    x *= _M1
    x ^= x >> np.uint64(27)
    x *= _M2
    x ^= x >> np.uint64(31)
    return x


def _round_keys(key: bytes) -> np.ndarray:
    if len(key) < 16:
        raise ValueError("position key must be at least 16 bytes")
    words = np.frombuffer((key * 4)[: 8 * _ROUNDS], dtype=">u8").astype(np.uint64)
    return words ^ np.arange(1, _ROUNDS + 1, dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15)


def permuted_indices(key: bytes, n: int, k: int, start: int = 0) -> np.ndarray:
    """Positions ``pi(start) .. pi(start + k - 1)`` of a keyed permutation ``pi`` of range(n)."""
    if not 0 <= start <= start + k <= n:
        raise ValueError(f"cannot take {k} positions from {start} of {n}")
    out = np.empty(k, dtype=np.int64)
    if k:
        half_bits = max(1, ((n - 1).bit_length() + 1) // 2)
        _native.feistel(_round_keys(key), half_bits, n, start, out)  # C, GIL released
    return out


def keyed_bits(key: bytes, indices: np.ndarray) -> np.ndarray:
    """One pseudo-random bit per index (e.g. the sign of a ±1 change)."""
    k = np.frombuffer(key[:8], dtype=">u8").astype(np.uint64)[0]
    with np.errstate(over="ignore"):
        return (_mix(indices.astype(np.uint64) ^ k) >> np.uint64(63)).astype(np.uint8)

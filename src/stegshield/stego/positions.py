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


def _feistel(x: np.ndarray, half_bits: int, rk: np.ndarray) -> np.ndarray:
    """One pass of the balanced Feistel network over values < 2^(2*half_bits)."""
    mask = np.uint64((1 << half_bits) - 1)
    hb = np.uint64(half_bits)
    left, right = x >> hb, x & mask
    with np.errstate(over="ignore"):
        for r in range(_ROUNDS):
            z = _mix(right ^ rk[r])
            z &= mask
            z ^= left
            left, right = right, z
    left <<= hb
    left |= right
    return left


def permuted_indices(key: bytes, n: int, k: int, start: int = 0) -> np.ndarray:
    """Positions ``pi(start) .. pi(start + k - 1)`` of a keyed permutation ``pi`` of range(n)."""
    if not 0 <= start <= start + k <= n:
        raise ValueError(f"cannot take {k} positions from {start} of {n}")
    if k == 0:
        return np.empty(0, dtype=np.int64)
    half_bits = max(1, ((n - 1).bit_length() + 1) // 2)
    rk = _round_keys(key)
    out = _feistel(np.arange(start, start + k, dtype=np.uint64), half_bits, rk)
    limit = np.uint64(n)
    todo = np.nonzero(out >= limit)[0]
    while todo.size:  # cycle walking: expected < 4 passes since 2^(2b) < 4n
        out[todo] = _feistel(out[todo], half_bits, rk)
        todo = todo[out[todo] >= limit]
    return out.astype(np.int64)


def keyed_bits(key: bytes, indices: np.ndarray) -> np.ndarray:
    """One pseudo-random bit per index (e.g. the sign of a ±1 change)."""
    k = np.frombuffer(key[:8], dtype=">u8").astype(np.uint64)[0]
    with np.errstate(over="ignore"):
        return (_mix(indices.astype(np.uint64) ^ k) >> np.uint64(63)).astype(np.uint8)

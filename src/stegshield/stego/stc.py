"""Binary syndrome-trellis codes (STC).

Implements the binary STC of Filler, Judas and Fridrich, "Minimizing additive distortion in
steganography using syndrome-trellis codes", IEEE TIFS 6(3), 2011.

The parity-check matrix ``H`` (``m x n``) is built by placing a small ``h x w_i`` submatrix
``Ĥ`` along the main diagonal, shifted down by one row per block (Fig. 1 of the paper); the
rows of the last ``h - 1`` blocks that would fall below row ``m`` are truncated.  To support any
``n >= m`` the block widths are ``w_i = floor((i+1)n/m) - floor(i n/m)``, i.e. every block has
width ``floor(n/m)`` or ``ceil(n/m)``, spread evenly and derived only from ``n`` and ``m``.

Embedding runs the Viterbi algorithm over the syndrome trellis (Sec. III-B).  We search for the
change pattern ``e = x XOR y`` of minimum cost whose syndrome is ``m XOR Hx``, which turns every
trellis step into ``w'[s] = min(w[s], w[s ^ c] + rho)``.  Path decisions are stored bit-packed
(one ``uint64`` word per 64 states per column), so memory is ``n * max(64, 2**h) / 8`` bytes.

Ĥ is derived from SHAKE-256 (never from numpy's RNG) with the first and last rows set; for
common ``(h, w)`` the best of several such candidates was picked once by simulation and
frozen in :data:`_BEST`.  Any change to Ĥ changes the code, so it is versioned by ``_LABEL``.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

from .. import _native

__all__ = ["H_MAX", "H_MIN", "StcError", "stc_embed", "stc_extract", "stc_submatrix"]

H_MIN = 1
"""Smallest supported constraint height."""
H_MAX = 12
"""Largest supported constraint height (path memory is ``n * 2**h`` bits)."""

_LABEL = b"stegshield/stc/submatrix/v1"

# Candidate index of Ĥ for h -> (w = 2, 3, ..., 20), the best of 16 (8 for h >= 11) candidates
# by :func:`_search_candidates` (blocks = 16384 for h <= 9, else 8192; seed 0).
# Frozen: changing an entry changes the code and breaks extraction of existing stego objects.
_BEST: dict[int, tuple[int, ...]] = {
    4: (0, 7, 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0),
    5: (6, 14, 33, 20, 188, 440, 385, 5, 5, 2, 3, 1, 1, 6, 6, 5, 8, 3, 0),
    6: (14, 16, 10, 11, 16, 16, 20, 193, 320, 702, 3051, 3185, 2348, 4, 13, 7, 0, 5, 14),
    7: (9, 13, 11, 3, 27, 13, 55, 34, 31, 26, 82, 16, 438, 24, 1643, 3411, 632, 618, 1),
    8: (5, 14, 19, 12, 18, 7, 5, 10, 3, 4, 7, 55, 14, 58, 134, 167, 212, 135, 46),
    9: (4, 0, 2, 8, 0, 10, 13, 2, 2, 11, 2, 19, 21, 15, 48, 5, 19, 5, 16),
    10: (3, 3, 4, 9, 10, 10, 15, 6, 2, 5, 22, 20, 4, 15, 10, 25, 23, 10, 33),
    11: (7, 2, 2, 3, 6, 5, 4, 0, 1, 9, 5, 5, 8, 6, 7, 0, 0, 2, 6),
    12: (3, 3, 4, 7, 7, 4, 2, 6, 7, 0, 2, 0, 3, 0, 1, 0, 3, 3, 6),
}


class StcError(ValueError):
    """Raised when no stego vector with the requested syndrome exists (e.g. too many wet)."""


def _check_h(h: int) -> int:
    if isinstance(h, bool) or not isinstance(h, int | np.integer):
        raise TypeError("h must be an int")
    h = int(h)
    if not H_MIN <= h <= H_MAX:
        raise ValueError(f"h must be in [{H_MIN}, {H_MAX}], got {h}")
    return h


def _candidate_cols(h: int, w: int, k: int) -> np.ndarray:
    """Candidate ``k`` for Ĥ (h x w) as column integers (bit ``r`` of entry ``j`` = Ĥ[r, j]).

    Drawn from SHAKE-256 of a fixed label, ``h``, ``w`` and ``k`` so that it never changes
    between library versions; the first and last rows are all ones (paper, Sec. IV).
    """
    nbytes = (h + 7) // 8
    stream = hashlib.shake_256(_LABEL + f"|h={h}|w={w}|k={k}".encode()).digest(nbytes * w)
    raw = np.frombuffer(stream, dtype=np.uint8).reshape(w, nbytes).astype(np.uint64)
    cols = np.zeros(w, dtype=np.uint64)
    for b in range(nbytes):
        cols |= raw[:, b] << np.uint64(8 * b)
    cols &= np.uint64((1 << h) - 1)
    cols |= np.uint64(1) | np.uint64(1 << (h - 1))
    return cols


def _default_candidate(h: int, w: int) -> int:
    """First candidate whose columns are pairwise distinct (when that is possible)."""
    if w > 1 << max(h - 2, 0):
        return 0
    return next((k for k in range(4096) if _has_distinct_cols(h, w, k)), 0)


def _has_distinct_cols(h: int, w: int, k: int) -> bool:
    return bool(np.unique(_candidate_cols(h, w, k)).size == w)


def _submatrix_cols(h: int, w: int) -> np.ndarray:
    """Columns of the frozen submatrix Ĥ for constraint height ``h`` and width ``w``.

    For common ``(h, w)`` the candidate index comes from :data:`_BEST`, an offline search
    (the paper also selects Ĥ by computer search); otherwise the first candidate without
    repeated columns is used.
    """
    if w <= 4096:
        return _submatrix_cols_cached(h, w)
    return _candidate_cols(h, w, _default_candidate(h, w))


@lru_cache(maxsize=512)
def _submatrix_cols_cached(h: int, w: int) -> np.ndarray:
    row = _BEST.get(h)
    k = row[w - 2] if row is not None and 2 <= w < 2 + len(row) else _default_candidate(h, w)
    cols = _candidate_cols(h, w, k)
    cols.flags.writeable = False
    return cols


def stc_submatrix(h: int, w: int) -> np.ndarray:
    """Return the deterministic submatrix Ĥ as a ``uint8`` 0/1 array of shape ``(h, w)``."""
    h = _check_h(h)
    if w < 1:
        raise ValueError("w must be >= 1")
    cols = _submatrix_cols(h, int(w))
    rows = np.arange(h, dtype=np.uint64)
    return ((cols[None, :] >> rows[:, None]) & np.uint64(1)).astype(np.uint8)


def _col_table(n: int, m: int, h: int) -> np.ndarray:
    """Column tables for the (at most two) block widths: row ``w - floor(n/m)``."""
    q = n // m
    table = np.zeros((2, q + 1), dtype=np.uint64)
    table[0, :q] = _submatrix_cols(h, q)
    if n % m:
        table[1, :] = _submatrix_cols(h, q + 1)
    return table


def _as_bits(a: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(a)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D")
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be an integer 0/1 array")
    if arr.size and (arr.min() < 0 or arr.max() > 1):
        raise ValueError(f"{name} must contain only 0 and 1")
    return np.ascontiguousarray(arr, dtype=np.uint8)


def _syndrome(y: np.ndarray, m: int, h: int, table: np.ndarray) -> np.ndarray:
    """``H y mod 2`` in vectorised numpy (no numba, so ``reveal`` starts fast)."""
    n = y.size
    q = n // m
    starts = (np.arange(m + 1, dtype=np.int64) * n) // m
    widths = np.diff(starts)
    block = np.repeat(np.arange(m, dtype=np.int64), widths)
    col = np.arange(n, dtype=np.int64) - starts[block]
    v = table[widths[block] - q, col] * y.astype(np.uint64)
    acc = np.bitwise_xor.reduceat(v, starts[:-1])  # column XOR of each block, h bits wide
    out = np.zeros(m, dtype=np.uint8)
    one = np.uint64(1)
    for d in range(min(h, m)):  # bit d of block i lands in row i + d
        out[d:] ^= ((acc[: m - d] >> np.uint64(d)) & one).astype(np.uint8)
    return out


def _search_candidates(
    h: int, w: int, n_candidates: int = 16, blocks: int = 8192, seed: int = 0
) -> list[tuple[int, int]]:
    """Rank Ĥ candidates by number of changes for a uniform-cost embedding at rate ``1/w``.

    Offline tool used to fill :data:`_BEST`; returns ``(changes, k)`` sorted ascending.
    Candidates with repeated columns (when avoidable) are skipped.
    """
    n = w * blocks
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 2, blocks, dtype=np.uint8)
    rho = np.ones(n)
    q_table = np.zeros((2, w + 1), dtype=np.uint64)
    distinct = w <= 1 << max(h - 2, 0)
    ks = [k for k in range(4096) if not distinct or _has_distinct_cols(h, w, k)]
    scores = []
    for k in (ks or list(range(4096)))[:n_candidates]:
        q_table[0, :w] = _candidate_cols(h, w, k)
        e, _ = _viterbi(rho, target, h, q_table)
        scores.append((int(e.sum()), k))
    return sorted(scores)


def _viterbi(rho: np.ndarray, target: np.ndarray, h: int,
             table: np.ndarray) -> tuple[np.ndarray, float]:
    """Minimum-cost flips ``e`` with ``H e = target`` (C kernel, GIL released); cost inf if none."""
    e = np.zeros(rho.size, dtype=np.uint8)
    table = np.ascontiguousarray(table, dtype=np.uint64)
    cost = _native.viterbi(np.ascontiguousarray(rho, dtype=np.float64),
                           np.ascontiguousarray(target, dtype=np.uint8), h, table,
                           table.shape[1], e)
    return e, cost


def stc_extract(stego_bits: np.ndarray, m: int, h: int = 7) -> np.ndarray:
    """Return the ``m``-bit syndrome ``H y mod 2`` of ``stego_bits`` (Filler et al., 2011)."""
    h = _check_h(h)
    y = _as_bits(stego_bits, "stego_bits")
    m = int(m)
    n = y.size
    if not 0 <= m <= n:
        raise ValueError(f"need 0 <= m <= n, got m={m}, n={n}")
    if m == 0:
        return np.zeros(0, dtype=np.uint8)
    return _syndrome(y, m, h, _col_table(n, m, h))


def stc_embed(
    cover_bits: np.ndarray, costs: np.ndarray, message: np.ndarray, h: int = 7
) -> np.ndarray:
    """Embed ``message`` into ``cover_bits`` with minimal total cost of changed positions.

    Viterbi search over the syndrome trellis (Filler, Judas, Fridrich, IEEE TIFS 2011).
    ``costs[i] == inf`` marks a wet element that is never changed.  Raises :class:`StcError`
    if no stego vector with syndrome ``message`` exists.
    """
    h = _check_h(h)
    x = _as_bits(cover_bits, "cover_bits")
    msg = _as_bits(message, "message")
    rho = np.ascontiguousarray(costs, dtype=np.float64)
    n, m = x.size, msg.size
    if rho.shape != (n,):
        raise ValueError("costs must have the same length as cover_bits")
    if m > n:
        raise ValueError(f"message longer than cover ({m} > {n})")
    if np.isnan(rho).any() or (rho < 0).any():
        raise ValueError("costs must be >= 0 (np.inf marks wet elements)")
    if m == 0:
        return x.copy()
    table = _col_table(n, m, h)
    target = msg ^ _syndrome(x, m, h, table)
    e, cost = _viterbi(rho, target, h, table)
    if not np.isfinite(cost):
        raise StcError("no stego vector with the requested syndrome (too many wet elements?)")
    return x ^ e

"""Overlap-free tiling that covers every pixel of an image exactly once (numpy only)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["axis_splits", "score_tiles", "tile_boxes"]


def axis_splits(n: int, tile: int) -> list[tuple[int, int]]:
    """Split ``[0, n)`` into consecutive segments of length ``tile``.

    A remainder of at least ``tile / 2`` becomes its own (shorter) segment; a smaller one is
    merged into the last segment (so every segment is between ``tile / 2`` and ``1.5 tile``
    long, except when ``n < tile``: one segment of length ``n``).
    """
    if n <= 0 or tile <= 0:
        raise ValueError("n and tile must be positive")
    k, r = divmod(n, tile)
    if k == 0:
        return [(0, n)]
    cuts = [(i * tile, (i + 1) * tile) for i in range(k)]
    if r >= tile / 2:
        cuts.append((k * tile, n))
    elif r:
        s, _ = cuts[-1]
        cuts[-1] = (s, n)
    return cuts


def tile_boxes(h: int, w: int, tile: int) -> tuple[list[tuple[int, int, int, int]],
                                                    tuple[int, int]]:
    """Return ``(boxes, (rows, cols))``; boxes are ``(y0, y1, x0, x1)`` in reading order."""
    ys, xs = axis_splits(h, tile), axis_splits(w, tile)
    return [(y0, y1, x0, x1) for y0, y1 in ys for x0, x1 in xs], (len(ys), len(xs))


def score_tiles(plane: np.ndarray, tile: int, min_side: int,
                score: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Score every tile of a 2-D plane, shape ``(rows, cols)``: tiles of one shape go to
    ``score`` as one stack (N, h, w); tiles with a side under ``min_side`` stay ``nan``."""
    h, w = plane.shape
    boxes, grid = tile_boxes(h, w, tile)
    out = np.full(len(boxes), np.nan)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (y0, y1, x0, x1) in enumerate(boxes):
        if min(y1 - y0, x1 - x0) >= min_side:
            groups.setdefault((y1 - y0, x1 - x0), []).append(i)
    for idx in groups.values():
        out[idx] = score(np.stack([plane[boxes[i][0]:boxes[i][1], boxes[i][2]:boxes[i][3]]
                                   for i in idx]))
    return out.reshape(grid)

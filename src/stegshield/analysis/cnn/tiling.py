"""Overlap-free tiling that covers every pixel of an image exactly once (numpy only)."""

from __future__ import annotations

__all__ = ["axis_splits", "tile_boxes"]


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

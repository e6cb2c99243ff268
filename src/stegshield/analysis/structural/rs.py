"""RS (regular/singular groups) steganalysis.

J. Fridrich, M. Goljan, R. Du, "Reliable detection of LSB steganography in
color and grayscale images", ACM Workshop on Multimedia and Security, 2001.

Pixels are split into disjoint groups ``G = (x_1..x_n)`` with smoothness
``f(G) = sum |x_{i+1} - x_i|``.  Flipping ``F_1`` (0<->1, 2<->3, ...),
shifted flipping ``F_-1`` (-1<->0, 1<->2, ...) and ``F_0`` (identity) are
applied according to a mask ``M``; a group is *regular* if ``f(F_M(G)) >
f(G)`` and *singular* if ``<``.  With ``R_M, S_M`` (mask M) and ``R_-M,
S_-M`` (mask -M) as fractions of groups, measured on the image (``p/2``
pixels flipped) and on the image with all LSBs flipped (``1 - p/2``),

    d0 = R_M(p/2) - S_M(p/2),     d1 = R_M(1-p/2) - S_M(1-p/2),
    e0 = R_-M(p/2) - S_-M(p/2),   e1 = R_-M(1-p/2) - S_-M(1-p/2),

the paper's quadratic ``2(d1 + d0) x^2 + (e0 - e1 - d1 - 3 d0) x + d0 - e0 = 0``
is solved for the root ``x`` of smaller magnitude and ``p = x / (x - 1/2)``.

Groups: the paper's 1x4 groups with mask ``[0, 1, 1, 0]``, taken both along
rows and along columns (counts pooled; the paper notes any group shape
works, using both orientations simply doubles the number of groups).
"""

from __future__ import annotations

import numpy as np

from ..base import Calibration, PayloadDetector

__all__ = ["RSDetector", "rs_counts", "rs_estimate"]

#: default score map (hand-set): 0.05 bpp -> 0.5, 0.10 bpp -> 0.95
DEFAULT_CALIBRATION = Calibration.from_points(0.05, 0.10)
DEFAULT_MASK = (0, 1, 1, 0)


def _columns(x: np.ndarray, n: int) -> list[list[np.ndarray]]:
    """Disjoint 1 x n groups along rows and along columns, as n column vectors each."""
    h, w = x.shape
    xi = x.astype(np.int16)
    rows = xi[:, : (w // n) * n].reshape(-1, n)
    cols = np.ascontiguousarray(xi[: (h // n) * n, :].T).reshape(-1, n)
    return [[g[:, i] for i in range(n)] for g in (rows, cols)]


def _smoothness(cols: list[np.ndarray]) -> np.ndarray:
    """Discrimination function f(G) = sum |x_{i+1} - x_i|."""
    f = np.abs(cols[1] - cols[0])
    for i in range(2, len(cols)):
        f += np.abs(cols[i] - cols[i - 1])
    return f


def _rs_fractions(groups: list[list[np.ndarray]], mask: np.ndarray) -> np.ndarray:
    """(R_M, S_M, R_-M, S_-M) as fractions of all groups."""
    out = np.zeros(4)
    total = 0
    for cols in groups:
        f0 = _smoothness(cols)
        pos = [c ^ 1 if k else c for c, k in zip(cols, mask, strict=True)]  # F_1
        neg = [((c + 1) ^ 1) - 1 if k else c for c, k in zip(cols, mask, strict=True)]  # F_-1
        fp, fn = _smoothness(pos), _smoothness(neg)
        out += (
            np.count_nonzero(fp > f0),
            np.count_nonzero(fp < f0),
            np.count_nonzero(fn > f0),
            np.count_nonzero(fn < f0),
        )
        total += f0.size
    return out / max(total, 1)


def rs_counts(x: np.ndarray, mask: tuple[int, ...] = DEFAULT_MASK) -> tuple[np.ndarray, np.ndarray]:
    """RS fractions ``(R_M, S_M, R_-M, S_-M)`` of ``x`` and of ``x`` with all LSBs flipped."""
    mk = np.asarray(mask) != 0
    groups = _columns(np.asarray(x), mk.size)
    flipped = [[c ^ 1 for c in cols] for cols in groups]
    return _rs_fractions(groups, mk), _rs_fractions(flipped, mk)


def _solve(d0: float, d1: float, e0: float, e1: float) -> float:
    """Root of smaller magnitude of the RS quadratic mapped to ``p``; nan if none."""
    a = 2.0 * (d1 + d0)
    b = e0 - e1 - d1 - 3.0 * d0
    c = d0 - e0
    if abs(a) < 1e-12:
        if abs(b) < 1e-12:
            return float("nan")
        x = -c / b
    else:
        disc = b * b - 4.0 * a * c
        if disc < 0:
            x = -b / (2.0 * a)  # closest real point (vertex) for a degenerate image
        else:
            sq = np.sqrt(disc)
            # numerically stable pair of roots
            q = -0.5 * (b + np.copysign(sq, b))
            roots = [q / a, c / q] if q != 0 else [0.0, -b / a]
            x = min(roots, key=abs)
    if x == 0.5:
        return float("nan")
    return float(x / (x - 0.5))


def rs_estimate(x: np.ndarray, mask: tuple[int, ...] = DEFAULT_MASK) -> float:
    """RS payload estimate (bits per pixel) of a 2-D ``uint8`` plane (unclipped)."""
    (rm, sm, rn, sn), (rm1, sm1, rn1, sn1) = rs_counts(x, mask)
    return _solve(rm - sm, rm1 - sm1, rn - sn, rn1 - sn1)


class RSDetector(PayloadDetector):
    """RS steganalysis (Fridrich, Goljan, Du 2001) as a :class:`Detector`."""

    name = "rs"

    def __init__(
        self,
        mask: tuple[int, ...] = DEFAULT_MASK,
        calibration: Calibration = DEFAULT_CALIBRATION,
    ) -> None:
        self.mask = tuple(mask)
        self.calibration = calibration

    def estimate_channel(self, x: np.ndarray) -> tuple[float, np.ndarray | None]:
        """Return the RS estimate of one plane (no tile map)."""
        return rs_estimate(x, self.mask), None

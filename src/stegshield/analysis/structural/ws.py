"""Weighted stego-image (WS) steganalysis.

J. Fridrich, M. Goljan, "On estimation of secret message length in LSB
steganography in spatial domain", SPIE Security, Steganography and
Watermarking of Multimedia Contents VI, 2004; with the improvements of
A. D. Ker, R. Böhme, "Revisiting weighted stego-image steganalysis", SPIE
Security, Forensics, Steganography and Watermarking of Multimedia Contents X,
2008.

For a stego image ``s`` with LSB-flipped twin ``s_bar`` and a local cover
predictor ``F``, the weighted least-squares payload estimate is

    p_raw = 2 * sum_i w_i (s_i - s_bar_i) (s_i - F(s)_i),   sum_i w_i = 1,

with weights ``w_i ∝ 1 / (5 + sigma_i^2)`` (``sigma_i^2``: local variance of the
predictor's neighbourhood), so that flat, well-predicted areas count more.

Ker & Böhme revisit the three components of WS - cover predictor,
least-squares weights, bias correction.  Used here:

* predictor ``"kb"``: ``F = 1/4 [[-1, 2, -1], [2, 0, 2], [-1, 2, -1]]``
  (``"fg"``, the 4-neighbour mean of Fridrich & Goljan, is also available);
  predictions are clamped to [0, 255];
* moderated weights ``w_i ∝ 1 / (moderation + sigma_i^2)``: the additive
  constant (5, Fridrich & Goljan's value) bounds the weight of flat,
  perfectly predicted areas; ``sigma_i^2`` is the variance of the same
  neighbourhood the predictor uses (4 or 8 neighbours).  The constant is a
  parameter; it was not re-tuned here;
* bias correction: the predictor sees *stego* neighbours, which adds
  ``-2 sum w_i d_i F(Delta)_i`` (``d = s - s_bar``, ``Delta = s - c``).  For
  independent changes with rate ``p/2`` its expectation is
  ``p (1 - p) beta_c``, with ``beta = sum_i w_i d_i F(d)_i`` the weighted
  parity correlation of neighbours (``beta_stego ≈ (1 - p)^2 beta_c``), so
  ``E[p_raw] ≈ p + p beta / (1 - p)``; the estimate solves this for ``p``
  (smaller root).  The idea (estimate the neighbour term from the image and
  remove it) is the paper's; this closed form is derived here.  It matters
  most in flat areas where neighbours share parity.

Only interior pixels (one-pixel border excluded) are used.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

import numpy as np

from ..base import Calibration, PayloadDetector

__all__ = ["WSDetector", "ws_estimate", "ws_statistics"]

Predictor = Literal["kb", "fg"]

#: additive constant of the moderated weights 1 / (MODERATION + sigma^2)
MODERATION = 5.0
#: default score map: P(stego | estimate) for a 50/50 mix of covers and LSB replacement at
#: 0.05/0.1/0.2 bpp, fitted on the corpus's validation split (221 tiles of 256, 37 photos) by
#: ``scripts/calibrate_structural.py``; test-split ECE in BENCHMARKS.md
DEFAULT_CALIBRATION = Calibration(a=135.0196, b=-4.2787)


# Images are processed as flat arrays: the interior pixels W+1 .. N-W-2 form one
# contiguous run and every neighbour is a contiguous slice shifted by +-1, +-W,
# which is several times faster in numpy than 2-D strided slices.  The two
# border columns inside that run wrap around and get weight 0.


def _cross_diag(a: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """4-neighbour and diagonal-neighbour sums for the flat interior run of ``a``."""
    n = a.size - 2 * width - 2
    up, down = a[1 : 1 + n], a[2 * width + 1 : 2 * width + 1 + n]
    left, right = a[width : width + n], a[width + 2 : width + 2 + n]
    cross = up + down
    cross += left
    cross += right
    diag = a[0:n] + a[2 : 2 + n]
    diag += a[2 * width : 2 * width + n]
    diag += a[2 * width + 2 : 2 * width + 2 + n]
    return cross, diag


@lru_cache(maxsize=16)
def _valid_run(height: int, width: int) -> np.ndarray:
    """Float mask of the flat interior run: 0 on the wrapped border columns."""
    col = np.arange(width + 1, height * width - width - 1) % width
    return ((col != 0) & (col != width - 1)).astype(np.float32)


def _predict(a: np.ndarray, width: int, predictor: Predictor) -> tuple[np.ndarray, np.ndarray]:
    """(prediction, neighbourhood variance) on the flat interior run."""
    cross, diag = _cross_diag(a, width)
    cross2, diag2 = _cross_diag(a * a, width)
    if predictor == "fg":
        cross *= 0.25
        var = cross2
        var *= 0.25
        var -= cross * cross
        return cross, var
    if predictor == "kb":
        mean = cross + diag
        mean *= 0.125
        var = cross2
        var += diag2
        var *= 0.125
        var -= mean * mean
        cross *= 0.5
        diag *= 0.25
        cross -= diag
        return cross, var
    raise ValueError(f"unknown predictor {predictor!r}")


def _apply(d: np.ndarray, width: int, predictor: Predictor) -> np.ndarray:
    """The (linear, centre-free) predictor applied to a flat map, interior run output."""
    cross, diag = _cross_diag(d, width)
    if predictor == "fg":
        return cross * 0.25
    return cross * 0.5 - diag * 0.25


def _tile_sums(runs: list[np.ndarray], shape: tuple[int, int], tile: int) -> np.ndarray:
    """Sums of flat-interior-run arrays over ``tile`` x ``tile`` image tiles, (k, ty, tx)."""
    h, w = shape
    ty, tx = -(-h // tile), -(-w // tile)
    full = np.zeros((len(runs), ty * tile, tx * tile), dtype=np.float32)
    rows = np.zeros((h - 2) * w, dtype=np.float32)  # rows 1..h-2 = [0, run, 0]
    for k, run in enumerate(runs):
        rows[1:-1] = run
        full[k, 1 : h - 1, :w] = rows.reshape(h - 2, w)
    blocks = full.reshape(len(runs), ty, tile, tx, tile)
    return blocks.sum(axis=4, dtype=np.float64).sum(axis=2)


def _correct(p_raw: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Smaller root of ``p^2 - (1 + beta + p_raw) p + p_raw = 0`` (bias correction)."""
    t = 1.0 + beta + p_raw
    disc = np.maximum(t * t - 4.0 * p_raw, 0.0)
    den = t + np.sqrt(disc)
    with np.errstate(invalid="ignore", divide="ignore"):
        # = (t - sqrt(disc)) / 2 written stably; fall back to p_raw if degenerate
        return np.where(den > 1e-9, 2.0 * p_raw / np.where(den > 1e-9, den, 1.0), p_raw)


def _ws_native(x: np.ndarray, predictor: Predictor, moderation: float, tile: int | None
               ) -> tuple[float, float, np.ndarray | None, np.ndarray | None]:
    """:func:`ws_statistics` in one C pass (``stegshield._native.ws_tiles``, ~10x faster)."""
    from ... import _native

    h, w = x.shape
    t = int(tile or 0)
    side = t if t > 0 else max(h, w)
    ty, tx = -(-h // side), -(-w // side)
    sums = np.empty((3, ty, tx), dtype=np.float64)
    _native.ws_tiles(np.ascontiguousarray(x), h, w, t, predictor == "kb", float(moderation),
                     sums)
    wsum, nsum, bsum = (float(v) for v in sums.sum(axis=(1, 2)))
    p_raw, beta = 2.0 * nsum / wsum, bsum / wsum
    if not tile:
        return p_raw, beta, None, None
    with np.errstate(invalid="ignore", divide="ignore"):
        return p_raw, beta, 2.0 * sums[1] / sums[0], sums[2] / sums[0]


def ws_statistics(
    x: np.ndarray,
    *,
    predictor: Predictor = "kb",
    moderation: float = MODERATION,
    tile: int | None = None,
) -> tuple[float, float, np.ndarray | None, np.ndarray | None]:
    """Return ``(p_raw, beta, tile_p_raw, tile_beta)`` of a 2-D ``uint8`` plane."""
    xi = np.asarray(x)
    if xi.ndim != 2 or min(xi.shape) < 3:
        return float("nan"), float("nan"), None, None
    h, width = xi.shape
    if xi.dtype == np.uint8 and predictor in ("kb", "fg"):
        return _ws_native(xi, predictor, moderation, tile)
    flat = xi.reshape(-1)
    s = flat.astype(np.float32)
    pred, var = _predict(s, width, predictor)
    np.clip(pred, 0.0, 255.0, out=pred)
    np.maximum(var, 0.0, out=var)  # rounding of E[x^2] - E[x]^2
    d_full = (flat & 1).astype(np.float32) * 2.0 - 1.0  # s - s_bar: +1 odd, -1 even
    n = pred.size
    centre = s[width + 1 : width + 1 + n]
    var += moderation
    w = np.divide(_valid_run(h, width), var, out=var)
    wd = w * d_full[width + 1 : width + 1 + n]
    num = np.subtract(centre, pred, out=pred)
    num *= wd
    bnum = _apply(d_full, width, predictor)
    bnum *= wd
    wsum = float(w.sum(dtype=np.float64))
    p_raw = 2.0 * float(num.sum(dtype=np.float64)) / wsum
    beta = float(bnum.sum(dtype=np.float64)) / wsum
    if not tile:
        return p_raw, beta, None, None
    ws_t, num_t, bnum_t = _tile_sums([w, num, bnum], xi.shape, tile)
    with np.errstate(invalid="ignore", divide="ignore"):
        return p_raw, beta, 2.0 * num_t / ws_t, bnum_t / ws_t


def ws_estimate(
    x: np.ndarray,
    *,
    predictor: Predictor = "kb",
    moderation: float = MODERATION,
    bias_correction: bool = True,
) -> float:
    """WS payload estimate (bits per pixel) of a 2-D ``uint8`` plane (unclipped)."""
    p_raw, beta, _, _ = ws_statistics(x, predictor=predictor, moderation=moderation)
    if not bias_correction:
        return p_raw
    return float(_correct(np.float64(p_raw), np.float64(beta)))


class WSDetector(PayloadDetector):
    """WS steganalysis (Fridrich-Goljan 2004, Ker-Böhme 2008) as a :class:`Detector`.

    ``tile_map`` holds the (bias-corrected) estimate of each ``tile`` x
    ``tile`` block, which localises non-uniformly spread payload.
    """

    name = "ws"

    def __init__(
        self,
        *,
        predictor: Predictor = "kb",
        moderation: float = MODERATION,
        bias_correction: bool = True,
        tile: int | None = 64,
        calibration: Calibration = DEFAULT_CALIBRATION,
    ) -> None:
        self.predictor: Predictor = predictor
        self.moderation = moderation
        self.bias_correction = bias_correction
        self.tile = tile
        self.calibration = calibration

    def estimate_channel(self, x: np.ndarray) -> tuple[float, np.ndarray | None]:
        """Return the WS estimate and per-tile estimates of one plane."""
        p_raw, beta, tp, tb = ws_statistics(
            x, predictor=self.predictor, moderation=self.moderation, tile=self.tile
        )
        if self.bias_correction:
            est = float(_correct(np.float64(p_raw), np.float64(beta)))
            tiles = _correct(tp, tb) if tp is not None and tb is not None else None
        else:
            est, tiles = p_raw, tp
        return est, tiles

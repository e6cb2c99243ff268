"""Turn CNN logits into calibrated probabilities and false-positive-rate thresholds.

* Platt scaling (Platt 1999): a logistic map fitted on validation logits
  (:meth:`stegshield.analysis.base.Calibration.fit`).
* Thresholds for a target false-positive rate are empirical quantiles of the validation *cover*
  logits (:func:`stegshield.analysis.metrics.threshold_at_fpr`).
* Image level: the raw statistic of an image scanned as ``n`` tiles (× channels) is the largest
  tile logit shifted by ``-ln(n) / a``.  If the cover logits have an exponential upper tail,
  ``P(one > t) ∝ exp(-a t)``, then ``P(max > t) ≈ n · P(one > t)``; the shift cancels that
  factor (a Bonferroni-style correction), so a threshold chosen for one tile keeps roughly its
  false-positive rate on images of any size, while one strongly stego tile still stands out.
  ``a`` is the covers' tail slope measured between the 1 % and 5 % thresholds of validation
  cover tiles (:func:`tail_slope`), not the Platt slope: the Platt map is fitted on covers
  against stego images of every algorithm, most of which it barely separates, which flattens
  its slope (0.28 against a tail slope of 1.3 for the shipped fusion, so the shift was 4.6×
  too large and a 12-megapixel stego photo could not reach the threshold).
"""

from __future__ import annotations

import math

import numpy as np

from ..base import Calibration, DetectionResult
from ..metrics import threshold_at_fpr

__all__ = ["aggregate_max", "combine_blocks", "fit_calibration", "fpr_thresholds",
           "max_tile_result", "tail_slope"]


def fit_calibration(logits: np.ndarray, labels: np.ndarray) -> Calibration:
    """Platt scaling of validation logits; the slope is forced positive (monotone map)."""
    cal = Calibration.fit(np.asarray(logits, float), np.asarray(labels, float))
    if cal.a <= 0:  # a useless model: fall back to the identity logistic
        return Calibration(a=1.0, b=0.0)
    return cal


def fpr_thresholds(logits: np.ndarray, labels: np.ndarray,
                   fprs: tuple[float, ...] = (0.01, 0.05)) -> dict[str, float]:
    """Raw-logit thresholds (``raw >= t`` → positive) reaching each false-positive rate."""
    return {f"{f:g}": float(threshold_at_fpr(labels, logits, f)) for f in fprs}


def aggregate_max(tile_logits: np.ndarray, slope: float) -> float:
    """Largest tile logit minus ``ln(n) / slope`` (see the module docstring); nan if empty."""
    t = np.asarray(tile_logits, float).ravel()
    t = t[np.isfinite(t)]
    if t.size == 0:
        return float("nan")
    return float(t.max() - math.log(t.size) / max(slope, 1e-6))


def combine_blocks(raws: np.ndarray, counts: np.ndarray, slope: float) -> float:
    """The :func:`aggregate_max` statistic of a whole image from its blocks' statistics
    ``raws`` and tile counts ``counts``: each block's shift undone, the image's applied
    (``max_b(raw_b + ln n_b / a) - ln(sum n_b) / a``); nan if no block has a tile."""
    r, n = np.asarray(raws, float), np.asarray(counts, float)
    ok = np.isfinite(r) & (n > 0)
    if not ok.any():
        return float("nan")
    a = max(slope, 1e-6)
    return float(np.max(r[ok] + np.log(n[ok]) / a) - math.log(float(n[ok].sum())) / a)


def tail_slope(raw_thresholds: dict, fallback: float, fprs: tuple[float, float] = (0.01, 0.05)
               ) -> float:
    """Slope ``a`` of the covers' upper tail, ``ln(f1 / f0) / (t0 - t1)``, from the raw
    thresholds ``t0``, ``t1`` at the false-positive rates ``f0 < f1`` (keys may be floats or
    strings such as ``"0.01"``); ``fallback`` (the Platt slope) when either is missing or they
    do not fall as the FPR rises."""
    pts = {float(k): float(v) for k, v in raw_thresholds.items()}
    f0, f1 = fprs
    t0, t1 = pts.get(f0, math.nan), pts.get(f1, math.nan)
    if not (math.isfinite(t0) and math.isfinite(t1) and t0 > t1):
        return fallback
    return math.log(f1 / f0) / (t0 - t1)


def max_tile_result(maps: list[np.ndarray], slope: float, calibration: Calibration
                    ) -> DetectionResult:
    """The image result from per-plane tile-score maps: ``raw`` by :func:`aggregate_max` over
    every finite tile of every plane, ``tile_map`` the maximum over planes, ``channels`` each
    plane's largest tile (colour only); no judgement (``nan``, score 0.5) without a tile."""
    stacked = np.stack(maps)
    finite = np.isfinite(stacked)
    if not finite.any():
        return DetectionResult(score=0.5, payload_bpp=None, raw=float("nan"))
    raw = aggregate_max(stacked[finite], slope)
    tile_map = np.where(finite.any(axis=0),
                        np.nanmax(np.where(finite, stacked, -np.inf), axis=0), np.nan)
    chans = [float(np.nanmax(m)) if np.isfinite(m).any() else math.nan for m in maps]
    return DetectionResult(score=calibration(raw), payload_bpp=None, raw=raw,
                           tile_map=tile_map, channels=chans if len(maps) > 1 else None)

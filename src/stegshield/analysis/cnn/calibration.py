"""Turn CNN logits into calibrated probabilities and false-positive-rate thresholds.

* Platt scaling (Platt 1999): a logistic map fitted on validation logits
  (:meth:`stegshield.analysis.base.Calibration.fit`).
* Thresholds for a target false-positive rate are empirical quantiles of the validation *cover*
  logits (:func:`stegshield.analysis.metrics.threshold_at_fpr`).
* Image level: the raw statistic of an image scanned as ``n`` tiles (× channels) is the largest
  tile logit shifted by ``-ln(n) / a``.  If the cover logits have a logistic upper tail with
  slope ``a`` (what the Platt fit assumes), ``P(max > t) ≈ n · P(one > t)``; the shift cancels
  that factor (a Bonferroni-style correction), so a threshold chosen for one tile keeps roughly
  its false-positive rate on images of any size, while one strongly stego tile still stands out.
"""

from __future__ import annotations

import math

import numpy as np

from ..base import Calibration
from ..metrics import threshold_at_fpr

__all__ = ["aggregate_max", "fit_calibration", "fpr_thresholds"]


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

"""Detection metrics (pure numpy).

Convention: higher score = more likely stego (label 1); an image is called
positive when ``score >= threshold``.  ``roc_curve`` enumerates every
distinct threshold, so all operating points of a deterministic detector are
exact (no interpolation, no randomised thresholds).  ``p_e`` is the minimum
average error ``min_t (P_FA(t) + P_MD(t)) / 2`` used throughout the
steganalysis literature (e.g. Ker & Böhme 2008; Fridrich's textbook).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

__all__ = ["p_e", "roc_auc", "roc_curve", "threshold_at_fpr", "tpr_at_fpr"]


def _check(labels: ArrayLike, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError("labels and scores must have the same length")
    if np.isnan(s).any():
        raise ValueError("scores contain NaN")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be 0/1 or bool")
    y = y.astype(bool)
    if y.all() or not y.any():
        raise ValueError("need both positive and negative examples")
    return y, s


def roc_curve(labels: ArrayLike, scores: ArrayLike, weights: ArrayLike | None = None
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``(fpr, tpr, thresholds)`` for every distinct threshold, from (0, 0) to (1, 1).

    ``thresholds[0] = +inf`` (nothing positive); point ``i`` uses ``score >=
    thresholds[i]``; thresholds are strictly decreasing.  ``weights`` (positive, one per
    example) make the rates weighted fractions, e.g. so that every source photograph counts
    equally however many tiles it gave.
    """
    y, s = _check(labels, scores)
    w = np.ones(s.size) if weights is None else np.asarray(weights, np.float64).ravel()
    if w.shape != s.shape or not (np.isfinite(w).all() and (w > 0).all()):
        raise ValueError("weights must be positive and finite, one per example")
    order = np.argsort(-s, kind="mergesort")
    s, y, w = s[order], y[order], w[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # last index of each tie run
    tp = np.cumsum(np.where(y, w, 0.0))[last]
    fp = np.cumsum(np.where(y, 0.0, w))[last]
    tpr = np.r_[0.0, tp / tp[-1]]
    fpr = np.r_[0.0, fp / fp[-1]]
    return fpr, tpr, np.r_[np.inf, s[last]]


def roc_auc(labels: ArrayLike, scores: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Area under the ROC curve (ties count one half, as in the Mann-Whitney U); optionally
    with per-example ``weights`` (see :func:`roc_curve`)."""
    fpr, tpr, _ = roc_curve(labels, scores, weights)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def p_e(labels: ArrayLike, scores: ArrayLike, weights: ArrayLike | None = None) -> float:
    """Minimum over thresholds of ``(P_FA + P_MD) / 2`` (0.5 = chance, 0 = perfect)."""
    fpr, tpr, _ = roc_curve(labels, scores, weights)
    return float(np.min((fpr + 1.0 - tpr) / 2.0))


def _best_point(labels: ArrayLike, scores: ArrayLike, fpr: float) -> tuple[float, float]:
    if not 0.0 <= fpr <= 1.0:
        raise ValueError("fpr must be in [0, 1]")
    f, t, th = roc_curve(labels, scores)
    ok = np.flatnonzero(f <= fpr + 1e-12)
    i = ok[np.argmax(t[ok])]  # thresholds decrease, so ties resolve to the strictest
    return float(t[i]), float(th[i])


def tpr_at_fpr(labels: ArrayLike, scores: ArrayLike, fpr: float) -> float:
    """Largest detection rate reachable with a false-positive rate ``<= fpr``."""
    return _best_point(labels, scores, fpr)[0]


def threshold_at_fpr(labels: ArrayLike, scores: ArrayLike, fpr: float) -> float:
    """Threshold (``score >= t`` is positive) of the :func:`tpr_at_fpr` operating point.

    Among the ROC thresholds with false-positive rate ``<= fpr`` that reach
    the best detection rate it is the strictest (largest) one, i.e. the one
    with the fewest false positives; ``+inf`` if only "never positive"
    qualifies (e.g. ``fpr`` below ``1 / #negatives``).
    """
    return _best_point(labels, scores, fpr)[1]

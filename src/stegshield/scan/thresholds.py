"""From group statistics to false-positive rates, scores and verdicts.

Every fused group (see :mod:`.suite`) has a *statistic* (classical: estimated payload in bits
per sample; learned: log-odds of its score). Scores and verdicts both come from one number,
the statistic's estimated false-positive rate (an empirical p-value):

* ``p_g``: the fraction of clean images whose statistic is at least as high. Classical group:
  :data:`CLASSICAL_FPR_TABLE` (measured with :mod:`stegshield.scan.calibrate`; corpus in
  ``docs/SCAN.md``), interpolated linearly in log-FPR and extended beyond its ends along its
  first/last segment. Learned group: the inverse of :func:`learned_threshold`.
* ``P = min(1, k * min_g p_g)`` over the k fused groups (Bonferroni: each group is tested at
  ``fpr / k``, so ``P <= fpr`` iff some group alerts at its share).
* ``score = F0 / (F0 + P)`` with ``F0 =`` :data:`REFERENCE_FPR` (the default ``--fpr``): the
  score is 0.5 exactly at the default alert threshold, rises to 1 as ``P -> 0`` and is monotone
  in every statistic. Conversely ``P = F0 (1 - score) / score``.

Verdicts depend on the score alone: ``alert`` when ``P <= fpr`` (``score >= F0 / (F0 + fpr)``,
0.5 by default), ``suspicious`` when it would alert at ``SUSPICIOUS_FACTOR`` times the FPR (at
most :data:`SUSPICIOUS_MAX_FPR`), else ``clean``. ``--threshold T`` alerts at ``score >= T``,
i.e. it is ``--fpr F0 (1 - T) / T``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CLASSICAL_FPR_TABLE",
    "DEFAULT_FPR",
    "REFERENCE_FPR",
    "SUSPICIOUS_FACTOR",
    "SUSPICIOUS_MAX_FPR",
    "Thresholds",
    "classical_fpr",
    "classical_threshold",
    "fpr_of_score",
    "learned_fpr",
    "learned_threshold",
    "logit",
    "score_of_fpr",
    "suspicious_fpr",
]

#: (false-positive rate, classical statistic threshold in bits per sample), FPR increasing and
#: thresholds strictly decreasing. Per FPR the largest of three photo-level estimates on the
#: cover corpus' train and val splits (whole source photos, counted per file and per photo;
#: 256-px tiles, per photo), and at FPR <= 0.5 % also the per-tile quantile of the 256-px tiles;
#: rounded up to 0.001 bpp. Measurement: ``docs/SCAN.md``, "Calibration".
CLASSICAL_FPR_TABLE: tuple[tuple[float, float], ...] = (
    (0.001, 0.346),
    (0.002, 0.322),
    (0.005, 0.273),
    (0.01, 0.103),
    (0.02, 0.079),
    (0.05, 0.041),
    (0.1, 0.026),
    (0.2, 0.016),
    (0.5, 0.004),
)
#: The default ``--fpr``.
DEFAULT_FPR = 0.01
#: The FPR at which the score is 0.5 (``score = F0 / (F0 + P)``); equal to the default FPR.
REFERENCE_FPR = DEFAULT_FPR
#: Suspicious = would alert at this many times the requested FPR ...
SUSPICIOUS_FACTOR = 5.0
#: ... but never at an FPR above this (a typical clean image is not "suspicious").
SUSPICIOUS_MAX_FPR = 0.5

_LOG_F = np.log([p for p, _ in CLASSICAL_FPR_TABLE])
_STAT = np.array([v for _, v in CLASSICAL_FPR_TABLE])


def logit(p: float) -> float:
    """Log-odds of ``p`` (clipped away from 0 and 1)."""
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def score_of_fpr(p: float) -> float:
    """Score of a (family-wise) estimated FPR ``p``: ``F0 / (F0 + p)``; ``nan`` -> 0."""
    if math.isnan(p):
        return 0.0
    return REFERENCE_FPR / (REFERENCE_FPR + max(p, 0.0))


def fpr_of_score(score: float) -> float:
    """Inverse of :func:`score_of_fpr` (``inf`` for a score of 0)."""
    if score <= 0:
        return math.inf
    return REFERENCE_FPR * (1.0 - min(score, 1.0)) / min(score, 1.0)


def suspicious_fpr(fpr: float) -> float:
    """FPR of the suspicious verdict for an alert FPR (never below the alert FPR)."""
    return max(fpr, min(SUSPICIOUS_FACTOR * fpr, SUSPICIOUS_MAX_FPR))


def classical_threshold(fpr: float) -> float:
    """Classical statistic (estimated payload) exceeded by a fraction ``fpr`` of clean images.

    Linear in log-FPR between the points of :data:`CLASSICAL_FPR_TABLE` and along its end
    segments beyond them; ``+inf`` for ``fpr <= 0``; for ``fpr >= 1`` the statistic whose
    FPR reaches 1 (``-inf`` above 1: every image).
    """
    if fpr <= 0:
        return math.inf
    if fpr > 1:
        return -math.inf
    x = math.log(fpr)
    i = int(np.clip(np.searchsorted(_LOG_F, x) - 1, 0, len(_LOG_F) - 2))
    x0, x1, y0, y1 = _LOG_F[i], _LOG_F[i + 1], _STAT[i], _STAT[i + 1]
    return float(y0 + (x - x0) * (y1 - y0) / (x1 - x0))


def classical_fpr(stat: float) -> float:
    """Estimated FPR of a classical statistic: the inverse of :func:`classical_threshold`,
    in (0, 1] (``nan`` for ``nan``)."""
    if math.isnan(stat):
        return math.nan
    rev_s, rev_f = _STAT[::-1], _LOG_F[::-1]  # statistic increasing
    i = int(np.clip(np.searchsorted(rev_s, stat) - 1, 0, len(rev_s) - 2))
    s0, s1, f0, f1 = rev_s[i], rev_s[i + 1], rev_f[i], rev_f[i + 1]
    z = f0 + (stat - s0) * (f1 - f0) / (s1 - s0)
    return float(math.exp(min(z, 0.0)))


def learned_threshold(detector: object, fpr: float) -> float:
    """Score threshold of a learned detector for ``fpr``.

    Its own ``threshold_at_fpr(fpr)`` if it has one; else its ``thresholds`` mapping
    {fpr: score} (interpolated in log-FPR on the log-odds of the score, clamped at the ends);
    else ``max(0.5, 1 - fpr)``.
    """
    fn = getattr(detector, "threshold_at_fpr", None)
    if callable(fn):
        return float(fn(fpr))
    table = getattr(detector, "thresholds", None)
    if isinstance(table, Mapping) and table:
        try:
            pts = sorted((float(k), float(v)) for k, v in table.items())
        except (TypeError, ValueError):
            pts = []
        if pts:
            xs = np.log([max(p, 1e-12) for p, _ in pts])
            ys = np.array([logit(v) for _, v in pts])
            z = float(np.interp(math.log(max(fpr, 1e-12)), xs, ys))
            return 1.0 / (1.0 + math.exp(-z))
    return max(0.5, 1.0 - fpr)


#: Smallest FPR :func:`learned_fpr` resolves (a score above every threshold reads as 0).
_MIN_FPR = 1e-12


def learned_fpr(detector: object, score: float) -> float:
    """Estimated FPR of a learned detector's score: the smallest ``f`` in [0, 1] whose
    :func:`learned_threshold` is ``<= score`` (0 if even 1e-12 is; 1 if none is).

    This is the generalised inverse of a non-increasing threshold function (bisection on
    log-FPR), so ``learned_fpr(d, s) <= f`` iff the score ``s`` alerts at FPR ``f``.
    """
    if math.isnan(score):
        return math.nan
    if learned_threshold(detector, 1.0) > score:
        return 1.0
    if learned_threshold(detector, _MIN_FPR) <= score:
        return 0.0
    lo, hi = math.log(_MIN_FPR), 0.0  # threshold(lo) > score >= threshold(hi)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if learned_threshold(detector, math.exp(mid)) <= score:
            hi = mid
        else:
            lo = mid
    return math.exp(hi)


@dataclass(frozen=True)
class Thresholds:
    """Alert and suspicious cut-offs on the score, plus what they mean per group.

    ``groups`` holds, per fused group, the (alert, suspicious) thresholds on the group
    statistic that correspond to the score cut-offs (for descriptions and :meth:`verdict`).
    """

    groups: dict[str, tuple[float, float]]
    fpr: float | None = None
    label: str = ""
    alert_score: float | None = None
    suspicious_score: float | None = None

    def verdict_of_score(self, score: float) -> str:
        """``alert``, ``suspicious`` or ``clean`` for an image's fused score."""
        if self.alert_score is None or self.suspicious_score is None:
            raise ValueError("these thresholds have no score cut-offs")
        if score >= self.alert_score:
            return "alert"
        if score >= self.suspicious_score:
            return "suspicious"
        return "clean"

    def verdict(self, stats: dict[str, float]) -> str:
        """The verdict from group statistics and the per-group statistic thresholds."""
        verdict = "clean"
        for name, stat in stats.items():
            if not math.isfinite(stat) or name not in self.groups:
                continue
            alert, suspicious = self.groups[name]
            if stat >= alert:
                return "alert"
            if stat >= suspicious:
                verdict = "suspicious"
        return verdict

    def describe(self) -> str:
        """One line for summaries and reports."""
        return self.label or ", ".join(f"{k} >= {a:.4g}" for k, (a, _) in self.groups.items())

"""From a target false-positive rate to thresholds, and from group statistics to verdicts.

Thresholds apply to each fused group's *statistic* (see :mod:`.suite`), not to its score: the
classical score saturates at 1.0 for large payload estimates, while the statistic (estimated
payload, bits per sample) keeps its resolution.

The classical table gives, for each false-positive rate, the statistic that that fraction of
real, clean images exceeded (measured with :mod:`stegshield.scan.calibrate`; corpus and caveats
in ``docs/SCAN.md``). Between points the threshold is interpolated linearly in log-FPR.

A learned detector may publish ``threshold_at_fpr(fpr) -> score``; without one its score is
taken as a calibrated probability and the threshold is ``1 - fpr`` (at least 0.5). Its
statistic is the log-odds of its score.

Verdicts: ``alert`` when a group's statistic reaches its alert threshold; ``suspicious`` when
it reaches the threshold for ``SUSPICIOUS_FACTOR`` times the FPR (learned groups: log-odds
within ``SUSPICIOUS_MARGIN``); else ``clean``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

__all__ = [
    "CLASSICAL_FPR_TABLE",
    "SUSPICIOUS_FACTOR",
    "SUSPICIOUS_MARGIN",
    "Thresholds",
    "classical_threshold",
    "learned_threshold",
    "logit",
]

#: (false-positive rate, classical statistic threshold in bits per sample), FPR increasing.
CLASSICAL_FPR_TABLE: tuple[tuple[float, float], ...] = (
    (0.002, 0.65),
    (0.005, 0.40),
    (0.01, 0.20),
    (0.02, 0.12),
    (0.05, 0.045),
    (0.1, 0.033),
    (0.2, 0.023),
)
#: Suspicious = would alert at this many times the requested FPR.
SUSPICIOUS_FACTOR = 5.0
#: Learned groups: log-odds below the alert threshold that still count as suspicious.
SUSPICIOUS_MARGIN = 2.0


def logit(p: float) -> float:
    """Log-odds of ``p`` (clipped away from 0 and 1)."""
    p = min(max(p, 1e-12), 1 - 1e-12)
    return math.log(p / (1 - p))


def classical_threshold(fpr: float) -> float:
    """Classical statistic (estimated payload) threshold for a target false-positive rate."""
    f = np.log([p for p, _ in CLASSICAL_FPR_TABLE])
    t = np.array([v for _, v in CLASSICAL_FPR_TABLE])
    return float(np.interp(math.log(min(max(fpr, 1e-9), 1.0)), f, t))


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


@dataclass(frozen=True)
class Thresholds:
    """Per fused group: (alert, suspicious) thresholds on the group statistic."""

    groups: dict[str, tuple[float, float]]
    fpr: float | None = None
    label: str = ""

    def verdict(self, stats: dict[str, float]) -> str:
        """``alert``, ``suspicious`` or ``clean`` for the group statistics of one image."""
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

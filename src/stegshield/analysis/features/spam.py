"""SPAM features and the ``spam`` detector.

T. Pevný, P. Bas, J. Fridrich, "Steganalysis by subtractive pixel adjacency matrix", IEEE
Trans. Information Forensics and Security 5(2), 2010.

Differences of neighbouring pixels along each of 8 directions, truncated to [-T, T] (T = 3),
are modelled as a second-order Markov chain: for every direction the empirical transition
probabilities ``P(D_{k+2} = w | D_{k+1} = v, D_k = u)`` (7³ = 343 values).  The four straight
directions (→ ← ↓ ↑) are averaged into the first 343 features and the four diagonal ones into
the other 343 (686 in all, the paper's second-order SPAM).  ±1 embedding adds independent noise
and smooths these matrices, which a linear classifier on top picks up; here a ridge logistic
regression (:mod:`stegshield.analysis.linear`, the paper used SVMs) fitted against LSB matching
at 0.1-0.4 bpp (``scripts/train_linear.py --detector spam``).

A direction and its reverse see the same differences negated and in reverse order, so only
four directions are counted; the reverse counts are the forward counts at ``(-w, -v, -u)``.
Large planes are counted in strips of rows (bounded memory, same counts).
"""

from __future__ import annotations

import numpy as np

from ..linear import FeatureSet, LinearDetector

__all__ = ["SPAM_FEATURES", "SPAMDetector", "T", "spam_features"]

#: Truncation of the differences.
T = 3
_N = 2 * T + 1
#: Rows per strip (counts are summed over strips).
STRIP_ROWS = 512
FEATURE_VERSION = 1
#: The shipped model ``spam`` loads (``analysis/weights/linear/``).
DEFAULT_SPAM = "spam-lsbm"


def _triplets(x: np.ndarray, direction: str, rows: int) -> np.ndarray:
    """Counts (N³,) of truncated difference triplets along ``direction`` whose first pixel
    lies in the first ``rows`` rows of ``x`` (an int16 strip with 3 rows of look-ahead)."""
    if direction == "h":  # → : x[i, j] - x[i, j+1]
        d = np.clip(x[:rows, :-1] - x[:rows, 1:], -T, T) + T
        a, b, c = d[:, :-2], d[:, 1:-1], d[:, 2:]
    else:
        d = x[:-1] - x[1:] if direction == "v" else (
            x[:-1, :-1] - x[1:, 1:] if direction == "d" else x[:-1, 1:] - x[1:, :-1])
        d = np.clip(d, -T, T) + T
        n = min(rows, d.shape[0] - 2)
        if direction == "v":  # ↓
            a, b, c = d[:n], d[1 : n + 1], d[2 : n + 2]
        elif direction == "d":  # ↘
            a, b, c = d[:n, :-2], d[1 : n + 1, 1:-1], d[2 : n + 2, 2:]
        else:  # ↙ : x[i, j+1] - x[i+1, j]
            a, b, c = d[:n, 2:], d[1 : n + 1, 1:-1], d[2 : n + 2, :-2]
    key = (a * _N + b) * _N + c
    return np.bincount(key.ravel(), minlength=_N**3)


def _transitions(counts: np.ndarray) -> np.ndarray:
    """Row-normalised transition matrix P(w | u, v) of triplet counts, flattened."""
    m = counts.reshape(_N * _N, _N).astype(np.float64)
    s = m.sum(axis=1, keepdims=True)
    return np.divide(m, s, out=np.zeros_like(m), where=s > 0).ravel()


def _reverse(counts: np.ndarray) -> np.ndarray:
    """Counts of the reverse direction: (u, v, w) -> (-w, -v, -u)."""
    return counts.reshape(_N, _N, _N)[::-1, ::-1, ::-1].transpose(2, 1, 0).ravel()


def spam_features(x: np.ndarray) -> np.ndarray:
    """The 686 second-order SPAM features (T = 3) of a 2-D ``uint8`` plane; ``nan`` if the
    plane is smaller than 4×4."""
    xi = np.asarray(x)
    if xi.ndim != 2 or xi.dtype != np.uint8:
        raise ValueError("spam_features expects a 2-D uint8 plane")
    h, w = xi.shape
    if min(h, w) < 4:
        return np.full(2 * _N**3, np.nan)
    counts = {k: np.zeros(_N**3, dtype=np.int64) for k in "hvda"}
    for r0 in range(0, h, STRIP_ROWS):
        strip = xi[r0 : r0 + STRIP_ROWS + 3].astype(np.int16)
        rows = min(STRIP_ROWS, h - r0)
        for k in counts:
            counts[k] += _triplets(strip, k, rows)
    straight = [counts["h"], _reverse(counts["h"]), counts["v"], _reverse(counts["v"])]
    diagonal = [counts["d"], _reverse(counts["d"]), counts["a"], _reverse(counts["a"])]
    return np.r_[np.mean([_transitions(c) for c in straight], axis=0),
                 np.mean([_transitions(c) for c in diagonal], axis=0)]


SPAM_FEATURES = FeatureSet(
    name="spam", version=FEATURE_VERSION,
    names=tuple(f"{g}[{i}]" for g in ("straight", "diagonal") for i in range(_N**3)),
    extract=spam_features, params={"T": T, "order": 2})


class SPAMDetector(LinearDetector):
    """SPAM + logistic regression against LSB matching (``spam``), torch-free.

    ``raw`` is the model's logit (mean over colour planes), ``score`` its Platt calibration on
    validation pairs; FPR thresholds from validation cover tiles.  No payload estimate."""

    name = "spam"
    features = SPAM_FEATURES
    default_model = DEFAULT_SPAM

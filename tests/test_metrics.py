"""Tests for stegshield.analysis.metrics: hand-computed cases and a brute-force oracle."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stegshield.analysis.metrics import p_e, roc_auc, roc_curve, threshold_at_fpr, tpr_at_fpr

LABELS = [0, 0, 1, 1]
SCORES = [0.1, 0.4, 0.35, 0.8]


def test_roc_curve_hand_example() -> None:
    fpr, tpr, thr = roc_curve(LABELS, SCORES)
    np.testing.assert_allclose(fpr, [0, 0, 0.5, 0.5, 1])
    np.testing.assert_allclose(tpr, [0, 0.5, 0.5, 1, 1])
    assert thr[0] == math.inf
    np.testing.assert_allclose(thr[1:], [0.8, 0.4, 0.35, 0.1])


def test_scalar_metrics_hand_example() -> None:
    assert roc_auc(LABELS, SCORES) == pytest.approx(0.75)
    assert p_e(LABELS, SCORES) == pytest.approx(0.25)
    assert tpr_at_fpr(LABELS, SCORES, 0.0) == pytest.approx(0.5)
    assert threshold_at_fpr(LABELS, SCORES, 0.0) == pytest.approx(0.8)
    assert tpr_at_fpr(LABELS, SCORES, 0.5) == pytest.approx(1.0)
    assert threshold_at_fpr(LABELS, SCORES, 0.5) == pytest.approx(0.35)
    assert tpr_at_fpr(LABELS, SCORES, 1.0) == pytest.approx(1.0)


def test_ties_count_half() -> None:
    # one positive tied with one of two negatives: AUC = (1 + 0.5) / 2
    assert roc_auc([0, 0, 1], [0.2, 0.5, 0.5]) == pytest.approx(0.75)
    assert roc_auc([0, 1, 0, 1], [3, 3, 3, 3]) == pytest.approx(0.5)
    assert p_e([0, 1, 0, 1], [3, 3, 3, 3]) == pytest.approx(0.5)
    # with a tie at the top, only "never positive" has fpr 0
    assert threshold_at_fpr([0, 1], [1.0, 1.0], 0.0) == math.inf
    assert tpr_at_fpr([0, 1], [1.0, 1.0], 0.0) == 0.0


def test_perfect_and_inverted() -> None:
    y = [0, 0, 0, 1, 1]
    s = [0.0, 0.1, 0.2, 0.9, 1.0]
    assert roc_auc(y, s) == 1.0
    assert p_e(y, s) == 0.0
    assert tpr_at_fpr(y, s, 0.0) == 1.0
    assert threshold_at_fpr(y, s, 0.0) == pytest.approx(0.9)
    assert roc_auc(y, [-v for v in s]) == 0.0
    assert p_e(y, [-v for v in s]) == 0.5  # min over thresholds includes "all" / "none"


def test_bool_labels_and_validation() -> None:
    assert roc_auc(np.array([False, True]), [0.0, 1.0]) == 1.0
    with pytest.raises(ValueError):
        roc_auc([1, 1], [0.1, 0.2])
    with pytest.raises(ValueError):
        roc_auc([0, 1], [0.1, float("nan")])
    with pytest.raises(ValueError):
        roc_auc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError):
        roc_auc([0, 2], [0.1, 0.2])
    with pytest.raises(ValueError):
        tpr_at_fpr([0, 1], [0.1, 0.2], 1.5)


# --- brute force -------------------------------------------------------------


def _brute(y: np.ndarray, s: np.ndarray) -> tuple[float, float, dict[float, tuple[float, float]]]:
    pos, neg = s[y == 1], s[y == 0]
    auc = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    points = {}
    for t in [*np.unique(s), math.inf]:
        points[float(t)] = (float(np.mean(neg >= t)), float(np.mean(pos >= t)))
    pe = min((f + 1 - t) / 2 for f, t in points.values())
    return float(auc), float(pe), points


@st.composite
def _labelled(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    n = draw(st.integers(2, 25))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n))
    if len(set(y)) < 2:
        y[0], y[-1] = 0, 1
    s = draw(st.lists(st.integers(0, 6), min_size=n, max_size=n))  # many ties
    return np.array(y), np.array(s, dtype=float) / 3.0


@settings(max_examples=150, deadline=None)
@given(_labelled(), st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9, 1.0]))
def test_against_brute_force(data: tuple[np.ndarray, np.ndarray], target: float) -> None:
    y, s = data
    auc, pe, points = _brute(y, s)
    assert roc_auc(y, s) == pytest.approx(auc)
    assert p_e(y, s) == pytest.approx(pe)
    fpr, tpr, thr = roc_curve(y, s)
    assert np.all(np.diff(fpr) >= 0) and np.all(np.diff(tpr) >= 0)
    assert np.all(np.diff(thr) < 0)
    assert (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    for f, t, th in zip(fpr, tpr, thr, strict=True):
        assert (f, t) == pytest.approx(points[float(th)])
    best = max(t for f, t in points.values() if f <= target + 1e-12)
    assert tpr_at_fpr(y, s, target) == pytest.approx(best)
    th = threshold_at_fpr(y, s, target)
    f_th, t_th = points[th]
    assert f_th <= target + 1e-12
    assert t_th == pytest.approx(best)


def test_weighted_auc_equals_repeating_examples() -> None:
    """Integer weights act as copies: a photo that gave 3 tiles at weight 1/3 counts once."""
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 40)
    y[:2] = [0, 1]
    s = np.round(rng.normal(size=40), 1)  # ties included
    w = rng.integers(1, 4, 40)
    rep_y, rep_s = np.repeat(y, w), np.repeat(s, w)
    assert roc_auc(y, s, w) == pytest.approx(roc_auc(rep_y, rep_s))
    assert p_e(y, s, w) == pytest.approx(p_e(rep_y, rep_s))
    assert roc_auc(y, s, np.full(40, 0.25)) == pytest.approx(roc_auc(y, s))
    # one heavy, badly separated group no longer dominates once it is down-weighted
    y2 = np.r_[np.zeros(10), np.ones(10), 0, 1]
    s2 = np.r_[np.ones(10), np.zeros(10), 0.0, 1.0]
    assert roc_auc(y2, s2) < 0.2
    assert roc_auc(y2, s2, np.r_[np.full(20, 0.01), 1.0, 1.0]) > 0.8
    with pytest.raises(ValueError, match="weights"):
        roc_auc([0, 1], [0.0, 1.0], [1.0, 0.0])

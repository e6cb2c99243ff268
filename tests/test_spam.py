"""SPAM features (Pevný, Bas & Fridrich 2010) and the shipped ``spam`` detector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import stegshield.analysis.features.spam as spam_mod
from stegshield.analysis import get_detector
from stegshield.analysis.features.spam import T, spam_features
from stegshield.analysis.metrics import roc_auc
from stegshield.analysis.synthetic import lsb_match, synthetic_cover
from stegshield.scan.suite import build_suite

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
N = 2 * T + 1


def _reference(x: np.ndarray) -> np.ndarray:
    """The paper's definition, direction by direction on rotated/flipped copies (slow)."""
    x = x.astype(np.int64)

    def walk(a: np.ndarray, diagonal: bool) -> np.ndarray:
        """Transition matrix along +column (or the main diagonal) of ``a``."""
        cnt = np.zeros((N, N, N))
        h, w = a.shape
        for i in range(h - (3 if diagonal else 0)):
            for j in range(w - 3):
                if diagonal:
                    p = [a[i + k, j + k] for k in range(4)]
                else:
                    p = [a[i, j + k] for k in range(4)]
                d = [int(np.clip(p[k] - p[k + 1], -T, T)) + T for k in range(3)]
                cnt[d[0], d[1], d[2]] += 1
        s = cnt.sum(axis=2, keepdims=True)
        return np.divide(cnt, s, out=np.zeros_like(cnt), where=s > 0).ravel()

    straight = [walk(x, False), walk(x[:, ::-1], False), walk(x.T, False),
                walk(x.T[:, ::-1], False)]
    diag = [walk(x, True), walk(x[::-1, ::-1], True), walk(x[:, ::-1], True),
            walk(x[::-1, :], True)]
    return np.r_[np.mean(straight, axis=0), np.mean(diag, axis=0)]


def test_features_match_the_definition() -> None:
    rng = np.random.default_rng(0)
    x = (rng.normal(0, 2, (23, 31)).cumsum(axis=1) + 128).clip(0, 255).astype(np.uint8)
    np.testing.assert_allclose(spam_features(x), _reference(x), atol=1e-12)


def test_features_by_strips_equal_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    x = synthetic_cover(np.random.default_rng(1), (203, 97))
    whole = spam_features(x)
    monkeypatch.setattr(spam_mod, "STRIP_ROWS", 5)
    np.testing.assert_array_equal(spam_features(x), whole)


def test_feature_shape_small_and_bad_input() -> None:
    f = spam_features(synthetic_cover(np.random.default_rng(2), (16, 16)))
    assert f.shape == (2 * N**3,)
    # the mean of 4 transition matrices: a row sums to the share of directions that saw it
    rows = f[: N**3].reshape(N * N, N).sum(axis=1) * 4
    assert np.allclose(rows, np.round(rows)) and rows.max() == pytest.approx(4)
    assert np.isnan(spam_features(np.zeros((3, 40), np.uint8))).all()
    with pytest.raises(ValueError, match="uint8"):
        spam_features(np.zeros((8, 8), np.int32))


def _sample_tiles() -> list[np.ndarray]:
    tiles = []
    for p in sorted(SAMPLES.glob("*.png")):
        x = np.array(Image.open(p).convert("L"))
        tiles += [x[i : i + 128, j : j + 128] for i in range(0, x.shape[0] - 127, 128)
                  for j in range(0, x.shape[1] - 127, 128)]
    return tiles


def lsbm_sample_auc(det: object) -> float:
    """AUC of ``det.detect(...).raw`` on the 128² tiles of the bundled photographs (never in
    the training corpus) against LSB matching at 0.4 bpp, one stego per tile."""
    tiles = _sample_tiles()
    assert len(tiles) >= 40
    rng = np.random.default_rng(3)
    c = np.array([det.detect(x).raw for x in tiles])  # type: ignore[attr-defined]
    s = np.array([det.detect(lsb_match(x, 0.4, rng)).raw for x in tiles])  # type: ignore[attr-defined]
    return roc_auc(np.r_[np.zeros(len(c)), np.ones(len(s))], np.r_[c, s])


def test_shipped_model_detects_lsb_matching_on_sample_photos() -> None:
    """Measured 0.83 when written."""
    assert lsbm_sample_auc(get_detector("spam")) > 0.75


def test_scan_spam_choice() -> None:
    suite = build_suite("spam")
    assert suite.groups == ["spam"] and not suite.notes
    a = suite.analyse(synthetic_cover(np.random.default_rng(4), (64, 64), channels=3))
    assert 0.0 < a.fprs["spam"] <= 1.0 and 0.0 < a.score <= 1.0
    assert "spam" in build_suite("all").groups

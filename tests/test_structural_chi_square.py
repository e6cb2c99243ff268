"""Chi-square attack (Westfeld & Pfitzmann 1999) and its sequential scan.

The attack needs covers whose pairs of values (2k, 2k+1) are *unbalanced*.
The sequential-localisation tests therefore use synthetic covers that went
through an 8-bit levels/gamma edit (``edited=True``: comb-like histograms,
as in most edited photos).  On raw-like covers with smooth histograms (the
default synthetic covers, or photos downscaled by averaging such as
``samples/``) the attack cannot tell cover from stego chunks; that is the
method's documented limitation, not asserted here.
"""

from __future__ import annotations

import numpy as np
import pytest

from stegshield.analysis import get_detector
from stegshield.analysis.structural.chi_square import (
    chi_square_pvalue,
    chi_square_statistic,
    sequential_scan,
)
from stegshield.analysis.synthetic import lsb_replace, synthetic_cover

N = 20


@pytest.fixture(scope="module")
def edited_covers() -> list[np.ndarray]:
    rng = np.random.default_rng(31)
    return [synthetic_cover(rng, edited=True) for _ in range(N)]


def test_statistic_hand_values() -> None:
    h = np.zeros(256)
    h[0:2] = 10, 10  # balanced PoV
    h[2:4] = 20, 0  # unbalanced PoV
    h[4:6] = 3, 2  # below min_pair_count -> ignored
    st, df = chi_square_statistic(h, statistic="pearson")
    assert (st, df) == (pytest.approx(20.0), 2)
    st, df = chi_square_statistic(h, statistic="westfeld")  # (n_2k - n*)^2 / n*
    assert (st, df) == (pytest.approx(10.0), 1)
    st, df = chi_square_statistic(h, statistic="westfeld", min_pair_count=1)
    assert (st, df) == (pytest.approx(10.0 + 0.5**2 / 2.5), 2)
    assert np.isnan(chi_square_pvalue(np.float64(1.0), np.int64(0)))
    with pytest.raises(ValueError):
        chi_square_statistic(h, statistic="nope")  # type: ignore[arg-type]


def test_pvalues_under_full_embedding() -> None:
    """Balanced-by-embedding histograms: Pearson p ~ uniform, Westfeld p ~ 1 (paper's curve)."""
    rng = np.random.default_rng(0)
    tot = rng.integers(20, 400, size=(400, 128))
    even = rng.binomial(tot, 0.5)
    hist = np.empty((400, 256))
    hist[:, 0::2], hist[:, 1::2] = even, tot - even
    p_pearson = chi_square_pvalue(*chi_square_statistic(hist, statistic="pearson"))
    assert abs(p_pearson.mean() - 0.5) < 0.05
    assert 0.03 < np.mean(p_pearson < 0.1) < 0.18
    p_westfeld = chi_square_pvalue(*chi_square_statistic(hist, statistic="westfeld"))
    assert np.median(p_westfeld) > 0.99


def test_cover_and_full_embedding(edited_covers: list[np.ndarray]) -> None:
    rng = np.random.default_rng(1)
    cov = np.array([sequential_scan(c).estimate for c in edited_covers])
    full = np.array([sequential_scan(lsb_replace(c, 1.0, rng)).estimate for c in edited_covers])
    assert np.mean(cov <= 0.05) >= 0.85
    assert np.median(cov) <= 0.01
    assert np.all(full >= 0.9)
    assert np.median(full) >= 0.97


def test_sequential_half_is_detected_and_localised(edited_covers: list[np.ndarray]) -> None:
    rng = np.random.default_rng(2)
    scans = [sequential_scan(lsb_replace(c, 0.5, rng, sequential=True)) for c in edited_covers]
    est = np.array([s.estimate for s in scans])
    assert np.mean(np.abs(est - 0.5) <= 0.05) >= 0.9
    assert abs(np.median(est) - 0.5) <= 0.02
    # the paper's p-curve: ~1 inside the embedded prefix, collapses after it
    inside = np.array([s.pvalues[39] for s in scans])  # prefix = 40 %
    after = np.array([s.pvalues[69] for s in scans])  # prefix = 70 %
    assert np.mean(inside > 0.5) >= 0.9
    assert np.mean(after < 0.01) >= 0.75
    curve = np.array([s.curve_estimate for s in scans])
    assert np.mean((curve >= 0.45) & (curve <= 0.7)) >= 0.85  # overshoots by a few %
    assert scans[0].fractions[-1] == 1.0 and scans[0].pvalues.shape == (100,)


@pytest.mark.parametrize("frac", [0.1, 0.3, 0.8])
def test_sequential_fraction_estimate(frac: float, edited_covers: list[np.ndarray]) -> None:
    rng = np.random.default_rng(3)
    est = np.array(
        [
            sequential_scan(lsb_replace(c, frac, rng, sequential=True)).estimate
            for c in edited_covers
        ]
    )
    assert np.median(np.abs(est - frac)) <= 0.02
    assert np.mean(np.abs(est - frac) <= 0.05) >= 0.85


def test_detector_result_and_tile_map(edited_covers: list[np.ndarray]) -> None:
    rng = np.random.default_rng(4)
    det = get_detector("chi_square")
    stego = lsb_replace(edited_covers[0], 0.5, rng, sequential=True)
    res = det.detect(stego)
    assert res.payload_bpp == pytest.approx(0.5, abs=0.05)
    assert res.score > 0.95
    assert res.tile_map is not None and res.tile_map.shape == (4, 4)
    assert np.all(res.tile_map[:2] > 0.5)  # embedded rows look balanced
    assert np.median(res.tile_map[2:]) < 0.01  # cover rows do not
    assert det.detect(edited_covers[0]).score < 0.5


def test_colour_interleaved_sequential() -> None:
    """Hobby tools write R, G, B of each pixel in turn; prefixes are taken per pixel."""
    rng = np.random.default_rng(5)
    det = get_detector("chi_square", tile=None)
    est = []
    for _ in range(5):
        cover = synthetic_cover(rng, channels=3, edited=True)
        res = det.detect(lsb_replace(cover, 0.3, rng, sequential=True))
        assert res.channels is not None and len(res.channels) == 3
        est.append(res.payload_bpp)
    assert np.median(np.abs(np.array(est) - 0.3)) <= 0.02

"""Chi-square attack on pairs of values.

A. Westfeld, A. Pfitzmann, "Attacks on steganographic systems", Information
Hiding 1999.  LSB replacement of random bits equalises the histogram counts of
each pair of values (2k, 2k+1) ("pairs of values", PoVs).  The statistic

    chi2 = sum_k (n_2k - n*_k)^2 / n*_k,      n*_k = (n_2k + n_2k+1) / 2,

is compared with a chi-square distribution with (#PoVs - 1) degrees of
freedom; ``p = P(X > chi2)`` close to 1 means "histogram already equalised",
i.e. embedding.  Only PoVs with ``n_2k + n_2k+1 >= min_pair_count`` are used
(the chi-square approximation needs populated categories; the paper leaves the
threshold open).

Note on the statistic: under full embedding ``n_2k`` is binomial with mean
``n*_k`` and variance ``n*_k / 2``, so the paper's statistic has mean of about
half its nominal degrees of freedom and the p-value sits near 1 (which is what
makes the original p-curve so clear-cut).  ``statistic="pearson"`` uses the
two-cell Pearson statistic ``sum (n_2k - n_2k+1)^2 / (n_2k + n_2k+1)`` with
``#PoVs`` degrees of freedom instead, whose p-value is uniform under full
embedding (a calibrated test, but a noisier scan).

Sequential scan (the paper's Fig. 3): the p-value is evaluated on growing
prefixes of the samples in reading order.  Tools that embed sequentially from
the top-left give p ~ 1 while the prefix lies inside the embedded part and a
collapse to ~0 shortly after it, so the last prefix with ``p >= threshold``
estimates the embedded fraction (``SequentialScan.curve_estimate``).

Because the collapse takes a few prefixes, that reading overshoots the
boundary by several per cent.  ``SequentialScan.estimate`` (used by the
detector) is a change-point refinement on the same chunks: for each chunk
``j`` the two-cell Pearson statistic ``T_j`` over its ``k_j`` populated PoVs
has, under embedding, mean exactly ``k_j`` and variance ``sum (2 - 2/n)``; a
CUSUM of ``z_j = T_j - k_j - drift * sd_j`` decreases inside the embedded
part and increases over cover chunks whose PoVs are unbalanced, and its
argmin is the estimated boundary.

Limitation: both readings need cover chunks with *unbalanced* PoVs.  Images
whose histograms are smooth at the scale of two grey levels (noisy raw-like
images, photos downscaled by averaging) look "embedded" to this attack and
give false alarms; it works on images with peaky or comb-like local
histograms (flat areas with little noise, 8-bit edited photos, palettes).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy.special import gammaincc

from ..base import Calibration, DetectionResult, split_channels, too_small

__all__ = [
    "ChiSquareDetector",
    "SequentialScan",
    "chi_square_pvalue",
    "chi_square_statistic",
    "sequential_scan",
]

Statistic = Literal["westfeld", "pearson"]

#: default PoV population below which a category is ignored
MIN_PAIR_COUNT = 10
#: default p-value above which a prefix counts as "embedded" (curve reading)
P_THRESHOLD = 0.5
#: CUSUM drift per chunk, in standard deviations of the chunk statistic
CUSUM_DRIFT = 1.0
#: default score map (hand-set): fraction 0.10 -> 0.5, fraction 0.25 -> 0.95
DEFAULT_CALIBRATION = Calibration.from_points(0.10, 0.25)


def chi_square_statistic(
    hist: np.ndarray,
    *,
    min_pair_count: int = MIN_PAIR_COUNT,
    statistic: Statistic = "westfeld",
) -> tuple[np.ndarray, np.ndarray]:
    """Return (chi2, degrees of freedom) for histograms ``hist[..., 256]`` (vectorised)."""
    h = np.asarray(hist, dtype=np.float64)
    even, odd = h[..., 0::2], h[..., 1::2]
    tot = even + odd
    valid = tot >= max(min_pair_count, 1)
    safe = np.where(valid, tot, 1.0)
    pearson = np.where(valid, (even - odd) ** 2 / safe, 0.0).sum(axis=-1)
    k = valid.sum(axis=-1)
    if statistic == "westfeld":
        return pearson / 2.0, np.maximum(k - 1, 0)
    if statistic == "pearson":
        return pearson, k
    raise ValueError(f"unknown statistic {statistic!r}")


def chi_square_pvalue(stat: np.ndarray, dof: np.ndarray) -> np.ndarray:
    """Upper-tail chi-square probability ``P(X > stat)``; ``nan`` where ``dof == 0``."""
    stat = np.asarray(stat, dtype=np.float64)
    dof = np.asarray(dof, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        p = gammaincc(np.maximum(dof, 1.0) / 2.0, stat / 2.0)
    return np.where(dof > 0, p, np.nan)


@dataclass
class SequentialScan:
    """Result of the prefix scan."""

    fractions: np.ndarray
    """Prefix sizes as fractions of the image (increasing, last = 1)."""
    pvalues: np.ndarray
    """Combined p-value on each prefix (all channels)."""
    channel_pvalues: np.ndarray
    """Per-channel p-values, shape (C, steps)."""
    estimate: float
    """Estimated sequentially embedded fraction (CUSUM change point, all channels)."""
    channel_estimates: list[float]
    """Same estimate per channel."""
    curve_estimate: float
    """The paper's reading: last prefix fraction with combined ``p >= threshold``."""


def _fraction_from_curve(fr: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """Last prefix fraction with ``p >= threshold`` (0 if none)."""
    above = np.flatnonzero(np.nan_to_num(p, nan=0.0) >= threshold)
    return float(fr[above[-1]]) if above.size else 0.0


@lru_cache(maxsize=8)
def _chunk_offsets(n: int, steps: int) -> np.ndarray:
    """``256 * chunk index`` of each of ``n`` reading-order samples."""
    return ((np.arange(n, dtype=np.intp) * steps) // n) * 256


def _chunk_histograms(plane: np.ndarray, steps: int) -> np.ndarray:
    """Histograms (steps, 256) of equal-sized reading-order chunks."""
    flat = plane.reshape(-1)
    key = _chunk_offsets(flat.size, steps) + flat
    return np.bincount(key, minlength=steps * 256).reshape(steps, 256)


def _chunk_excess(hist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per chunk: Pearson excess ``T - k`` and its standard deviation under embedding."""
    h = hist.astype(np.float64)
    even, odd = h[:, 0::2], h[:, 1::2]
    tot = even + odd
    valid = tot > 0
    safe = np.where(valid, tot, 1.0)
    excess = np.where(valid, (even - odd) ** 2 / safe - 1.0, 0.0).sum(axis=1)
    var = np.where(valid, 2.0 - 2.0 / safe, 0.0).sum(axis=1)
    return excess, var


def _cusum_fraction(excess: np.ndarray, var: np.ndarray, ends: np.ndarray, drift: float) -> float:
    """Argmin of the CUSUM of ``excess - drift * sd`` as a fraction (ends[j] = chunk end)."""
    z = excess - drift * np.sqrt(var)
    path = np.r_[0.0, np.cumsum(z)]
    j = int(np.argmin(path))
    return float(ends[j - 1]) if j > 0 else 0.0


def sequential_scan(
    image: np.ndarray,
    *,
    steps: int = 100,
    threshold: float = P_THRESHOLD,
    min_pair_count: int = MIN_PAIR_COUNT,
    statistic: Statistic = "westfeld",
    drift: float = CUSUM_DRIFT,
) -> SequentialScan:
    """Chi-square p-value on growing reading-order prefixes of ``image``.

    For colour input prefixes are taken over pixels (all channels of a pixel
    together, i.e. interleaved RGB order) and the channels' statistics and
    degrees of freedom are summed for the combined curve and estimate.
    ``threshold``/``statistic``/``min_pair_count`` shape the p-value curve
    and ``curve_estimate``; ``drift`` the CUSUM ``estimate``.
    """
    planes = split_channels(image)
    npix = planes[0].size
    steps = int(max(1, min(steps, npix)))
    bounds = np.array([-((-(j + 1) * npix) // steps) for j in range(steps)], dtype=np.float64)
    fractions = bounds / npix
    stats, dofs, excess, var = [], [], [], []
    for plane in planes:
        chunks = _chunk_histograms(plane, steps)
        st, df = chi_square_statistic(
            np.cumsum(chunks, axis=0), min_pair_count=min_pair_count, statistic=statistic
        )
        stats.append(st)
        dofs.append(df)
        ex, va = _chunk_excess(chunks)
        excess.append(ex)
        var.append(va)
    st_a, df_a = np.array(stats), np.array(dofs)
    ex_a, va_a = np.array(excess), np.array(var)
    ch_p = chi_square_pvalue(st_a, df_a)
    p = chi_square_pvalue(st_a.sum(axis=0), df_a.sum(axis=0))
    return SequentialScan(
        fractions=fractions,
        pvalues=p,
        channel_pvalues=ch_p,
        estimate=_cusum_fraction(ex_a.sum(axis=0), va_a.sum(axis=0), fractions, drift),
        channel_estimates=[
            _cusum_fraction(e, v, fractions, drift) for e, v in zip(ex_a, va_a, strict=True)
        ],
        curve_estimate=_fraction_from_curve(fractions, p, threshold),
    )


@lru_cache(maxsize=8)
def _tile_offsets(h: int, w: int, tile: int) -> np.ndarray:
    """``256 * tile index`` of each pixel in reading order."""
    tx = -(-w // tile)
    tid = (np.arange(h)[:, None] // tile) * tx + (np.arange(w)[None, :] // tile)
    return tid.reshape(-1).astype(np.intp) * 256


def _tile_pvalues(
    planes: list[np.ndarray], tile: int, min_pair_count: int, statistic: Statistic
) -> np.ndarray:
    """Combined chi-square p-value of each ``tile`` x ``tile`` block (partial tiles kept)."""
    h, w = planes[0].shape
    ty, tx = -(-h // tile), -(-w // tile)
    tid = _tile_offsets(h, w, tile)
    stat = np.zeros(ty * tx)
    dof = np.zeros(ty * tx)
    for plane in planes:
        hist = np.bincount(tid + plane.reshape(-1), minlength=ty * tx * 256)
        s, d = chi_square_statistic(
            hist.reshape(ty * tx, 256), min_pair_count=min_pair_count, statistic=statistic
        )
        stat += s
        dof += d
    return chi_square_pvalue(stat, dof).reshape(ty, tx)


class ChiSquareDetector:
    """Westfeld-Pfitzmann chi-square attack with the sequential prefix scan.

    ``raw`` and ``payload_bpp`` are the sequentially embedded fraction
    ``SequentialScan.estimate`` (1 bit per sample in the embedded prefix, so
    the fraction equals bits per sample); a fully, randomly embedded image
    gives 1.  ``tile_map`` holds per-tile p-values (``tile`` pixels square,
    high = looks embedded) and ``channels`` the per-channel fraction
    estimates.  See the module docstring for the false alarms on covers
    with smooth histograms.
    """

    name = "chi_square"

    def __init__(
        self,
        *,
        steps: int = 100,
        threshold: float = P_THRESHOLD,
        min_pair_count: int = MIN_PAIR_COUNT,
        statistic: Statistic = "westfeld",
        drift: float = CUSUM_DRIFT,
        tile: int | None = 64,
        calibration: Calibration = DEFAULT_CALIBRATION,
    ) -> None:
        self.steps = steps
        self.drift = drift
        self.threshold = threshold
        self.min_pair_count = min_pair_count
        self.statistic: Statistic = statistic
        self.tile = tile
        self.calibration = calibration

    def calibrate(self, calibration: Calibration) -> None:
        """Replace the score mapping."""
        self.calibration = calibration

    def scan(self, image: np.ndarray) -> SequentialScan:
        """Run the sequential scan with this detector's settings."""
        return sequential_scan(
            image,
            steps=self.steps,
            threshold=self.threshold,
            min_pair_count=self.min_pair_count,
            statistic=self.statistic,
            drift=self.drift,
        )

    def detect(self, image: np.ndarray) -> DetectionResult:
        """Detect (sequential) LSB replacement; see the class docstring."""
        planes = split_channels(image)
        if too_small(planes[0]):
            return DetectionResult.undecided()
        sc = self.scan(image)
        tiles = (
            _tile_pvalues(planes, self.tile, self.min_pair_count, self.statistic)
            if self.tile
            else None
        )
        return DetectionResult(
            score=self.calibration(sc.estimate),
            payload_bpp=sc.estimate,
            raw=sc.estimate,
            tile_map=tiles,
            channels=sc.channel_estimates if len(planes) > 1 else None,
        )

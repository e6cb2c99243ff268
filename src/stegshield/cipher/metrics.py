"""Statistical measures of image ciphers, with their critical values.

* Shannon entropy of the histogram (bits per sample; 8 for a uniform one).
* Correlation of adjacent samples, horizontally, vertically and diagonally, over all pairs.
* Chi-square test of the histogram against the uniform distribution (255 degrees of freedom).
* NPCR and UACI between two cipher-images, judged with the critical values of Wu, Noonan &
  Agaian, "NPCR and UACI randomness tests for image encryption", Cyber Journals JSAT, 2011:
  NPCR* = (F - z(1-a) sqrt(F / N)) / (F + 1), and
  UACI* = mu -+ z(1-a/2) sigma, mu = (F + 2) / (3F + 3),
  sigma^2 = (F + 2)(F^2 + 2F + 3) / (18 (F + 1)^2 N F), with F = 255, N = pixels per channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

F = 255  # largest sample value


def _channels(pixels: np.ndarray) -> list[np.ndarray]:
    return [pixels] if pixels.ndim == 2 else [pixels[:, :, k] for k in range(pixels.shape[2])]


def entropy(channel: np.ndarray) -> float:
    """Shannon entropy of the sample histogram, in bits per sample."""
    counts = np.bincount(channel.reshape(-1), minlength=256).astype(np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log2(p)).sum())


def entropy_threshold(n: int) -> float:
    """Pass mark for the entropy of ``n`` samples: 7.997 bits, or lower for small images.

    The plug-in estimate of a uniform source is biased low by about 255 / (2 n ln 2) bits
    (Miller 1955); below 512x512 the mark is four times that bias under 8 bits.
    """
    return min(7.997, 8.0 - 4 * 255 / (2 * n * math.log(2)))


def adjacent_correlation(channel: np.ndarray) -> dict[str, float]:
    """Pearson correlation of all horizontally, vertically and diagonally adjacent pairs."""
    x = channel.astype(np.float64)
    pairs = {
        "horizontal": (x[:, :-1], x[:, 1:]),
        "vertical": (x[:-1, :], x[1:, :]),
        "diagonal": (x[:-1, :-1], x[1:, 1:]),
    }
    out = {}
    for name, (a, b) in pairs.items():
        if a.size < 2 or a.std() == 0 or b.std() == 0:
            out[name] = float("nan")
            continue
        out[name] = float(np.corrcoef(a.reshape(-1), b.reshape(-1))[0, 1])
    return out


def correlation_threshold(pairs: int) -> float:
    """|r| pass mark: 0.01, or four standard errors (4 / sqrt(pairs)) for small images."""
    return max(0.01, 4 / math.sqrt(max(pairs, 1)))


@dataclass(frozen=True)
class ChiSquare:
    statistic: float
    p_value: float
    critical: float
    passed: bool


def chi_square_uniform(channel: np.ndarray, alpha: float = 0.05) -> ChiSquare:
    """Chi-square goodness of fit of the histogram to the uniform distribution."""
    counts = np.bincount(channel.reshape(-1), minlength=256).astype(np.float64)
    expected = counts.sum() / 256
    stat = float(((counts - expected) ** 2 / expected).sum())
    critical = float(stats.chi2.ppf(1 - alpha, 255))
    return ChiSquare(stat, float(stats.chi2.sf(stat, 255)), critical, stat <= critical)


def npcr_uaci(c1: np.ndarray, c2: np.ndarray) -> tuple[float, float]:
    """NPCR and UACI between two cipher channels of equal shape, in percent."""
    if c1.shape != c2.shape:
        raise ValueError("NPCR/UACI need arrays of equal shape")
    diff = np.abs(c1.astype(np.int16) - c2.astype(np.int16))
    return float((diff != 0).mean() * 100), float(diff.mean() / F * 100)


def npcr_critical(n: int, alpha: float = 0.05) -> float:
    """Wu et al. (2011) one-sided NPCR critical value, in percent, for ``n`` pixels."""
    z = stats.norm.ppf(1 - alpha)
    return float((F - z * math.sqrt(F / n)) / (F + 1) * 100)


def uaci_interval(n: int, alpha: float = 0.05) -> tuple[float, float]:
    """Wu et al. (2011) two-sided UACI acceptance interval, in percent, for ``n`` pixels."""
    mu = (F + 2) / (3 * F + 3)
    var = (F + 2) * (F * F + 2 * F + 3) / (18 * (F + 1) ** 2 * n * F)
    half = stats.norm.ppf(1 - alpha / 2) * math.sqrt(var)
    return float((mu - half) * 100), float((mu + half) * 100)


@dataclass(frozen=True)
class Sensitivity:
    """NPCR/UACI between two cipher-images: per channel, and over all samples (the verdict).

    The verdict tests all ``n`` samples at once against Wu et al.'s critical values for ``n``
    (under the null hypothesis every sample is independent and uniform), so a colour image
    is one test at level alpha rather than one per channel.
    """

    npcr: float
    uaci: float
    n: int
    npcr_critical: float
    uaci_low: float
    uaci_high: float
    channel_npcr: tuple[float, ...]
    channel_uaci: tuple[float, ...]

    @property
    def passed(self) -> bool:
        return self.npcr >= self.npcr_critical and self.uaci_low <= self.uaci <= self.uaci_high


def sensitivity(c1: np.ndarray, c2: np.ndarray, alpha: float = 0.05) -> Sensitivity:
    """NPCR/UACI of two cipher-images judged at significance ``alpha`` (Wu et al. 2011)."""
    per = [npcr_uaci(a, b) for a, b in zip(_channels(c1), _channels(c2), strict=True)]
    npcr, uaci = npcr_uaci(c1, c2)
    low, high = uaci_interval(c1.size, alpha)
    return Sensitivity(npcr, uaci, int(c1.size), npcr_critical(c1.size, alpha), low, high,
                       tuple(v[0] for v in per), tuple(v[1] for v in per))


def channels(pixels: np.ndarray) -> list[np.ndarray]:
    """The 2-D channels of an HxW or HxWxC image."""
    return _channels(pixels)

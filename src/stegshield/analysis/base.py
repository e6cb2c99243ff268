"""Common detector interface, result type and calibration hook.

Every detector takes a ``uint8`` image of shape ``HxW`` or ``HxWxC`` with
``C`` in ``{1, 3, 4}`` (an alpha channel is ignored) and returns a
:class:`DetectionResult`.

Colour policy (shared by all payload estimators in
:mod:`stegshield.analysis.structural`): the estimator runs independently on
each colour channel; ``channels`` holds the per-channel estimates and
``payload_bpp`` / ``raw`` are their **mean**.  The mean is the unbiased
estimate of the payload in bits per *sample* (total bits / (H*W*C)) when
the embedder spreads its changes over all channels, which is what LSB
hobby tools do; the per-channel list is kept so that a caller can look at
the maximum when a single channel is suspected.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "MIN_PIXELS",
    "MIN_SIDE",
    "Calibration",
    "DetectionResult",
    "Detector",
    "PayloadDetector",
    "split_channels",
    "too_small",
]

#: Images with fewer pixels than this, or a side under ``MIN_SIDE``, are too small to judge:
#: every detector returns no judgement for them (score 0.5, ``raw`` nan), and the scanner
#: reports them as ``too_small`` (a 3×3 image gave scores of 0 or 1 before).
MIN_PIXELS = 64 * 64
MIN_SIDE = 16


@dataclass
class DetectionResult:
    """Outcome of one detector on one image."""

    score: float
    """Probability-like suspicion in [0, 1]; higher is more suspicious."""
    payload_bpp: float | None
    """Estimated payload in bits per pixel (per sample for colour); ``None`` if none."""
    raw: float
    """The uncalibrated statistic the score is computed from (``nan`` if undefined,
    e.g. for an image too small for the method; the score is then 0.5)."""
    tile_map: np.ndarray | None = None
    """Optional per-tile statistic (same meaning as ``raw``), tiles in reading order."""
    channels: list[float] | None = None
    """Per-channel payload estimates / statistics for colour input."""

    @classmethod
    def undecided(cls) -> DetectionResult:
        """No judgement: score 0.5, no payload estimate, ``raw`` nan."""
        return cls(score=0.5, payload_bpp=None, raw=float("nan"))


@dataclass(frozen=True)
class Calibration:
    """Logistic map ``score = 1 / (1 + exp(-(a * raw + b)))``.

    The defaults shipped with each detector are hand-set (see the module
    constants of the detectors); a fit on validation data can replace them
    via :meth:`PayloadDetector.calibrate` or by assigning ``calibration``.
    """

    a: float
    b: float

    def __call__(self, raw: float) -> float:
        """Return the calibrated score of ``raw`` (``nan`` maps to 0.5)."""
        if not math.isfinite(raw):
            if math.isnan(raw):
                return 0.5
            return 1.0 if raw * self.a > 0 else 0.0
        z = self.a * raw + self.b
        if z >= 0:
            return 1.0 / (1.0 + math.exp(-z))
        ez = math.exp(z)
        return ez / (1.0 + ez)

    @classmethod
    def fit(
        cls, raw: np.ndarray, labels: np.ndarray, *, l2: float = 1e-6, iters: int = 50
    ) -> Calibration:
        """Maximum-likelihood logistic fit of ``labels`` (0/1) on ``raw`` (Newton / IRLS).

        ``raw`` is standardised internally; a tiny ridge ``l2`` keeps the fit
        finite on perfectly separable data.  Non-finite ``raw`` are dropped.
        """
        x = np.asarray(raw, dtype=np.float64).ravel()
        y = np.asarray(labels, dtype=np.float64).ravel()
        keep = np.isfinite(x)
        x, y = x[keep], y[keep]
        if x.size < 2 or y.min() == y.max():
            raise ValueError("need finite scores from both classes")
        mu, sd = float(x.mean()), float(x.std()) or 1.0
        z = (x - mu) / sd
        w = np.zeros(2)  # [slope, intercept] on the standardised scale
        for _ in range(iters):
            p = 1.0 / (1.0 + np.exp(-(w[0] * z + w[1])))
            g = np.array([np.dot(p - y, z), np.sum(p - y)]) + l2 * x.size * w
            r = p * (1.0 - p)
            h = np.array(
                [[np.dot(r, z * z), np.dot(r, z)], [np.dot(r, z), np.sum(r)]]
            ) + l2 * x.size * np.eye(2)
            step = np.linalg.solve(h, g)
            w -= step
            if np.abs(step).max() < 1e-10:
                break
        a = w[0] / sd
        return cls(a=float(a), b=float(w[1] - a * mu))

    @classmethod
    def from_points(cls, raw_half: float, raw_high: float, high: float = 0.95) -> Calibration:
        """Build the map with ``score(raw_half) = 0.5`` and ``score(raw_high) = high``."""
        if raw_high == raw_half or not 0.5 < high < 1.0:
            raise ValueError("need raw_high != raw_half and 0.5 < high < 1")
        a = math.log(high / (1.0 - high)) / (raw_high - raw_half)
        return cls(a=a, b=-a * raw_half)


@runtime_checkable
class Detector(Protocol):
    """Anything with a ``name`` and a ``detect(image) -> DetectionResult``."""

    name: str

    def detect(self, image: np.ndarray) -> DetectionResult:
        """Analyse a ``uint8`` image of shape HxW or HxWxC (C = 1, 3, 4)."""
        ...


def split_channels(image: np.ndarray) -> list[np.ndarray]:
    """Validate ``image`` and return its colour planes (alpha dropped) as 2-D arrays."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image, got dtype {arr.dtype}")
    if arr.ndim == 2:
        return [arr]
    if arr.ndim == 3 and arr.shape[2] in (1, 3, 4):
        n = 3 if arr.shape[2] == 4 else arr.shape[2]
        return [arr[:, :, c] for c in range(n)]
    raise ValueError(f"expected HxW or HxWxC with C in (1, 3, 4), got shape {arr.shape}")


class PayloadDetector(ABC):
    """Base for per-channel quantitative detectors (RS, SPA, WS).

    Subclasses implement :meth:`estimate_channel`; :meth:`detect` runs it on
    every colour plane, averages (see module docstring), clips the payload
    into [0, 1] and maps the unclipped mean through ``calibration``.
    """

    name: str = "payload"
    calibration: Calibration

    @abstractmethod
    def estimate_channel(self, x: np.ndarray) -> tuple[float, np.ndarray | None]:
        """Return (payload estimate in bpp, optional tile map) for a 2-D uint8 plane."""

    def calibrate(self, calibration: Calibration) -> None:
        """Replace the score mapping (e.g. by one fitted on validation data)."""
        self.calibration = calibration

    def detect(self, image: np.ndarray) -> DetectionResult:
        """Estimate the LSB-replacement payload of ``image``."""
        planes = split_channels(image)
        if too_small(planes[0]):
            return DetectionResult.undecided()
        ests: list[float] = []
        maps: list[np.ndarray] = []
        for plane in planes:
            est, tiles = self.estimate_channel(plane)
            ests.append(float(est))
            if tiles is not None:
                maps.append(tiles)
        finite = [e for e in ests if math.isfinite(e)]
        raw = float(np.mean(finite)) if finite else float("nan")
        payload = float(np.clip(raw, 0.0, 1.0)) if finite else None
        tile_map = np.mean(maps, axis=0) if len(maps) == len(planes) and maps else None
        return DetectionResult(
            score=self.calibration(raw),
            payload_bpp=payload,
            raw=raw,
            tile_map=tile_map,
            channels=ests if len(planes) > 1 else None,
        )


def too_small(plane: np.ndarray) -> bool:
    """Whether an image (or one of its planes) is below ``MIN_PIXELS`` or ``MIN_SIDE``."""
    h, w = np.shape(plane)[:2]
    return h * w < MIN_PIXELS or min(h, w) < MIN_SIDE

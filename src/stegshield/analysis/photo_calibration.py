"""Thresholds for a tiled detector's image statistic, measured on whole clean photographs.

A tiled detector (CNN, fusion) reports the largest tile score minus ``ln(n) / a``
(:func:`.cnn.calibration.aggregate_max`).  Its tile thresholds come from validation cover
*tiles*; the size correction assumes independent tiles with the covers' tail, and within one
photograph they are neither: at its 1 % tile threshold the shipped thorough CNN flagged 12.9 %
of the clean validation files (docs/SCAN.md, "Thresholds fitted on whole photographs").

This module sets the thresholds on the statistic itself, measured on whole clean validation
photographs.  The largest of many scores with an exponential upper tail follows a Gumbel law
(Fisher and Tippett 1928; Gumbel 1958), and the size correction only shifts it, so the
statistic of clean photographs of any size is fitted as ``Gumbel(mu, beta)`` by maximum
likelihood, each photograph weighing the same (a source photo's versions and crops share its
weight).  The threshold for a false-positive rate ``f`` is the fitted ``(1 - f)`` quantile,
``mu - beta * ln(-ln(1 - f))``: two parameters from a few dozen photographs extrapolate to 1 %
where an empirical quantile cannot.

The fit lives beside the weight file as ``<model>.photos.json`` with the SHA-256 of the file
it was measured on; a detector refuses a fit made for other weights instead of using it
(``scripts/calibrate_photos.py`` refits it).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StegshieldError

__all__ = ["PhotoCalibration", "PhotoCalibrationError", "drop_stale", "file_digest", "fit_gumbel",
           "load_photo_calibration", "photo_weights", "sidecar_path"]

#: Fewer clean photographs than this give no fit (two parameters, a tail to extrapolate).
MIN_PHOTOS = 10


def file_digest(path: str | Path) -> str:
    """SHA-256 (hex) of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sidecar_path(model_path: str | Path) -> Path:
    """Where the photograph calibration of a weight file lives: ``<stem>.photos.json``."""
    p = Path(model_path)
    return p.with_name(p.stem + ".photos.json")


def photo_weights(groups: Sequence[str]) -> np.ndarray:
    """Weight ``1 / (images of its group)`` per image, so every source photograph weighs 1."""
    count = Counter(groups)
    return np.array([1.0 / count[g] for g in groups])


def fit_gumbel(x: Sequence[float], weights: Sequence[float] | None = None
               ) -> tuple[float, float]:
    """Weighted maximum-likelihood ``(mu, beta)`` of a Gumbel (maximum) law.

    ``beta`` solves ``beta = m(x) - m(x e^{-x/beta}) / m(e^{-x/beta})`` (``m`` the weighted
    mean), the profile-likelihood equation, by bisection; then
    ``mu = -beta ln m(e^{-x/beta})``.  Raises ``ValueError`` on fewer than 3 finite values
    or no spread."""
    v = np.asarray(x, float)
    w = np.ones_like(v) if weights is None else np.asarray(weights, float)
    keep = np.isfinite(v) & np.isfinite(w) & (w > 0)
    v, w = v[keep], w[keep] / w[keep].sum()
    if v.size < 3 or float(v.max() - v.min()) <= 1e-9 * max(1.0, float(np.abs(v).max())):
        raise ValueError("a Gumbel fit needs at least 3 distinct finite values")
    c = v - float(np.sum(w * v))  # centred: the equation is shift-free
    mean_c, cmin = 0.0, float(c.min())

    def g(beta: float) -> float:
        e = np.exp(-(c - cmin) / beta)  # <= 1; the constant factor cancels in the ratio
        return beta - (mean_c - float(np.sum(w * c * e)) / float(np.sum(w * e)))

    sd = math.sqrt(float(np.sum(w * c * c)))
    lo, hi = sd * 1e-3, sd * 10.0
    while g(lo) > 0 and lo > sd * 1e-15:  # g rises from negative to positive in beta
        lo /= 10.0
    while g(hi) <= 0 and hi < sd * 1e15:  # very uneven weights can push the root past 10 sd
        hi *= 10.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if g(mid) > 0:
            hi = mid
        else:
            lo = mid
    beta = 0.5 * (lo + hi)
    mu_c = cmin - beta * math.log(float(np.sum(w * np.exp(-(c - cmin) / beta))))
    return float(mu_c + np.sum(w * v)), float(beta)


@dataclass(frozen=True)
class PhotoCalibration:
    """A Gumbel fit of a detector's image statistic on clean photographs."""

    mu: float
    beta: float
    digest: str
    """SHA-256 of the weight file the statistics were measured with."""
    info: dict[str, Any] = field(default_factory=dict)
    """Provenance: split, counts, packages, command, date, measured rates."""

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mu) and math.isfinite(self.beta) and self.beta > 0):
            raise ValueError("a photo calibration needs a finite mu and a positive beta")

    @classmethod
    def fit(cls, raw: Sequence[float], groups: Sequence[str], digest: str,
            info: dict[str, Any] | None = None) -> PhotoCalibration:
        """Fit on the statistics ``raw`` of clean images with photograph ids ``groups``."""
        raw = np.asarray(raw, float)
        ok = np.isfinite(raw)
        groups = [g for g, k in zip(groups, ok, strict=True) if k]
        if len(set(groups)) < MIN_PHOTOS:
            raise ValueError(f"need at least {MIN_PHOTOS} clean photographs, got "
                             f"{len(set(groups))}")
        mu, beta = fit_gumbel(raw[ok], photo_weights(groups))
        return cls(mu=mu, beta=beta, digest=digest,
                   info=dict(info or {}, files=int(ok.sum()), photos=len(set(groups))))

    def raw_at_fpr(self, fpr: float) -> float:
        """The statistic's threshold for a false-positive rate ``fpr`` (in (0, 1))."""
        fpr = min(max(float(fpr), 1e-300), 1.0 - 1e-16)
        return self.mu - self.beta * math.log(-math.log1p(-fpr))

    def fpr_of_raw(self, raw: float) -> float:
        """The fitted share of clean photographs whose statistic is at least ``raw``."""
        z = min(-(float(raw) - self.mu) / self.beta, 700.0)  # beyond: 1.0 to the last bit
        return float(-math.expm1(-math.exp(z)))

    def to_json(self) -> dict[str, Any]:
        return {"law": "gumbel", "mu": self.mu, "beta": self.beta, "sha256": self.digest,
                "info": self.info}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PhotoCalibration:
        if not isinstance(data, dict) or data.get("law") != "gumbel":
            raise ValueError("not a Gumbel photo calibration")
        return cls(mu=float(data["mu"]), beta=float(data["beta"]),
                   digest=str(data["sha256"]), info=dict(data.get("info", {})))

    def save(self, model_path: str | Path) -> Path:
        """Write the sidecar of ``model_path`` atomically; returns its path."""
        return self.write(sidecar_path(model_path))

    def write(self, out: str | Path) -> Path:
        """Write the fit to ``out`` atomically (JSON); returns the path."""
        out = Path(out)
        tmp = out.with_name(out.name + ".tmp")
        try:
            tmp.write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n")
            tmp.chmod(0o644)
            tmp.replace(out)
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        return out


class PhotoCalibrationError(StegshieldError, ValueError):
    """A photograph calibration that cannot be used (unreadable, or for other weights)."""


def load_photo_calibration(model_path: str | Path, path: str | Path | bool | None = None
                           ) -> PhotoCalibration | None:
    """The photograph calibration of the weights ``model_path``: the file ``path`` (e.g. a fit
    on your own clean photographs, ``python -m stegshield.scan.calibrate DIR --detector NAME
    --fit FILE``), else the sidecar beside the weights; ``None`` if there is no sidecar.

    Raises ``ValueError`` (one line, naming the fix) if the file is missing, unreadable or
    was fitted on other weights: thresholds measured for one model mean nothing for another.
    ``path=False``: none at all (the tools that measure or refit the statistic)."""
    if path is False:
        return None
    side = sidecar_path(model_path) if path is None or path is True else Path(path)
    if not isinstance(path, str | Path) and not side.exists():
        return None
    try:
        cal = PhotoCalibration.from_json(json.loads(side.read_text()))
    except KeyError as exc:
        raise PhotoCalibrationError(f"{side.name}: unreadable photo calibration (no field "
                                    f"{exc})") from exc
    except (OSError, ValueError, TypeError) as exc:
        raise PhotoCalibrationError(f"{side.name}: unreadable photo calibration ({exc})"
                                    ) from exc
    if cal.digest != file_digest(model_path):
        made_for = cal.info.get("detector")
        fix = ("refit it with python -m stegshield.scan.calibrate DIR --detector NAME --fit "
               f"{side.name}" if path is not None else
               "refit it (scripts/calibrate_photos.py --write) or delete it")
        if made_for and path is not None:  # most often: the fit of another detector
            raise PhotoCalibrationError(
                f"{side.name}: a fit for --detector {made_for}, on other weights than "
                f"{Path(model_path).name}; scan with --detector {made_for}, or {fix}")
        raise PhotoCalibrationError(
            f"{side.name}: fitted on other weights than {Path(model_path).name}; {fix}")
    return cal


def drop_stale(model_path: str | Path) -> bool:
    """Delete the photograph calibration beside ``model_path`` unless it was fitted on these
    very weights (for the scripts that ship new weights: the detector then falls back to its
    tile thresholds until ``scripts/calibrate_photos.py --write`` refits).  True if deleted."""
    side = sidecar_path(model_path)
    try:
        if load_photo_calibration(model_path) is not None:
            return False
    except PhotoCalibrationError:
        side.unlink()
        return True
    return False

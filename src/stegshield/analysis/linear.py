"""Learned linear detectors over hand-crafted features: fit, model file, calibration, thresholds.

A :class:`FeatureSet` maps one 2-D ``uint8`` plane to a fixed-length vector; a
:class:`LinearModel` is a linear score of its standardised features (a ridge logistic
regression or a regularised Fisher linear discriminant), plus a Platt
calibration and per-FPR logit thresholds measured on validation covers.  Models ship as
``analysis/weights/linear/<name>.safetensors`` (float64 arrays ``mean``, ``scale``, ``coef``;
JSON metadata: feature set, version and parameters, intercept, calibration, thresholds) with a
model card beside them.  :class:`LinearDetector` is the :class:`~.base.Detector` on top: the
feature set runs per colour plane and ``raw`` is the mean logit.

Users: :mod:`.structural.learned` (``structural``: LSB replacement), :mod:`.features.spam`
(``spam``: SPAM features, ±1 embedding) and :mod:`.features.srm` (``srm``: a small rich model,
content-adaptive embedding).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .base import Calibration, DetectionResult, split_channels, too_small

__all__ = [
    "LINEAR_DIR",
    "FPRThresholds",
    "FeatureSet",
    "LinearDetector",
    "LinearModel",
    "fit_fld",
    "fit_logistic",
    "shipped_linear",
]

#: Where the shipped linear models live.
LINEAR_DIR = Path(__file__).resolve().parent / "weights" / "linear"
_META_KEY = "stegshield"


@dataclass(frozen=True)
class FeatureSet:
    """A named, versioned feature extractor for one 2-D ``uint8`` plane."""

    name: str
    version: int
    names: tuple[str, ...]
    extract: Callable[[np.ndarray], np.ndarray]
    """Plane -> vector of ``len(names)`` floats (all ``nan`` when the plane is too small)."""
    params: dict[str, Any] = field(default_factory=dict)
    """What else must match for a model to apply (e.g. bin edges); stored in the model."""


def fit_logistic(X: np.ndarray, y: np.ndarray, *, l2: float = 1e-4, iters: int = 100,
                 sample_weight: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Ridge logistic regression by Newton's method on standardised features.

    Returns ``(mean, scale, coef, intercept)``: the logit is
    ``((X - mean) / scale) @ coef + intercept``.  ``l2`` penalises ``|coef|^2 / 2`` per
    (weighted) sample, which keeps the fit finite on separable data."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64).ravel()
    if X.ndim != 2 or len(X) != len(y) or y.min() == y.max():
        raise ValueError("need a 2-D feature matrix and labels of both classes")
    if not np.isfinite(X).all():
        raise ValueError("features contain nan or inf (images too small to describe?)")
    sw = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    sw = sw / sw.mean()
    mean = np.average(X, axis=0, weights=sw)
    scale = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=sw))
    scale[scale < 1e-12] = 1.0
    Z = np.c_[(X - mean) / scale, np.ones(len(X))]
    w = np.zeros(Z.shape[1])
    reg = np.full(Z.shape[1], l2)
    reg[-1] = 0.0  # no penalty on the intercept
    n = float(sw.sum())
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(Z @ w, -50, 50)))
        g = Z.T @ (sw * (p - y)) / n + reg * w
        H = (Z * (sw * p * (1 - p))[:, None]).T @ Z / n + np.diag(reg) + 1e-10 * np.eye(len(w))
        step = np.linalg.solve(H, g)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return mean, scale, w[:-1], float(w[-1])


def fit_fld(X: np.ndarray, y: np.ndarray, *, l2: float = 1e-3
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Regularised Fisher linear discriminant on standardised features (the base learner of
    Kodovský, Fridrich & Holub's ensemble classifier, TIFS 2012): ``coef = (S_w + l2 I)^-1
    (mu_1 - mu_0)``, threshold halfway between the class means.  Same return convention as
    :func:`fit_logistic`; the output is a discriminant, not a log-odds (calibrate it)."""
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y).ravel().astype(bool)
    if X.ndim != 2 or len(X) != len(y) or y.all() or not y.any():
        raise ValueError("need a 2-D feature matrix and labels of both classes")
    if not np.isfinite(X).all():
        raise ValueError("features contain nan or inf (images too small to describe?)")
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-12] = 1.0
    Z = (X - mean) / scale
    m0, m1 = Z[~y].mean(axis=0), Z[y].mean(axis=0)
    D = np.r_[Z[~y] - m0, Z[y] - m1]
    sw = D.T @ D / len(D) + l2 * np.eye(Z.shape[1])
    coef = np.linalg.solve(sw, m1 - m0)
    return mean, scale, coef, float(-coef @ (m0 + m1) / 2)


@dataclass
class LinearModel:
    """A fitted linear score over a :class:`FeatureSet` plus its calibration."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    calibration: Calibration = field(default_factory=lambda: Calibration(1.0, 0.0))
    raw_thresholds: dict[float, float] = field(default_factory=dict)
    """{FPR: raw-score threshold} measured on validation cover tiles (scan's verdicts)."""
    meta: dict[str, Any] = field(default_factory=dict)

    def logits(self, F: np.ndarray) -> np.ndarray:
        """Raw scores (log-odds for a logistic model) of a (n, features) matrix (``nan`` rows
        stay ``nan``)."""
        F = np.atleast_2d(np.asarray(F, dtype=np.float64))
        return ((F - self.mean) / self.scale) @ self.coef + self.intercept

    def save(self, path: str | Path, features: FeatureSet,
             meta: dict[str, Any] | None = None) -> None:
        """Write the model atomically as safetensors (arrays) + JSON metadata."""
        from safetensors.numpy import save_file

        info = dict(self.meta, **(meta or {}))
        info.update({
            "kind": f"{features.name}-linear", "feature_version": features.version,
            "feature_params": features.params, "features": list(features.names),
            "intercept": self.intercept,
            "calibration": {"a": self.calibration.a, "b": self.calibration.b},
            "raw_thresholds": {str(k): v for k, v in sorted(self.raw_thresholds.items())},
        })
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        save_file({"mean": self.mean, "scale": self.scale, "coef": self.coef}, str(tmp),
                  metadata={_META_KEY: json.dumps(info, sort_keys=True)})
        tmp.chmod(0o644)
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path, features: FeatureSet) -> LinearModel:
        """Read a model written by :meth:`save` for ``features`` (refuses any other feature
        set, version or parameters)."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as fh:
                meta = json.loads((fh.metadata() or {}).get(_META_KEY, "{}"))
                kinds = (f"{features.name}-linear", f"{features.name}-logistic")  # old name
                if not isinstance(meta, dict) or meta.get("kind") not in kinds \
                        or not {"mean", "scale", "coef"} <= set(fh.keys()):
                    raise ValueError(f"{path}: not a {features.name} detector model")
                params = json.loads(json.dumps(features.params))  # tuples -> lists
                if meta.get("feature_version") != features.version or \
                        meta.get("feature_params") != params:
                    raise ValueError(f"{path}: made for another feature version "
                                     f"({meta.get('feature_version')}; this code: "
                                     f"{features.version})")
                arrays = {k: fh.get_tensor(k) for k in ("mean", "scale", "coef")}
            intercept = float(meta["intercept"])
            cal = meta.get("calibration", {"a": 1.0, "b": 0.0})
            calibration = Calibration(float(cal["a"]), float(cal["b"]))
            raw_thresholds = {float(k): float(v)
                              for k, v in dict(meta.get("raw_thresholds", {})).items()}
        except ValueError as exc:
            if str(exc).startswith(str(path)):
                raise
            raise ValueError(f"{path}: cannot read a {features.name} model ({exc})") from exc
        except Exception as exc:  # safetensors' own error type, OSError, bad metadata types
            raise ValueError(f"{path}: cannot read a {features.name} model "
                             f"({type(exc).__name__}: {exc})") from exc
        n = len(features.names)
        if any(arrays[k].shape != (n,) for k in arrays):
            raise ValueError(f"{path}: expected {n} coefficients")
        finite = [intercept, calibration.a, calibration.b, *raw_thresholds.values()]
        if not all(math.isfinite(v) for v in finite) or calibration.a <= 0 or \
                not all(0.0 < f < 1.0 for f in raw_thresholds) or \
                not all(np.isfinite(arrays[k]).all() for k in arrays) or \
                not (arrays["scale"] > 0).all():
            raise ValueError(f"{path}: invalid model values (non-finite numbers, scale or "
                             "calibration slope <= 0, or FPR keys outside (0, 1))")
        return cls(mean=arrays["mean"], scale=arrays["scale"], coef=arrays["coef"],
                   intercept=intercept, calibration=calibration,
                   raw_thresholds=raw_thresholds, meta=meta)


def shipped_linear() -> list[tuple[str, Path, dict[str, Any]]]:
    """(name, path, metadata) of every shipped linear model."""
    from safetensors import safe_open

    out = []
    for p in sorted(LINEAR_DIR.glob("*.safetensors")):
        try:
            with safe_open(str(p), framework="numpy") as fh:
                meta = json.loads((fh.metadata() or {}).get(_META_KEY, "{}"))
        except Exception as exc:  # listed, flagged, never fatal
            meta = {"kind": "unreadable", "error": f"{type(exc).__name__}: {exc}"}
        out.append((p.stem, p, meta if isinstance(meta, dict) else {"kind": "unreadable"}))
    return out


def _resolve(model: str | Path) -> Path:
    p = Path(model)
    if p.suffix == ".safetensors" and p.exists():
        return p
    cand = LINEAR_DIR / f"{model}.safetensors"
    if cand.exists():
        return cand
    shipped = ", ".join(sorted(q.stem for q in LINEAR_DIR.glob("*.safetensors")))
    raise FileNotFoundError(f"no model {str(model)!r} (shipped: {shipped or 'none'})")


class FPRThresholds:
    """Score thresholds by false-positive rate from raw thresholds measured on validation
    cover tiles ({FPR: raw}) and a Platt calibration."""

    def __init__(self, raw_thresholds: dict[float, float], calibration: Calibration) -> None:
        pts = sorted(raw_thresholds.items())
        self.calibration = calibration
        self._fprs = [f for f, _ in pts]
        self._log_fpr = np.log(self._fprs) if pts else np.zeros(0)
        self._raw = np.array([t for _, t in pts])

    @property
    def thresholds(self) -> dict[float, float]:
        """{FPR: calibrated score threshold} at the FPRs measured on validation covers."""
        return {f: self.calibration(float(t)) for f, t in zip(self._fprs, self._raw, strict=True)}

    def threshold_at_fpr(self, fpr: float) -> float:
        """Score threshold for a false-positive rate ``fpr``: the validation covers' logit
        quantiles, linear in log-FPR between them and along the end segments beyond them (as
        the classical table is read), through the Platt map.  Without two points: ``1 - fpr``
        (the Platt map read as a probability)."""
        fpr = min(max(float(fpr), 1e-12), 1.0 - 1e-12)
        if len(self._log_fpr) < 2:  # the Platt map's own tail: score(raw) = 1 - fpr
            return 1.0 - fpr
        return self.calibration(self.raw_at_fpr(fpr))

    def raw_at_fpr(self, fpr: float) -> float:
        """The raw-score threshold behind :meth:`threshold_at_fpr` (``nan`` without two
        measured points)."""
        lf, raw = self._log_fpr, self._raw
        if len(lf) < 2:
            return math.nan
        z = math.log(min(max(float(fpr), 1e-12), 1.0 - 1e-12))
        i = 0 if z < lf[1] else (len(lf) - 2 if z > lf[-2] else int(np.searchsorted(lf, z)) - 1)
        return float(raw[i] + (z - lf[i]) * (raw[i + 1] - raw[i]) / (lf[i + 1] - lf[i]))


class LinearDetector:
    """A :class:`LinearModel` as a detector: ``raw`` is the mean logit over colour planes,
    ``score`` its Platt calibration; FPR thresholds for ``scan`` from validation covers.
    Subclasses set ``name``, ``features`` and ``default_model``."""

    name = "linear"
    features: FeatureSet
    default_model = ""

    def __init__(self, model: str | Path | None = None) -> None:
        self.path = _resolve(model or self.default_model)
        self.model = LinearModel.load(self.path, self.features)
        self.calibration = self.model.calibration
        self._fpr_table = FPRThresholds(self.model.raw_thresholds, self.calibration)

    @property
    def thresholds(self) -> dict[float, float]:
        """{FPR: calibrated score threshold} at the FPRs measured on validation covers."""
        return self._fpr_table.thresholds

    def threshold_at_fpr(self, fpr: float) -> float:
        """Score threshold for a false-positive rate (see :class:`FPRThresholds`)."""
        return self._fpr_table.threshold_at_fpr(fpr)

    def logit_of_plane(self, x: np.ndarray) -> float:
        """The model's logit for one 2-D ``uint8`` plane (``nan`` if too small)."""
        f = self.features.extract(x)
        if not np.isfinite(f).all():
            return float("nan")
        return float(self.model.logits(f)[0])

    def detect(self, image: np.ndarray) -> DetectionResult:
        """Score ``image`` (H×W or H×W×C ``uint8``)."""
        planes = split_channels(image)
        if too_small(planes[0]):
            return DetectionResult.undecided()
        logits = [self.logit_of_plane(p) for p in planes]
        finite = [v for v in logits if math.isfinite(v)]
        raw = float(np.mean(finite)) if finite else float("nan")
        return DetectionResult(score=self.calibration(raw), payload_bpp=None, raw=raw,
                               channels=logits if len(planes) > 1 else None)

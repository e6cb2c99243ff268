"""Learned structural detector of LSB replacement (``structural``).

WS (Fridrich & Goljan 2004; Ker & Böhme 2008, see :mod:`.ws`) sums the parity-signed
prediction residual ``d_i (s_i - F(s)_i)`` with one fixed weight per pixel,
``1 / (5 + sigma_i^2)``, and compares the sum with one fixed threshold whatever the image.  On
the corpus the cover estimate varies with content (textured tiles reach +-0.25 bpp), which is
what limits its AUC at 0.1 bpp.  This detector keeps WS's per-pixel terms but lets a logistic
regression, trained on cover / LSB-replacement pairs, choose

* the weight of each local-variance bin (``sigma_i^2`` of the 8-neighbourhood, 11 bins),
* how much the parity correlation of neighbours (the term WS's bias correction estimates)
  counts in each bin, and
* a threshold that moves with the image's content (the share of pixels in each bin),

plus SPA's payload estimate (Dumitrescu, Wu & Wang 2003, :mod:`.spa`), whose errors are only
partly correlated with WS's.  The combination is ours; its features are those papers'.
Features are averages over the image, so any size works (trained on 128² and 256² tiles).

Weights ship as ``analysis/weights/structural/<name>.safetensors`` (float64 arrays, JSON
metadata: feature version, bin edges, Platt calibration, per-FPR thresholds measured on
validation covers) with a model card beside them; ``scripts/train_structural.py`` writes both.
Like every structural attack it targets LSB *replacement*; it is blind to ±1 embedding.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..base import Calibration, DetectionResult, split_channels
from .spa import spa_estimate
from .ws import _apply, _predict, _valid_run

__all__ = [
    "DEFAULT_STRUCTURAL",
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "STRUCTURAL_DIR",
    "VAR_EDGES",
    "StructuralLRDetector",
    "StructuralModel",
    "fit_logistic",
    "shipped_structural",
    "structural_features",
]

#: Bump when :func:`structural_features` changes meaning (models record it).
FEATURE_VERSION = 1
#: Bin edges of the local variance of the 8-neighbourhood (grey levels squared).
VAR_EDGES = (0.0, 0.5, 1.5, 3.0, 6.0, 12.0, 25.0, 50.0, 100.0, 200.0, 400.0)
_NB = len(VAR_EDGES)  # the last bin is open-ended
FEATURE_NAMES: tuple[str, ...] = (
    *(f"ws_num[{i}]" for i in range(_NB)),
    *(f"parity_corr[{i}]" for i in range(_NB)),
    *(f"share[{i}]" for i in range(_NB)),
    "spa",
)
#: Where the shipped models live.
STRUCTURAL_DIR = Path(__file__).resolve().parent.parent / "weights" / "structural"
DEFAULT_STRUCTURAL = "lsbr-lr"
_META_KEY = "stegshield"


def structural_features(x: np.ndarray) -> np.ndarray:
    """The feature vector (:data:`FEATURE_NAMES`) of a 2-D ``uint8`` plane; ``nan`` if the
    plane is smaller than 3×3.

    Per local-variance bin b, over the interior pixels i (``d_i = +1`` odd, ``-1`` even,
    ``F`` = Ker-Böhme predictor, N = interior pixels): ``2 Σ d_i (s_i - F(s)_i) / N`` (WS's
    numerator restricted to the bin), ``Σ d_i F(d)_i / N`` (neighbours' parity correlation)
    and the bin's share of pixels; then SPA's estimate (0 if undefined)."""
    xi = np.asarray(x)
    if xi.ndim != 2 or xi.dtype != np.uint8:
        raise ValueError("structural_features expects a 2-D uint8 plane")
    h, width = xi.shape
    if min(h, width) < 3:
        return np.full(len(FEATURE_NAMES), np.nan)
    sums = np.zeros((3, _NB))
    for r0 in range(1, h - 1, STRIP_ROWS):  # interior rows r0..r1-1, bounded memory
        r1 = min(h - 1, r0 + STRIP_ROWS)
        sums += _bin_sums(np.ascontiguousarray(xi[r0 - 1 : r1 + 1]))
    total = sums[2].sum()
    spa = spa_estimate(xi)
    return np.r_[sums[0] * (2.0 / total), sums[1] / total, sums[2] / total,
                 spa if math.isfinite(spa) else 0.0]


#: Rows per strip in :func:`structural_features` (about 40 bytes per pixel of the strip).
STRIP_ROWS = 512


def _bin_sums(xi: np.ndarray) -> np.ndarray:
    """Per variance bin: sums of ``d (s - F(s))``, of ``d F(d)`` and pixel counts over the
    interior of a 2-D ``uint8`` strip (3×NB)."""
    h, width = xi.shape
    flat = xi.reshape(-1)
    s = flat.astype(np.float32)
    pred, var = _predict(s, width, "kb")
    np.clip(pred, 0.0, 255.0, out=pred)
    n = pred.size
    d = (flat & 1).astype(np.float32)
    d *= 2.0
    d -= 1.0
    dc = d[width + 1 : width + 1 + n]
    valid = _valid_run(h, width) > 0
    resid = np.subtract(s[width + 1 : width + 1 + n], pred, out=pred)
    resid *= dc
    corr = _apply(d, width, "kb")
    corr *= dc
    bins = np.searchsorted(_EDGES32, var, side="right")
    bins, resid, corr = bins[valid], resid[valid], corr[valid]
    return np.stack([np.bincount(bins, weights=resid, minlength=_NB),
                     np.bincount(bins, weights=corr, minlength=_NB),
                     np.bincount(bins, minlength=_NB).astype(np.float64)])


_EDGES32 = np.asarray(VAR_EDGES[1:], dtype=np.float32)


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


@dataclass
class StructuralModel:
    """A fitted logistic model over :func:`structural_features` plus its calibration."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    calibration: Calibration = field(default_factory=lambda: Calibration(1.0, 0.0))
    raw_thresholds: dict[float, float] = field(default_factory=dict)
    """{FPR: logit threshold} measured on validation cover tiles (scan's per-FPR verdicts)."""
    meta: dict[str, Any] = field(default_factory=dict)

    def logits(self, F: np.ndarray) -> np.ndarray:
        """Logits of a (n, features) matrix (``nan`` rows stay ``nan``)."""
        F = np.atleast_2d(np.asarray(F, dtype=np.float64))
        return ((F - self.mean) / self.scale) @ self.coef + self.intercept

    def save(self, path: str | Path, meta: dict[str, Any] | None = None) -> None:
        """Write the model as safetensors (arrays) + JSON metadata."""
        from safetensors.numpy import save_file

        info = dict(self.meta, **(meta or {}))
        info.update({
            "kind": "structural-logistic", "feature_version": FEATURE_VERSION,
            "features": list(FEATURE_NAMES), "var_edges": list(VAR_EDGES),
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
    def load(cls, path: str | Path) -> StructuralModel:
        """Read a model written by :meth:`save` (refuses other feature versions)."""
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="numpy") as fh:
                meta = json.loads((fh.metadata() or {}).get(_META_KEY, "{}"))
                if meta.get("kind") != "structural-logistic" or \
                        not {"mean", "scale", "coef"} <= set(fh.keys()):
                    raise ValueError(f"{path}: not a structural detector model")
                if meta.get("feature_version") != FEATURE_VERSION or \
                        tuple(meta.get("var_edges", ())) != VAR_EDGES:
                    raise ValueError(f"{path}: made for another feature version "
                                     f"({meta.get('feature_version')}; this code: "
                                     f"{FEATURE_VERSION})")
                arrays = {k: fh.get_tensor(k) for k in ("mean", "scale", "coef")}
        except ValueError:
            raise
        except Exception as exc:  # safetensors' own error type, OSError
            raise ValueError(f"{path}: cannot read a structural model ({exc})") from exc
        if arrays["coef"].shape != (len(FEATURE_NAMES),):
            raise ValueError(f"{path}: expected {len(FEATURE_NAMES)} coefficients")
        cal = meta.get("calibration", {"a": 1.0, "b": 0.0})
        return cls(mean=arrays["mean"], scale=arrays["scale"], coef=arrays["coef"],
                   intercept=float(meta["intercept"]),
                   calibration=Calibration(float(cal["a"]), float(cal["b"])),
                   raw_thresholds={float(k): float(v)
                                   for k, v in meta.get("raw_thresholds", {}).items()},
                   meta=meta)


def shipped_structural() -> list[tuple[str, Path, dict[str, Any]]]:
    """(name, path, metadata) of every shipped structural model."""
    from safetensors import safe_open

    out = []
    for p in sorted(STRUCTURAL_DIR.glob("*.safetensors")):
        with safe_open(str(p), framework="numpy") as fh:
            meta = json.loads((fh.metadata() or {}).get(_META_KEY, "{}"))
        out.append((p.stem, p, meta))
    return out


def _resolve(model: str | Path) -> Path:
    p = Path(model)
    if p.suffix == ".safetensors" and p.exists():
        return p
    cand = STRUCTURAL_DIR / f"{model}.safetensors"
    if cand.exists():
        return cand
    shipped = ", ".join(sorted(q.stem for q in STRUCTURAL_DIR.glob("*.safetensors")))
    raise FileNotFoundError(f"no structural model {str(model)!r} (shipped: {shipped or 'none'})")


class StructuralLRDetector:
    """Learned structural detector of LSB replacement (see the module docstring).

    ``raw`` is the model's logit (the mean over colour planes, like the payload estimators);
    ``score`` its Platt calibration on validation pairs (covers against LSB replacement at
    0.05 and 0.1 bpp, half and half).  No payload estimate: use ``ws``/``spa`` for that."""

    name = "structural"

    def __init__(self, model: str | Path = DEFAULT_STRUCTURAL) -> None:
        self.path = _resolve(model)
        self.model = StructuralModel.load(self.path)
        self.calibration = self.model.calibration
        pts = sorted(self.model.raw_thresholds.items())
        self._fprs = [f for f, _ in pts]
        self._log_fpr = np.log(self._fprs)
        self._raw = np.array([t for _, t in pts])

    @property
    def thresholds(self) -> dict[float, float]:
        """{FPR: calibrated score threshold} at the FPRs measured on validation covers."""
        return {f: self.calibration(float(t)) for f, t in zip(self._fprs, self._raw, strict=True)}

    def threshold_at_fpr(self, fpr: float) -> float:
        """Score threshold for a false-positive rate ``fpr``: the validation covers' logit
        quantiles, linear in log-FPR between them and along the end segments beyond them (as
        the classical table is read), through the Platt map.  Without two points: the Platt
        map's own tail."""
        fpr = min(max(float(fpr), 1e-12), 1.0 - 1e-12)
        lf, raw = self._log_fpr, self._raw
        if len(lf) < 2:
            cal = self.calibration
            return cal((math.log((1.0 - fpr) / fpr) - cal.b) / max(cal.a, 1e-6))
        z = math.log(fpr)
        i = 0 if z < lf[1] else (len(lf) - 2 if z > lf[-2] else int(np.searchsorted(lf, z)) - 1)
        t = raw[i] + (z - lf[i]) * (raw[i + 1] - raw[i]) / (lf[i + 1] - lf[i])
        return self.calibration(float(t))

    def logit_of_plane(self, x: np.ndarray) -> float:
        """The model's logit for one 2-D ``uint8`` plane (``nan`` below 3×3)."""
        f = structural_features(x)
        if not np.isfinite(f).all():
            return float("nan")
        return float(self.model.logits(f)[0])

    def detect(self, image: np.ndarray) -> DetectionResult:
        """Score ``image`` (H×W or H×W×C ``uint8``)."""
        planes = split_channels(image)
        logits = [self.logit_of_plane(p) for p in planes]
        finite = [v for v in logits if math.isfinite(v)]
        raw = float(np.mean(finite)) if finite else float("nan")
        return DetectionResult(score=self.calibration(raw), payload_bpp=None, raw=raw,
                               channels=logits if len(planes) > 1 else None)

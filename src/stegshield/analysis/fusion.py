"""Tile-level fusion of a CNN with linear feature detectors (``fused``, ``fused-thorough``).

Every tile of the CNN's overlap-free tiling is scored by each member: the CNN's logit and the
logit of each linear detector (``spam``, ``srm``, ...) computed on the same pixels.  The tile's
fused score is the weighted sum of the members' logits, each standardised on validation cover
tiles (the sum rule of Kittler, Hatef, Duin & Matas, "On combining classifiers", TPAMI 20(3),
1998).  The weights are chosen on validation pairs of every algorithm of the test grid
(``scripts/train_fusion.py``); the fused tile scores get their own Platt calibration and
per-FPR thresholds from validation cover tiles, and the image's statistic is the largest tile
score shifted by ``-ln(n) / a`` with ``a`` the covers' tail slope
(:func:`.cnn.calibration.aggregate_max`, :func:`.cnn.calibration.tail_slope`), as the CNN's.
``scan`` thresholds that statistic with the Gumbel fit on whole validation photographs beside
the model (``<model>.photos.json``, :mod:`.photo_calibration`) when there is one.

The fusion is stored as a :class:`~.linear.LinearModel` over the members' logits (feature set
``fusion``: ``mean``/``scale`` = the validation covers' mean and spread, ``coef`` = weights) in
``analysis/weights/linear/``.  Its parameters name the members and the SHA-256 of their weight
files, so a fusion fitted on other weights (a retrained CNN) is refused with a one-line error
instead of giving uncalibrated scores.  Importing this module does not import torch; building
a detector does (the CNN member).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .base import DetectionResult, split_channels, too_small
from .cnn.calibration import max_tile_result, tail_slope
from .cnn.tiling import score_tiles
from .linear import (
    LINEAR_DIR,
    FeatureSet,
    FPRThresholds,
    LinearDetector,
    LinearModel,
    _resolve,
)
from .photo_calibration import file_digest, load_photo_calibration

__all__ = ["FUSED_MODELS", "MIN_TILE_SIDE", "FusedDetector", "fused_detector", "fusion_features",
           "linear_logits", "linear_member", "member_digest", "read_fusion_params",
           "shipped_fusions"]

FEATURE_VERSION = 1
#: Smallest tile side judged: the weights, calibration and thresholds come from 128² and 256²
#: tiles, and smaller tiles false-alarm more (7 % of 32² validation crops above the 1 %
#: threshold); images under 128 px on a side get no judgement from ``fused``.
MIN_TILE_SIDE = 128
#: Registry name -> the shipped fusion model it loads.
FUSED_MODELS = {"fused": "fused-light-gray", "fused-thorough": "fused-light-thorough"}


def linear_member(name: str, model: str | None = None) -> LinearDetector:
    """The linear detector ``name`` (``structural``, ``spam`` or ``srm``) on ``model``."""
    from .features import SPAMDetector, SRMDetector, SRMLSBMDetector
    from .structural.learned import StructuralLRDetector

    classes: dict[str, type[LinearDetector]] = {
        "structural": StructuralLRDetector, "spam": SPAMDetector, "srm": SRMDetector,
        "srm-lsbm": SRMLSBMDetector}
    if name not in classes:
        raise ValueError(f"unknown linear detector {name!r}; choose from {', '.join(classes)}")
    return classes[name](model)


def linear_logits(detectors: list[LinearDetector], tiles: np.ndarray) -> list[np.ndarray]:
    """Each linear detector's logit of every tile of a stack; members that share a feature set
    (e.g. two ``srm`` models) share one extraction per tile."""
    out = [np.full(len(tiles), np.nan) for _ in detectors]
    for i, t in enumerate(tiles):
        feats: dict[int, np.ndarray] = {}
        for j, det in enumerate(detectors):
            key = id(det.features)
            if key not in feats:
                feats[key] = det.features.extract(t)
            f = feats[key]
            if np.isfinite(f).all():
                out[j][i] = float(det.model.logits(f)[0])
    return out


def member_digest(path: str | Path) -> str:
    """First 16 hex digits of the SHA-256 of a member's weight file."""
    return file_digest(path)[:16]


def fusion_features(params: dict[str, Any]) -> FeatureSet:
    """The ``fusion`` feature set of a member list ``params`` (``cnn``: model name,
    ``linear``: [[detector, model], ...], ``digests``: {model: sha}).  Its ``extract`` scores
    one plane as a single tile; :class:`FusedDetector` batches the CNN instead."""
    names = (f"cnn:{params['cnn']}",
             *(f"{d}:{m}" for d, m in params["linear"]))

    def extract(x: np.ndarray) -> np.ndarray:
        raise NotImplementedError("fusion features come from FusedDetector.member_logits")

    return FeatureSet(name="fusion", version=FEATURE_VERSION, names=names, extract=extract,
                      params=params)


def read_fusion_params(path: str | Path) -> dict[str, Any]:
    """The member list stored in a fusion model file (raises ``ValueError`` if it is not
    one)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            meta = json.loads((fh.metadata() or {}).get("stegshield", "{}"))
    except Exception as exc:
        raise ValueError(f"{path}: cannot read a fusion model ({type(exc).__name__})") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: not a fusion model")
    params = meta.get("feature_params")
    if meta.get("kind") != "fusion-linear" or not isinstance(params, dict) or \
            not isinstance(params.get("cnn"), str) or not isinstance(params.get("linear"), list) \
            or not all(isinstance(e, list) and len(e) == 2 and all(isinstance(v, str) for v in e)
                       for e in params["linear"]):
        raise ValueError(f"{path}: not a fusion model")
    return params


class FusedDetector:
    """A CNN and linear detectors summed per tile (see the module docstring).  ``raw`` is the
    image statistic (largest fused tile score, size-corrected), ``score`` its calibration,
    ``tile_map`` the fused tile scores (max over colour planes)."""

    name = "fused"
    #: Images with a side under this get no judgement (the scanner says "too small").
    min_judged_side = MIN_TILE_SIDE

    def __init__(self, model: str | Path = "fused-light-gray",
                 photo_calibration: str | Path | bool | None = None, **cnn_kwargs: Any
                 ) -> None:
        """``photo_calibration``: a fit of this fusion's image statistic on other clean
        photographs (default: the one shipped beside the model; ``False``: none, the tile
        thresholds); ``cnn_kwargs`` go to the CNN member (whose own fit is never loaded:
        the fusion thresholds its own statistic)."""
        from .cnn.inference import CNNDetector, resolve_model

        self.path = _resolve(model)
        params = read_fusion_params(self.path)
        cnn_path = resolve_model(params["cnn"])
        self.linear = [linear_member(d, m) for d, m in params["linear"]]
        digests = {params["cnn"]: member_digest(cnn_path),
                   **{m: member_digest(det.path)
                      for (_, m), det in zip(params["linear"], self.linear, strict=True)}}
        stored = params.get("digests", {})
        changed = [m for m, d in digests.items() if stored.get(m) != d]
        if changed:
            raise ValueError(f"{self.path.name}: fitted on other weights of "
                             f"{', '.join(changed)}; refit it (scripts/train_fusion.py)")
        self.features = fusion_features(params)
        self.model = LinearModel.load(self.path, self.features)
        self.cnn = CNNDetector(cnn_path, **dict(cnn_kwargs, photo_calibration=False))
        self.tile = self.cnn.tile
        self.calibration = self.model.calibration
        self._thr = FPRThresholds(self.model.raw_thresholds, self.calibration)
        #: The covers' tail slope, for the image statistic's size correction.
        self.tail_slope = tail_slope(self.model.raw_thresholds, self.calibration.a)
        #: Thresholds of the image statistic measured on whole photographs (or ``None``).
        self.photo_calibration = load_photo_calibration(self.path, photo_calibration)

    @property
    def thresholds(self) -> dict[float, float]:
        """{FPR: calibrated score threshold of the image statistic} (see
        :meth:`threshold_at_fpr`)."""
        return {f: self.threshold_at_fpr(f) for f in self._thr.thresholds}

    def threshold_at_fpr(self, fpr: float) -> float:
        """Score threshold for a false-positive rate of the image statistic: the photograph
        calibration's Gumbel quantile if there is one
        (:mod:`~stegshield.analysis.photo_calibration`), else the validation tiles' (see
        :class:`~.linear.FPRThresholds`)."""
        if self.photo_calibration is not None:
            return self.calibration(self.photo_calibration.raw_at_fpr(fpr))
        return self._thr.threshold_at_fpr(fpr)

    def tile_raw_at_fpr(self, fpr: float) -> float:
        """Raw threshold for a false-positive rate of one validation cover tile."""
        return self._thr.raw_at_fpr(fpr)

    def member_logits(self, tiles: np.ndarray) -> np.ndarray:
        """(n, members) logits of a stack of same-shaped gray tiles: the CNN's first."""
        tiles = np.asarray(tiles)
        return np.stack([self.cnn.tile_logits(tiles), *linear_logits(self.linear, tiles)],
                        axis=1)

    def tile_scores(self, tiles: np.ndarray) -> np.ndarray:
        """Fused scores of a stack of same-shaped gray tiles (``nan`` where a member cannot
        judge a tile)."""
        return self.model.logits(self.member_logits(tiles))

    def plane_map(self, plane: np.ndarray) -> np.ndarray:
        """Fused score of every tile of one 2-D plane, shape ``(rows, cols)``."""
        return score_tiles(plane, self.tile, max(self.cnn.min_side, MIN_TILE_SIDE),
                           self.tile_scores)

    def detect(self, image: np.ndarray) -> DetectionResult:
        """Scan ``image`` (uint8 H×W or H×W×C) tile by tile, as the CNN does."""
        planes = split_channels(image)
        if too_small(planes[0]):
            return DetectionResult.undecided()
        maps = [self.plane_map(p) for p in planes]
        return max_tile_result(maps, self.tail_slope, self.calibration)


def fused_detector(name: str) -> Any:
    """A registry factory: :class:`FusedDetector` on ``FUSED_MODELS[name]`` (``model=``
    picks another file), reporting itself as ``name``."""

    def factory(**kwargs: Any) -> FusedDetector:
        det = FusedDetector(kwargs.pop("model", FUSED_MODELS[name]), **kwargs)
        det.name = name
        return det

    factory.__name__ = factory.__qualname__ = f"{name.replace('-', '_')}_detector"
    factory.__doc__ = f"FusedDetector on the shipped {FUSED_MODELS[name]!r}, named {name!r}."
    return factory


def shipped_fusions() -> list[str]:
    """Names of the shipped fusion models."""
    return sorted(p.stem for p in LINEAR_DIR.glob("fused-*.safetensors"))

"""Load shipped CNN detectors (safetensors only) and scan images of any size.

Colour policy: each colour plane (R, G, B; alpha ignored) is scanned as a gray image by the
gray-trained model and the image statistic takes the maximum over planes and tiles (with the
multiple-testing shift of :mod:`.calibration`); ``channels`` holds each plane's largest tile
logit.  Per-plane scanning keeps the ±1 stego signal intact, which a luminance conversion
(a weighted sum, rounded) would blur; it costs three scans per colour image.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn

from ...runtime import tune_malloc
from ..base import Calibration, DetectionResult, split_channels, too_small
from ..photo_calibration import load_photo_calibration
from .calibration import max_tile_result, tail_slope
from .model import build_model
from .tiling import score_tiles

__all__ = [
    "DEFAULT_MODEL",
    "WEIGHTS_DIR",
    "CNNDetector",
    "ModelInfo",
    "list_models",
    "load_model",
    "save_model",
    "tune_malloc",
]

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
DEFAULT_MODEL = "light-gray"
META_KEY = "stegshield"


def _storage(v: torch.Tensor, half: bool) -> torch.Tensor:
    v = v.detach().float().contiguous().cpu()
    if half and v.numel() and float(v.abs().max()) < 6e4:  # float16's range
        return v.half()
    return v


#: Models with more parameters than this are stored as float16 by default.
HALF_ABOVE = 1_000_000


def save_model(path: str | Path, model: nn.Module, meta: dict[str, Any],
               half: bool | None = None) -> None:
    """Write weights + JSON metadata (arch, config, calibration, ...) as one safetensors file.

    ``half=True`` stores the weights as float16 (half the size; loaded back as float32); the
    default does so for models above :data:`HALF_ABOVE` parameters (the pretrained
    EfficientNets), so the small CNNs stay float32."""
    if half is None:
        half = sum(p.numel() for p in model.parameters()) > HALF_ABOVE
    state = {k: _storage(v, half) for k, v in model.state_dict().items()
             if v.dtype.is_floating_point}
    tmp = Path(path).with_name(Path(path).name + ".tmp")  # atomic: a reader never sees half
    try:
        save_file(state, str(tmp), metadata={META_KEY: json.dumps(meta, sort_keys=True)})
        os.chmod(tmp, 0o644)  # safetensors writes 0600; shipped files must be world-readable
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def read_meta(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a model file (no tensors loaded)."""
    with safe_open(str(path), framework="pt") as fh:
        md = fh.metadata() or {}
    return json.loads(md.get(META_KEY, "{}"))


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model described by the file's metadata and load its weights (eval mode)."""
    meta = read_meta(path)
    model = build_model(meta.get("arch", "light"), **meta.get("config", {}))
    state: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as fh:
        for k in fh.keys():  # noqa: SIM118 (safe_open is not a dict)
            state[k] = fh.get_tensor(k).float()
    own = model.state_dict()
    for k, v in own.items():  # integer buffers (BN's num_batches_tracked) are not shipped
        if k not in state and not v.dtype.is_floating_point:
            state[k] = v
    model.load_state_dict(state)
    model.eval()
    return model, meta


@dataclass
class ModelInfo:
    """A shipped model file."""

    name: str
    path: Path
    size_bytes: int
    meta: dict[str, Any]


def resolve_model(model: str | Path) -> Path:
    """A shipped model name (``light-gray``), ``default``, or a path to a safetensors file."""
    if str(model) == "default":
        model = DEFAULT_MODEL
    p = Path(model)
    if p.suffix == ".safetensors" and p.exists():
        return p
    cand = WEIGHTS_DIR / f"{model}.safetensors"
    if cand.exists():
        return cand
    names = ", ".join(m.name for m in list_models()) or "none shipped"
    raise FileNotFoundError(f"no CNN model {str(model)!r} (shipped: {names})")


def list_models() -> list[ModelInfo]:
    """Models shipped in ``stegshield/analysis/weights``."""
    out = []
    for p in sorted(WEIGHTS_DIR.glob("*.safetensors")):
        out.append(ModelInfo(p.stem, p, p.stat().st_size, read_meta(p)))
    return out


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every BatchNorm that follows a convolution inside an ``nn.Sequential`` into that
    convolution (inference only; the model must be in eval mode).  One pass less per layer:
    the shipped CNNs ran 14 % faster on 2 cores, and in bfloat16 the logits moved closer to
    float32 (mean |Δ| 0.006 instead of 0.037 for light-thorough).  Returns the folds made."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    if model.training:
        raise ValueError("fold_batchnorm needs a model in eval mode")
    n = 0
    for mod in list(model.modules()):
        if not isinstance(mod, nn.Sequential):
            continue
        kids = list(mod._modules.items())
        for (ka, a), (kb, b) in itertools.pairwise(kids):
            if (isinstance(a, nn.Conv2d) and isinstance(b, nn.BatchNorm2d)
                    and b.track_running_stats and a.out_channels == b.num_features):
                mod._modules[ka] = fuse_conv_bn_eval(a, b)
                mod._modules[kb] = nn.Identity()
                n += 1
    return n


class _Runner:
    """Batched tile inference: BatchNorm folded, channels-last, optional bfloat16 body, frozen
    TorchScript."""

    def __init__(self, model: nn.Module, bf16: bool, jit: bool, device: str = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        fold_batchnorm(self.model)
        if (bf16 and hasattr(self.model, "set_body_dtype")
                and getattr(self.model, "bf16_inference", True)):
            self.model.set_body_dtype(torch.bfloat16)
        self.model = self.model.to(memory_format=torch.channels_last)
        self.jit = jit
        self._traced: dict[tuple[int, int], Any] = {}

    def _fn(self, shape: tuple[int, int], example: torch.Tensor) -> Any:
        if not self.jit:
            return self.model
        if shape not in self._traced:
            if self._traced:  # only the main tile shape is compiled; edge tiles run eagerly
                return self.model
            try:
                with warnings.catch_warnings(), torch.no_grad():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    tr = torch.jit.trace(self.model, example, check_trace=False)
                    tr = torch.jit.optimize_for_inference(torch.jit.freeze(tr.eval()))
                self._traced[shape] = tr
            except Exception:  # TorchScript is an optimisation only
                self.jit = False
                return self.model
        return self._traced[shape]

    @torch.no_grad()
    def __call__(self, tiles: np.ndarray, batch: int = 32) -> np.ndarray:
        """Logits of ``tiles`` (N, H, W) uint8/float, all the same shape."""
        out = []
        for i in range(0, len(tiles), batch):
            x = torch.from_numpy(np.ascontiguousarray(tiles[i:i + batch], dtype=np.float32))
            x = x.unsqueeze(1).to(self.device).contiguous(memory_format=torch.channels_last)
            fn = self._fn(tuple(tiles.shape[1:3]), x)
            out.append(fn(x).float().cpu().numpy().reshape(-1))
        return np.concatenate(out) if out else np.zeros(0, np.float32)


class CNNDetector:
    """Steganalysis CNN detector (:class:`stegshield.analysis.base.Detector`).

    ``detect`` tiles every plane without overlap (:func:`.tiling.tile_boxes`), scores each tile,
    and reports ``raw`` = the largest tile logit with the multiple-testing shift, ``score`` =
    calibrated probability, ``tile_map`` = per-tile logits (max over planes), shape
    ``(rows, cols)``.  ``thresholds[fpr]`` is the score threshold for that false-positive rate.

    ``jit=True`` runs a frozen TorchScript trace of the main tile shape; with torch 2.13 on the
    2-core CPU it is *slower* than eager channels-last bfloat16 (measured 195 vs 252 tiles/s of
    256² for the shipped model, 102 vs 128 for the previous one), so it is off by default.
    """

    name = "cnn"

    def __init__(self, model: str | Path = "default", *, tile: int | None = None,
                 bf16: bool = True, jit: bool = False, threads: int | None = None,
                 batch: int = 32, malloc_tune: bool = True, device: str = "cpu",
                 photo_calibration: str | Path | bool | None = None) -> None:
        self.path = resolve_model(model)
        net, self.meta = load_model(self.path)
        if threads:
            torch.set_num_threads(threads)
        if malloc_tune:
            tune_malloc()
        self.tile = int(tile or self.meta.get("tile", 256))
        self.min_side = int(self.meta.get("min_side", 16))
        self.batch = batch
        cal = self.meta.get("calibration", {"a": 1.0, "b": 0.0})
        self.calibration = Calibration(a=float(cal["a"]), b=float(cal["b"]))
        self.raw_thresholds: dict[str, float] = {
            k: float(v) for k, v in self.meta.get("thresholds", {}).items()}
        self.runner = _Runner(net, bf16=bf16, jit=jit, device=device)
        #: The covers' tail slope, for the image statistic's size correction.
        self.tail_slope = tail_slope(self.raw_thresholds, self.calibration.a)
        #: Thresholds of the image statistic measured on whole photographs (or ``None``):
        #: the file ``photo_calibration`` if given, else the one shipped beside the weights
        #: (``False``: none, the tile thresholds; for tools that measure or refit).
        self.photo_calibration = load_photo_calibration(self.path, photo_calibration)

    @property
    def thresholds(self) -> dict[str, float]:
        """Calibrated-score thresholds of the image statistic by target false-positive rate
        (keys ``"0.01"``, ...; see :meth:`threshold_at_fpr`)."""
        return {k: self.threshold_at_fpr(float(k)) for k in self.raw_thresholds}

    def threshold_at_fpr(self, fpr: float) -> float:
        """Score threshold for a false-positive rate ``fpr`` of the image statistic.

        With a photograph calibration (:mod:`stegshield.analysis.photo_calibration`; the one
        shipped beside the weights, fitted on whole clean validation photographs, or a fit on
        your own given as ``photo_calibration``): its Gumbel quantile.  Without one: the tile
        thresholds (:meth:`tile_raw_at_fpr`), which the size correction only roughly carries
        over to whole images."""
        if self.photo_calibration is not None:
            return self.calibration(self.photo_calibration.raw_at_fpr(fpr))
        return self.calibration(self.tile_raw_at_fpr(fpr))

    def tile_raw_at_fpr(self, fpr: float) -> float:
        """Raw-logit threshold for a false-positive rate ``fpr`` of one validation tile.

        The validation thresholds at 1 % and 5 % give the cover logits' upper tail; between and
        beyond them the raw threshold is taken linear in log-FPR (a logistic tail, the model the
        Platt fit and :func:`.calibration.aggregate_max` assume), so every FPR maps to its own
        threshold.  Without two finite points: the Platt map's own tail,
        ``raw = (logit(1 - fpr) - b) / a``.
        """
        fpr = min(max(float(fpr), 1e-12), 1.0 - 1e-12)
        pts = sorted((float(k), v) for k, v in self.raw_thresholds.items() if math.isfinite(v))
        if len(pts) >= 2 and pts[0][1] > pts[-1][1]:
            (f0, t0), (f1, t1) = pts[0], pts[-1]
            return t0 + (math.log(fpr) - math.log(f0)) * (t1 - t0) / (math.log(f1) - math.log(f0))
        cal = self.calibration
        return (math.log((1.0 - fpr) / fpr) - cal.b) / max(cal.a, 1e-6)

    def tile_logits(self, tiles: np.ndarray) -> np.ndarray:
        """Raw logits of a stack of same-shaped gray tiles (N, H, W)."""
        return self.runner(np.asarray(tiles), self.batch)

    def plane_map(self, plane: np.ndarray) -> np.ndarray:
        """Per-tile logits of one 2-D plane, shape ``(rows, cols)``."""
        return score_tiles(plane, self.tile, self.min_side, self.tile_logits)

    def detect(self, image: np.ndarray) -> DetectionResult:
        """Scan ``image`` (uint8 HxW or HxWxC) tile by tile."""
        planes = split_channels(image)
        if too_small(planes[0]):
            return DetectionResult.undecided()
        maps = [self.plane_map(p) for p in planes]
        return max_tile_result(maps, self.tail_slope, self.calibration)

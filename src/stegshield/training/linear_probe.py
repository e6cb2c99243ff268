"""Frozen ImageNet features + a linear classifier (recipe (a) of the pretrained detector).

The transfer "simple recipe": EfficientNet-Lite0 with its ImageNet weights untouched
(:class:`stegshield.analysis.pretrained.model.EffNetLite0`, ``frozen=True``), globally
average-pooled 1280-d features, and an L2-regularised logistic regression fitted on cover/stego
pairs of the training split (the regularisation chosen by validation AUC on held-out source
photos).  The fitted standardisation is folded into the model's linear head, so the result is an
ordinary stegshield model file (safetensors) that the tiled CNN inference path runs as is.

Backbone weights are rounded to float16 *before* features are extracted, exactly as they are
stored in the shipped file, and the model runs in float32 at scan time too
(``EffNetLite0.bf16_inference``), so the classifier sees the features the detector computes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..analysis.metrics import roc_auc
from .data import PairDataset, fixed_pairs, load_tiles

__all__ = ["ProbeConfig", "extract_features", "fit_logistic", "linear_probe"]


@dataclass
class ProbeConfig:
    """A linear-probe run (saved in the model metadata)."""

    covers: str = ".cache/corpus/gray"
    out: str = "out/train/effnet-frozen"
    tile: int = 256
    stem_stride: int = 2
    norm: str = "tf"
    algorithms: list[str] = field(
        default_factory=lambda: ["lsbr", "lsbm", "hill", "suniward", "wow", "hide", "seq-lsb"])
    rates: list[float] = field(default_factory=lambda: [0.4, 0.2])
    val_rates: list[float] | None = None
    """Payloads of the validation pairs that choose the ridge strength (None: ``rates``)."""
    stego_per_cover: int = 2
    l2_grid: list[float] = field(default_factory=lambda: [1e-4, 1e-3, 1e-2, 1e-1])
    seed: int = 1
    threads: int = 2
    limit: int | None = None
    progress: bool = True


@torch.no_grad()
def extract_features(model: torch.nn.Module, images: Sequence[np.ndarray], batch: int = 32,
                     progress: bool = False, desc: str = "features") -> np.ndarray:
    """``model.features`` of same-shaped gray images, as a float64 array (N, D)."""
    model.eval()
    rng: Any = range(0, len(images), batch)
    if progress:
        from tqdm import tqdm

        rng = tqdm(rng, desc=desc, unit="batch")
    out = []
    for i in rng:
        x = torch.from_numpy(np.stack(images[i:i + batch]).astype(np.float32)).unsqueeze(1)
        out.append(model.features(x.contiguous(memory_format=torch.channels_last)).numpy())
    return np.concatenate(out).astype(np.float64)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, iters: int = 200
                 ) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """L2-regularised logistic regression on standardised features (full-batch L-BFGS).

    Returns ``(w, b, mean, std)``: the decision function is ``((x - mean) / std) @ w + b``.
    """
    mean = x.mean(0)
    std = x.std(0) + 1e-6
    xt = torch.from_numpy((x - mean) / std)
    yt = torch.from_numpy(y.astype(np.float64))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=iters, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        z = xt @ w + b
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, yt) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), float(b.detach()), mean, std


def _pairs(cfg: ProbeConfig, split: str) -> tuple[list[np.ndarray], list[np.ndarray]]:
    tiles = load_tiles(cfg.covers, split, cfg.tile, cfg.limit)
    if split == "val":
        pairs = fixed_pairs(tiles, cfg.algorithms, cfg.val_rates or cfg.rates, cfg.seed + 1000,
                            crop=None)
        return [p[0] for p in pairs], [p[1] for p in pairs]
    ds = PairDataset(tiles, cfg.algorithms, cfg.rates, cfg.seed, crop=None, augment=False)
    covers = list(tiles.images)
    stego = [ds[(k, i)][1] for k in range(cfg.stego_per_cover) for i in range(len(tiles))]
    return covers, stego


def linear_probe(cfg: ProbeConfig) -> dict[str, Any]:
    """Fit the probe and write ``OUT/best.safetensors`` (uncalibrated; see the train command)."""
    from ..analysis.cnn.inference import save_model
    from ..analysis.pretrained.model import EffNetLite0

    torch.set_num_threads(max(1, cfg.threads))
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    model = EffNetLite0(stem_stride=cfg.stem_stride, frozen=True, norm=cfg.norm)
    model.load_imagenet()
    with torch.no_grad():  # the precision the shipped file stores (float16)
        for p in model.body.parameters():
            p.copy_(p.half().float())
    model = model.to(memory_format=torch.channels_last).eval()
    feats: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in ("train", "val"):
        c, s = _pairs(cfg, split)
        f = extract_features(model, c + s, progress=cfg.progress, desc=f"{split} features")
        feats[split] = (f, np.r_[np.zeros(len(c)), np.ones(len(s))])
    (xtr, ytr), (xva, yva) = feats["train"], feats["val"]
    weights = np.r_[np.full(int((ytr == 0).sum()), cfg.stego_per_cover), np.ones(int(ytr.sum()))]
    # balance classes: each cover appears once, its stego stego_per_cover times
    xtr_b = np.r_[np.repeat(xtr[ytr == 0], cfg.stego_per_cover, axis=0), xtr[ytr == 1]]
    ytr_b = np.r_[np.zeros(int(weights[ytr == 0].sum())), np.ones(int(ytr.sum()))]
    grid = []
    best: tuple[float, float, Any] = (-1.0, 0.0, None)
    for l2 in cfg.l2_grid:
        w, b, mean, std = fit_logistic(xtr_b, ytr_b, l2)
        auc_tr = roc_auc(ytr_b, ((xtr_b - mean) / std) @ w + b)
        auc_va = roc_auc(yva, ((xva - mean) / std) @ w + b)
        grid.append({"l2": l2, "train_auc": round(auc_tr, 4), "val_auc": round(auc_va, 4)})
        print(f"l2={l2:g} train AUC {auc_tr:.4f} val AUC {auc_va:.4f}", flush=True)
        if auc_va > best[0]:
            best = (auc_va, l2, (w, b, mean, std))
    w, b, mean, std = best[2]
    with torch.no_grad():  # fold the standardisation into the head
        model.head.weight.copy_(torch.from_numpy(w / std).float().unsqueeze(0))
        model.head.bias.fill_(float(b - np.sum(w * mean / std)))
    info = {"val_auc": best[0], "l2": best[1], "grid": grid, "train_pairs": int(ytr.sum()),
            "train_covers": int((ytr == 0).sum()), "seconds": round(time.time() - t0, 1)}
    save_model(out / "best.safetensors", model,
               {"arch": "effnet-lite0", "config": {"stem_stride": cfg.stem_stride,
                                                  "frozen": True, "norm": cfg.norm},
                "probe": info, "train": asdict(cfg)}, half=True)
    return info

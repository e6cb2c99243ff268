"""Test-split AUC and speed of several model files side by side (uncalibrated tile logits).

    python scripts/eval_models.py light-gray=light-gray gpu-fast=out/train/gpu-fast/best.safetensors
    python scripts/eval_models.py --split val light-gray=light-gray gpu-fast=...  # to choose

Uses the cached 256² test pairs and the ``evaluate`` and ``speed`` functions of
``scripts/train.py`` (shipped inference path; speed: best of three passes over 256 tiles), all
models in one run.  For trained-but-uncalibrated candidates; shipped models are compared by
``make compare``.  ``--split val`` scores the validation set the trainer selects on (256² tiles,
a stego of every algorithm at 0.4 / 0.2 bpp per tile, CPU embedders, photo weights power 0.5):
choose between candidates there, and report the test split.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))


def main() -> None:
    import torch
    from train import GRID, evaluate, speed, test_pairs

    from stegshield.analysis.cnn.inference import CNNDetector

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", metavar="LABEL=MODEL",
                    help="A shipped model name or a .safetensors path.")
    ap.add_argument("--corpus", default=str(ROOT / ".cache/corpus/gray"))
    ap.add_argument("--cache", default=str(ROOT / "out/train/light-fast/eval-cache"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--split", choices=["test", "val"], default="test")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.split == "val":
        validation_table(args.models, Path(args.corpus), Path(args.cache))
        return
    covers, stego = test_pairs(Path(args.corpus), 256, 78, None, Path(args.cache))
    table = {}
    for spec in args.models:
        label, _, name = spec.partition("=")
        det = CNNDetector(name or label)  # uncalibrated files work: AUC needs only the logits
        table[label] = (evaluate(det, covers, stego), speed(det, covers, [])["cnn"])
    print("| row | " + " | ".join(table) + " |")
    print("|---|" + "---|" * len(table))
    for alg, rate, _ in GRID:
        key = f"{alg}@{rate:g}"
        print(f"| {key} | " + " | ".join(f"{m[key]['auc']:.3f}" for m, _ in table.values()) + " |")
    print("| tiles/s | " + " | ".join(f"{s:.0f}" for _, s in table.values()) + " |")


def validation_table(specs: list[str], corpus: Path, cache: Path) -> None:
    """The trainer's validation statistic (weighted AUC, overall and per algorithm) of each
    model on one validation set, cached in ``cache``."""
    import hashlib
    import json

    import numpy as np

    from stegshield.analysis.cnn.inference import resolve_model
    from stegshield.training.train import TrainConfig, _validation_set, validation_auc

    cfg = TrainConfig(covers=str(corpus), val_tile=256, crop=256, seed=3)
    # the set depends on the corpus and on every validation setting: all name the cache file
    key = json.dumps([(corpus / "manifest.jsonl").read_text(), cfg.algorithms, cfg.val_rates,
                      cfg.val_every_algorithm, cfg.val_group_balance, cfg.seed, cfg.crop])
    f = cache / f"val_set_256_{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    if f.exists():
        z = np.load(f)
        val = (list(z["x"]), z["y"], z["alg"], z["w"])
    else:
        val = _validation_set(cfg, None)
        cache.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(f, x=np.stack(val[0]), y=val[1], alg=val[2], w=val[3])
    labels = [s.partition("=")[0] for s in specs]
    paths = [resolve_model(s.partition("=")[2] or s) for s in specs]
    rows = dict(zip(labels, validation_auc(paths, cfg, val), strict=True))
    print("| validation | " + " | ".join(rows) + " |")
    print("|---|" + "---|" * len(rows))
    for key in ["all", *cfg.algorithms]:
        print(f"| {key} | " + " | ".join(f"{r[key]:.4f}" for r in rows.values()) + " |")


if __name__ == "__main__":
    main()

"""Test-split AUC and speed of several model files side by side (uncalibrated tile logits).

    python scripts/eval_models.py light-gray=light-gray gpu-fast=out/train/gpu-fast/best.safetensors

Uses the cached 256² test pairs and the ``evaluate`` and ``speed`` functions of
``scripts/train.py`` (shipped inference path; speed: best of three passes over 256 tiles), all
models in one run.  For trained-but-uncalibrated candidates; shipped models are compared by
``make compare``.
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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
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


if __name__ == "__main__":
    main()

"""Test-split AUC and speed of several model files side by side (uncalibrated tile logits).

    python scripts/eval_models.py light-gray=light-gray gpu-fast=out/train/gpu-fast/best.safetensors

Uses the cached 256² test pairs of ``scripts/train.py`` (``--cache``; made there if missing) and
the shipped inference path (channels-last, bf16 body, eager), all models in one run.  For
trained-but-uncalibrated candidates; shipped models are compared by ``make compare``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))


def main() -> None:
    import torch
    from train import GRID, test_pairs

    from stegshield.analysis.cnn.inference import _Runner, load_model, resolve_model
    from stegshield.analysis.metrics import roc_auc
    from stegshield.runtime import tune_malloc

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", metavar="LABEL=MODEL",
                    help="A shipped model name or a .safetensors path.")
    ap.add_argument("--corpus", default=str(ROOT / ".cache/corpus/gray"))
    ap.add_argument("--cache", default=str(ROOT / "out/train/light-fast/eval-cache"))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    tune_malloc()
    torch.set_num_threads(args.threads)
    covers, stego = test_pairs(Path(args.corpus), 256, 78, None, Path(args.cache))
    table: dict[str, tuple[dict[str, float], float]] = {}
    for spec in args.models:
        label, _, name = spec.partition("=")
        net, _ = load_model(resolve_model(name or label))
        run = _Runner(net, bf16=True, jit=False)
        run(covers[:8])  # warm-up
        t = time.perf_counter()
        lc = run(covers)
        speed = len(covers) / (time.perf_counter() - t)
        aucs = {}
        for alg, rate, _ in GRID:
            ls = run(stego[(alg, rate)])
            aucs[f"{alg} {rate:g}"] = roc_auc(np.r_[np.zeros(len(lc)), np.ones(len(ls))],
                                              np.r_[lc, ls])
        table[label] = (aucs, speed)
    print("| row | " + " | ".join(table) + " |")
    print("|---|" + "---|" * len(table))
    for key in next(iter(table.values()))[0]:
        print(f"| {key} | " + " | ".join(f"{a[key]:.3f}" for a, _ in table.values()) + " |")
    print("| tiles/s | " + " | ".join(f"{s:.0f}" for _, s in table.values()) + " |")


if __name__ == "__main__":
    main()

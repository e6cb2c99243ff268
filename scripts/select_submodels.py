"""Greedy forward selection of SRM-lite submodels against LSB matching, on validation tiles.

    python scripts/select_submodels.py

Features of all ten submodels (Fridrich & Kodovský 2012; ``analysis/features/srm.py``) of the
train split's cover tiles (128² and 256²) and one LSB-matching stego per cover at 0.1, 0.2 and
0.4 bpp, and of the validation split's (the feature cache of ``scripts/train_linear.py``,
computed if missing).  Starting from none, each step adds the submodel whose ridge logistic
regression (l2 1e-4, the full model's choice) has the highest mean validation AUC over the
three rates.  The rule that picked a subset, fixed before looking at the test split: the
shortest prefix within 0.005 of the best prefix's validation AUC (a smaller feature set is
faster to scan with).  It picked four submodels, which tied the ten on validation tiles but
caught fewer whole validation photographs at low rates, so ``srm-lsbm`` keeps all ten
(docs/DESIGN.md, "Fewer submodels ...").  The test split is not read.
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

from stegshield.analysis.features.srm import SRM_FEATURES, SUBMODELS  # noqa: E402
from stegshield.analysis.linear import LinearModel, fit_logistic  # noqa: E402
from stegshield.analysis.metrics import roc_auc  # noqa: E402

TOLERANCE = 0.005
L2 = 1e-4


def submodel_columns(submodels: list[str]) -> np.ndarray:
    """Columns of the SRM-lite features that belong to ``submodels`` (each submodel is
    normalised on its own, so these columns are exactly the subset's features)."""
    sizes = [len([n for n in SRM_FEATURES.names if n.startswith(f"{m}[")]) for m in SUBMODELS]
    starts = np.r_[0, np.cumsum(sizes)]
    return np.concatenate([np.arange(starts[k], starts[k + 1])
                           for k, m in enumerate(SUBMODELS) if m in submodels])


def greedy(train: dict[str, np.ndarray], val: dict[str, np.ndarray], keys: list[str],
           n256: int) -> list[tuple[str, float, list[float], list[float]]]:
    """Greedy forward selection: (added submodel, mean val AUC, AUC per rate, AUC per rate
    on the ``n256`` 256² validation tiles, which come last) per step."""
    nc = len(train["cover"])
    X = np.concatenate([train["cover"]] + [train[k] for k in keys])
    y = np.r_[np.zeros(nc), np.ones(nc * len(keys))]
    w = np.r_[np.full(nc, float(len(keys))), np.ones(nc * len(keys))]

    def score(ms: list[str]) -> tuple[float, list[float], list[float]]:
        cols = submodel_columns(ms)
        model = LinearModel(*fit_logistic(X[:, cols], y, l2=L2, sample_weight=w))
        vc = model.logits(val["cover"][:, cols])
        nv = len(vc)
        aucs, a256 = [], []
        for k in keys:
            vs = model.logits(val[k][:, cols])
            aucs.append(roc_auc(np.r_[np.zeros(nv), np.ones(nv)], np.r_[vc, vs]))
            a256.append(roc_auc(np.r_[np.zeros(n256), np.ones(n256)],
                                np.r_[vc[nv - n256:], vs[nv - n256:]]))
        return float(np.mean(aucs)), aucs, a256

    chosen: list[str] = []
    steps = []
    while len(chosen) < len(SUBMODELS):
        res = {m: score([*chosen, m]) for m in SUBMODELS if m not in chosen}
        best = max(res, key=lambda m: res[m][0])
        chosen.append(best)
        steps.append((best, *res[best]))
        print(f"{len(chosen)} + {best}: {res[best][0]:.4f}", flush=True)
    return steps


def main() -> None:
    from train_linear import JOBS, split_features

    from stegshield.training.data import load_tiles

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / ".cache/corpus/gray"))
    ap.add_argument("--out", default=str(ROOT / "out/linear"))
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    t0 = time.perf_counter()
    job = JOBS["srm-lsbm"]  # the ten submodels; subsets are column slices
    corpus, cache = Path(args.corpus), Path(args.out) / "feat-cache"
    train = split_features(job, corpus, "train", args.seed, cache)
    val = split_features(job, corpus, "val", args.seed + 1, cache)
    keys = [k for k in train if k != "cover"]
    n256 = len(load_tiles(corpus, "val", 256).images)
    steps = greedy(train, val, keys, n256)
    best = max(s[1] for s in steps)
    pick = next(i for i, s in enumerate(steps) if s[1] >= best - TOLERANCE)
    chosen = [s[0] for s in steps[: pick + 1]]
    print(f"{time.perf_counter() - t0:.0f} s; the rule (within {TOLERANCE} of the best mean "
          f"validation AUC, shortest prefix) picks {', '.join(chosen)}")
    for i, (m, mu, a, a256) in enumerate(steps):
        rates, tiles256 = (" / ".join(f"{v:.3f}" for v in vs) for vs in (a, a256))
        print(f"{i + 1:2d} + {m:15s} mean {mu:.4f}  0.1/0.2/0.4 bpp {rates}  "
              f"(256² only {tiles256})")


if __name__ == "__main__":
    main()

"""How per-tile cover thresholds transfer to photographs of an unseen source (validation only).

    python scripts/threshold_transfer.py cnn=light-gray cnn-thorough=light-thorough \
        fused=fused-light-gray fused-thorough=fused-light-thorough

The shipped 1 % / 5 % thresholds are quantiles of validation cover-tile scores.  A scan's
estimated false-positive rate holds for covers like those; this measures how far it moves on
another source.  For every package of the validation split, the thresholds are set again on
the validation covers of the *other* packages (leave one package out) and applied to that
package's covers.  Printed per detector and tile size: the false-positive rate pooled over
every held-out tile, the mean over packages, and the worst package, for quantiles with every
tile equal (as shipped) and with every photograph equal.  The test split is not touched.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from stegshield.training.data import group_weights, load_tiles  # noqa: E402

FPRS = (0.01, 0.05)


def weighted_quantile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """The smallest value whose weighted cumulative share reaches ``q``."""
    order = np.argsort(values)
    cum = np.cumsum(weights[order]) / weights.sum()
    return float(values[order][min(np.searchsorted(cum, q), len(values) - 1)])


def transfer(scores: np.ndarray, packages: np.ndarray, weights: np.ndarray, fpr: float
             ) -> tuple[float, float, float, str]:
    """Pooled, per-package mean and worst false-positive rate of leave-one-package-out
    thresholds at ``fpr``, and the worst package."""
    rates, sizes, names = [], [], []
    for p in np.unique(packages):
        held = packages == p
        t = weighted_quantile(scores[~held], weights[~held], 1.0 - fpr)
        rates.append(float((scores[held] >= t).mean()))
        sizes.append(int(held.sum()))
        names.append(str(p))
    r, n = np.array(rates), np.array(sizes)
    return float((r * n).sum() / n.sum()), float(r.mean()), float(r.max()), names[int(r.argmax())]


def scorer(name: str):  # a callable on a stack of tiles
    if name.startswith("fused"):
        from stegshield.analysis.fusion import FusedDetector

        return FusedDetector(name).tile_scores
    from stegshield.analysis.cnn.inference import CNNDetector

    return CNNDetector(name).tile_logits


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="+", metavar="LABEL=MODEL",
                    help="A shipped CNN or fusion model (fused-* names are fusions).")
    ap.add_argument("--corpus", default=str(ROOT / ".cache/corpus/gray"))
    args = ap.parse_args()
    tiles = {t: load_tiles(Path(args.corpus), "val", t) for t in (256, 128)}
    print("| detector | tiles | quantile | FPR at 1 %: pooled / package mean / worst | "
          "FPR at 5 %: pooled / package mean / worst |")
    print("|---|---|---|---|---|")
    for spec in args.models:
        label, _, name = spec.partition("=")
        score = scorer(name or label)
        for t, ts in tiles.items():
            s = np.asarray(score(np.stack(ts.images)), np.float64)
            packages = np.array([r["package"] for r in ts.rows])
            for power, how in ((0.0, "every tile equal (shipped)"), (1.0, "every photo equal")):
                w = group_weights(ts.rows, power)
                w = np.ones(len(s)) if w is None else w
                cells = []
                for f in FPRS:
                    pooled, mean, worst, who = transfer(s, packages, w, f)
                    cells.append(f"{pooled:.3f} / {mean:.3f} / {worst:.3f} ({who})")
                print(f"| {label} | {len(s)} of {t}², {len(set(packages))} packages | {how} | "
                      + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

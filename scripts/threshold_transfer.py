"""How per-tile cover thresholds transfer to photographs of an unseen source (validation only).

    python scripts/threshold_transfer.py cnn=light-gray cnn-thorough=light-thorough \
        fused=fused-light-gray fused-thorough=fused-light-thorough

The shipped 1 % / 5 % thresholds are quantiles of validation cover-tile scores.  A scan's
estimated false-positive rate holds for covers like those; this measures how far it moves on
another source.  For every package of the validation split, the thresholds are set again on
the validation covers of the *other* packages (leave one package out) and applied to that
package's covers.  Printed per detector and tile size: the false-positive rate pooled over
every held-out tile, the mean over packages (small packages pull it down: a "1 %" threshold
rarely fires on a package of 1-4 tiles), the worst package, and the tiles per package; for
thresholds that flag at most the target share of tiles (the CNNs' rule; the fusions ship
quantiles of 128² and 256² tiles pooled) and of photographs (each photo's tiles weigh 1 in
all).  Held-out rates are per tile either way.  The test split is not touched.
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


def threshold_at_most(values: np.ndarray, weights: np.ndarray, fpr: float) -> float:
    """The lowest threshold (``score >= t`` alerts) that flags at most ``fpr`` of the weight
    of ``values`` (as the CNNs' shipped thresholds: at most the target on validation);
    ``+inf`` when even the highest value carries more."""
    order = np.argsort(values)[::-1]
    share = np.cumsum(weights[order]) / weights.sum()
    ok = np.nonzero(share <= fpr + 1e-12)[0]
    return float(values[order][ok[-1]]) if ok.size else float("inf")


def transfer(scores: np.ndarray, packages: np.ndarray, weights: np.ndarray, fpr: float
             ) -> tuple[float, float, float, str]:
    """Pooled (every held-out tile), per-package mean and worst false-positive rate of
    leave-one-package-out thresholds at ``fpr``, and the worst package (nan with fewer than
    two packages)."""
    names = [str(p) for p in np.unique(packages)]
    if len(names) < 2:
        return float("nan"), float("nan"), float("nan"), ""
    rates, sizes = [], []
    for p in names:
        held = packages == p
        t = threshold_at_most(scores[~held], weights[~held], fpr)
        rates.append(float((scores[held] >= t).mean()))
        sizes.append(int(held.sum()))
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
            sizes = " ".join(str(int((packages == p).sum())) for p in np.unique(packages))
            for power, how in ((0.0, "every tile equal"), (1.0, "every photo equal")):
                w = group_weights(ts.rows, power)
                w = np.ones(len(s)) if w is None else w
                cells = []
                for f in FPRS:
                    pooled, mean, worst, who = transfer(s, packages, w, f)
                    cells.append(f"{pooled:.3f} / {mean:.3f} / {worst:.3f} ({who})")
                print(f"| {label} | {len(s)} of {t}², packages of {sizes} tiles | {how} | "
                      + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()

"""Per-source-package view of a CNN's tile logits: where does detection fail?

    python scripts/diagnose_packages.py [--split test] [--model light-thorough]
        [--pairs out/train/light-fast/eval-cache/test_pairs_256_s78_lNone.npz] [--rows lsbm@0.4,...]

For each (algorithm, rate) row: the pooled AUC, then per source package the tile count, the mean
cover and stego logits, how often a stego scores above its own cover ("paired win"), and a
noise level (std of the horizontal second difference).  A paired-win rate far above the AUC
means the detector sees the change but cover scores vary more between images than the stego
shifts them.  Without ``--pairs`` the stego is LSBM 0.4 made here.  Diagnosis only: choosing
models or settings by what it shows on the test split would be tuning on the test split.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np

from stegshield.analysis.cnn.inference import CNNDetector
from stegshield.analysis.metrics import roc_auc
from stegshield.training.data import embed, load_tiles


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=".cache/corpus/gray")
    ap.add_argument("--split", default="test")
    ap.add_argument("--tile", type=int, default=256)
    ap.add_argument("--model", default="light-thorough")
    ap.add_argument("--pairs", default=None, help="npz from scripts/train.py's eval cache")
    ap.add_argument("--rows", default=None,
                    help="with --pairs: rows of the npz (default lsbm@0.4,lsbm@0.1,suniward@0.4)")
    args = ap.parse_args()
    if args.rows and not args.pairs:
        ap.error("--rows needs --pairs (without it the stego is LSBM 0.4 made here)")
    ts = load_tiles(args.corpus, args.split, args.tile)
    if args.pairs:
        z = np.load(args.pairs)
        covers = z["covers"]
        if len(covers) != len(ts):
            raise SystemExit(f"{args.pairs}: {len(covers)} covers, the split has {len(ts)}")
        stego = {k: z[k] for k in (args.rows or "lsbm@0.4,lsbm@0.1,suniward@0.4").split(",")}
    else:
        covers = np.stack(ts.images)
        stego = {"lsbm@0.4": np.stack([embed(x, "lsbm", 0.4, np.random.default_rng([9, i]))
                                       for i, x in enumerate(ts.images)])}
    det = CNNDetector(args.model)
    c = det.tile_logits(covers)
    by: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(ts.rows):
        by[str(r.get("package", "?"))].append(i)
    noise = np.array([np.std(np.diff(x.astype(np.float64), 2, axis=1)) for x in covers])
    for key, s in stego.items():
        st = det.tile_logits(s)
        y = np.r_[np.zeros(len(c)), np.ones(len(st))]
        print(f"\n{key}: AUC {roc_auc(y, np.r_[c, st]):.3f}, paired win "
              f"{np.mean(st > c):.2f}  ({args.model}, {args.split}, {len(c)} tiles)")
        print(f"{'package':34s} {'tiles':>5s} {'cover':>7s} {'stego':>7s} {'win':>5s} "
              f"{'noise':>6s}")
        for pkg, idx in sorted(by.items(), key=lambda t: -len(t[1])):
            ix = np.array(idx)
            print(f"{pkg[:34]:34s} {len(ix):5d} {c[ix].mean():7.2f} {st[ix].mean():7.2f} "
                  f"{np.mean(st[ix] > c[ix]):5.2f} {noise[ix].mean():6.1f}")


if __name__ == "__main__":
    main()

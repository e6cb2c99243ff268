"""Fit, calibrate, evaluate and ship a tile-level fusion of a CNN with linear detectors.

``scripts/train_fusion.py --name fused-light-gray --cnn light-gray --linear spam`` (run by
``make train-linear`` after the linear detectors).  Data (gray corpus, split by source
photograph): the members' logits on validation pairs of every algorithm and rate of the test
grid (128² and 256² tiles, the cache of ``scripts/train_linear.py``) give the standardisation
(validation cover tiles), the weights (mean AUC over the grid, CNN weight 1), the Platt
calibration and the per-FPR thresholds; the test split (the cached pairs of
``scripts/train.py``) is used only for the reported numbers, every member and the fusion side
by side in the same run.  Writes ``src/stegshield/analysis/weights/linear/NAME.safetensors`` +
``NAME.md`` and the section ``## Fused detector: NAME`` of BENCHMARKS.md with ``--ship`` (else
``OUT/NAME*``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from stegshield.analysis.cnn.calibration import fit_calibration  # noqa: E402
from stegshield.analysis.fusion import (  # noqa: E402
    FusedDetector,
    fusion_features,
    linear_logits,
    linear_member,
    member_digest,
)
from stegshield.analysis.linear import LINEAR_DIR, LinearModel  # noqa: E402
from stegshield.analysis.metrics import roc_auc, tpr_at_fpr  # noqa: E402
from stegshield.analysis.photo_calibration import drop_stale  # noqa: E402
from stegshield.reporting import machine_description, replace_section  # noqa: E402

ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0)
THRESHOLD_FPRS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
HEADLINES = ("lsbm@0.4", "lsbm@0.2", "lsbm@0.1", "hill@0.4", "suniward@0.4", "wow@0.4")


def _auc(c: np.ndarray, s: np.ndarray) -> dict[str, float]:
    y = np.r_[np.zeros(len(c)), np.ones(len(s))]
    z = np.r_[c, s]
    return {"auc": roc_auc(y, z), "tpr1": tpr_at_fpr(y, z, 0.01), "tpr5": tpr_at_fpr(y, z, 0.05)}


class Members:
    """The CNN and the linear members; their logits per stack of tiles, cached per member
    (name and weights' digest) and stack tag in ``cache``."""

    def __init__(self, cnn: Any, linear: list[Any], ids: list[str], cache: Path) -> None:
        self.cnn, self.linear, self.ids, self.cache = cnn, linear, ids, cache

    def logits(self, tag: str, tiles: np.ndarray) -> np.ndarray:
        """(n, members) logits: the CNN's, then each linear detector's, per tile."""
        files = [self.cache / f"{i}_{tag}.npy" for i in self.ids]
        cols: list[np.ndarray | None] = [np.load(f) if f.exists() else None for f in files]
        if cols[0] is None:
            cols[0] = self.cnn.tile_logits(tiles)
        todo = [j for j in range(1, len(cols)) if cols[j] is None]
        for j, v in zip(todo, linear_logits([self.linear[j - 1] for j in todo], tiles),
                        strict=True):
            cols[j] = v
        self.cache.mkdir(parents=True, exist_ok=True)
        for f, c in zip(files, cols, strict=True):
            if not f.exists():
                np.save(f, c)
        return np.stack(cols, axis=1)


def main() -> None:
    from train import GRID, test_pairs
    from train_linear import val_pairs

    from stegshield.analysis.cnn.inference import CNNDetector, resolve_model

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--name", required=True, help="Model name, e.g. fused-light-gray.")
    ap.add_argument("--cnn", required=True, help="Shipped CNN model (e.g. light-gray).")
    ap.add_argument("--linear", action="append", required=True,
                    help="Linear member as DETECTOR or DETECTOR:MODEL (repeatable).")
    ap.add_argument("--corpus", default=str(ROOT / ".cache/corpus/gray"))
    ap.add_argument("--cache", default=str(ROOT / "out/train/light-fast/eval-cache"),
                    help="Cached test pairs of scripts/train.py (made if missing).")
    ap.add_argument("--val-cache", default=str(ROOT / "out/linear/val-cache"))
    ap.add_argument("--ship", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "out/linear"))
    ap.add_argument("--benchmarks", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args()
    corpus, out = Path(args.corpus), Path(args.out)
    if not (corpus / "manifest.jsonl").exists():
        sys.exit(f"{corpus}: no manifest.jsonl (build it with `stegshield dataset covers`)")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    cnn = CNNDetector(args.cnn)
    specs = [s.split(":", 1) if ":" in s else [s, None] for s in args.linear]
    linear = [linear_member(d, m) for d, m in specs]
    pairs = [[d, lin.path.stem] for (d, _), lin in zip(specs, linear, strict=True)]
    names = [f"cnn {args.cnn}", *(f"{d} ({m})" for d, m in pairs)]
    digests = {args.cnn: member_digest(resolve_model(args.cnn)),
               **{m: member_digest(lin.path) for (_, m), lin in zip(pairs, linear, strict=True)}}
    import hashlib  # the cache key names the corpus and the pair caches too

    where = hashlib.sha256(json.dumps([str(corpus.resolve()), str(Path(args.cache).resolve()),
                                       str(Path(args.val_cache).resolve())]).encode())
    ids = [f"{m}-{digests[m]}-{where.hexdigest()[:8]}"
           for m in [args.cnn, *(m for _, m in pairs)]]
    members = Members(cnn, linear, ids, out / "logit-cache")

    # validation: member logits on covers and every grid row, 128² and 256²
    vkeys = [f"{a}@{r:g}" for a, r, _ in GRID]
    val: dict[int, dict[str, np.ndarray]] = {}
    for tile in (128, 256):
        vp = val_pairs(corpus, tile, 18, Path(args.val_cache))
        val[tile] = {k: members.logits(f"val{tile}-s18-{k}", vp[k])
                     for k in tqdm(["covers", *vkeys], desc=f"val {tile} logits", leave=False)}
    vc = np.concatenate([val[t]["covers"] for t in val])
    if not all(np.isfinite(v).all() for t in val for v in val[t].values()):
        sys.exit("a member gave no score to some validation tile (nan); check its model")
    mean, scale = vc.mean(axis=0), vc.std(axis=0)

    def fused(L: np.ndarray, w: np.ndarray) -> np.ndarray:
        return ((L - mean) / scale) @ w

    grid = [np.array([1.0, *a]) for a in itertools.product(ALPHAS, repeat=len(linear))]
    mean_auc = {tuple(w[1:]): float(np.mean([
        _auc(fused(val[t]["covers"], w), fused(val[t][k], w))["auc"]
        for t in val for k in vkeys])) for w in grid}
    best = max(mean_auc, key=lambda a: (mean_auc[a], -sum(a)))
    # each member's validation AUC per row (256²): the CNN's are optimistic (early stopping)
    val_auc = {nm: {k: _auc(val[256]["covers"][:, j], val[256][k][:, j])["auc"] for k in vkeys}
               for j, nm in enumerate(names)}
    w = np.array([1.0, *best])
    print(f"weights {w.tolist()}: validation mean AUC {mean_auc[best]:.4f} (CNN alone "
          f"{mean_auc[(0.0,) * len(linear)]:.4f})", flush=True)
    keep = [0] + [j for j in range(1, len(w)) if w[j] > 0]  # weight 0: not computed at all
    kept = [pairs[j - 1] for j in keep[1:]]
    params = {"cnn": args.cnn, "linear": kept,
              "digests": {m: digests[m] for m in [args.cnn, *(m for _, m in kept)]}}

    # calibration (covers against the grid's rows in turn) and thresholds, validation
    fc = fused(vc, w)
    n = len(fc)
    fs = np.concatenate([np.choose(np.arange(len(val[t]["covers"])) % len(vkeys),
                                   [fused(val[t][k], w) for k in vkeys]) for t in val])
    model = LinearModel(mean=mean[keep], scale=scale[keep], coef=w[keep], intercept=0.0)
    model.calibration = fit_calibration(np.r_[fc, fs], np.r_[np.zeros(n), np.ones(n)])
    model.raw_thresholds = {f: float(np.quantile(fc, 1.0 - f)) for f in THRESHOLD_FPRS}

    # test: every member and the fusion, same pairs, same run
    results: dict[str, dict[str, dict[str, float]]] = {}
    fpr_test: dict[str, dict[str, float]] = {}
    for tile in (256, 128):
        covers, stego = test_pairs(corpus, tile, 78, None, Path(args.cache))
        lc = members.logits(f"test{tile}-s78-covers", covers)
        for a, r, _ in tqdm(GRID, desc=f"test {tile}", leave=False):
            ls = members.logits(f"test{tile}-s78-{a}@{r:g}", stego[(a, r)])
            for j, nm in enumerate(names):
                results.setdefault(nm, {})[f"{a}@{r:g} {tile}"] = _auc(lc[:, j], ls[:, j])
            results.setdefault(args.name, {})[f"{a}@{r:g} {tile}"] = _auc(
                fused(lc, w), fused(ls, w))
        fpr_test[str(tile)] = {f"{f:g}": float((fused(lc, w) >= model.raw_thresholds[f])
                                               .mean()) for f in (0.01, 0.05)}
        if tile == 256:
            mosaic = np.vstack([np.hstack(list(covers[i * 8:(i + 1) * 8])) for i in range(8)])

    info = {
        "name": args.name, "date": dt.date.today().isoformat(),
        "command": "scripts/train_fusion.py --name " + args.name + f" --cnn {args.cnn} "
                   + " ".join(f"--linear {s}" for s in args.linear),
        "members": [names[j] for j in keep], "weights": w[keep].tolist(),
        "weights_of_all_candidates": dict(zip(names, w.tolist(), strict=True)),
        "validation_mean_auc": {",".join(f"{x:g}" for x in k): v for k, v in mean_auc.items()},
        "validation_auc_256": val_auc,
        "counts": {"val_cover_tiles": n},
        "test_metrics": {k: v["auc"] for k, v in results[args.name].items()},
        "test_fpr_of_thresholds": fpr_test,
    }
    model.meta = info
    path = out / f"{args.name}.safetensors"
    model.save(path, fusion_features(params))

    # speed: one 2048² image (64 tiles of 256²), the CNN alone and the fusion, same run
    det = FusedDetector(path)
    speed: dict[str, float] = {}
    for nm, fn in ((f"cnn {args.cnn}", cnn.detect), (args.name, det.detect)):
        fn(mosaic)
        best_t = min(_timed(fn, mosaic) for _ in range(3))
        speed[nm] = 64 / best_t

    card = model_card(info, results, speed)
    (out / f"{args.name}.md").write_text(card)
    (out / f"{args.name}.json").write_text(json.dumps(
        {"results": results, "speed": speed, **info}, indent=2))
    text = report(info, results, speed, time.perf_counter() - t0)
    if args.ship:
        model.save(LINEAR_DIR / f"{args.name}.safetensors", fusion_features(params))
        (LINEAR_DIR / f"{args.name}.md").write_text(card)
        if drop_stale(LINEAR_DIR / f"{args.name}.safetensors"):
            print(f"removed the photograph calibration of the old {args.name}: refit it with "
                  "python scripts/calibrate_photos.py --write --bench")
        replace_section(Path(args.benchmarks), f"## Fused detector: {args.name}", text)
    else:
        (out / f"{args.name}-report.md").write_text(text)
    print(text)


def _timed(fn: Callable[[np.ndarray], Any], x: np.ndarray) -> float:
    t = time.perf_counter()
    fn(x)
    return time.perf_counter() - t


def _table(results: dict[str, dict], tile: int) -> list[str]:
    from train import GRID

    names = list(results)
    lines = ["| algorithm @ bpp | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for a, r, goal in GRID:
        cells = [f"{results[n][f'{a}@{r:g} {tile}']['auc']:.3f}" for n in names]
        lines.append(f"| {a}@{r:g} {goal} | " + " | ".join(cells) + " |")
    return lines


def _dropped(info: dict) -> str:
    """Candidates whose chosen weight was 0 (left out of the model, never computed)."""
    zero = [n for n, v in info["weights_of_all_candidates"].items() if v == 0]
    return f"(candidates given weight 0 and left out: {', '.join(zero)}) " if zero else ""


def report(info: dict, results: dict, speed: dict[str, float], secs: float) -> str:
    """The BENCHMARKS.md section."""
    name = info["name"]
    head = ", ".join(f"{k} **{results[name][f'{k} 256']['auc']:.3f}**" for k in HEADLINES)
    lines = [
        f"## Fused detector: {name}", "",
        f"Written by `{info['command']}`, {info['date']}, {machine_description()}; "
        f"{secs / 60:.1f} min in all.  Each 256² tile's score is the weighted sum of its "
        "members' logits, each standardised on validation cover tiles (`analysis/fusion.py`); "
        f"weights {info['weights']} ({', '.join(info['members'])}) "
        + _dropped(info) + "chosen by the mean AUC over every row of the grid on validation "
        "pairs (128² and 256²; the CNN was early-stopped on the same validation split, which "
        "can flatter it: the last table gives its validation AUC, to compare with the test "
        "tables above); Platt "
        "calibration and per-FPR thresholds from the same validation tiles. "
        "Test split (source photos unseen), the cached pairs of `make train`, one stego per "
        "cover; every member and the fusion in the same run.", "",
        f"256² test tiles, fusion: {head}.", "",
        "256² test tiles (AUC):", "", *_table(results, 256), "",
        "128² test tiles (AUC):", "", *_table(results, 128), "",
        "256² validation tiles (AUC of each member; the weights were chosen on these and the "
        "128² ones):", "",
        *_table({nm: {f"{k} 256": {"auc": v} for k, v in rows.items()}
                 for nm, rows in info["validation_auc_256"].items()}, 256), "",
        "Measured FPR of the per-FPR tile thresholds (set on validation cover tiles; scan uses "
        "the photograph fit, <model>.photos.json, where there is one) on the "
        f"test covers: {info['test_fpr_of_thresholds']}.", "",
        "Speed, tiles of 256² per second, `detect` on one 2048² image (64 tiles), same run: "
        + ", ".join(f"{k} {v:.0f}" for k, v in speed.items()) + ".",
    ]
    return "\n".join(lines) + "\n"


def model_card(info: dict, results: dict, speed: dict[str, float]) -> str:
    """The model card shipped beside the fusion model."""
    name = info["name"]
    lines = [
        f"# Model card: `{name}` (tile-level fusion)", "",
        f"Members: {', '.join(info['members'])}; weights {info['weights']} on their logits, "
        "each standardised on validation cover tiles (`stegshield.analysis.fusion`).  The "
        "file stores the SHA-256 of every member's weights and refuses other weights.", "",
        "* **Data**: gray corpus (`stegshield dataset covers`), split by source photograph; "
        f"validation pairs of every algorithm of the grid ({info['counts']['val_cover_tiles']} "
        "cover tiles, 128² and 256²) for the weights, the Platt calibration and the per-FPR "
        "thresholds; the members were trained on the train split.  Never trained on "
        "mate-backgrounds, ukui-wallpapers, lomiri-wallpapers-*.",
        f"* **Command**: `{info['command']}`, {info['date']}.",
        "* **Test metrics** (AUC, test split, source photos unseen, one stego per cover, 256² "
        "tiles):", "", *_table(results, 256), "",
        f"* **FPR of the thresholds on test covers**: {info['test_fpr_of_thresholds']}.",
        "* **Speed** (256² tiles/s, one 2048² image): "
        + ", ".join(f"{k} {v:.0f}" for k, v in speed.items()) + ".",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

"""`make train-structural`: fit, calibrate, evaluate and ship the learned structural detector.

Data (gray corpus, split by source photograph): the logistic model is fitted on the train
split's tiles (128² and 256²), each cover against LSB replacement at 0.05 and 0.1 bpp; the ridge
strength is chosen and the Platt calibration and per-FPR thresholds are fitted on the validation
split; the test split (the cached pairs of ``scripts/train.py``, one stego per cover and
algorithm) is used only for the reported numbers, side by side with WS, SPA and the classical
group's statistic (min of the two) in the same run.  Writes
``src/stegshield/analysis/weights/structural/NAME.safetensors`` + ``NAME.md`` (with
``--ship``) and the ``## Learned structural detector`` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from stegshield.analysis.base import Calibration  # noqa: E402
from stegshield.analysis.metrics import roc_auc, tpr_at_fpr  # noqa: E402
from stegshield.analysis.structural import spa_estimate, ws_estimate  # noqa: E402
from stegshield.analysis.structural.learned import (  # noqa: E402
    FEATURE_NAMES,
    STRUCTURAL_DIR,
    StructuralLRDetector,
    StructuralModel,
    fit_logistic,
    structural_features,
)
from stegshield.reporting import machine_description, replace_section  # noqa: E402
from stegshield.training.data import embed, load_tiles  # noqa: E402

SECTION = "## Learned structural detector"
RATES = (0.05, 0.1)
L2_GRID = (1e-5, 1e-4, 1e-3, 1e-2)
THRESHOLD_FPRS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


def _features(images: list[np.ndarray], desc: str) -> np.ndarray:
    return np.array([structural_features(x) for x in tqdm(images, desc=desc, leave=False,
                                                           mininterval=5)])


def split_features(corpus: Path, split: str, seed: int) -> dict[str, np.ndarray]:
    """Features of every cover tile (128² and 256²) of ``split`` and of one LSB-replacement
    stego per cover and rate (seeded per tile)."""
    out: dict[str, list[np.ndarray]] = {"cover": [], **{f"lsbr@{r:g}": [] for r in RATES}}
    for tile in (128, 256):
        ts = load_tiles(corpus, split, tile)
        out["cover"].append(_features(ts.images, f"{split} {tile} covers"))
        for r in RATES:
            st = [embed(x, "lsbr", r, np.random.default_rng([seed, tile, round(r * 1000), i]),
                        None) for i, x in enumerate(ts.images)]
            out[f"lsbr@{r:g}"].append(_features(st, f"{split} {tile} lsbr {r:g}"))
    return {k: np.concatenate(v) for k, v in out.items()}


def _xy(feats: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    X = np.concatenate([feats["cover"]] + [feats[f"lsbr@{r:g}"] for r in RATES])
    y = np.r_[np.zeros(len(feats["cover"])), np.ones(len(X) - len(feats["cover"]))]
    return X, y


def _val_auc(model: StructuralModel, val: dict[str, np.ndarray]) -> float:
    c = model.logits(val["cover"])
    aucs = []
    for r in RATES:
        s = model.logits(val[f"lsbr@{r:g}"])
        aucs.append(roc_auc(np.r_[np.zeros(len(c)), np.ones(len(s))], np.r_[c, s]))
    return float(np.mean(aucs))


def _auc_row(c: np.ndarray, s: np.ndarray) -> dict[str, float]:
    y = np.r_[np.zeros(len(c)), np.ones(len(s))]
    z = np.r_[c, s]
    return {"auc": roc_auc(y, z), "tpr1": tpr_at_fpr(y, z, 0.01), "tpr5": tpr_at_fpr(y, z, 0.05)}


def main() -> None:
    from train import GRID, test_pairs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / ".cache/corpus/gray"))
    ap.add_argument("--cache", default=str(ROOT / "out/train/light-fast/eval-cache"),
                    help="Cached test pairs of scripts/train.py (made if missing).")
    ap.add_argument("--name", default="lsbr-lr")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--ship", action="store_true",
                    help="Write the model into the package (else only OUT and the report).")
    ap.add_argument("--out", default=str(ROOT / "out/structural"))
    ap.add_argument("--benchmarks", default=str(ROOT / "BENCHMARKS.md"))
    args = ap.parse_args()
    corpus, out = Path(args.corpus), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    print("features: train", flush=True)
    train = split_features(corpus, "train", args.seed)
    print("features: val", flush=True)
    val = split_features(corpus, "val", args.seed + 1)
    Xtr, ytr = _xy(train)
    fits = {}
    for l2 in L2_GRID:
        mean, scale, coef, icpt = fit_logistic(Xtr, ytr, l2=l2)
        m = StructuralModel(mean, scale, coef, icpt)
        fits[l2] = (m, _val_auc(m, val))
        print(f"  l2 {l2:g}: validation AUC {fits[l2][1]:.4f}", flush=True)
    l2 = max(L2_GRID, key=lambda k: (fits[k][1], k))  # ties: the stronger ridge
    model = fits[l2][0]

    # calibration on validation: covers against stego, the rates half and half
    vc = model.logits(val["cover"])
    n = len(vc)
    vs = np.where(np.arange(n) % 2 == 0, model.logits(val[f"lsbr@{RATES[0]:g}"]),
                  model.logits(val[f"lsbr@{RATES[1]:g}"]))
    model.calibration = Calibration.fit(np.r_[vc, vs], np.r_[np.zeros(n), np.ones(n)])
    model.raw_thresholds = {f: float(np.quantile(vc, 1.0 - f)) for f in THRESHOLD_FPRS}

    # test: the cached pairs of scripts/train.py, every row, side by side
    keys = [(a, r) for a, r, _ in GRID]
    stats = {
        "structural": lambda x: float(model.logits(structural_features(x))[0]),
        "ws": lambda x: ws_estimate(x),
        "spa": lambda x: spa_estimate(x),
        "classical min(ws, spa)": lambda x: min(ws_estimate(x), spa_estimate(x)),
    }
    results: dict[str, dict] = {}
    fpr_test: dict[str, dict[str, float]] = {}
    for tile in (256, 128):
        covers, stego = test_pairs(corpus, tile, 1 + 77, None, Path(args.cache))
        for name, fn in stats.items():
            c = np.array([fn(x) for x in covers])
            row = results.setdefault(name, {})
            for k in keys:
                s = np.array([fn(x) for x in tqdm(stego[k], desc=f"test {tile} {name} {k}",
                                                   leave=False, mininterval=5)])
                row[f"{k[0]}@{k[1]:g} {tile}"] = _auc_row(c, s)
            if name == "structural":
                fpr_test[str(tile)] = {f"{f:g}": float((c >= model.raw_thresholds[f]).mean())
                                       for f in (0.01, 0.05)}
        if tile == 256:
            speed_tiles = covers[:64]

    # speed, same tiles, same process, one detect per tile (as the classical group runs)
    from stegshield.analysis import get_detector
    from stegshield.scan.suite import build_suite

    det_path = out / f"{args.name}.safetensors"
    model.save(det_path, {"name": args.name, "l2": l2})
    speed: dict[str, float] = {}
    timed = {"structural": StructuralLRDetector(det_path).detect,
             "ws": get_detector("ws").detect, "spa": get_detector("spa").detect,
             "classical group (WS+SPA)": build_suite("classical").analyse}
    for name, fn in timed.items():
        fn(speed_tiles[0])
        best = 0.0
        for _ in range(3):
            t = time.perf_counter()
            for x in speed_tiles:
                fn(x)
            best = max(best, len(speed_tiles) / (time.perf_counter() - t))
        speed[name] = best

    date = dt.date.today().isoformat()
    command = "make train-structural"
    info = {
        "name": args.name, "date": date, "command": command, "l2": l2,
        "validation_auc": {f"{k:g}": v[1] for k, v in fits.items()},
        "counts": {"train_tiles": len(train["cover"]), "val_tiles": len(val["cover"])},
        "rates": list(RATES), "seed": args.seed,
        "test_metrics": {k: v["auc"] for k, v in results["structural"].items()},
        "test_fpr_of_thresholds": fpr_test,
    }
    model.meta = info
    model.save(det_path, info)
    (out / "results.json").write_text(json.dumps(
        {"results": results, "speed": speed, **info}, indent=2))
    card = model_card(args.name, info, results, speed, l2)
    (out / f"{args.name}.md").write_text(card)
    if args.ship:
        STRUCTURAL_DIR.mkdir(parents=True, exist_ok=True)
        model.save(STRUCTURAL_DIR / f"{args.name}.safetensors", info)
        (STRUCTURAL_DIR / f"{args.name}.md").write_text(card)
    replace_section(Path(args.benchmarks), SECTION,
                    report(info, results, speed, time.perf_counter() - t0))
    print(json.dumps({"l2": l2, "speed": speed,
                      "lsbr@0.1 256": results["structural"]["lsbr@0.1 256"]}, indent=2))


def _table(results: dict[str, dict], tile: int, rows: list[str]) -> list[str]:
    names = list(results)
    lines = ["| algorithm @ bpp | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for r in rows:
        cells = [f"{results[n][f'{r} {tile}']['auc']:.3f}" for n in names]
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    return lines


_ROWS = ["lsbr@0.1", "lsbr@0.2", "seq-lsb@0.1", "lsbm@0.4", "lsbm@0.1", "hill@0.4",
         "suniward@0.4", "hide@0.2"]


def report(info: dict, results: dict[str, dict], speed: dict[str, float], secs: float) -> str:
    """The BENCHMARKS.md section."""
    s = results["structural"]["lsbr@0.1 256"]
    lines = [
        SECTION, "",
        f"Written by `{info['command']}` (scripts/train_structural.py), {info['date']}, "
        f"{machine_description()}; {secs / 60:.1f} min in all.  Logistic regression over "
        f"WS's per-pixel terms binned by local variance, their neighbours' parity "
        f"correlation, the bins' shares and SPA's estimate ({len(FEATURE_NAMES)} features, "
        f"`analysis/structural/learned.py`), fitted on {info['counts']['train_tiles']} train "
        f"cover tiles (128² and 256²) against LSB replacement at 0.05 and 0.1 bpp; ridge "
        f"{info['l2']:g} chosen on {info['counts']['val_tiles']} validation tiles "
        f"(validation AUC per ridge: {info['validation_auc']}).  Test split (source photos "
        "unseen), the cached pairs of `make train` / `make compare`, one stego per cover; "
        "AUC of each statistic, all in the same run.", "",
        f"LSB replacement 0.1 bpp on 256² tiles: AUC **{s['auc']:.3f}** (goal ≥ 0.99), "
        f"TPR {s['tpr1']:.2f} at 1 % FPR, {s['tpr5']:.2f} at 5 %.", "",
        "256² test tiles:", "", *_table(results, 256, _ROWS), "",
        "128² test tiles:", "", *_table(results, 128, _ROWS), "",
        "Measured FPR of the shipped per-FPR thresholds (set on validation cover tiles) on the "
        f"test covers: {info['test_fpr_of_thresholds']}.", "",
        "Speed, tiles of 256² per second, one `detect` per tile, same 64 tiles, same run: "
        + ", ".join(f"{k} {v:.0f}" for k, v in speed.items()) + ".",
    ]
    return "\n".join(lines) + "\n"


def model_card(name: str, info: dict, results: dict[str, dict], speed: dict[str, float],
               l2: float) -> str:
    """The model card shipped beside the weights."""
    lines = [
        f"# Model card: `{name}` (`--detector structural`)", "",
        "Learned structural detector of LSB replacement: a ridge logistic regression over",
        f"{len(FEATURE_NAMES)} features of one image plane (`stegshield.analysis.structural."
        "learned`): WS's parity-signed",
        "prediction residuals (Ker-Böhme predictor) summed per local-variance bin, the",
        "neighbours' parity correlation per bin, the bins' shares of pixels, and SPA's payload",
        "estimate.  Blind to ±1 embedding, like every structural attack.", "",
        f"* **Data**: gray corpus (`stegshield dataset covers`), split by source photograph. "
        f"Fit: {info['counts']['train_tiles']} train tiles (128² and 256²), each cover and "
        f"one LSB-replacement stego at {', '.join(f'{r:g}' for r in RATES)} bpp (seed "
        f"{info['seed']}).  Validation ({info['counts']['val_tiles']} tiles): ridge choice "
        f"({l2:g}), Platt calibration (covers against the two rates half and half) and the "
        "per-FPR score thresholds (quantiles of validation cover tiles, per tile).  Never "
        "trained on mate-backgrounds, ukui-wallpapers, lomiri-wallpapers-*.",
        f"* **Command**: `{info['command']}` (scripts/train_structural.py), {info['date']}.",
        "* **Test metrics** (AUC, test split, source photos unseen, one stego per cover):", "",
        *_table({"structural": results["structural"],
                 "classical min(ws, spa)": results["classical min(ws, spa)"]}, 256, _ROWS),
        "",
        f"* **FPR of the thresholds on test covers**: {info['test_fpr_of_thresholds']}.",
        f"* **Speed** (256² tiles/s, one run): {speed['structural']:.0f} (WS alone "
        f"{speed['ws']:.0f}).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

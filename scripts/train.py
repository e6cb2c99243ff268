"""`make train`: train the default CNN detector, calibrate, evaluate, ship, benchmark.

Steps (each resumable / skippable):
1. build the gray cover corpus if missing (``stegshield dataset covers``);
2. train (``stegshield.training.train``; resumes from OUT/checkpoint.safetensors);
3. calibrate on the validation split and write the shipped detector
   ``src/stegshield/analysis/weights/<name>.safetensors`` + its model card;
4. evaluate on the test split (source photographs unseen in training and validation) for every
   algorithm and rate of the issue's goals, with the shipped inference path (bf16, eager);
5. measure tiles/s of the CNN and of the classical detectors in one run;
6. write the ``## CNN detectors`` section of BENCHMARKS.md (replacing it, keeping the rest).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from stegshield.analysis.metrics import p_e, roc_auc, tpr_at_fpr  # noqa: E402
from stegshield.reporting import replace_section  # noqa: E402
from stegshield.training.data import PairDataset, embed, load_tiles  # noqa: E402

GRID: list[tuple[str, float, str]] = [  # (algorithm, rate, goal)
    ("lsbr", 0.1, "AUC ≥ 0.99"), ("lsbr", 0.2, ""),
    ("lsbm", 0.4, "≥ 0.97"), ("lsbm", 0.2, "≥ 0.93"), ("lsbm", 0.1, "≥ 0.85"),
    ("hill", 0.4, "≥ 0.85"), ("hill", 0.2, "≥ 0.75"),
    ("suniward", 0.4, "≥ 0.85"), ("suniward", 0.2, "≥ 0.75"),
    ("wow", 0.4, "≥ 0.85"), ("wow", 0.2, "≥ 0.75"),
    ("hide", 0.2, "report"), ("seq-lsb", 0.1, ""),
]
SECTION = "## CNN detectors"


def _rel(p: Path) -> str:
    return os.path.relpath(p.resolve(), ROOT)


def _sh(cmd: list[str]) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def test_pairs(corpus: Path, tile: int, seed: int, limit: int | None, cache: Path | None = None
               ) -> tuple[np.ndarray, dict[tuple[str, float], np.ndarray]]:
    """Covers of the test split and one stego per cover for every (algorithm, rate)
    (cached in ``cache`` as npz, keyed by tile, seed and limit)."""
    if cache is not None:
        f = cache / f"test_pairs_{tile}_s{seed}_l{limit}.npz"
        if f.exists():
            z = np.load(f)
            return z["covers"], {(a, r): z[f"{a}@{r:g}"] for a, r, _ in GRID}
    covers, stego = _make_test_pairs(corpus, tile, seed, limit)
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(f, covers=covers, **{f"{a}@{r:g}": v for (a, r), v in stego.items()})
    return covers, stego


def _make_test_pairs(corpus: Path, tile: int, seed: int, limit: int | None
                     ) -> tuple[np.ndarray, dict[tuple[str, float], np.ndarray]]:
    ts = load_tiles(corpus, "test", tile, limit)
    ds = PairDataset(ts, [a for a, _, _ in GRID], [0.4], seed=seed, crop=None, augment=False)
    covers = np.stack(ts.images)
    stego: dict[tuple[str, float], np.ndarray] = {}
    for gi, (alg, rate, _) in enumerate(GRID):
        out = []
        for i, x in enumerate(ts.images):
            rng = np.random.default_rng([seed, 5000 + gi, i])
            costs = ds.costs(i, alg) if alg in ("hill", "suniward", "wow") else None
            out.append(embed(x, alg, rate, rng, costs))
        stego[(alg, rate)] = np.stack(out)
        print(f"  test {tile}: {alg} {rate} done", flush=True)
    return covers, stego


def evaluate(det: object, covers: np.ndarray, stego: dict) -> dict[str, dict[str, float]]:
    """AUC, P_E and TPR at 1 % / 5 % FPR of the tile logits per (algorithm, rate)."""
    c = det.tile_logits(covers)  # type: ignore[attr-defined]
    res = {}
    for (alg, rate), s in stego.items():
        st = det.tile_logits(s)  # type: ignore[attr-defined]
        y = np.r_[np.zeros(len(c)), np.ones(len(st))]
        z = np.r_[c, st]
        res[f"{alg}@{rate:g}"] = {"auc": roc_auc(y, z), "pe": p_e(y, z),
                                  "tpr1": tpr_at_fpr(y, z, 0.01), "tpr5": tpr_at_fpr(y, z, 0.05)}
    return res


def speed(det: object, tiles: np.ndarray, classical: list[str], reps: int = 3
          ) -> dict[str, float]:
    """Tiles of 256² per second: CNN batched (the detector's ``tile_logits``), classical
    detectors one ``detect`` per tile, same tiles, same process."""
    from stegshield.analysis import get_detector
    from stegshield.analysis.cnn.inference import CNNDetector

    out: dict[str, float] = {}
    batch = np.concatenate([tiles] * max(1, 256 // len(tiles) + 1))[:256]
    # a fresh detector: the runner compiles (TorchScript) only the first tile shape it sees,
    # and the evaluation before this fed it 128² tiles first
    det = CNNDetector(det.path)  # type: ignore[attr-defined]
    det.tile_logits(batch[:32])  # warm-up / compile
    best = 0.0
    for _ in range(reps):
        t = time.perf_counter()
        det.tile_logits(batch)
        best = max(best, len(batch) / (time.perf_counter() - t))
    out["cnn"] = best
    for name in classical:
        d = get_detector(name)
        sub = tiles[:32]
        d.detect(sub[0])
        t = time.perf_counter()
        for x in sub:
            d.detect(x)
        out[name] = len(sub) / (time.perf_counter() - t)
    return out


def classical_auc(covers: np.ndarray, stego: dict, names: list[str]
                  ) -> dict[str, dict[str, float]]:
    """AUC of the classical detectors' ``raw`` statistic on the same pairs."""
    from stegshield.analysis import get_detector

    res: dict[str, dict[str, float]] = {}
    for name in names:
        d = get_detector(name)

        def raw(x: np.ndarray, d: object = d) -> float:
            r = d.detect(x).raw  # type: ignore[attr-defined]
            return float(r) if np.isfinite(r) else -1e9

        c = np.array([raw(x) for x in covers])
        res[name] = {}
        for (alg, rate), s in stego.items():
            st = np.array([raw(x) for x in s])
            y = np.r_[np.zeros(len(c)), np.ones(len(st))]
            res[name][f"{alg}@{rate:g}"] = roc_auc(y, np.r_[c, st])
    return res


def _goal_met(goal: str, auc: float) -> str:
    if goal.startswith(("AUC ≥", "≥")):
        return "yes" if auc >= float(goal.split("≥")[1]) else "**no**"
    return ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / ".cache/corpus/gray"))
    ap.add_argument("--out", default=str(ROOT / "out/train/light-fast"))
    ap.add_argument("--name", default="light-gray")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--rates", default="0.4,0.2,0.1")
    ap.add_argument("--stage-epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--arch", default="light")
    ap.add_argument("--arch-config", default='{"stem_pool": true}',
                    help="Architecture options (JSON); the default is the fast early-pooled "
                         "light design.")
    ap.add_argument("--early-algorithms", default="lsbm,lsbr")
    ap.add_argument("--alg-stage-epochs", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1,
                    help="Torch threads of the training process (the data workers use the "
                         "other core).")
    ap.add_argument("--group-balance", type=float, default=0.5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--patience", type=int, default=6)
    ap.add_argument("--baseline", default=None,
                    help="Detector file to evaluate on the same pairs (e.g. the shipped model "
                         "before retraining; default: the shipped <name>.safetensors, 'none' to "
                         "skip); with --ship auto the new model ships only if its validation AUC "
                         "(the trainer's statistic, validation split) is higher.")
    ap.add_argument("--baseline-label", default="Previous shipped model",
                    help="How the model card and BENCHMARKS name the baseline.")
    ap.add_argument("--ship", choices=["auto", "yes", "no"], default="auto")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-train", action="store_true", help="Use OUT/best.safetensors as is.")
    ap.add_argument("--limit", type=int, default=None, help="Test tiles per size (quick runs).")
    ap.add_argument("--benchmarks", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--tile", type=int, default=128,
                    help="Tile size of the training tiles.")
    ap.add_argument("--val-tile", type=int, default=None,
                    help="Tile size of the validation (calibration) tiles (default: --tile).")
    ap.add_argument("--section", default=SECTION,
                    help="BENCHMARKS.md section this model's results replace.")
    ap.add_argument("--command", default=None,
                    help="The command that trained OUT/best.safetensors, recorded in the model "
                         "card instead of the one built from these options (for --skip-train "
                         "on a model trained elsewhere, e.g. by scripts/device_train.sh).")
    ap.add_argument("--command-note", default="",
                    help="Recorded after --command (where it ran, how it was resumed).")
    ap.add_argument("--pairs-only", action="store_true",
                    help="Only generate (and cache) the test pairs, then exit.")
    args = ap.parse_args()
    cache = Path(args.out) / "eval-cache"
    if args.pairs_only:
        for tile in (128, 256):
            test_pairs(Path(args.corpus), tile, args.seed + 77, args.limit, cache)
        return

    from stegshield.analysis.cnn.inference import WEIGHTS_DIR, CNNDetector
    from stegshield.analysis.photo_calibration import drop_stale
    from stegshield.training.train import (
        TrainConfig,
        calibrate_and_export,
        train,
        validation_auc,
    )

    corpus = Path(args.corpus)
    if not (corpus / "manifest.jsonl").exists():
        _sh([sys.executable, "-c", "from stegshield.cli import main; main()", "dataset",
             "covers", "--out", str(corpus), "--debian", "--gray"])
    arch_config = json.loads(args.arch_config)
    early = [a for a in args.early_algorithms.split(",") if a]
    cfg = TrainConfig(covers=str(corpus), out=args.out, epochs=args.epochs,
                      rates=[float(r) for r in args.rates.split(",")],
                      stage_epochs=args.stage_epochs, seed=args.seed, device=args.device,
                      arch=args.arch, arch_config=arch_config, early_algorithms=early,
                      alg_stage_epochs=args.alg_stage_epochs, group_balance=args.group_balance,
                      workers=args.workers, threads=args.threads, patience=args.patience,
                      train_tiles=[args.tile], val_tile=args.val_tile or args.tile,
                      progress=sys.stdout.isatty())
    command = (f"stegshield train --covers {_rel(corpus)} --out "
               f"{_rel(Path(args.out))} --arch {args.arch} --arch-config "
               f"'{json.dumps(arch_config)}' --epochs {args.epochs} --rates {args.rates} "
               f"--stage-epochs {args.stage_epochs} --early-algorithms {args.early_algorithms} "
               f"--alg-stage-epochs {args.alg_stage_epochs} --group-balance {args.group_balance} "
               f"--workers {args.workers} --threads {args.threads} --patience {args.patience} "
               f"--seed {args.seed} --tile {args.tile} --crop {cfg.crop} --device {args.device}")
    if args.command:
        command = args.command
    if not args.skip_train:
        train(cfg)
    shipped = WEIGHTS_DIR / f"{args.name}.safetensors"
    candidate = Path(args.out) / "detector-eval.safetensors"
    train_set = load_tiles(corpus, "train", args.tile)
    n_train, groups = len(train_set), len(train_set.sources)
    meta = calibrate_and_export(Path(args.out) / "best.safetensors", candidate, cfg, tile=256,
                                extra={"name": args.name, "command": command,
                                       "train_tiles": n_train, "train_groups": groups,
                                       "train_tile": args.tile,
                                       "val_tile": args.val_tile or args.tile,
                                       "command_note": args.command_note
                                       or ("" if args.command else "(or `make train`)")})
    det = CNNDetector(candidate)
    if args.baseline is None and shipped.exists():
        args.baseline = str(shipped)  # compare with what is shipped now
    base = CNNDetector(args.baseline) if args.baseline and args.baseline != "none" else None
    results: dict[str, Any] = {"baseline_label": args.baseline_label}
    for tile in (128, 256):
        covers, stego = test_pairs(corpus, tile, args.seed + 77, args.limit, cache)
        results[str(tile)] = {"n": len(covers), "cnn": evaluate(det, covers, stego)}
        if base is not None:
            results[str(tile)]["baseline"] = evaluate(base, covers, stego)
        cl = det.tile_logits(covers)
        results[str(tile)]["fpr_at_shipped_thresholds"] = {
            k: float((cl >= v).mean()) for k, v in det.raw_thresholds.items()}
        if tile == 256:
            classical = ["rs", "spa", "ws", "chi_square"]
            results["speed"] = speed(det, covers, classical)
            if base is not None:
                results["speed_baseline"] = speed(base, covers, [])["cnn"]
            results["256"]["classical"] = classical_auc(covers, stego, ["spa", "ws"])
    meta["test_metrics"] = {t: {k: round(v["auc"], 4) for k, v in results[t]["cnn"].items()}
                            for t in ("128", "256")}
    from stegshield.analysis.cnn.inference import load_model, save_model

    model, _ = load_model(candidate)
    save_model(candidate, model, meta)
    goal_keys = [f"{a}@{r:g}" for a, r, g in GRID if g]
    mean_new = float(np.mean([results["256"]["cnn"][k]["auc"] for k in goal_keys]))
    results["mean_goal_auc_256"] = mean_new
    if base is not None:
        results["mean_goal_auc_256_baseline"] = float(
            np.mean([results["256"]["baseline"][k]["auc"] for k in goal_keys]))
    ship = args.ship == "yes"
    if args.ship == "auto":
        ship = True
        if base is not None:  # chosen on validation (the trainer's statistic), never on test
            v_new, v_old = validation_auc([Path(args.out) / "best.safetensors", base.path], cfg)
            results["val_auc"] = {"new": v_new["all"], "baseline": v_old["all"]}
            ship = v_new["all"] > v_old["all"]
            print(f"validation AUC: new {v_new['all']:.4f}, baseline {v_old['all']:.4f} -> "
                  f"{'ship' if ship else 'keep the baseline'}")
    Path(args.out, "results.json").write_text(json.dumps(results, indent=2))
    card = model_card(args.name, meta, results, corpus)
    Path(args.out, "model-card.md").write_text(card)
    if ship:
        import shutil

        shutil.copyfile(candidate, shipped)
        shipped.with_suffix(".md").write_text(card)
        if drop_stale(shipped):
            print(f"removed the photograph calibration of the old {args.name}: refit it with "
                  "python scripts/calibrate_photos.py --write --bench")
        replace_section(Path(args.benchmarks), args.section,
                        bench_section(args.name, meta, results, args.section))
    print(card)


def _table(results: dict, meta: dict) -> str:
    head = ("| algorithm @ bpp | goal | AUC 128² | AUC 256² | P_E 256² | TPR@1 % FPR 256² "
            "| TPR@5 % FPR 256² | met (256²) |\n|---|---|---|---|---|---|---|---|\n")
    rows = []
    for alg, rate, goal in GRID:
        k = f"{alg}@{rate:g}"
        a, b = results["128"]["cnn"][k], results["256"]["cnn"][k]
        rows.append(f"| {alg} @ {rate:g} | {goal} | {a['auc']:.3f} | {b['auc']:.3f} | "
                    f"{b['pe']:.3f} | {b['tpr1']:.2f} | {b['tpr5']:.2f} | "
                    f"{_goal_met(goal, b['auc'])} |")
    return head + "\n".join(rows) + "\n"


def _baseline_line(results: dict) -> str:
    base = results["256"].get("baseline")
    if not base:
        return ""
    keys = [f"{a}@{r:g}" for a, r, _ in GRID]
    return (f"\n{results['baseline_label']}, same 256² test pairs (AUC): " + ", ".join(
        f"{k} {base[k]['auc']:.3f}" for k in keys) + f"; {results.get('speed_baseline', 0):.0f} "
        "tiles/s in the same run.\n")


def _val_text(tr: dict) -> str:
    """How the training run validated (runs from before these settings: one algorithm per
    tile, every tile equal)."""
    every = tr.get("val_every_algorithm", False)
    power = float(tr.get("val_group_balance", 0.0))
    return (f"{'a stego of every algorithm' if every else 'one algorithm'} per validation tile, "
            f"tile weight 1/(tiles of its photo)^{power:g}")


def model_card(name: str, meta: dict, results: dict, corpus: Path) -> str:
    tr = meta.get("train", {})
    conf = meta.get("config", {}) or {}
    nres = conf.get("full_res_layers", 2)
    where = ("2×2 average pooling right after the mixing (early-pooled fast design), "
             f"{nres} residual depthwise-separable layers at half resolution"
             if conf.get("stem_pool") else
             f"{nres} residual depthwise-separable layers at full resolution")
    base = results["256"].get("baseline")
    btxt = ""
    if base:
        keys = [f"{a}@{r:g}" for a, r, _ in GRID]
        btxt = (f"\n{results['baseline_label']} on the same 256² test pairs (AUC): " + ", ".join(
            f"{k} {base[k]['auc']:.3f}" for k in keys) + f"; its speed in the same run: "
            f"{results.get('speed_baseline', float('nan')):.0f} tiles/s.\n")
    curric = ""
    tsize = meta.get("train_tile", 128)
    budget = ""
    on_device = tr.get("stego_on_device")
    if on_device is None:
        on_device = tr.get("device") == "cuda" and not tr.get("stego")
    if tr.get("max_minutes"):
        budget = (f" (time budget {tr['max_minutes']:g} min on `{tr.get('device')}`, "
                  f"{tr.get('epoch_repeats', 1)} passes over the tiles per epoch)")
    if on_device:
        budget += ("; stego made on the training device by `stegshield.training.torch_stego`, "
                   "where `hide` is simulated as HILL at its rate")
    init = tr.get("init", "random")
    if init not in (None, "random"):
        budget += (f"; warm-started from `{init}` as shipped before this run (its own card, "
                   "in the git history, describes how that one was trained)")
    if tr.get("early_algorithms"):
        curric = (f"; algorithm curriculum: only {', '.join(tr['early_algorithms'])} for the "
                  f"first {tr.get('alg_stage_epochs')} epochs, each later algorithm starts its "
                  "own payload curriculum when it joins")
    return f"""# Model card: `{name}`

Steganalysis CNN, architecture `{meta.get('arch')}` with config `{json.dumps(conf)}` (SRM front
end with truncation T = 3, 1×1 mixing 30→{conf.get('width', 16)}, {where}, three pooled
separable blocks 32/64/128, global average + max pooling, linear head; see docs/CNN.md).
Gray input; colour images are scanned per channel.  Weights: safetensors, fp32, metadata
holds the calibration.

* **Data**: gray cover tiles of `{_rel(corpus)}` (stegshield dataset covers), train
  split {meta.get('train_tiles')} tiles of {tsize}² from {meta.get('train_groups')} source
  photographs (sampling weight 1/(tiles of the photo)^{tr.get('group_balance', 0)}; random D4
  transforms, same for cover and stego);
  validation split: {meta.get('val_pairs')} cover/stego pairs (one algorithm per tile) for the
  calibration; test split
  {results['128']['n']} tiles of 128² and {results['256']['n']} tiles of 256², from source
  photographs seen neither in training nor in validation.  Never trained on
  mate-backgrounds, ukui-wallpapers, lomiri-wallpapers-*.
* **Algorithms**: {', '.join(tr.get('algorithms', []))}, stego generated on the fly per epoch;
  payload curriculum {' → '.join(str(r) for r in sorted(tr.get('rates', []), reverse=True))}
  bpp (a lower rate joins every {tr.get('stage_epochs')} epochs{curric}).
* **Training**: epochs {tr.get('epochs')}{budget}, best epoch {meta.get('epoch')} by
  validation AUC
  ({meta.get('val_auc', float('nan')):.4f}; {_val_text(tr)}); batch
  {tr.get('batch_pairs')} pairs; AdamW lr {tr.get('lr')}; seed {tr.get('seed')}.
* **Command**: `{meta.get('command')}`{(' ' + meta['command_note']) if meta.get('command_note')
                                         else ''}.
* **Calibration**: Platt a = {meta['calibration']['a']:.4f}, b = {meta['calibration']['b']:.4f}
  on validation logits; raw thresholds for 1 % / 5 % FPR per tile: {meta['thresholds']}.
* **Inference**: non-overlapping tiles of {meta.get('tile')}², image statistic = largest tile
  logit − ln(tiles)/a.

## Test-split metrics (tile logits, shipped inference path: bf16 body, eager channels-last)

{_table(results, meta)}{btxt}
Measured false-positive rate of the tile thresholds on test cover tiles (thresholds set on
validation {meta.get('val_tile', tsize)}² tiles): 128²:
{results['128']['fpr_at_shipped_thresholds']}, 256²: {results['256']['fpr_at_shipped_thresholds']}.

Speed (tiles of 256² per second, 2 shared cores, same run): {
    ', '.join(f'{k} {v:.0f}' for k, v in results['speed'].items())}.
"""


def bench_section(name: str, meta: dict, results: dict, section: str = SECTION) -> str:
    sp = results["speed"]
    cl = results["256"].get("classical", {})
    ctab = ""
    if cl:
        keys = [f"{a}@{r:g}" for a, r, _ in GRID]
        ctab = ("\nClassical detectors on the same 256² test pairs (AUC of the raw statistic):\n\n"
                "| detector | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys) + "\n"
                + "\n".join(f"| {n} | " + " | ".join(f"{cl[n][k]:.3f}" for k in keys) + " |"
                            for n in cl) + "\n")
    return f"""{section}

Written by `make train` (scripts/train.py).  Model `{name}` (arch `{meta.get('arch')}`), test
split of the gray corpus (source photographs unseen in training/validation), one stego per
cover per row, tile logits of the shipped inference path.  Command: `{meta.get('command')}`.

{_table(results, meta)}{_baseline_line(results)}
False-positive rate of the shipped 1 % / 5 % thresholds on test covers: 128²
{results['128']['fpr_at_shipped_thresholds']}, 256² {results['256']['fpr_at_shipped_thresholds']}.

Speed, tiles of 256² per second on this machine (2 shared cores, one run): {
    ', '.join(f'{k} {v:.0f}' for k, v in sp.items())} (CNN: batch of 256 tiles, channels-last,
bfloat16 body, eager (TorchScript is slower with torch 2.13), glibc malloc tuned;
classical: one `detect` per tile).
{ctab}"""


if __name__ == "__main__":
    main()

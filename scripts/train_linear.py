"""`make train-linear`: fit, calibrate, evaluate and ship the learned linear detectors.

``--detector structural`` (LSB replacement: binned WS terms + SPA), ``spam`` (LSB matching: SPAM
features) or ``srm`` (content-adaptive embedding: a small rich model, Fisher discriminant).
Data (gray corpus, split by source photograph): the model is fitted on the train split's tiles
(128² and 256²), each cover against one stego per training rate; the ridge strength is chosen
and the Platt calibration and per-FPR thresholds are fitted on the validation split; for
``spam`` and ``srm`` the weight of the detector in a sum with a CNN's logit (each standardised
on validation covers) is chosen on validation pairs of every algorithm (mean AUC); the test
split (the cached pairs of ``scripts/train.py``, one stego per cover and algorithm) is used
only for the reported numbers, side by side with the baselines in the same run.  Writes
``src/stegshield/analysis/weights/linear/NAME.safetensors`` + ``NAME.md`` and the detector's
section of BENCHMARKS.md (with ``--ship``; else ``OUT/NAME*``).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from stegshield.analysis.base import Calibration  # noqa: E402
from stegshield.analysis.features.spam import SPAM_FEATURES, SPAMDetector  # noqa: E402
from stegshield.analysis.features.srm import SRM_FEATURES, SRMDetector  # noqa: E402
from stegshield.analysis.linear import (  # noqa: E402
    LINEAR_DIR,
    FeatureSet,
    LinearDetector,
    LinearModel,
    fit_fld,
    fit_logistic,
)
from stegshield.analysis.metrics import roc_auc, tpr_at_fpr  # noqa: E402
from stegshield.analysis.structural import spa_estimate, ws_estimate  # noqa: E402
from stegshield.analysis.structural.learned import (  # noqa: E402
    STRUCTURAL_FEATURES,
    StructuralLRDetector,
)
from stegshield.reporting import machine_description, replace_section  # noqa: E402
from stegshield.training.data import (  # noqa: E402
    PairDataset,
    adaptive_costs,
    embed,
    load_tiles,
)

L2_GRID = (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
FLD_GRID = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)
ALPHAS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0)
CLASSIFIERS = {"fld": "regularised Fisher linear discriminant",
               "logistic": "ridge logistic regression"}
THRESHOLD_FPRS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


@dataclass(frozen=True)
class Job:
    """What one linear detector is trained on and compared with."""

    detector: type[LinearDetector]
    features: FeatureSet
    name: str
    algorithm: str
    rates: tuple[float, ...]
    section: str
    what: str
    headline: str  # the test row quoted first
    rows: tuple[str, ...]
    classifier: str = "logistic"  # or "fld"
    scan: str = ""  # the scan detector that loads it alone ("" = fused detectors only)
    l2_grid: tuple[float, ...] = ()  # ridge strengths tried (default: the classifier's grid)
    train_copies: int = 1  # stego realisations per train cover and rate (other seeds)
    also: tuple[str, ...] = ()  # more algorithms trained against, at the same rates

    @property
    def algorithms(self) -> str:
        """The training algorithms, for reports."""
        return " / ".join((self.algorithm, *self.also))


JOBS = {
    "structural": Job(
        StructuralLRDetector, STRUCTURAL_FEATURES, "lsbr-lr", "lsbr", (0.05, 0.1),
        "## Learned structural detector",
        "Logistic regression over WS's per-pixel terms binned by local variance, their "
        "neighbours' parity correlation, the bins' shares and SPA's estimate "
        "(`analysis/structural/learned.py`)",
        "lsbr@0.1",
        ("lsbr@0.1", "lsbr@0.2", "seq-lsb@0.1", "lsbm@0.4", "lsbm@0.1", "hill@0.4",
         "suniward@0.4", "hide@0.2"), scan="structural"),
    "spam": Job(
        SPAMDetector, SPAM_FEATURES, "spam-lsbm", "lsbm", (0.1, 0.2, 0.4),
        "## SPAM detector",
        "Logistic regression over the 686 second-order SPAM features (T = 3; Pevný, Bas & "
        "Fridrich 2010; `analysis/features/spam.py`)",
        "lsbm@0.1",
        ("lsbm@0.4", "lsbm@0.2", "lsbm@0.1", "lsbr@0.1", "hill@0.4", "suniward@0.4",
         "wow@0.4", "hide@0.2"), scan="spam"),
    "srm": Job(
        SRMDetector, SRM_FEATURES, "srm-adaptive", "hill", (0.4, 0.2),
        "## SRM-lite detector",
        "Ridge logistic regression over 2,626 features of a ten-submodel subset of "
        "the spatial rich model (4th-order co-occurrences of quantised residuals, spam and "
        "minmax submodels; Fridrich & Kodovský 2012; `analysis/features/srm.py`)",
        "hill@0.4",
        ("hill@0.4", "hill@0.2", "suniward@0.4", "suniward@0.2", "wow@0.4", "wow@0.2",
         "hide@0.2", "lsbm@0.4", "lsbm@0.1", "lsbr@0.1"),
        scan="srm", l2_grid=(1e-5, 1e-4, 1e-3, 1e-2, 1e-1), also=("suniward", "wow")),
    "srm-lsbm": Job(
        SRMDetector, SRM_FEATURES, "srm-lsbm", "lsbm", (0.1, 0.2, 0.4),
        "## SRM-lite detector of LSB matching",
        "Ridge logistic regression over the same 2,626 SRM-lite features, trained against LSB "
        "matching (`--detector srm-lsbm`, and a member of `fused`, `analysis/fusion.py`)",
        "lsbm@0.4",
        ("lsbm@0.4", "lsbm@0.2", "lsbm@0.1", "lsbr@0.1", "hill@0.4", "suniward@0.4",
         "wow@0.4", "hide@0.2"),
        scan="srm-lsbm", l2_grid=(1e-6, 1e-5, 1e-4, 1e-3), train_copies=4),
}


def split_features(job: Job, corpus: Path, split: str, seed: int,
                   cache: Path | None = None) -> dict[str, np.ndarray]:
    """Features of every cover tile (128² and 256²) of ``split`` and of one stego per cover
    and rate (seeded per tile); cached as npz in ``cache`` (keyed by feature set and version,
    algorithm, rates, seed and corpus) when given."""
    import hashlib

    keys = [f"{job.algorithm}@{r:g}" for r in job.rates]
    f = None
    if cache is not None:
        tag = hashlib.sha256(json.dumps(
            [str(corpus.resolve()), job.features.name, job.features.version, job.algorithm,
             list(job.rates), split, seed]).encode()).hexdigest()[:12]
        f = cache / f"{job.features.name}_{split}_{job.algorithm}_{tag}.npz"
        if f.exists():
            z = np.load(f)
            return {k: z[k] for k in z.files}
    res = _split_features(job, corpus, split, seed, keys)
    if f is not None:
        f.parent.mkdir(parents=True, exist_ok=True)
        tmp = f.with_suffix(".tmp.npz")
        np.savez(tmp, **res)
        tmp.replace(f)
    return res


def _split_features(job: Job, corpus: Path, split: str, seed: int, keys: list[str]
                    ) -> dict[str, np.ndarray]:
    out: dict[str, list[np.ndarray]] = {"cover": [], **{k: [] for k in keys}}

    def feats(images: list[np.ndarray], desc: str) -> np.ndarray:
        return np.array([job.features.extract(x)
                         for x in tqdm(images, desc=desc, leave=False, mininterval=5)])

    adaptive = job.algorithm in ("hill", "suniward", "wow")
    for tile in (128, 256):
        ts = load_tiles(corpus, split, tile)
        out["cover"].append(feats(ts.images, f"{split} {tile} covers"))
        costs = ([adaptive_costs(x, job.algorithm) for x in tqdm(
            ts.images, desc=f"{split} {tile} costs", leave=False, mininterval=5)]
            if adaptive else [None] * len(ts.images))
        for r, k in zip(job.rates, keys, strict=True):
            st = [embed(x, job.algorithm, r,
                        np.random.default_rng([seed, tile, round(r * 1000), i]), costs[i])
                  for i, x in enumerate(ts.images)]
            out[k].append(feats(st, f"{split} {tile} {k}"))
    return {k: np.concatenate(v) for k, v in out.items()}


def val_pairs(corpus: Path, tile: int, seed: int, cache: Path) -> dict[str, np.ndarray]:
    """Validation covers and one stego per cover for every algorithm and rate of the test
    grid (cached as npz), made as ``scripts/train.py`` makes the test pairs."""
    import hashlib

    from train import GRID

    tag = hashlib.sha256(str(corpus.resolve()).encode()).hexdigest()[:8]
    f = cache / f"val_pairs_{tile}_s{seed}_{tag}.npz"
    if f.exists():
        z = np.load(f)
        return {k: z[k] for k in z.files}
    ts = load_tiles(corpus, "val", tile)
    ds = PairDataset(ts, [a for a, _, _ in GRID], [0.4], seed=seed, crop=None, augment=False)
    out = {"covers": np.stack(ts.images)}
    for gi, (alg, rate, _) in enumerate(tqdm(GRID, desc=f"val {tile} pairs", leave=False)):
        out[f"{alg}@{rate:g}"] = np.stack([
            embed(x, alg, rate, np.random.default_rng([seed, 5000 + gi, i]),
                  ds.costs(i, alg) if alg in ("hill", "suniward", "wow") else None)
            for i, x in enumerate(ts.images)])
    cache.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(f, **out)
    return out


def _auc_row(c: np.ndarray, s: np.ndarray) -> dict[str, float]:
    y = np.r_[np.zeros(len(c)), np.ones(len(s))]
    z = np.r_[c, s]
    return {"auc": roc_auc(y, z), "tpr1": tpr_at_fpr(y, z, 0.01), "tpr5": tpr_at_fpr(y, z, 0.05)}


def fit(job: Job, train: dict[str, np.ndarray], val: dict[str, np.ndarray]
        ) -> tuple[LinearModel, float, dict[float, float]]:
    """Fit per ridge strength, keep the best on validation (mean AUC over the rates), then
    calibrate on validation.  Logistic: covers weigh as much as all their stegos together;
    Fisher discriminant: unweighted class means, scatter pooled over every sample."""
    stegos = [k for k in train if k != "cover"]
    vstegos = [k for k in val if k != "cover"]  # one realisation per rate
    nc = len(train["cover"])
    X = np.concatenate([train["cover"]] + [train[k] for k in stegos])
    y = np.r_[np.zeros(nc), np.ones(nc * len(stegos))]
    w = np.r_[np.full(nc, float(len(stegos))), np.ones(nc * len(stegos))]
    scores: dict[float, float] = {}
    models: dict[float, LinearModel] = {}
    grid = job.l2_grid or (FLD_GRID if job.classifier == "fld" else L2_GRID)
    for l2 in grid:
        models[l2] = LinearModel(*(fit_fld(X, y, l2=l2) if job.classifier == "fld"
                                   else fit_logistic(X, y, l2=l2, sample_weight=w)))
        c = models[l2].logits(val["cover"])
        scores[l2] = float(np.mean([_auc_row(c, models[l2].logits(val[k]))["auc"]
                                    for k in vstegos]))
        print(f"  l2 {l2:g}: validation AUC {scores[l2]:.4f}", flush=True)
    l2 = max(grid, key=lambda k: (scores[k], k))  # ties: the stronger ridge
    model = models[l2]
    vc = model.logits(val["cover"])
    n = len(vc)
    vs = np.choose(np.arange(n) % len(vstegos), [model.logits(val[k]) for k in vstegos])
    model.calibration = Calibration.fit(np.r_[vc, vs], np.r_[np.zeros(n), np.ones(n)])
    model.raw_thresholds = {f: float(np.quantile(vc, 1.0 - f)) for f in THRESHOLD_FPRS}
    return model, l2, scores


def main() -> None:
    from train import GRID, test_pairs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detector", choices=sorted(JOBS), required=True)
    ap.add_argument("--corpus", default=str(ROOT / ".cache/corpus/gray"))
    ap.add_argument("--cache", default=str(ROOT / "out/train/light-fast/eval-cache"),
                    help="Cached test pairs of scripts/train.py (made if missing).")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--ship", action="store_true",
                    help="Write the model into the package (else only OUT and the report).")
    ap.add_argument("--out", default=str(ROOT / "out/linear"))
    ap.add_argument("--train-copies", type=int, default=None,
                    help="Stego realisations per train cover and rate (default: the job's).")
    ap.add_argument("--benchmarks", default=str(ROOT / "BENCHMARKS.md"),
                    help="Section rewritten with --ship (else OUT/NAME-report.md).")
    args = ap.parse_args()
    job = JOBS[args.detector]
    if args.train_copies:
        job = dataclasses.replace(job, train_copies=args.train_copies)
    corpus, out = Path(args.corpus), Path(args.out)
    if not (corpus / "manifest.jsonl").exists():
        sys.exit(f"{corpus}: no manifest.jsonl (build it with `stegshield dataset covers`); "
                 "the splits by source photograph come from it")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    print(f"{args.detector}: features of the train split", flush=True)
    train = split_features(job, corpus, "train", args.seed, out / "feat-cache")
    for c in range(1, job.train_copies):  # more stego realisations of the same covers
        more = split_features(job, corpus, "train", args.seed + 100 * c, out / "feat-cache")
        train.update({f"{k}#{c}": v for k, v in more.items() if k != "cover"})
    print(f"{args.detector}: features of the validation split", flush=True)
    val = split_features(job, corpus, "val", args.seed + 1, out / "feat-cache")
    for alg in job.also:  # more algorithms, same covers and rates
        other = dataclasses.replace(job, algorithm=alg, also=())
        for split, seed, feats in (("train", args.seed, train), ("val", args.seed + 1, val)):
            more = split_features(other, corpus, split, seed, out / "feat-cache")
            feats.update({k: v for k, v in more.items() if k != "cover"})
    model, l2, val_scores = fit(job, train, val)
    det_path = out / f"{job.name}.safetensors"
    model.save(det_path, job.features, {"name": job.name})
    det = job.detector(det_path)

    # test: the cached pairs of scripts/train.py, every row, side by side
    keys = [(a, r) for a, r, _ in GRID]
    # statistics of a stack of tiles; `combined` rows are made from the others' outputs, so
    # nothing is computed twice
    stats: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        args.detector: lambda X: np.array([det.logit_of_plane(x) for x in X])}
    combined: dict[str, Callable[[dict[str, np.ndarray]], np.ndarray]] = {}
    if args.detector == "structural":
        stats["ws"] = lambda X: np.array([ws_estimate(x) for x in X])
        stats["spa"] = lambda X: np.array([spa_estimate(x) for x in X])
        combined["classical min(ws, spa)"] = lambda o: np.minimum(o["ws"], o["spa"])
    def outputs(X: np.ndarray) -> dict[str, np.ndarray]:
        o = {name: fn(X) for name, fn in stats.items()}
        o.update({name: fn(o) for name, fn in combined.items()})
        return o
    results: dict[str, dict] = {}
    fpr_test: dict[str, dict[str, float]] = {}
    for tile in (256, 128):
        covers, stego = test_pairs(corpus, tile, 1 + 77, None, Path(args.cache))
        oc = outputs(covers)
        for k in tqdm(keys, desc=f"test {tile}", leave=False):
            os_ = outputs(stego[k])
            for name in oc:
                results.setdefault(name, {})[f"{k[0]}@{k[1]:g} {tile}"] = _auc_row(
                    oc[name], os_[name])
        fpr_test[str(tile)] = {f"{f:g}": float((oc[args.detector] >= model.raw_thresholds[f])
                                               .mean()) for f in (0.01, 0.05)}
        if tile == 256:
            speed_tiles = covers[:64]

    # speed: same tiles, same process, one detect per tile
    from stegshield.analysis import get_detector
    from stegshield.scan.suite import build_suite

    timed = {args.detector: det.detect}
    if args.detector == "structural":
        timed.update({"ws": get_detector("ws").detect, "spa": get_detector("spa").detect,
                      "classical group (WS+SPA)": build_suite("classical").analyse})
    speed: dict[str, float] = {}
    for name, fn in timed.items():
        fn(speed_tiles[0])
        best = 0.0
        for _ in range(3):
            t = time.perf_counter()
            for x in speed_tiles:
                fn(x)
            best = max(best, len(speed_tiles) / (time.perf_counter() - t))
        speed[name] = best

    info = {
        "name": job.name, "detector": args.detector, "date": dt.date.today().isoformat(),
        "command": f"make train-linear (scripts/train_linear.py --detector {args.detector})",
        "l2": l2, "validation_auc": {f"{k:g}": v for k, v in val_scores.items()},
        "counts": {"train_tiles": len(train["cover"]), "val_tiles": len(val["cover"])},
        "algorithm": job.algorithms, "rates": list(job.rates), "seed": args.seed,
        "train_copies": job.train_copies,
        "test_metrics": {k: v["auc"] for k, v in results[args.detector].items()},
        "test_fpr_of_thresholds": fpr_test, "classifier": job.classifier,
    }
    model.meta = info
    model.save(det_path, job.features)
    (out / f"{job.name}.json").write_text(json.dumps(
        {"results": results, "speed": speed, **info}, indent=2))
    card = model_card(job, info, results, speed)
    (out / f"{job.name}.md").write_text(card)
    if args.ship:
        model.save(LINEAR_DIR / f"{job.name}.safetensors", job.features)
        (LINEAR_DIR / f"{job.name}.md").write_text(card)
    text = report(job, info, results, speed, time.perf_counter() - t0)
    if args.ship:  # BENCHMARKS.md describes shipped models only
        replace_section(Path(args.benchmarks), job.section, text)
    else:
        (out / f"{job.name}-report.md").write_text(text)
    head = results[args.detector][f"{job.headline} 256"]
    print(json.dumps({"l2": l2, "speed": speed, f"{job.headline} 256": head}, indent=2))


def _table(results: dict[str, dict], tile: int, rows: tuple[str, ...]) -> list[str]:
    names = list(results)
    lines = ["| algorithm @ bpp | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    for r in rows:
        cells = [f"{results[n][f'{r} {tile}']['auc']:.3f}" for n in names]
        lines.append(f"| {r} | " + " | ".join(cells) + " |")
    return lines


def report(job: Job, info: dict, results: dict[str, dict], speed: dict[str, float],
           secs: float) -> str:
    """The BENCHMARKS.md section."""
    s = results[info["detector"]][f"{job.headline} 256"]
    rates = ", ".join(f"{r:g}" for r in job.rates)
    lines = [
        job.section, "",
        f"Written by `{info['command']}`, {info['date']}, {machine_description()}; "
        f"{secs / 60:.1f} min in all.  {job.what}, fitted ({job.classifier}) on "
        f"{info['counts']['train_tiles']} "
        f"train cover tiles (128² and 256²) against {job.algorithms} at {rates} bpp"
        + (f" ({job.train_copies} stego realisations per cover and rate)"
           if job.train_copies > 1 else "") + "; ridge "
        f"{info['l2']:g} chosen on {info['counts']['val_tiles']} validation tiles "
        f"(validation AUC per ridge: "
        + ", ".join(f"{k}: {v:.4f}" for k, v in info["validation_auc"].items()) + ").  "
        "Test split (source photos unseen), the cached pairs of `make train` / `make compare`, "
        "one stego per cover; AUC of each statistic, all in the same run.", "",
        f"{job.headline} on 256² tiles: AUC **{s['auc']:.3f}**, TPR {s['tpr1']:.2f} at 1 % "
        f"FPR, {s['tpr5']:.2f} at 5 %.", "",
        "256² test tiles:", "", *_table(results, 256, job.rows), "",
        "128² test tiles:", "", *_table(results, 128, job.rows), "",
        "Measured FPR of the shipped per-FPR thresholds (set on validation cover tiles) on the "
        f"test covers: {info['test_fpr_of_thresholds']}.", "",
        "Speed, tiles of 256² per second, one `detect` per tile, same 64 tiles, same run: "
        + ", ".join(f"{k} {v:.0f}" for k, v in speed.items()) + ".",
    ]
    return "\n".join(lines) + "\n"


def model_card(job: Job, info: dict, results: dict[str, dict], speed: dict[str, float]) -> str:
    """The model card shipped beside the weights."""
    det = info["detector"]
    rates = ", ".join(f"{r:g}" for r in job.rates)
    lines = [
        f"# Model card: `{job.name}` "
        + (f"(`--detector {job.scan}`)" if job.scan else "(a member of the fused detectors)"),
        "",
        f"{job.what}: a linear score ({CLASSIFIERS[job.classifier]}) over "
        f"{len(job.features.names)} features of one image plane (feature set "
        f"`{job.features.name}` version {job.features.version}).", "",
        f"* **Data**: gray corpus (`stegshield dataset covers`), split by source photograph. "
        f"Fit: {info['counts']['train_tiles']} train tiles (128² and 256²), each cover and "
        f"{job.train_copies if job.train_copies > 1 else 'one'} {job.algorithms} stego at "
        f"{rates} bpp (seed {info['seed']}).  Validation "
        f"({info['counts']['val_tiles']} tiles): ridge choice ({info['l2']:g}), Platt "
        "calibration (covers against the rates in turn) and the per-FPR logit thresholds "
        "(quantiles of validation cover tiles, per tile).  Never trained on mate-backgrounds, "
        "ukui-wallpapers, lomiri-wallpapers-*.",
        f"* **Command**: `{info['command']}`, {info['date']}.",
        "* **Test metrics** (AUC, test split, source photos unseen, one stego per cover, 256² "
        "tiles):", "",
        *_table(results, 256, job.rows), "",
        f"* **FPR of the thresholds on test covers**: {info['test_fpr_of_thresholds']}.",
        f"* **Speed** (256² tiles/s, one run): {speed[det]:.0f}.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

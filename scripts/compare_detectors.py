"""`make compare`: the detector families side by side on the same test pairs, in one run.

Purpose-built CNNs (shipped ``light-gray`` and ``light-thorough``), ImageNet-pretrained
EfficientNet-Lite0 (frozen features + logistic regression, and fine-tuned with the stem stride
removed), the classical group (WS/SPA, as ``scan --detector classical`` fuses them), the
learned linear detectors (``scan --detector structural``, ``spam``, ``srm``) and the scan
fusion of each learned model with the classical group and with ``structural`` (``max`` of the
calibrated group scores, as ``scan`` does).

Pairs: the cached 256² test pairs of ``scripts/train.py`` (test split: source photographs unseen
in training and validation; one stego per cover per row).  Writes the ``## Detector comparison``
section of BENCHMARKS.md (replacing it) and ``OUT/compare.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from stegshield.analysis.metrics import roc_auc, tpr_at_fpr  # noqa: E402
from stegshield.reporting import machine_description, replace_section  # noqa: E402

SECTION = "## Detector comparison"
DEFAULT_MODELS = [
    "cnn light-gray=light-gray",
    "cnn-thorough light-thorough=light-thorough",
    "pretrained frozen (a)=out/train/effnet-frozen/detector.safetensors",
    "pretrained frozen, stride 1 (a')=out/train/effnet-frozen-s1/detector.safetensors",
    "pretrained fine-tuned (b)=out/train/effnet-ft/detector.safetensors",
]


def _metrics(cover: np.ndarray, stego: dict, keys: list) -> dict[str, dict[str, float]]:
    out = {}
    for k in keys:
        s = stego[k]
        y = np.r_[np.zeros(len(cover)), np.ones(len(s))]
        z = np.r_[cover, s]
        out[f"{k[0]}@{k[1]:g}"] = {"auc": roc_auc(y, z), "tpr1": tpr_at_fpr(y, z, 0.01)}
    return out


def main() -> None:
    from train import GRID, test_pairs

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / ".cache/corpus/gray"))
    ap.add_argument("--cache", default=str(ROOT / "out/train/light-fast/eval-cache"))
    ap.add_argument("--model", action="append", default=None, metavar="LABEL=PATH",
                    help="Learned detector file (or shipped name); repeatable.")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--out", default=str(ROOT / "out/compare"))
    ap.add_argument("--benchmarks", default=str(ROOT / "BENCHMARKS.md"))
    ap.add_argument("--fisher", action="store_true",
                    help="Also rank by Fisher's combination of the two groups' FPRs.")
    ap.add_argument("--note", default="", help="Added under the table (e.g. how timed).")
    args = ap.parse_args()

    from stegshield.analysis.cnn.inference import CNNDetector
    from stegshield.scan.suite import build_suite
    from stegshield.scan.thresholds import learned_fpr, score_of_fpr

    covers, stego = test_pairs(Path(args.corpus), 256, 1 + 77, args.limit, Path(args.cache))
    keys = [(a, r) for a, r, _ in GRID]
    results: dict[str, dict] = {"n": len(covers), "models": {}, "speed": {}}
    # classical group: the statistic and score `scan --detector classical` computes
    suite = build_suite("classical")
    t = time.perf_counter()
    cl_cover = np.array([suite.analyse(x).fprs["classical"] for x in covers])
    results["speed"]["classical (WS+SPA)"] = len(covers) / (time.perf_counter() - t)
    cl_stego = {k: np.array([suite.analyse(x).fprs["classical"] for x in stego[k]])
                for k in keys}
    results["models"]["classical (WS+SPA)"] = _metrics(-cl_cover, {
        k: -v for k, v in cl_stego.items()}, keys)

    # learned linear detectors (numpy): structural (LSB replacement), spam (LSB matching),
    # srm (content-adaptive);
    # each its own group, FPR from its validation thresholds; the log-odds ranks the tiles
    linear_fprs: dict[str, tuple[np.ndarray, dict]] = {}
    for name, label in (("structural", "structural (learned WS/SPA features)"),
                        ("spam", "spam (SPAM features + logistic regression)"),
                        ("srm", "srm (SRM-lite + logistic regression)"),
                        ("srm-lsbm", "srm-lsbm (SRM-lite + logistic regression, vs LSBM)")):
        lin = build_suite(name)

        def run(tiles: np.ndarray, lin: object = lin, name: str = name
                ) -> tuple[np.ndarray, np.ndarray]:
            """(estimated FPRs, log-odds): the log-odds is monotone in the raw score."""
            out = [lin.analyse(x) for x in tiles]  # type: ignore[attr-defined]
            return (np.array([a.fprs[name] for a in out]),
                    np.array([a.stats[name] for a in out]))
        t = time.perf_counter()
        fc, zc = run(covers)
        results["speed"][label] = len(covers) / (time.perf_counter() - t)
        fs, zs = {}, {}
        for k in keys:
            fs[k], zs[k] = run(stego[k])
        linear_fprs[name] = (fc, fs)
        results["models"][label] = _metrics(zc, zs, keys)
    st_cover, st_stego = linear_fprs["structural"]

    def fused(p_learned: np.ndarray, p_classical: np.ndarray) -> np.ndarray:
        """scan's fusion of two groups: score of min(1, 2 min(p_g)) (Bonferroni)."""
        p = np.minimum(1.0, 2.0 * np.fmin(p_learned, p_classical))
        return np.array([score_of_fpr(float(v)) for v in p])

    def fisher(p_learned: np.ndarray, p_classical: np.ndarray) -> np.ndarray:
        """Fisher's combination (for comparison): -2 sum ln p_g, chi-square with 4 d.o.f."""
        s = -2.0 * (np.log(np.clip(p_learned, 1e-300, 1)) + np.log(np.clip(p_classical, 1e-300,
                                                                             1)))
        return -np.exp(-s / 2) * (1 + s / 2)  # minus the combined p-value
    specs = args.model or DEFAULT_MODELS
    for spec in specs:
        label, _, path = spec.partition("=")
        p = Path(path)
        if not p.exists() and p.suffix == ".safetensors":
            print(f"skipping {label}: {path} not found")
            continue
        det = CNNDetector(path)
        det.tile_logits(covers[:8])  # warm-up
        best = 0.0
        for _ in range(3):  # best of three passes, as scripts/train.py times the CNNs
            t = time.perf_counter()
            lc = det.tile_logits(covers)
            best = max(best, len(covers) / (time.perf_counter() - t))
        results["speed"][label] = best
        ls = {k: det.tile_logits(stego[k]) for k in keys}
        results["models"][label] = _metrics(lc, ls, keys)
        cal = det.calibration

        def fprs(logits: np.ndarray, det: CNNDetector = det, cal: object = cal) -> np.ndarray:
            return np.array([learned_fpr(det, cal(float(v))) for v in logits])  # type: ignore

        fused_c = fused(fprs(lc), cl_cover)
        fused_s = {k: fused(fprs(ls[k]), cl_stego[k]) for k in keys}
        results["models"][f"fusion: {label} + classical"] = _metrics(fused_c, fused_s, keys)
        results["models"][f"fusion: {label} + structural"] = _metrics(
            fused(fprs(lc), st_cover), {k: fused(fprs(ls[k]), st_stego[k]) for k in keys}, keys)
        if args.fisher:
            pc = fprs(lc)
            results["models"][f"Fisher: {label} + classical"] = _metrics(
                fisher(pc, cl_cover), {k: fisher(fprs(ls[k]), cl_stego[k]) for k in keys}, keys)
        print(label, {k: round(v["auc"], 3) for k, v in results["models"][label].items()},
              flush=True)
    # the fused detectors (a CNN and linear detectors summed per tile): batched like the CNNs;
    # on one tile the image statistic is the tile's fused score
    from stegshield.analysis import get_detector

    for name in ("fused", "fused-thorough"):
        try:
            fz = get_detector(name)
        except (OSError, ValueError) as exc:
            print(f"skipping {name}: {exc}")
            continue
        label = f"{name} ({' + '.join(fz.features.names)}, per tile)"  # type: ignore[attr-defined]
        fz.tile_scores(covers[:8])  # type: ignore[attr-defined]
        best = 0.0
        for _ in range(3):
            t = time.perf_counter()
            zc = fz.tile_scores(covers)  # type: ignore[attr-defined]
            best = max(best, len(covers) / (time.perf_counter() - t))
        results["speed"][label] = best
        results["models"][label] = _metrics(
            zc, {k: fz.tile_scores(stego[k]) for k in keys}, keys)  # type: ignore[attr-defined]
        print(label, {k: round(v["auc"], 3) for k, v in results["models"][label].items()},
              flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(results, indent=2))
    replace_section(Path(args.benchmarks), SECTION, section(results, GRID, args.note))
    print(section(results, GRID, args.note))


def section(results: dict, grid: list, note: str) -> str:
    keys = [f"{a}@{r:g}" for a, r, _ in grid]
    goals = {f"{a}@{r:g}": g for a, r, g in grid}
    head = "| detector | " + " | ".join(keys) + " | tiles/s |\n|---|" + "---|" * (len(keys) + 1)
    rows = ["| goal | " + " | ".join(goals[k].replace("AUC ", "") or "–" for k in keys)
            + " | ≥ 300 |"]
    for label, m in results["models"].items():
        sp = results["speed"].get(label)
        rows.append(f"| {label} | " + " | ".join(f"{m[k]['auc']:.3f}" for k in keys)
                    + f" | {sp:.0f} |" if sp else f"| {label} | " + " | ".join(
                        f"{m[k]['auc']:.3f}" for k in keys) + " | (as its parts) |")
    when = time.strftime("%Y-%m-%d")
    return f"""{SECTION}

Written by `make compare` (scripts/compare_detectors.py), {when}, {machine_description()}.
AUC of tile scores on the same {results['n']} test tiles of 256² (gray corpus, test split:
source photographs unseen in training and validation), one stego per cover per column.
Classical = the WS/SPA group that `scan --detector classical` runs (ranked by its estimated
false-positive rate); fusion = `scan`'s rule when it runs both groups: each group's statistic
becomes an estimated FPR on clean images, the image score is that of min(1, 2·min FPR)
(Bonferroni), see docs/SCAN.md.  tiles/s: same run, same cover tiles, batch inference for the
CNNs (best of three passes), one `analyse` per tile for the classical group and for the
learned linear detectors `structural`, `spam` and `srm` (`scan --detector NAME`: their
log-odds rank the tiles; in fusions, their estimated FPR from the validation thresholds);
`fused` / `fused-thorough` (`scan --detector NAME`: a CNN and linear detectors summed tile by
tile, `analysis/fusion.py`) score batches of tiles like the CNNs.

{head}
{chr(10).join(rows)}

{note}
"""


if __name__ == "__main__":
    os.environ.setdefault("MALLOC_MMAP_MAX_", "0")
    main()

"""Evaluate detectors on covers paired with stego sets (``stegshield evaluate``).

Every registered detector (:func:`stegshield.analysis.get_detector`) is run on the covers
and on each stego set; a cover and its stego image are paired by file name (stem). Per
(detector, set):

* ROC AUC, P_E = min over thresholds of (P_FA + P_MD) / 2 (Ker & Böhme, IH 2008;
  Fridrich, *Steganography in Digital Media*, 2009) and the detection rate at 1 % and
  5 % false positives (:mod:`stegshield.analysis.metrics`). Images are ranked by the
  detector's ``score``, ties broken by ``raw`` (a saturated sigmoid does not merge
  distinct statistics);
* for quantitative detectors (``payload_bpp`` not ``None``) the payload-estimate error
  on the stego images, MAE and mean signed error, against the true payload of the set's
  manifest (``payload_bps``), and the mean estimate on the covers (the bias that RS,
  SPA and WS show on clean images; Ker, "A general framework for structural
  steganalysis of LSB replacement", IH 2005).

A stego set is a folder ``OUT/<algo>/<rate>`` written by ``stegshield dataset stego``
(its ``manifest.jsonl`` gives the true payload and flags; flagged images are left out
unless asked) or any folder of images; a folder holding such sets is expanded.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis import metrics
from ..datasets.stego import ALGORITHMS, COVER_EXTENSIONS, read_manifest
from ..imaging import header_size

__all__ = [
    "EvaluationReport",
    "ImageScore",
    "StegoSet",
    "evaluate",
    "find_stego_sets",
    "load_stego_set",
    "markdown_report",
    "ranking_scores",
    "score_images",
    "set_metrics",
    "write_report",
]

#: False-positive rates at which the detection rate is reported.
FPR_POINTS = (0.01, 0.05)


# --------------------------------------------------------------------------------------
# Stego sets
# --------------------------------------------------------------------------------------
@dataclass
class StegoSet:
    """Stego images of one folder: ``items[name] = (path, true payload or None)``."""

    label: str
    algo: str
    rate: str
    root: Path
    items: dict[str, tuple[Path, float | None]] = field(default_factory=dict)
    flagged: int = 0
    target_bps: float | None = None


def load_stego_set(folder: str | os.PathLike, include_flagged: bool = False) -> StegoSet:
    """Read one stego folder (with or without a ``manifest.jsonl``)."""
    root = Path(folder)
    manifest = root / "manifest.jsonl"
    if manifest.exists():
        rows = read_manifest(manifest)
        combos = {(r.get("algo"), r.get("rate")) for r in rows}
        if len(combos) > 1:
            raise ValueError(f"{root}: the manifest mixes several sets; give their folders")
        algo, rate = next(iter(combos)) if combos else (root.parent.name, root.name)
        s = StegoSet(f"{algo}/{rate}", str(algo), str(rate), root)
        for r in rows:
            if r.get("flagged"):
                s.flagged += 1
                if not include_flagged:
                    continue
            if not r.get("path"):
                continue
            p = root / r["path"]
            if p.exists():
                s.items[Path(r["path"]).stem] = (p, r.get("payload_bps"))
        if rows:
            s.target_bps = rows[0].get("target_bps")
        return s
    s = StegoSet(f"{root.parent.name}/{root.name}", root.parent.name, root.name, root)
    for p in sorted(root.iterdir()):
        if p.is_file() and p.suffix.lower() in COVER_EXTENSIONS:
            s.items[p.stem] = (p, None)
    return s


def _set_order(s: StegoSet) -> tuple[int, float, str]:
    idx = ALGORITHMS.index(s.algo) if s.algo in ALGORITHMS else len(ALGORITHMS)
    return idx, s.target_bps if s.target_bps is not None else math.inf, s.label


def find_stego_sets(folders: Sequence[str | os.PathLike],
                    include_flagged: bool = False) -> list[StegoSet]:
    """Stego sets of ``folders``; a folder containing ``<algo>/<rate>/manifest.jsonl``
    (or ``<set>/manifest.jsonl``) sub-folders is expanded to all of them."""
    sets: list[StegoSet] = []
    for f in folders:
        root = Path(f)
        if not root.is_dir():
            raise FileNotFoundError(f"{root}: not a folder")
        subs = sorted({m.parent for pat in ("*/manifest.jsonl", "*/*/manifest.jsonl")
                       for m in root.glob(pat)})
        found = [load_stego_set(d, include_flagged) for d in subs] if subs else \
            [load_stego_set(root, include_flagged)]
        sets += sorted(found, key=_set_order)
    labels = [s.label for s in sets]
    if len(set(labels)) != len(labels):
        for s in sets:  # disambiguate sets with the same algo/rate from different roots
            s.label = f"{s.root.parent.parent.name}:{s.label}"
    if not any(s.items for s in sets):
        raise ValueError("no stego images found")
    return sets


# --------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImageScore:
    """One detector's output on one image (``error`` set when it failed)."""

    score: float
    raw: float
    payload: float | None
    error: str | None = None


_DETECTORS: dict[str, Any] = {}


def _detector(name: str) -> Any:
    from ..analysis import get_detector

    if name not in _DETECTORS:
        _DETECTORS[name] = get_detector(name)
    return _DETECTORS[name]


def _score_one(path: Path, names: Sequence[str]) -> dict[str, ImageScore]:
    from ..imaging import open_image

    try:
        img = open_image(path)
        pixels = img.pixels[..., 0] if img.mode == "LA" else img.pixels
    except Exception as exc:
        return {d: ImageScore(math.nan, math.nan, None, f"unreadable: {exc}") for d in names}
    from ..analysis.base import MIN_PIXELS, MIN_SIDE, too_small

    if too_small(pixels):  # every detector answers 0.5 there: an AUC of 0.5, not a finding
        h, w = pixels.shape[:2]
        why = (f"too small to judge ({w}x{h}; detectors need {MIN_PIXELS:,} pixels and "
               f"{MIN_SIDE} per side)")
        return {d: ImageScore(math.nan, math.nan, None, why) for d in names}
    out: dict[str, ImageScore] = {}
    for d in names:
        try:
            det = _detector(d)
            side = int(getattr(det, "min_judged_side", 0) or 0)  # fused: 128
            if min(pixels.shape[:2]) < side:
                out[d] = ImageScore(math.nan, math.nan, None,
                                    f"too small for {d} (sides under {side} px are not judged)")
                continue
            r = det.detect(pixels)
            pay = None if r.payload_bpp is None else float(r.payload_bpp)
            out[d] = ImageScore(float(r.score), float(r.raw), pay)
        except Exception as exc:  # a detector failing on one image is reported, not fatal
            out[d] = ImageScore(math.nan, math.nan, None, f"{type(exc).__name__}: {exc}")
    return out


def score_images(paths: Sequence[Path], detectors: Sequence[str], *, jobs: int = 1,
                 progress: bool | None = None) -> dict[str, dict[Path, ImageScore]]:
    """Run every detector on every image: ``result[detector][path]``."""
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    result: dict[str, dict[Path, ImageScore]] = {d: {} for d in detectors}
    work = partial(_score_one, names=tuple(detectors))
    with tqdm(total=len(paths), desc="detect", unit="img", disable=not show) as bar:
        if jobs <= 1:
            outs: Any = map(work, paths)
            for p, o in zip(paths, outs, strict=True):
                for d in detectors:
                    result[d][p] = o[d]
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                chunk = max(1, min(32, len(paths) // (8 * jobs)))
                for p, o in zip(paths, pool.map(work, paths, chunksize=chunk), strict=True):
                    for d in detectors:
                        result[d][p] = o[d]
                    bar.update()
    return result


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------
def ranking_scores(score: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Dense ranks of ``(score, raw)`` pairs (lexicographic; a non-finite ``raw`` ranks
    lowest among equal scores): an ordering-equivalent score with saturation ties broken."""
    s = np.asarray(score, dtype=np.float64)
    r = np.asarray(raw, dtype=np.float64)
    r = np.where(np.isfinite(r), r, -np.inf)
    order = np.lexsort((r, s))
    ss, rr = s[order], r[order]
    new = np.r_[True, (ss[1:] != ss[:-1]) | (rr[1:] != rr[:-1])]
    ranks = np.empty(s.size, dtype=np.float64)
    ranks[order] = np.cumsum(new)
    return ranks


def set_metrics(cover: Sequence[ImageScore], stego: Sequence[ImageScore],
                true_payload: Sequence[float | None]) -> dict[str, Any]:
    """Metrics of one detector on paired cover and stego scores (same order)."""
    if not (len(cover) == len(stego) == len(true_payload)):
        raise ValueError("cover, stego and true_payload must have the same length")
    ok = [i for i in range(len(cover)) if cover[i].error is None and stego[i].error is None]
    res: dict[str, Any] = {"pairs": len(ok), "errors": len(cover) - len(ok)}
    if not ok:
        return res
    c = [cover[i] for i in ok]
    s = [stego[i] for i in ok]
    y = np.r_[np.zeros(len(c)), np.ones(len(s))]
    score = np.array([x.score for x in c + s])
    raw = np.array([x.raw for x in c + s])
    rank = ranking_scores(score, raw)
    fpr, tpr, _ = metrics.roc_curve(y, rank)
    res["auc"] = metrics.roc_auc(y, rank)
    res["p_e"] = metrics.p_e(y, rank)
    for f in FPR_POINTS:
        res[f"tpr_at_{f:g}"] = metrics.tpr_at_fpr(y, rank, f)
    thr = metrics.threshold_at_fpr(y, score, 0.05)
    res["threshold_at_0.05"] = thr if math.isfinite(thr) else None
    res["roc"] = (fpr, tpr)
    est_c = [x.payload for x in c if x.payload is not None]
    if est_c:
        res["cover_payload_mean"] = float(np.mean(est_c))
    pairs = [(x.payload, true_payload[i]) for x, i in zip(s, ok, strict=True)
             if x.payload is not None and true_payload[i] is not None]
    if pairs:
        err = np.array([e - t for e, t in pairs], dtype=np.float64)
        res["payload_mae"] = float(np.mean(np.abs(err)))
        res["payload_bias"] = float(np.mean(err))
        res["true_payload_mean"] = float(np.mean([t for _, t in pairs]))
    return res


@dataclass
class EvaluationReport:
    """Results of :func:`evaluate` (``results``: one dict per detector and set)."""

    detectors: list[str]
    covers: str
    sets: list[dict]
    results: list[dict]
    curves: dict[str, dict[str, tuple[list[float], list[float], float]]]
    scores: list[dict]

    def to_json(self) -> dict:
        return {
            "detectors": self.detectors,
            "covers": self.covers,
            "sets": self.sets,
            "results": self.results,
            "roc": {d: {lab: {"fpr": f, "tpr": t, "auc": a} for lab, (f, t, a) in v.items()}
                    for d, v in self.curves.items()},
        }


def _same_size(a: tuple[int, int] | None, b: tuple[int, int] | None) -> bool:
    return a is None or b is None or a == b


def evaluate(detectors: Sequence[str], covers: Sequence[Path], stego_sets: Sequence[StegoSet],
             *, jobs: int = 1, progress: bool | None = None,
             covers_label: str = "") -> EvaluationReport:
    """Score covers and stego images with every detector and compute the metrics."""
    from ..analysis import available_detectors, is_model_file

    unknown = [d for d in detectors if d not in available_detectors() and not is_model_file(d)]
    if unknown:
        raise KeyError(f"unknown detector {', '.join(unknown)}; available: "
                       f"{', '.join(available_detectors())}")
    for d in detectors:  # load each once, here: a bad model file failed once per image
        if is_model_file(d):
            try:
                _detector(d)
            except Exception as exc:
                raise ValueError(f"{d}: not a trained detector ({type(exc).__name__}; give "
                                 "OUT/detector.safetensors of stegshield train)") from exc
    by_name = {p.stem: p for p in covers}
    if len(by_name) != len(covers):
        raise ValueError("cover names (file stems) must be unique")
    needed: dict[Path, None] = {}
    set_info: list[dict] = []
    paired: list[list[str]] = []
    for s in stego_sets:
        same_name = sorted(n for n in s.items if n in by_name)
        # a corpus has tiles of several sizes with the same names: pair only same sizes (an
        # unreadable header is paired, to be reported as the error it is)
        names = [n for n in same_name
                 if _same_size(header_size(by_name[n]), header_size(s.items[n][0]))]
        paired.append(names)
        set_info.append({"label": s.label, "algo": s.algo, "rate": s.rate, "dir": str(s.root),
                         "target_bps": s.target_bps, "pairs": len(names),
                         "unpaired": len(s.items) - len(names), "flagged": s.flagged,
                         "size_mismatch": len(same_name) - len(names)})
        for n in names:
            needed[by_name[n]] = None
            needed[s.items[n][0]] = None
    if not needed:
        mismatched = sum(i["size_mismatch"] for i in set_info)
        raise ValueError("no stego image has a cover of the same name" + (
            f" and size ({mismatched} share a name with a cover of another size: another "
            "tile size?)" if mismatched else ""))
    scores = score_images(list(needed), detectors, jobs=jobs, progress=progress)
    results: list[dict] = []
    curves: dict[str, dict[str, tuple[list[float], list[float], float]]] = {}
    rows: list[dict] = []
    for d in detectors:
        sc = scores[d]
        curves[d] = {}
        for s, names in zip(stego_sets, paired, strict=True):
            if not names:
                continue
            m = set_metrics([sc[by_name[n]] for n in names], [sc[s.items[n][0]] for n in names],
                            [s.items[n][1] for n in names])
            roc = m.pop("roc", None)
            if roc is not None:
                curves[d][s.label] = (roc[0].tolist(), roc[1].tolist(), m["auc"])
            results.append({"detector": d, "set": s.label, "algo": s.algo, "rate": s.rate,
                            "target_bps": s.target_bps, **m})
        for p, r in sc.items():
            rows.append({"detector": d, "path": str(p), "score": r.score, "raw": r.raw,
                         "payload": r.payload, "error": r.error})
    return EvaluationReport(list(detectors), covers_label, set_info, results, curves, rows)


# --------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------
def _f(v: Any, digits: int = 3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.{digits}f}"


def markdown_report(report: EvaluationReport, title: str = "Detector evaluation") -> str:
    """The report as Markdown: an AUC matrix, then one table per detector."""
    lines = [f"# {title}", ""]
    lines.append(f"Covers: `{report.covers}`; detectors: {', '.join(report.detectors)}. "
                 "Pairs = covers with a stego image of the same name (flagged images left "
                 "out). P_E = min (P_FA + P_MD)/2; TPR at 1 % / 5 % FPR; payload MAE and bias "
                 "against the manifest's achieved payload (bits per sample); cover est = "
                 "mean payload estimate on the covers.")
    lines.append("")
    by = {(r["detector"], r["set"]): r for r in report.results}
    labels = [s["label"] for s in report.sets if s["pairs"]]
    lines.append("## AUC / P_E / payload MAE")
    lines.append("")
    lines.append("| set | pairs | " + " | ".join(report.detectors) + " |")
    lines.append("|---|---:|" + "---|" * len(report.detectors))
    for s in report.sets:
        if not s["pairs"]:
            continue
        cells = []
        for d in report.detectors:
            r = by.get((d, s["label"]), {})
            cells.append(f"{_f(r.get('auc'))} / {_f(r.get('p_e'))} / "
                         f"{_f(r.get('payload_mae'), 4)}")
        lines.append(f"| {s['label']} | {s['pairs']} | " + " | ".join(cells) + " |")
    for d in report.detectors:
        lines += ["", f"## {d}", "",
                  "| set | target bps | pairs | AUC | P_E | TPR@1% | TPR@5% | payload MAE | "
                  "bias | cover est | errors |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for lab in labels:
            r = by.get((d, lab))
            if r is None:
                continue
            lines.append(
                f"| {lab} | {_f(r.get('target_bps'), 4)} | {r['pairs']} | {_f(r.get('auc'))} | "
                f"{_f(r.get('p_e'))} | {_f(r.get('tpr_at_0.01'))} | {_f(r.get('tpr_at_0.05'))} "
                f"| {_f(r.get('payload_mae'), 4)} | {_f(r.get('payload_bias'), 4)} | "
                f"{_f(r.get('cover_payload_mean'), 4)} | {r['errors']} |")
    notes = [s for s in report.sets if s["flagged"] or s["unpaired"]]
    if notes:
        lines += ["", "Left out: " + "; ".join(
            f"{s['label']}: {s['flagged']} flagged, {s['unpaired']} without a cover"
            + (f" ({s['size_mismatch']} of them named like a cover of another size)"
               if s.get("size_mismatch") else "")
            for s in notes) + "."]
    return "\n".join(lines) + "\n"


def write_report(report: EvaluationReport, out_dir: str | os.PathLike, *,
                 title: str = "Detector evaluation", force: bool = False,
                 log: Callable[[str], None] | None = None) -> list[Path]:
    """Write ``report.json``, ``report.md``, ``roc.png`` and ``scores.csv`` to ``out_dir``."""
    from .plots import plot_roc

    out = Path(out_dir)
    files = [out / n for n in ("report.json", "report.md", "roc.png", "scores.csv")]
    if not force:
        for p in files:
            if p.exists():
                raise FileExistsError(f"{p}: already exists (use --force to replace it)")
    out.mkdir(parents=True, exist_ok=True)
    files[0].write_text(json.dumps(report.to_json(), indent=1, sort_keys=True) + "\n")
    files[1].write_text(markdown_report(report, title))
    if any(report.curves.values()):
        plot_roc({d: c for d, c in report.curves.items() if c}, files[2], title)
    else:
        files.pop(2)
    with open(out / "scores.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, ["detector", "path", "score", "raw", "payload", "error"])
        w.writeheader()
        w.writerows(report.scores)
    if log:
        for p in files:
            log(f"wrote {p}")
    return files

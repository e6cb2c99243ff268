"""Measure statistic thresholds for target false-positive rates on clean images.

    python -m stegshield.scan.calibrate DIR... [--detector classical] [--limit N]
    python -m stegshield.scan.calibrate --corpus .cache/corpus/gray [--tile 256] [--photos]
        [--splits train,val] [--evaluate]
    python -m stegshield.scan.calibrate DIR... --detector cnn --fit my-cnn.json

prints JSON: for each fused group, the (1 - FPR) quantile of the clean statistics per FPR,
with every image counted once (``table``) and with every photograph counted once
(``table_per_group``: an image weighs 1 / the number of images of its group; tiles of one
photo are not independent). ``--evaluate`` adds the share of images (and of groups) at or
above the shipped thresholds (:data:`stegshield.scan.thresholds.CLASSICAL_FPR_TABLE`, measured
this way, see ``docs/SCAN.md``): use it on held-out images only.

``--fit FILE`` instead fits a tiled learned detector's image statistic on the clean images
(:mod:`stegshield.analysis.photo_calibration`: a Gumbel law, every photograph weighing the
same; at least 10 images) and writes it to FILE; ``scan --calibration FILE`` then thresholds
with it instead of the shipped fit.  The file names the SHA-256 of the weights it was measured
with, and a scan with other weights refuses it.

``--corpus DIR`` reads a cover corpus built by ``stegshield dataset covers``: its tiles of the
given splits and sizes, or with ``--photos`` its kept source photographs, whole. Images must
be clean (never used to hide anything); the packages reserved for independent evaluation are
refused.
"""

from __future__ import annotations

import argparse
import json
import random
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..datasets.debian import RESERVED_PACKAGES
from ..imaging import ImageError, check_not_input
from .loader import ScanImage, load_for_scan
from .scanner import MIN_PIXELS, MIN_SIDE, Scanner, ScanOptions, iter_image_paths
from .suite import CALIBRATABLE, SuiteError
from .thresholds import classical_threshold

__all__ = ["DEFAULT_FPRS", "corpus_images", "cover_stats", "fit_photos", "load_judgeable",
           "quantile_table"]

DEFAULT_FPRS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)


def _reserved(package: str) -> bool:
    return package.strip().lower() in RESERVED_PACKAGES


def corpus_images(corpus: str | Path, splits: Iterable[str] = ("train", "val"),
                  tiles: Iterable[int] = (), photos: bool = False) -> list[tuple[str, str]]:
    """(path, group) of a cover corpus' tiles (of sizes ``tiles``; all if empty) or, with
    ``photos``, of its kept source photographs, in the given splits."""
    root, keep, sizes = Path(corpus), set(splits), {int(t) for t in tiles}
    out: list[tuple[str, str]] = []
    if not photos:
        for line in (root / "manifest.jsonl").read_text().splitlines():
            r = json.loads(line)
            if r["split"] in keep and (not sizes or int(r["tile"]) in sizes) \
                    and not _reserved(r["package"]):
                out.append((str(root / r["path"]), r["group"]))
        return out
    roots = {p["package"]: Path(p["root"])
             for p in json.loads((root / "packages.json").read_text())}
    seen: set[str] = set()
    for line in (root / "sources.jsonl").read_text().splitlines():
        r = json.loads(line)
        if r.get("kept") and r["split"] in keep and not _reserved(r["package"]):
            path = str(roots[r["package"]] / r["file"])
            if path not in seen:
                seen.add(path)
                out.append((path, r["group"]))
    return out


#: Largest image (pixels) the calibration tools decode.
MAX_PIXELS = 200_000_000


def load_judgeable(path: str | Path) -> ScanImage | str:
    """``path`` decoded as ``scan`` decodes it, or why it cannot be judged (``"unreadable"``,
    ``"too small"``): the clean images every calibration tool measures."""
    try:
        img = load_for_scan(Path(path).read_bytes(), MAX_PIXELS)
    except (OSError, ImageError):
        return "unreadable"
    if img.width * img.height < MIN_PIXELS or min(img.width, img.height) < MIN_SIDE:
        return "too small"
    return img


def cover_stats(paths: Sequence[str], detector: str = "classical",
                indices: list[int] | None = None) -> dict[str, list[float]]:
    """Group statistics of every readable, large-enough image (keyed by group name).

    With ``indices``, the position in ``paths`` of each measured image is appended to it
    (images judged by no group are skipped).
    """
    sc = Scanner(ScanOptions(detector=detector))
    out: dict[str, list[float]] = {g: [] for g in sc.suite.groups}
    for i, p in enumerate(paths):
        img = load_judgeable(p)
        if isinstance(img, str):
            continue
        stats = sc.suite.analyse(img.pixels).stats
        if not all(np.isfinite(v) for v in stats.values()):
            continue
        for g, v in stats.items():
            out[g].append(float(v))
        if indices is not None:
            indices.append(i)
    return out


def fit_photos(items: Sequence[tuple[str, str]], detector: str,
               info: dict[str, object] | None = None) -> tuple[Any, Any]:
    """Fit a tiled learned detector's image statistic on clean images ``(path, group)``
    (:class:`stegshield.analysis.photo_calibration.PhotoCalibration`, each group weighing the
    same); returns ``(fit, detector)``.  Unreadable and too-small images are skipped."""
    from ..analysis import get_detector
    from ..analysis.photo_calibration import PhotoCalibration, file_digest

    if detector not in CALIBRATABLE:
        raise ValueError(f"--fit calibrates one of {', '.join(CALIBRATABLE)}, not {detector!r}")
    try:  # the shipped fit (possibly stale) plays no part in measuring the statistic
        det = get_detector(detector, photo_calibration=False)
    except Exception as exc:  # torch or weights missing, unreadable weights
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"the {detector} detector could not be loaded: {msg}") from exc
    raw: list[float] = []
    groups: list[str] = []
    skipped: Counter[str] = Counter()
    for path, group in items:
        img = load_judgeable(path)
        if isinstance(img, str):
            skipped[img] += 1
            continue
        r = det.detect(img.pixels).raw
        if np.isfinite(r):
            raw.append(float(r))
            groups.append(group)
        else:
            skipped[f"too small for {detector}"] += 1
    try:
        fit = PhotoCalibration.fit(raw, groups, file_digest(det.path),
                                   dict(info or {}, detector=detector,
                                        skipped=dict(sorted(skipped.items()))))
    except ValueError as exc:
        why = ", ".join(f"{n} {k}" for k, n in skipped.items())
        raise ValueError(f"{exc} from {len(items)} files" + (f" ({why})" if why else "")
                         ) from exc
    return fit, det


def quantile_table(scores: Sequence[float], fprs: Sequence[float] = DEFAULT_FPRS,
                   weights: Sequence[float] | None = None) -> list[tuple[float, float]]:
    """(fpr, threshold) pairs: the smallest statistic ``t`` among the images such that the
    images scoring ``>= t`` carry at least ``fpr`` of the weight (unweighted: the
    ``(1 - fpr)`` quantile, method "higher")."""
    arr = np.asarray(scores, dtype=np.float64)
    if weights is None:
        return [(f, float(np.quantile(arr, 1.0 - f, method="higher"))) for f in fprs]
    order = np.argsort(-arr, kind="stable")
    w = np.asarray(weights, dtype=np.float64)[order]
    tail = np.cumsum(w) / w.sum()  # weight of the images scoring >= arr[order][i]
    idx = np.minimum(np.searchsorted(tail, np.asarray(fprs) - 1e-12), len(arr) - 1)
    return [(f, float(arr[order][i])) for f, i in zip(fprs, idx, strict=True)]


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (prints JSON)."""
    ap = argparse.ArgumentParser(prog="python -m stegshield.scan.calibrate",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="*", help="folders (or files) of clean images")
    ap.add_argument("--corpus", action="append", default=[], help="cover corpus folder")
    ap.add_argument("--splits", default="train,val", help="corpus splits (comma-separated)")
    ap.add_argument("--tile", action="append", type=int, default=[], help="corpus tile size")
    ap.add_argument("--photos", action="store_true", help="corpus source photos, not tiles")
    ap.add_argument("--evaluate", action="store_true",
                    help="also the share of images at or above the shipped thresholds")
    ap.add_argument("--detector", default="classical", metavar="NAME",
                    help="the scan detector to measure (default: classical; any scan "
                         "--detector); --fit takes one of " + ", ".join(CALIBRATABLE)
                         + " and at least 10 clean photographs")
    ap.add_argument("--limit", type=int, default=0, help="random sample of this many files")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fit", metavar="FILE",
                    help="fit the detector's image statistic on these clean images (a Gumbel "
                         "law; tiled learned detectors only) and write it to FILE, for "
                         "scan --calibration FILE")
    ap.add_argument("--force", action="store_true", help="replace an existing --fit FILE")
    args = ap.parse_args(argv)
    for d in args.dirs:
        if not Path(d).exists():
            ap.exit(2, f"stegshield.scan.calibrate: {d}: no such file or directory\n")
    if args.fit:
        if args.corpus and args.splits != "val":
            ap.exit(2, "stegshield.scan.calibrate: fit on the corpus' validation photographs "
                       "only (--splits val): the detectors were trained on train, and test is "
                       "for reports\n")
        if args.corpus and not args.photos:
            ap.exit(2, "stegshield.scan.calibrate: --fit describes whole photographs: add "
                       "--photos (tiles are what the shipped tile thresholds measured)\n")
    items = [(str(p), str(p)) for p in iter_image_paths(args.dirs, recursive=True)]
    for c in args.corpus:
        try:
            items += corpus_images(c, args.splits.split(","), args.tile, args.photos)
        except (OSError, ValueError, KeyError) as exc:
            ap.exit(2, f"stegshield.scan.calibrate: {c}: not a cover corpus ({exc})\n")
    if not items:  # a wrong --tile or --splits, or folders without images: nothing measured
        ap.exit(2, "stegshield.scan.calibrate: no images to measure (check the folders, "
                   "--tile and --splits)\n")
    if args.limit and len(items) > args.limit:
        items = random.Random(args.seed).sample(items, args.limit)
    if args.fit:  # never over one of the measured images, nor over a file without --force
        fit_path = Path(args.fit)
        try:
            check_not_input(fit_path, [("calibration image", p) for p, _ in items])
        except ImageError as exc:
            ap.exit(2, f"stegshield.scan.calibrate: {exc}\n")
        if fit_path.exists() and not args.force:
            ap.exit(2, f"stegshield.scan.calibrate: {fit_path}: already exists (use --force to "
                       "replace it)\n")
        import datetime as dt
        import sys

        try:
            fit, det = fit_photos(items, args.detector, {
                "sources": [str(d) for d in args.dirs] + list(args.corpus),
                "command": "python -m stegshield.scan.calibrate "
                           + " ".join(sys.argv[1:] if argv is None else argv),
                "date": dt.date.today().isoformat()})
        except ValueError as exc:
            ap.exit(2, f"stegshield.scan.calibrate: {exc}\n")
        try:
            out = fit.write(args.fit)
        except OSError as exc:
            ap.exit(2, f"stegshield.scan.calibrate: cannot write {args.fit}: "
                       f"{exc.strerror or exc}\n")
        print(json.dumps({"fit": str(out), "detector": args.detector, "model": det.path.name,
                          "mu": fit.mu, "beta": fit.beta, "files": fit.info["files"],
                          "photos": fit.info["photos"], "skipped": fit.info["skipped"],
                          "thresholds": {f"{f:g}": fit.raw_at_fpr(f) for f in DEFAULT_FPRS}},
                         indent=1))
        return
    measured: list[int] = []
    try:
        scores = cover_stats([p for p, _ in items], args.detector, measured)
    except SuiteError as exc:
        ap.exit(2, f"stegshield.scan.calibrate: {exc}\n")
    groups = [items[i][1] for i in measured]
    size = Counter(groups)
    weights = [1.0 / size[g] for g in groups]
    report = {}
    for g, v in scores.items():
        entry: dict[str, object] = {"n": len(v), "groups": len(size)}
        if v:
            entry["table"] = quantile_table(v)
            entry["table_per_group"] = quantile_table(v, weights=weights)
        if v and args.evaluate and g == "classical":
            arr, w = np.asarray(v), np.asarray(weights)
            rows = []
            for f in DEFAULT_FPRS:
                hit = arr >= classical_threshold(f)
                rows.append({"fpr": f, "threshold": round(classical_threshold(f), 4),
                             "images": int(hit.sum()), "rate": float(hit.mean()),
                             "rate_per_group": float(w[hit].sum() / w.sum())})
            entry["evaluation"] = rows
        report[g] = entry
    print(json.dumps(report, indent=1))


if __name__ == "__main__":  # pragma: no cover
    main()

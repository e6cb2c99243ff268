"""Measure score thresholds for target false-positive rates on a folder of clean images.

    python -m stegshield.scan.calibrate DIR... [--detector classical] [--limit N]

prints, for each FPR, the group statistic exceeded by that fraction of the images (the values of
:data:`stegshield.scan.thresholds.CLASSICAL_FPR_TABLE` were measured this way; see
``docs/SCAN.md``). The images must be clean (never used to hide anything).
"""

from __future__ import annotations

import argparse
import json
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..imaging import ImageError
from .loader import load_for_scan
from .scanner import MIN_PIXELS, MIN_SIDE, Scanner, ScanOptions, iter_image_paths

__all__ = ["DEFAULT_FPRS", "cover_stats", "quantile_table"]

DEFAULT_FPRS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2)


def cover_stats(paths: Sequence[str], detector: str = "classical") -> dict[str, list[float]]:
    """Group statistics of every readable, large-enough image (keyed by group name)."""
    sc = Scanner(ScanOptions(detector=detector, threshold=0.5))
    out: dict[str, list[float]] = {g: [] for g in sc.suite.groups}
    for p in paths:
        try:
            img = load_for_scan(Path(p).read_bytes())
        except (OSError, ImageError):
            continue
        if img.width * img.height < MIN_PIXELS or min(img.width, img.height) < MIN_SIDE:
            continue
        for g, v in sc.suite.analyse(img.pixels).stats.items():
            if np.isfinite(v):
                out[g].append(float(v))
    return out


def quantile_table(scores: Sequence[float], fprs: Sequence[float] = DEFAULT_FPRS
                   ) -> list[tuple[float, float]]:
    """(fpr, threshold) pairs: the (1 - fpr) quantile of the clean statistics."""
    arr = np.asarray(scores, dtype=np.float64)
    return [(f, float(np.quantile(arr, 1.0 - f, method="higher"))) for f in fprs]


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point (prints JSON)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dirs", nargs="+")
    ap.add_argument("--detector", default="classical")
    ap.add_argument("--limit", type=int, default=0, help="random sample of this many files")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    files = [str(p) for p in iter_image_paths(args.dirs, recursive=True)]
    if args.limit and len(files) > args.limit:
        files = random.Random(args.seed).sample(files, args.limit)
    scores = cover_stats(files, args.detector)
    report = {g: {"n": len(v), "table": quantile_table(v) if v else []}
              for g, v in scores.items()}
    print(json.dumps(report, indent=1))


if __name__ == "__main__":  # pragma: no cover
    main()

"""Detection rates on whole photographs at the scanner's own thresholds, group against group.

    python scripts/eval_photos.py --split test [--groups classical structural] [--embed lsbm]
    python scripts/eval_photos.py --split val --groups classical classical+srm-lsbm

A group ``A+B`` fuses those groups in one suite, as ``scan`` would (Bonferroni over them).

For every kept source photograph of the split (decoded as a scan decodes it, colour kept), LSB
replacement (or matching, ``--embed lsbm``) is embedded at each rate over the whole image
(random positions, seeded per photo),
and each group's estimated FPR (``scan``'s calibration) is computed alone, as
``scan --detector GROUP`` would.  Prints, per target FPR, the share of photos at or below it
(per file / per photograph): rate 0 is the measured false-positive rate.  Used for the
"Why `structural` is not in `auto`" measurement and the whole-photo numbers of `fused` in
docs/SCAN.md; the test split is for reports only, never for choosing anything.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from stegshield.analysis.synthetic import lsb_match, lsb_replace  # noqa: E402
from stegshield.scan.calibrate import corpus_images, load_judgeable  # noqa: E402
from stegshield.scan.suite import (  # noqa: E402
    CLASSICAL,
    LINEAR,
    Suite,
    _learned,
    _linear,
    _make,
    build_suite,
)


def _suite(spec: str) -> Suite:
    """``build_suite(spec)``, or for ``A+B...`` the groups A, B, ... fused in one suite as
    ``scan`` would fuse them (Bonferroni over the groups; rates from ``Analysis.fpr``)."""
    if "+" not in spec:
        return build_suite(spec)
    members = []
    for part in spec.split("+"):
        if part == "classical":
            members += [_make(n, "classical") for n in CLASSICAL]
        elif part in LINEAR:
            members.append(_linear(part))
        else:
            members.append(_learned(part))
    return Suite(mode=spec, members=members)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / ".cache/corpus/gray"))
    ap.add_argument("--split", default="test")
    ap.add_argument("--groups", nargs="+", default=["classical", "structural"])
    ap.add_argument("--rates", type=float, nargs="+", default=[0.0, 0.02, 0.05, 0.1])
    ap.add_argument("--fprs", type=float, nargs="+", default=[0.01, 0.05])
    ap.add_argument("--embed", choices=("lsbr", "lsbm"), default="lsbr")
    ap.add_argument("--limit", type=int, default=None, help="At most this many files.")
    args = ap.parse_args()
    embed = lsb_replace if args.embed == "lsbr" else lsb_match
    suites = {g: _suite(g) for g in args.groups}
    seconds = dict.fromkeys(args.groups, 0.0)
    rows: list[tuple[str, dict[tuple[str, float], float]]] = []
    for i, (path, group) in enumerate(corpus_images(args.corpus, (args.split,), photos=True)):
        if args.limit is not None and len(rows) >= args.limit:
            break
        img = load_judgeable(path)
        if isinstance(img, str):
            continue
        rec = {}
        for r in args.rates:
            x = img.pixels if r == 0 else embed(img.pixels, r,
                                                np.random.default_rng([i, round(r * 1000)]))
            for g, s in suites.items():
                t0 = time.perf_counter()
                ana = s.analyse(x)
                seconds[g] += time.perf_counter() - t0
                rec[g, r] = ana.fpr if "+" in g else ana.fprs[g]
        rows.append((group, rec))
    per = Counter(g for g, _ in rows)
    w = np.array([1.0 / per[g] for g, _ in rows])
    print(f"{args.split}: {len(rows)} files, {len(per)} photographs, {args.embed}; seconds "
          "per group (all rates): " + ", ".join(f"{g} {t:.1f}" for g, t in seconds.items()))
    for f in args.fprs:
        cells = []
        for g in args.groups:
            for r in args.rates:
                hit = np.array([rec[g, r] <= f for _, rec in rows])
                cells.append(f"{g}@{r:g} {hit.mean():.3f}/{(w * hit).sum() / w.sum():.3f}")
        print(f"FPR {f:g}: " + "  ".join(cells))


if __name__ == "__main__":
    main()

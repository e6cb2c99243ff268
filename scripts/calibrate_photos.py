"""Fit the image statistic of the tiled learned detectors on whole clean validation photographs.

    python scripts/calibrate_photos.py [--detectors cnn ...] [--write] [--bench]

Per detector: its statistic on every clean validation photograph (``scripts/photo_stats.py``,
cached under ``out/photo-stats``), a Gumbel fit in which every source photograph weighs the
same (:mod:`stegshield.analysis.photo_calibration`), and, beside the tile thresholds the
scanner used before, how the thresholds carry over to photographs they were not set on:

* leave one package out, on validation: refit without a package's photographs and apply the
  thresholds to them (share of its photographs flagged, pooled over packages);
* the test split, reported only (never used to choose): clean photographs flagged, and LSB
  matching over the whole photograph at 0.1 / 0.2 / 0.4 bpp detected, at 1 %.

``--write`` saves each fit beside the model's weights (``<model>.photos.json``, which
``scan`` then uses); ``--bench`` writes ``BENCHMARKS.md`` ``## Photo calibration``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from photo_stats import photo_stats  # noqa: E402

from stegshield.analysis import get_detector  # noqa: E402
from stegshield.analysis.photo_calibration import (  # noqa: E402
    MIN_PHOTOS,
    PhotoCalibration,
    file_digest,
    photo_weights,
    sidecar_path,
)
from stegshield.reporting import machine_description, replace_section  # noqa: E402

CARD_HEADING = "## Thresholds on whole photographs"
TILED = ("cnn", "fused", "cnn-thorough", "fused-thorough", "pretrained")
FPRS = (0.01, 0.05)
RATES = (0.1, 0.2, 0.4)


def _arrays(res: dict) -> tuple[np.ndarray, list[str], list[str]]:
    rows = [r for r in res["rows"] if np.isfinite(r["raw"])]
    return (np.array([r["raw"] for r in rows]), [r["group"] for r in rows],
            [r["package"] for r in rows])


def _share(raw: np.ndarray, groups: list[str], thr: float) -> tuple[float, float]:
    """(per photograph, per file) share of images with ``raw >= thr``."""
    hit = raw >= thr
    w = photo_weights(groups)
    return float((w * hit).sum() / w.sum()), float(hit.mean())


def leave_one_package_out(raw: np.ndarray, groups: list[str], packages: list[str],
                          fpr: float) -> float:
    """Share of photographs flagged when each package's threshold is fitted without it
    (photograph-weighted, pooled over packages)."""
    flagged = total = 0.0
    pk = np.array(packages)
    for p in sorted(set(packages)):
        out = pk == p
        rest = [g for g, o in zip(groups, out, strict=True) if not o]
        if len(set(rest)) < MIN_PHOTOS:
            continue
        cal = PhotoCalibration.fit(raw[~out], rest, "")
        held = [g for g, o in zip(groups, out, strict=True) if o]
        w = photo_weights(held)
        flagged += float((w * (raw[out] >= cal.raw_at_fpr(fpr))).sum())
        total += float(w.sum())
    return flagged / total if total else float("nan")


def _card_section(cal: PhotoCalibration, model: Path, rows: list[str]) -> str:
    """The model card's section on the photograph calibration."""
    return (f"{CARD_HEADING}\n\n"
            f"`scan` thresholds this model's image statistic with a Gumbel law fitted on "
            f"{cal.info['files']} clean validation files ({cal.info['photos']} photographs, "
            f"each weighing the same): mu {cal.mu:.3f}, beta {cal.beta:.3f}, so "
            f"{cal.raw_at_fpr(0.01):.2f} at 1 % and {cal.raw_at_fpr(0.05):.2f} at 5 % "
            f"(`{sidecar_path(model).name}`; "
            f"`{cal.info['command']}`, {cal.info['date']}).\n\n"
            "| detector | thresholds from | val, one package held out: FPR at 1 % / 5 % "
            "(photos) | test clean: FPR at 1 % / 5 % (files) | test LSBM 0.1 / 0.2 / 0.4 bpp "
            "detected at 1 % |\n|---|---|---|---|---|\n" + "\n".join(rows) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / ".cache/corpus/gray"))
    ap.add_argument("--detectors", nargs="+", default=list(TILED), choices=TILED)
    ap.add_argument("--out", default=str(ROOT / "out/photo-stats"))
    ap.add_argument("--no-test", action="store_true", help="Skip the test-split report.")
    ap.add_argument("--write", action="store_true", help="Save the fits beside the weights.")
    ap.add_argument("--bench", action="store_true", help="Write BENCHMARKS.md's section.")
    args = ap.parse_args()
    if args.bench and (set(args.detectors) != set(TILED) or args.no_test):
        ap.error("--bench writes the whole section: give every detector and the test split")
    out = Path(args.out)
    test_counts: list[str] = []
    command = "python " + " ".join(shlex.quote(a) for a in
                                   [str(Path(sys.argv[0]).relative_to(ROOT)
                                        if Path(sys.argv[0]).is_absolute() else sys.argv[0]),
                                    *sys.argv[1:]])
    lines = [
        "| detector | thresholds from | val, one package held out: FPR at 1 % / 5 % "
        "(photos) | test clean: FPR at 1 % / 5 % (files) | test LSBM 0.1 / 0.2 / 0.4 bpp "
        "detected at 1 % |",
        "|---|---|---|---|---|",
    ]
    decisions: list[str] = []
    for name in args.detectors:
        det = get_detector(name, photo_calibration=False)  # a stale fit must not block a refit
        val = photo_stats(name, "val", args.corpus, out)
        raw, groups, packages = _arrays(val)
        cal = PhotoCalibration.fit(raw, groups, file_digest(det.path), {
            "split": "val", "corpus": Path(args.corpus).name,
            "packages": dict(sorted(Counter(packages).items())),
            "command": command, "date": dt.date.today().isoformat(),
        })
        lopo = {f: leave_one_package_out(raw, groups, packages, f) for f in FPRS}
        tile_thr = {f: det.tile_raw_at_fpr(f) for f in FPRS}
        tile_val = {f: _share(raw, groups, tile_thr[f])[0] for f in FPRS}
        cal.info["lopo_fpr"] = {f"{f:g}": round(v, 4) for f, v in lopo.items()}
        print(f"{name}: {cal.info['files']} files, {cal.info['photos']} photographs; "
              f"Gumbel mu {cal.mu:.3f} beta {cal.beta:.3f}; thresholds "
              + ", ".join(f"{f:g}: {cal.raw_at_fpr(f):.2f} (tiles {tile_thr[f]:.2f})"
                          for f in FPRS))
        cells: dict[str, list[str]] = {"tiles": [], "photos": []}
        cells["tiles"].append(" / ".join(f"{tile_val[f]:.3f}" for f in FPRS) + " (none held "
                              "out)")
        cells["photos"].append(" / ".join(f"{lopo[f]:.3f}" for f in FPRS))
        if not args.no_test:
            test = photo_stats(name, "test", args.corpus, out)
            traw, tgroups, _ = _arrays(test)
            test_counts.append(f"{len(traw)} clean files ({len(set(tgroups))} photographs)")
            stego = {r: _arrays(photo_stats(name, "test", args.corpus, out, "lsbm", r))[0]
                     for r in RATES}
            for kind, thr in (("tiles", tile_thr), ("photos",
                                                    {f: cal.raw_at_fpr(f) for f in FPRS})):
                cells[kind].append(" / ".join(f"{_share(traw, tgroups, thr[f])[1]:.3f}"
                                              for f in FPRS))
                cells[kind].append(" / ".join(f"{float((stego[r] >= thr[0.01]).mean()):.3f}"
                                              for r in RATES))
        else:
            for kind in cells:
                cells[kind] += ["", ""]
        needed = any(tile_val[f] > f for f in FPRS)
        for kind, label in (("tiles", "validation tiles" + (" (before)" if needed else "")),
                            ("photos", "validation photographs (Gumbel"
                             + ("" if needed else ", not shipped") + ")")):
            lines.append(f"| `{name}` | {label} | " + " | ".join(cells[kind]) + " |")
        # the fit replaces the tile thresholds only where those fail on the validation
        # photographs (``needed``): a Gumbel fitted to a body skewed the other way (pretrained:
        # clean photographs far below the tile thresholds) puts its tail beyond all the data
        decisions.append(f"`{name}`: " + (
            "photo fit shipped (the tile thresholds flag " if needed else
            "tile thresholds kept (they flag ")
            + " / ".join(f"{tile_val[f]:.3f}" for f in FPRS)
            + " of the validation photographs at 1 % / 5 %)")
        if args.write:
            card = Path(det.path).with_suffix(".md")
            if needed:
                print(f"  wrote {cal.save(det.path)}")
                if card.exists():
                    replace_section(card, CARD_HEADING,
                                    _card_section(cal, Path(det.path), lines[-2:]))
            elif sidecar_path(det.path).exists():
                sidecar_path(det.path).unlink()
                print(f"  removed {sidecar_path(det.path)}")
    table = "\n".join(lines)
    print(table)
    print("\n".join(decisions))
    if args.bench:
        text = ("## Photo calibration\n\n"
                f"Command: `{command}`  \nMachine: {machine_description()}  \n"
                f"Date: {dt.date.today().isoformat()}\n\n"
                "The scanner's threshold on a tiled detector's image statistic (largest tile "
                "score, size-corrected), set two ways: from validation cover tiles (before) and "
                "from a Gumbel fit of the statistic on whole clean validation photographs, each "
                "photograph weighing the same (now shipped as `<model>.photos.json`). The "
                "held-out columns refit without one package and apply the thresholds to it, so "
                "the tile row's validation column is not held out (its thresholds come from the "
                "same photographs' tiles) and the photo row's is. "
                f"Test: {test_counts[0] if test_counts else '-'}; LSB matching over the whole "
                "photograph, random positions, seeded per photo.\n\n" + table + "\n\n"
                + "\n".join(f"* {d}" for d in decisions) + "\n")
        replace_section(ROOT / "BENCHMARKS.md", "## Photo calibration", text)


if __name__ == "__main__":
    main()

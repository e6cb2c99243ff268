"""Image statistics (``raw``) of learned detectors on whole clean photographs of a split.

    python scripts/photo_stats.py --split val [--detectors cnn cnn-thorough ...]

For every kept source photograph of the split (decoded as ``scan`` decodes it, colour kept),
each detector's ``detect(pixels).raw`` -- the statistic the scanner thresholds -- and, for the
tiled detectors, every plane's tile scores (``tiles``).  Results are
cached per detector, weight digest and split under ``out/photo-stats/`` (JSON: file, group,
package, raw, pixels), so calibration (:mod:`scripts.calibrate_photos`) and reports can rerun
without rescanning.  Clean photographs only; the reserved packages are refused by
:func:`stegshield.scan.calibrate.corpus_images`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import numpy as np  # noqa: E402

from stegshield.analysis import get_detector, split_channels  # noqa: E402
from stegshield.analysis.cnn.calibration import max_tile_result  # noqa: E402
from stegshield.analysis.synthetic import lsb_match, lsb_replace  # noqa: E402
from stegshield.scan.calibrate import corpus_images, load_judgeable  # noqa: E402

#: The tiled detectors (largest tile, size-corrected), which take a photo calibration.
TILED = ("cnn", "cnn-thorough", "fused", "fused-thorough", "pretrained")
DETECTORS = ("cnn", "cnn-thorough", "fused", "fused-thorough", "srm", "srm-lsbm", "spam",
             "structural", "pretrained")


def _digest(det: object) -> str:
    """SHA-256 prefix over the detector's weight files (CNN, fusion members, linear model)."""
    paths = []
    for obj in (det, getattr(det, "cnn", None), *getattr(det, "linear", [])):
        p = getattr(obj, "path", None)
        if p is not None:
            paths.append(Path(p))
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def photo_stats(name: str, split: str, corpus: str, out_dir: Path, embed: str = "none",
                rate: float = 0.0) -> dict:
    """Measure (or read from the cache) ``name``'s statistic on every photo of ``split``,
    clean or (``embed`` ``lsbm``/``lsbr`` at ``rate`` bpp) with random ±1 / LSB changes over
    the whole image, seeded per photo as ``scripts/eval_photos.py`` does."""
    # the statistic does not depend on the thresholds; never load a (possibly stale) fit
    det = get_detector(name, **({"photo_calibration": False} if name in TILED else {}))
    key = f"{split}-{name}-{_digest(det)}"
    if embed != "none" and rate > 0:
        key += f"-{embed}{rate:g}"
    cache = out_dir / f"{key}.json"
    tiled = hasattr(det, "plane_map")
    if cache.exists():
        old = json.loads(cache.read_text())
        if not tiled or all("tiles" in r for r in old["rows"]):
            return old
    rows = []
    items = corpus_images(corpus, (split,), photos=True)
    roots = {p["root"]: p["package"]
             for p in json.loads((Path(corpus) / "packages.json").read_text())}
    t0 = time.time()
    for i, (path, group) in enumerate(items):
        img = load_judgeable(path)
        if isinstance(img, str):
            continue
        x = img.pixels
        if embed != "none" and rate > 0:
            fn = lsb_match if embed == "lsbm" else lsb_replace
            x = fn(x, rate, np.random.default_rng([i, round(rate * 1000)]))
        row: dict = {"file": str(path), "pixels": int(img.pixels.size), "group": group,
                     "package": next((pk for root, pk in roots.items()
                                      if path.startswith(root + "/")), "?")}
        if tiled:  # every plane's tile scores too, for other aggregations
            maps = [det.plane_map(p) for p in split_channels(x)]
            row["raw"] = float(max_tile_result(maps, det.tail_slope, det.calibration).raw)
            row["tiles"] = [round(float(v), 4) for m in maps for v in m.ravel()
                            if np.isfinite(v)]
        else:
            row["raw"] = float(det.detect(x).raw)
        rows.append(row)
        print(f"\r{name} {split}: {i + 1}/{len(items)} ({time.time() - t0:.0f} s)",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    out = {"detector": name, "split": split, "corpus": str(corpus), "key": key,
           "embed": embed if rate > 0 else "none", "rate": rate if embed != "none" else 0.0,
           "seconds": round(time.time() - t0, 1), "rows": rows}
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(cache)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / ".cache/corpus/gray"))
    ap.add_argument("--split", default="val")
    ap.add_argument("--detectors", nargs="+", default=list(DETECTORS))
    ap.add_argument("--out", default=str(ROOT / "out/photo-stats"))
    ap.add_argument("--embed", choices=("none", "lsbm", "lsbr"), default="none")
    ap.add_argument("--rates", type=float, nargs="+", default=[0.0],
                    help="Embedding rates in bpp (0 = the clean photographs).")
    args = ap.parse_args()
    for name in args.detectors:
        for rate in args.rates:
            res = photo_stats(name, args.split, args.corpus, Path(args.out), args.embed, rate)
            print(f"{name} {args.split}: {len(res['rows'])} files, {res['seconds']} s "
                  f"-> {res['key']}")


if __name__ == "__main__":
    main()

"""Fit the structural detectors' score calibration on the validation split; check it on test.

Scores are P(stego | raw statistic) for a 50/50 mix of clean covers and LSB-replacement stego at
0.05, 0.1 and 0.2 bits per pixel (equal shares), fitted by logistic regression on the
validation split and checked on the test split (expected calibration error, Brier score).
The printed constants go into each detector module's ``DEFAULT_CALIBRATION``.

    stegshield dataset stego --covers .cache/corpus/gray --split val --tile 256 \\
        --out .cache/stego2/val256 --algo lsbr --rate 0.05,0.1,0.2
    python scripts/calibrate_structural.py --val-stego .cache/stego2/val256 \\
        --test-stego .cache/stego2/test256
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stegshield.analysis import get_detector
from stegshield.analysis.base import Calibration
from stegshield.imaging import open_image

RATES = ("0.05", "0.1", "0.2")


def raw_scores(name: str, covers: Path, stego: Path) -> tuple[np.ndarray, np.ndarray]:
    det = get_detector(name)
    paths = sorted(covers.glob("*.png"))
    x, y = [], []
    for p in paths:
        x.append(det.detect(open_image(p).pixels).raw)
        y.append(0)
    for rate in RATES:
        for p in paths:
            q = stego / "lsbr" / rate / p.name
            if q.exists():
                x.append(det.detect(open_image(q).pixels).raw)
                y.append(1)
    x_arr, y_arr = np.array(x), np.array(y, dtype=float)
    # equal weight to both classes: repeat the covers to balance the three stego rates
    reps = np.where(y_arr == 0, len(RATES), 1)
    return np.repeat(x_arr, reps), np.repeat(y_arr, reps)


def ece(p: np.ndarray, y: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.mean() * abs(p[sel].mean() - y[sel].mean())
    return float(total)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", type=Path, default=Path(".cache/corpus/gray"))
    ap.add_argument("--val-stego", type=Path, required=True)
    ap.add_argument("--test-stego", type=Path, required=True)
    args = ap.parse_args()
    print("| detector | a | b | val ECE (fitted / shipped before) | test ECE (fitted / before) "
          "| test Brier (fitted / before) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in ("ws", "spa", "rs"):
        xv, yv = raw_scores(name, args.corpus / "val" / "256", args.val_stego)
        xt, yt = raw_scores(name, args.corpus / "test" / "256", args.test_stego)
        cal = Calibration.fit(xv, yv)
        old = get_detector(name).calibration  # type: ignore[attr-defined]
        pv, pt = np.vectorize(cal)(xv), np.vectorize(cal)(xt)
        ov, ot = np.vectorize(old)(xv), np.vectorize(old)(xt)
        print(f"| {name} | {cal.a:.4f} | {cal.b:.4f} | {ece(pv, yv):.3f} / {ece(ov, yv):.3f} | "
              f"{ece(pt, yt):.3f} / {ece(ot, yt):.3f} | {np.mean((pt - yt) ** 2):.3f} / "
              f"{np.mean((ot - yt) ** 2):.3f} |")


if __name__ == "__main__":
    main()

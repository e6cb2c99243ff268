#!/usr/bin/env python3
"""Throughput (and optionally accuracy) of the structural detectors.

    python scripts/bench_structural.py                 # 256x256 gray, 1 and 2 processes
    python scripts/bench_structural.py --accuracy      # + payload errors / AUC on synthetic covers

Throughput is images per second of ``detector.detect`` on pre-generated
synthetic covers (single process, then ``--workers`` processes each running
the same loop; the figure for several workers is total images / wall time).
Numbers depend on machine load: run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time

import numpy as np

from stegshield.analysis import available_detectors, get_detector
from stegshield.analysis.metrics import roc_auc
from stegshield.analysis.synthetic import lsb_match, lsb_replace, synthetic_cover


def _covers(n: int, size: int, channels: int | None, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [synthetic_cover(rng, (size, size), channels=channels) for _ in range(n)]


def _loop(args: tuple[str, int, int, int | None, float]) -> int:
    name, n, size, channels, seconds = args
    det = get_detector(name)
    images = _covers(8, size, channels, seed=n)
    for im in images[:2]:
        det.detect(im)  # warm-up
    done, t0 = 0, time.perf_counter()
    while done < n or time.perf_counter() - t0 < seconds:
        det.detect(images[done % len(images)])
        done += 1
    return done


def throughput(name: str, n: int, size: int, channels: int | None, workers: int) -> float:
    """Images per second with ``workers`` processes."""
    jobs = [(name, n, size, channels, 1.0)] * workers
    t0 = time.perf_counter()
    if workers == 1:
        done = _loop(jobs[0])
    else:
        with mp.get_context("spawn").Pool(workers) as pool:
            # exclude pool start-up: time only the work (each worker warms up itself)
            pool.map(_loop, [(name, 4, size, channels, 0.0)] * workers)
            t0 = time.perf_counter()
            done = sum(pool.map(_loop, jobs))
    return done / (time.perf_counter() - t0)


def accuracy(n: int, size: int) -> None:
    """Payload MAE on LSB replacement and AUCs (replacement / matching at 0.1 bpp)."""
    rng = np.random.default_rng(123)
    covers = _covers(n, size, None, seed=123)
    rep = {r: [lsb_replace(c, r, rng) for c in covers] for r in (0.1, 0.2, 0.4)}
    mat = [lsb_match(c, 0.1, rng) for c in covers]
    y = np.r_[np.zeros(n), np.ones(n)]
    print(f"\naccuracy on {n} synthetic {size}x{size} covers (random-position embedding)")
    print(
        f"{'detector':>10} {'cover mean':>10} {'MAE .1':>8} {'MAE .2':>8} {'MAE .4':>8}"
        f" {'AUC lsbr.1':>10} {'AUC lsbm.1':>10}"
    )
    for name in ("ws", "spa", "rs"):
        det = get_detector(name)
        c = np.array([det.detect(x).raw for x in covers])
        maes = [np.mean([abs(det.detect(x).raw - r) for x in ims]) for r, ims in rep.items()]
        s1 = np.array([det.detect(x).raw for x in rep[0.1]])
        m1 = np.array([det.detect(x).raw for x in mat])
        print(
            f"{name:>10} {c.mean():>10.4f} "
            + " ".join(f"{m:>8.4f}" for m in maes)
            + f" {roc_auc(y, np.r_[c, s1]):>10.3f} {roc_auc(y, np.r_[c, m1]):>10.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=300, help="minimum images per process")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--rgb", action="store_true", help="3-channel covers")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--accuracy", action="store_true")
    a = ap.parse_args()
    ch = 3 if a.rgb else None
    kind = "RGB" if a.rgb else "gray"
    print(f"throughput, {a.size}x{a.size} {kind}, images/s")
    extra = f" {f'{a.workers} processes':>12}" if a.workers > 1 else ""
    print(f"{'detector':>10} {'1 process':>10}{extra}")
    for name in available_detectors():
        one = throughput(name, a.n, a.size, ch, 1)
        many = throughput(name, a.n, a.size, ch, a.workers) if a.workers > 1 else None
        print(f"{name:>10} {one:>10.0f}" + (f" {many:>12.0f}" if many is not None else ""))
    if a.accuracy:
        accuracy(40, a.size)


if __name__ == "__main__":
    main()

"""Image statistics other than the largest tile, compared on validation photographs.

    python scripts/compare_aggregations.py [--detectors cnn ...]

For each tiled detector, four ways to turn a photograph's tile scores into one statistic --
the largest tile minus ln(n)/a (shipped), the mean, the mean of the top quarter, the median --
and two laws fitted to the clean validation photographs (Gumbel, normal; each photograph
weighing the same), plus the Bonferroni combinations of the largest tile with the mean and
with the top-quarter mean (``2 min(p_max, p_other)``).  Prints the false-positive rate with
one package held out (1 % / 5 %) and the share of validation photographs with LSB matching at
0.1 / 0.2 / 0.4 bpp over the whole image caught at 1 % and 5 %.  Validation only: this is a
design choice.  The tile scores come from ``scripts/photo_stats.py`` (cached).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.stats import norm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "scripts"))

from photo_stats import photo_stats  # noqa: E402

from stegshield.analysis import get_detector  # noqa: E402
from stegshield.analysis.photo_calibration import fit_gumbel, photo_weights  # noqa: E402

RATES = (0.1, 0.2, 0.4)


class Law:
    """A location-scale law fitted with photograph weights: ``thr(f)`` and ``p(x)``."""

    def __init__(self, kind: str, x: np.ndarray, w: np.ndarray) -> None:
        self.kind = kind
        if kind == "gumbel":
            self.loc, self.scale = fit_gumbel(x, w)
        else:
            w = w / w.sum()
            self.loc = float((w * x).sum())
            self.scale = math.sqrt(float((w * (x - self.loc) ** 2).sum()))

    def thr(self, f: float) -> float:
        if self.kind == "gumbel":
            return self.loc - self.scale * math.log(-math.log1p(-f))
        return self.loc + self.scale * float(norm.isf(f))

    def p(self, x: np.ndarray) -> np.ndarray:
        z = (np.asarray(x) - self.loc) / self.scale
        return -np.expm1(-np.exp(-z)) if self.kind == "gumbel" else norm.sf(z)


def _hits(kind: str, k: str, stat: dict[str, np.ndarray], groups: list[str],
          fit: np.ndarray, test: dict[str, np.ndarray], f: float) -> np.ndarray:
    """Which ``test`` statistics alert at ``f`` under the law fitted on ``stat[.][fit]``."""
    w = photo_weights([g for g, m in zip(groups, fit, strict=True) if m])
    if "+" in k:  # Bonferroni over two statistics
        a, b = k.split("+")
        la, lb = Law(kind, stat[a][fit], w), Law(kind, stat[b][fit], w)
        return 2 * np.minimum(la.p(test[a]), lb.p(test[b])) <= f
    return test[k] >= Law(kind, stat[k][fit], w).thr(f)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--corpus", default=str(ROOT / ".cache/corpus/gray"))
    ap.add_argument("--detectors", nargs="+",
                    default=["cnn", "fused", "cnn-thorough", "fused-thorough"])
    ap.add_argument("--out", default=str(ROOT / "out/photo-stats"))
    args = ap.parse_args()
    print("| detector | law | statistic | FPR, one package held out, 1 % / 5 % | "
          "LSBM 0.1 / 0.2 / 0.4 caught at 1 % | at 5 % |")
    print("|---|---|---|---|---|---|")
    for name in args.detectors:
        det = get_detector(name)
        a = det.tail_slope
        aggs: dict[str, Callable[[list[float]], float]] = {
            "max": lambda t, a=a: max(t) - math.log(len(t)) / a,
            "mean": lambda t: float(np.mean(t)),
            "top25": lambda t: float(np.mean(sorted(t)[-max(1, len(t) // 4):])),
            "median": lambda t: float(np.median(t)),
        }
        clean = photo_stats(name, "val", args.corpus, Path(args.out))["rows"]
        stego = {r: photo_stats(name, "val", args.corpus, Path(args.out), "lsbm", r)["rows"]
                 for r in RATES}
        groups = [r["group"] for r in clean]
        packages = np.array([r["package"] for r in clean])
        stat = {k: np.array([fn(r["tiles"]) for r in clean]) for k, fn in aggs.items()}
        sstat = {k: {r: np.array([fn(row["tiles"]) for row in stego[r]]) for r in RATES}
                 for k, fn in aggs.items()}
        for kind in ("gumbel", "normal"):
            for k in [*aggs, "max+mean", "max+top25"]:
                lopo = []
                for f in (0.01, 0.05):
                    flagged = total = 0.0
                    for p in sorted(set(packages)):
                        out = packages == p
                        w = photo_weights([g for g, m in zip(groups, out, strict=True) if m])
                        held = {s: stat[s][out] for s in stat}
                        flagged += float((w * _hits(kind, k, stat, groups, ~out, held, f)
                                          ).sum())
                        total += float(w.sum())
                    lopo.append(flagged / total)
                every = np.ones(len(clean), bool)
                caught = {f: [float(_hits(kind, k, stat, groups, every,
                                          {s: sstat[s][r] for s in sstat}, f).mean())
                              for r in RATES] for f in (0.01, 0.05)}
                print(f"| `{name}` | {kind} | {k} | {lopo[0]:.3f} / {lopo[1]:.3f} | "
                      + " / ".join(f"{v:.3f}" for v in caught[0.01]) + " | "
                      + " / ".join(f"{v:.3f}" for v in caught[0.05]) + " |")


if __name__ == "__main__":
    main()

"""Figures for evaluation reports (matplotlib, Agg canvas, no pyplot global state)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

__all__ = ["plot_roc"]

#: ``curves[detector][set label] = (fpr, tpr, auc)``
Curves = Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float], float]]]


def plot_roc(curves: Curves, path: str | os.PathLike, title: str = "ROC") -> None:
    """Write ROC curves as a PNG: one panel per detector, one line per stego set."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    dets = list(curves)
    if not dets:
        raise ValueError("no curves to plot")
    labels = sorted({lab for d in dets for lab in curves[d]}, key=_label_key)
    styles = _styles(labels)
    cols = min(2, len(dets))
    rows = math.ceil(len(dets) / cols)
    fig = Figure(figsize=(6.8 * cols, 4.4 * rows), dpi=110)
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, det in enumerate(dets):
        ax = axes[i // cols][i % cols]
        ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls=":")
        for lab in labels:
            if lab not in curves[det]:
                continue
            fpr, tpr, auc = curves[det][lab]
            colour, dash = styles[lab]
            ax.plot(fpr, tpr, color=colour, ls=dash, lw=1.3, label=f"{lab} ({auc:.3f})")
        ax.set_title(det)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.01)
        ax.set_aspect("equal")
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="upper left", bbox_to_anchor=(1.02, 1.0),
                  title="set (AUC)", title_fontsize=7, frameon=False)
    for k in range(len(dets), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(os.fspath(path), format="png")


def _label_key(label: str) -> tuple[int, str, float, str]:
    from ..datasets.stego import ALGORITHMS

    algo, _, rate = label.partition("/")
    idx = ALGORITHMS.index(algo) if algo in ALGORITHMS else len(ALGORITHMS)
    try:
        r = float(rate.replace("pct", "e-2"))
    except ValueError:
        r = math.inf
    return idx, algo, r, label


def _styles(labels: Sequence[str]) -> dict[str, tuple[tuple[float, ...], str]]:
    """One colour per algorithm, one dash pattern per rate within it."""
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    algos = list(dict.fromkeys(lab.partition("/")[0] for lab in labels))
    dashes = ["-", "--", "-.", ":"]
    seen: dict[str, int] = {}
    out: dict[str, tuple[tuple[float, ...], str]] = {}
    for lab in labels:
        algo = lab.partition("/")[0]
        k = seen.get(algo, 0)
        seen[algo] = k + 1
        out[lab] = (tuple(float(v) for v in cmap(algos.index(algo) % 10)), dashes[k % 4])
    return out

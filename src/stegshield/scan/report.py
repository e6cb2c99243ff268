"""Self-contained HTML report: no script, no external resource; images are data: URIs.

Flagged images (alert, suspicious) get a thumbnail with the per-tile heat map laid over it;
every image is listed, sorted by score (highest first), errors and unjudged images last.
"""

from __future__ import annotations

import base64
import html
import io
import math
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from ..imaging import ImageError, atomic_write
from .output import Summary
from .scanner import ScanResult
from .suite import HeatMap

__all__ = ["MAX_CLEAN_ROWS", "heatmap_png", "render_report", "write_report"]

#: Clean images listed individually before the rest are only counted.
MAX_CLEAN_ROWS = 2000

_REPORT_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222;background:#fafafa}
h1{font-size:1.4em}table{border-collapse:collapse;width:100%}
th,td{padding:.35em .6em;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}
th{background:#eee}.alert{color:#b00020;font-weight:600}.suspicious{color:#b36b00}
.clean{color:#2e7d32}.error,.too_small{color:#666}
.thumb{position:relative;display:inline-block;overflow:hidden;line-height:0}
.thumb img.heat{position:absolute;left:0;top:0;image-rendering:pixelated;opacity:.6}
.thumb:hover img.heat{opacity:0}
.mono{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
.legend span{display:inline-block;width:2em;height:1em;vertical-align:middle}
"""


def _png(arr: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def heat_colours(values: np.ndarray) -> np.ndarray:
    """RGBA (uint8) colours for tile scores: transparent below 0.2, yellow -> red above."""
    v = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0)
    v = np.clip(v, 0.0, 1.0)
    rgba = np.zeros((*v.shape, 4), dtype=np.uint8)
    rgba[..., 0] = 255
    rgba[..., 1] = np.rint(220 * (1.0 - v)).astype(np.uint8)
    rgba[..., 2] = 0
    rgba[..., 3] = np.rint(255 * np.clip((v - 0.2) / 0.8, 0.0, 1.0)).astype(np.uint8)
    return rgba


def heatmap_png(heat: HeatMap) -> bytes:
    """The heat map as a tiny PNG, one pixel per tile (scaled up by the browser)."""
    return _png(heat_colours(heat.values))


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _figure(r: ScanResult) -> str:
    if r.thumbnail is None:
        return ""
    thumb = f'<img alt="thumbnail" src="{_data_uri(r.thumbnail)}">'
    heat = ""
    if r.heatmap is not None and r.width and r.height:
        rows, cols = r.heatmap.values.shape
        wpct = 100.0 * cols * r.heatmap.tile / r.width
        hpct = 100.0 * rows * r.heatmap.tile / r.height
        heat = (f'<img class="heat" alt="heat map ({html.escape(r.heatmap.source)})" '
                f'style="width:{wpct:.2f}%;height:{hpct:.2f}%" '
                f'src="{_data_uri(heatmap_png(r.heatmap))}">')
    return f'<div class="thumb">{thumb}{heat}</div>'


def _sort_key(r: ScanResult) -> tuple[int, float]:
    rank = {"alert": 0, "suspicious": 0, "clean": 0, "too_small": 1, "error": 2}
    return (rank.get(r.verdict, 3), -(r.score if r.score is not None else -1.0))


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def render_report(results: Iterable[ScanResult], summary: Summary, *, title: str = "",
                  thresholds: str = "", detector: str = "") -> str:
    """The report page as a string."""
    rows: list[str] = []
    clean_hidden = 0
    clean_shown = 0
    for r in sorted(results, key=_sort_key):
        if r.verdict == "clean":
            clean_shown += 1
            if clean_shown > MAX_CLEAN_ROWS:
                clean_hidden += 1
                continue
        dets = ", ".join(f"{html.escape(k)} {v:.3f}" for k, v in r.detectors.items())
        info = html.escape(r.error or "; ".join(r.notes))
        size = f"{r.width}&times;{r.height}" if r.width else "-"
        rows.append(
            f'<tr><td>{_figure(r)}</td>'
            f'<td class="{html.escape(r.verdict)}">{html.escape(r.verdict)}</td>'
            f"<td>{_fmt(r.score, 4)}</td><td>{_fmt(r.payload_bpp)}</td>"
            f'<td><div class="mono">{html.escape(r.path)}</div>{size} '
            f"{html.escape(r.format or '')}<br><small>{info}</small></td>"
            f'<td><small>{dets}</small><div class="mono"><small>'
            f"{html.escape(r.sha256 or '')}</small></div></td></tr>")
    if clean_hidden:
        rows.append(f'<tr><td colspan="6">... and {clean_hidden} more clean images '
                    "(use --format jsonl for the full list)</td></tr>")
    legend = "".join(
        f'<span style="background:rgba({c[0]},{c[1]},{c[2]},{c[3] / 255:.2f})"></span>'
        for c in heat_colours(np.linspace(0.2, 1.0, 5)[None, :])[0].tolist())
    when = time.strftime("%Y-%m-%d %H:%M:%S")
    head = html.escape(title or "stegshield scan report")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
{GENERATOR}
<meta http-equiv="Content-Security-Policy" content="{_REPORT_CSP}">
<title>{head}</title><style>{_CSS}</style></head><body>
<h1>{head}</h1>
<p>{html.escape(summary.line())}<br>generated {when}; detector {html.escape(detector)};
{html.escape(thresholds)}</p>
<p class="legend">Heat map (tile suspicion 0.2 &rarr; 1): {legend}
 (hover over a thumbnail to hide it) &mdash; score = 0.01 / (0.01 + p), p = the share of
clean images that score as high (0.5 = the default 1 % FPR threshold; higher is more
suspicious); payloads are estimated bits per sample.</p>
<table><thead><tr><th>image</th><th>verdict</th><th>score</th><th>payload (bpp)</th>
<th>file</th><th>detectors</th></tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""


#: Marks our reports, so that a rerun may replace one (and nothing else).
GENERATOR = '<meta name="generator" content="stegshield scan report">'


def check_report_path(path: str | Path) -> None:
    """Raise :class:`ImageError` unless ``path`` may receive a report: a new file, or an
    earlier stegshield report, in a folder that can be written to."""
    import tempfile

    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise ImageError(f"{path}: directory {folder} does not exist")
    if target.exists():
        try:
            with open(target, "rb") as f:
                head = f.read(4096)
            # ours, or one from before the generator tag (its default title)
            ours = GENERATOR.encode() in head or b"<title>stegshield scan report</title>" in head
        except OSError:
            ours = False
        if not ours:
            raise ImageError(f"{path}: exists and is not a stegshield report; refusing to "
                             "replace it (remove it or choose another --report)")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ImageError(f"{path}: cannot write in {folder}: {exc.strerror or exc}") from None


def write_report(path: str | Path, results: Iterable[ScanResult], summary: Summary,
                 **kwargs: str) -> None:
    """Render and write the report atomically (replacing an earlier report)."""
    check_report_path(path)
    atomic_write(path, render_report(results, summary, **kwargs).encode("utf-8"), force=True)

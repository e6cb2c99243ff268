"""Result writers (table for people, JSON lines and CSV for programs) and the summary."""

from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass, field
from typing import TextIO

from ..cli_support import printable
from .choices import FORMATS
from .scanner import ScanResult, text_path

__all__ = ["FORMATS", "CsvWriter", "JsonlWriter", "Summary", "TableWriter", "make_writer"]



@dataclass
class Summary:
    """Running totals over a scan."""

    started: float = field(default_factory=time.perf_counter)
    scanned: int = 0
    alerts: int = 0
    suspicious: int = 0
    too_small: int = 0
    errors: int = 0
    megapixels: float = 0.0

    def add(self, r: ScanResult) -> None:
        self.scanned += 1
        self.megapixels += r.megapixels if r.verdict != "error" else 0.0
        if r.verdict == "alert":
            self.alerts += 1
        elif r.verdict == "suspicious":
            self.suspicious += 1
        elif r.verdict == "too_small":
            self.too_small += 1
        elif r.verdict == "error":
            self.errors += 1

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started

    @property
    def exit_code(self) -> int:
        """0 nothing found, 1 at least one alert, 2 errors (and no alert)."""
        if self.alerts:
            return 1
        return 2 if self.errors else 0

    def line(self) -> str:
        """``scanned N images (X MP) in T s (R images/s, M MP/s): A alerts, ...``."""
        s = max(self.seconds, 1e-9)
        return (f"scanned {self.scanned} image{'s' if self.scanned != 1 else ''} "
                f"({self.megapixels:.1f} MP) in {s:.1f} s ({self.scanned / s:.1f} images/s, "
                f"{self.megapixels / s:.1f} MP/s): {self.alerts} alert"
                f"{'s' if self.alerts != 1 else ''}, {self.suspicious} suspicious, "
                f"{self.too_small} too small, {self.errors} error"
                f"{'s' if self.errors != 1 else ''}")


def printable_path(path: str) -> str:
    """``path`` for a terminal: undecodable bytes as ``\\xNN`` and control characters
    escaped, so a file name cannot move the cursor, retitle or clear the terminal."""
    return printable(text_path(path))


class TableWriter:
    """Aligned columns, one row per image; ``only_flagged`` hides clean images."""

    def __init__(self, out: TextIO, only_flagged: bool = False) -> None:
        self.out, self.only_flagged, self.header_done = out, only_flagged, False

    def row(self, r: ScanResult) -> str | None:
        if self.only_flagged and r.verdict in ("clean", "too_small"):
            return None
        score = f"{r.score:.4f}" if r.score is not None else "-"
        pay = f"{r.payload_bpp:.3f}" if r.payload_bpp is not None else "-"
        size = f"{r.width}x{r.height}" if r.width else "-"
        extra = r.error or "; ".join(r.notes)
        tail = f"  ({extra})" if extra else ""
        path = printable_path(r.path)
        return (f"{r.verdict:<10} {score:>6} {pay:>7} {size:>11} {(r.format or '-'):<6} "
                f"{path}{tail}")

    def header(self) -> str:
        return f"{'VERDICT':<10} {'SCORE':>6} {'BPP':>7} {'SIZE':>11} {'FORMAT':<6} PATH"

    def write(self, r: ScanResult) -> None:
        line = self.row(r)
        if line is None:
            return
        if not self.header_done:
            self.header_done = True
            self.out.write(self.header() + "\n")
        self.out.write(line + "\n")
        self.out.flush()

    def close(self, summary: Summary) -> None:
        self.out.write(summary.line() + "\n")
        self.out.flush()


class JsonlWriter:
    """One JSON object per image (flushed per line so results stream)."""

    def __init__(self, out: TextIO, heatmaps: bool = False) -> None:
        self.out, self.heatmaps = out, heatmaps

    def write(self, r: ScanResult) -> None:
        self.out.write(json.dumps(r.to_json(heatmap=self.heatmaps), separators=(",", ":")))
        self.out.write("\n")
        self.out.flush()

    def close(self, summary: Summary) -> None:
        pass


class CsvWriter:
    """CSV with fixed columns plus one column per detector (and fused group)."""

    BASE = ("path", "verdict", "score", "payload_bpp", "sha256", "width", "height", "format",
            "reliable", "error", "notes")

    def __init__(self, out: TextIO, detector_columns: list[str]) -> None:
        self.out = out
        self.detector_columns = detector_columns
        self.w = csv.writer(out, lineterminator="\n")
        self.w.writerow([*self.BASE, *detector_columns])

    def write(self, r: ScanResult) -> None:
        d = r.to_json()
        row = [d[k] if d[k] is not None else "" for k in self.BASE[:-1]]
        row.append("; ".join(r.notes))
        row += [d["detectors"].get(c, "") for c in self.detector_columns]
        self.w.writerow(row)
        self.out.flush()

    def close(self, summary: Summary) -> None:
        pass


def make_writer(fmt: str, out: TextIO, *, detector_columns: list[str] | None = None,
                only_flagged: bool = False, heatmaps: bool = False
                ) -> TableWriter | JsonlWriter | CsvWriter:
    """The writer for ``--format``."""
    if fmt == "jsonl":
        return JsonlWriter(out, heatmaps=heatmaps)
    if fmt == "csv":
        return CsvWriter(out, detector_columns or [])
    return TableWriter(out, only_flagged=only_flagged)

"""Scan images for hidden data: one image (:class:`Scanner`) or many (:func:`scan_paths`).

Every file gives exactly one :class:`ScanResult`; a file that cannot be read gives a result
with ``verdict == "error"`` and a one-line ``error``, and never stops the scan.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import multiprocessing as mp
import os
import stat
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..analysis.base import MIN_PIXELS, MIN_SIDE
from ..imaging import DEFAULT_MAX_PIXELS, ImageError
from ..imaging.io import max_file_bytes
from ..runtime import tune_malloc
from .choices import DETECTOR_CHOICES
from .loader import IMAGE_EXTENSIONS, ScanImage, load_for_scan
from .suite import HeatMap, Suite, SuiteError, build_suite
from .thresholds import (
    DEFAULT_FPR,
    Thresholds,
    fpr_of_score,
    learned_threshold,
    score_of_fpr,
    suspicious_fpr,
)

__all__ = [
    "MIN_PIXELS",
    "MIN_SIDE",
    "VERDICTS",
    "ScanOptions",
    "ScanResult",
    "Scanner",
    "iter_image_paths",
    "scan_paths",
]

VERDICTS = ("clean", "suspicious", "alert", "too_small", "error")
#: Longest side of report thumbnails, in pixels.
THUMB_SIDE = 256


@dataclass(frozen=True)
class ScanOptions:
    """Everything a worker needs to build an identical :class:`Scanner`."""

    detector: str = "auto"
    fpr: float = DEFAULT_FPR
    threshold: float | None = None
    """Alert at this score instead (same as ``fpr = F0 (1 - T) / T``, see :mod:`.thresholds`)."""
    max_pixels: int = DEFAULT_MAX_PIXELS
    thumbnails: bool = False
    """Attach a PNG thumbnail to flagged results (for HTML reports)."""
    calibration: str | None = None
    """A photograph calibration file for the (single, tiled learned) detector, replacing its
    shipped thresholds (:func:`.suite.build_suite`)."""

    def __post_init__(self) -> None:
        """The command line's ranges, for library callers too (an fpr of 0 or 2, or a NaN
        threshold, gave verdicts that contradicted the scores)."""
        if not (isinstance(self.fpr, int | float) and 0 < self.fpr <= 0.5):
            raise ValueError(f"fpr must be in (0, 0.5], not {self.fpr!r}")
        if self.threshold is not None and not (isinstance(self.threshold, int | float)
                                               and 0 <= self.threshold <= 1):
            raise ValueError(f"threshold must be in [0, 1], not {self.threshold!r}")
        if not (isinstance(self.max_pixels, int) and self.max_pixels >= 1):
            raise ValueError(f"max_pixels must be a positive integer, not {self.max_pixels!r}")
        if self.detector not in DETECTOR_CHOICES:  # found only when a Scanner was built
            raise SuiteError(f"unknown detector choice {self.detector!r}; choose from "
                             f"{', '.join(DETECTOR_CHOICES)}")


@dataclass
class ScanResult:
    """The outcome for one image (``to_json`` gives the documented JSON object)."""

    path: str
    verdict: str
    score: float | None = None
    payload_bpp: float | None = None
    detectors: dict[str, float] = field(default_factory=dict)
    sha256: str | None = None
    error: str | None = None
    width: int | None = None
    height: int | None = None
    format: str | None = None
    reliable: bool | None = None
    notes: list[str] = field(default_factory=list)
    bytes: int | None = None
    seconds: float = 0.0
    heatmap: HeatMap | None = None
    thumbnail: bytes | None = None

    @property
    def flagged(self) -> bool:
        return self.verdict in ("alert", "suspicious")

    @property
    def megapixels(self) -> float:
        return (self.width or 0) * (self.height or 0) / 1e6

    def to_json(self, heatmap: bool = False) -> dict[str, Any]:
        """JSON-ready dict; the heat map only when asked (it can be large)."""
        d = asdict(self)
        d["path"] = text_path(self.path)
        d.pop("heatmap")
        d.pop("thumbnail")
        d["seconds"] = round(self.seconds, 4)
        for k in ("score", "payload_bpp"):
            if d[k] is not None:
                d[k] = round(float(d[k]), 4)
        d["detectors"] = {k: round(float(v), 4) for k, v in self.detectors.items()}
        if heatmap:
            d["heatmap"] = self.heatmap.to_json() if self.heatmap is not None else None
        return d


def text_path(path: str) -> str:
    """``path`` as valid text for JSON, CSV and the table: bytes of the name that were not
    UTF-8 become ``\\xNN`` (Python keeps them as lone surrogates, which strict JSON parsers
    and UTF-8 terminals reject); the table also escapes control characters."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


#: Decimals of every reported score.
SCORE_DECIMALS = 4


def reported_score(score: float) -> float:
    """``score`` cut down to :data:`SCORE_DECIMALS` decimals: the number every output shows and
    the verdict is judged on, so that ``--threshold T`` alerts exactly when the shown score is
    ``>= T`` (rounding 0.99996 up to 1.0 made ``--threshold 1`` report 1.0 as clean).  The
    ``1e-9`` absorbs float error (0.29 * 1e4 = 2899.9999999999995)."""
    if not math.isfinite(score):
        return score
    scale = 10**SCORE_DECIMALS
    return math.floor(score * scale + 1e-9) / scale


def _thumbnail(pixels: np.ndarray) -> bytes:
    from PIL import Image

    arr = pixels if pixels.ndim == 2 else pixels[:, :, :3]
    img = Image.fromarray(np.ascontiguousarray(arr))
    img.thumbnail((THUMB_SIDE, THUMB_SIDE))
    buf = io.BytesIO()
    img.save(buf, "PNG", optimize=False, compress_level=6)
    return buf.getvalue()


def _threshold_source(detector: object) -> str:
    """Where a learned detector's thresholds come from, for the label (``""`` if unknown)."""
    cal = getattr(detector, "photo_calibration", None)
    if cal is not None:
        n = cal.info.get("photos", "?")
        return (f" (fitted on {n} validation photographs)" if cal.info.get("split") == "val"
                else f" (fitted on {n} of your images)")
    return " (validation tiles)" if hasattr(detector, "tile_raw_at_fpr") else ""


class Scanner:
    """Detector suite + thresholds; scans bytes or paths into :class:`ScanResult` objects."""

    def __init__(self, options: ScanOptions | None = None, suite: Suite | None = None) -> None:
        self.options = options or ScanOptions()
        self.suite = suite or build_suite(self.options.detector, self.options.calibration)
        self.thresholds = self._thresholds()

    def _thresholds(self) -> Thresholds:
        """Score cut-offs from ``threshold`` or ``fpr``; per-group statistics for the label."""
        groups = self.suite.groups
        k = max(1, len(groups))
        t = self.options.threshold
        fpr = fpr_of_score(t) if t is not None else self.options.fpr
        alert_score = t if t is not None else score_of_fpr(fpr)
        sus = suspicious_fpr(fpr)
        out: dict[str, tuple[float, float]] = {}
        parts = []
        for g in groups:
            out[g] = (self.suite.stat_at_fpr(g, fpr / k), self.suite.stat_at_fpr(g, sus / k))
            if g == "classical":
                parts.append(f"classical payload >= {out[g][0]:.3g} bpp")
            else:
                det = next(m.detector for m in self.suite.members if m.name == g)
                parts.append(f"{g} >= {learned_threshold(det, fpr / k):.4g}"
                             + _threshold_source(det))
        head = (f"score >= {t:g} (FPR {fpr:.3g})" if t is not None
                else f"FPR {fpr:g} (score >= {alert_score:.3g})")
        return Thresholds(out, fpr=fpr, label=f"{head}: " + ", ".join(parts),
                          alert_score=alert_score,
                          suspicious_score=min(alert_score, score_of_fpr(sus)))

    def scan_image(self, img: ScanImage, result: ScanResult) -> ScanResult:
        """Fill ``result`` from decoded pixels."""
        result.width, result.height = img.width, img.height
        result.format, result.reliable = img.format, img.reliable
        result.notes.extend(img.notes)
        side = max(MIN_SIDE, self.suite.min_side)  # e.g. 128 for the fused detectors
        if img.width * img.height < MIN_PIXELS or min(img.width, img.height) < side:
            result.verdict = "too_small"
            result.notes.append(f"too small to judge ({img.width}x{img.height}; needs at "
                                f"least {MIN_PIXELS:,} pixels and {side} per side"
                                + (f" for --detector {self.suite.mode})" if side > MIN_SIDE
                                   else ")"))
            return result
        ana = self.suite.analyse(img.pixels)
        result.score = reported_score(ana.score)
        result.payload_bpp = ana.payload_bpp
        result.detectors = dict(ana.detectors)
        if len(ana.groups) > 1:
            result.detectors.update({f"group:{k}": v for k, v in ana.groups.items()})
        result.heatmap = ana.heatmap
        if math.isnan(ana.fpr):
            result.verdict = "clean"
            result.notes.append("the detectors found nothing to measure (flat image?)")
        else:
            result.verdict = self.thresholds.verdict_of_score(result.score)
        if self.options.thumbnails and result.flagged:
            result.thumbnail = _thumbnail(img.pixels)
        return result

    def scan_bytes(self, data: bytes, label: str) -> ScanResult:
        """Scan one image file's bytes; errors become a result, never an exception."""
        t0 = time.perf_counter()
        result = ScanResult(path=label, verdict="error", bytes=len(data),
                            sha256=hashlib.sha256(data).hexdigest())
        try:
            img = load_for_scan(data, self.options.max_pixels)
            self.scan_image(img, result)
        except ImageError as exc:
            result.verdict, result.error = "error", str(exc)
        except MemoryError:
            result.verdict, result.error = "error", "out of memory (lower --max-pixels)"
        except Exception as exc:  # a detector bug must not stop a scan of many files
            result.verdict = "error"
            result.error = f"internal error: {type(exc).__name__}: {exc}".splitlines()[0]
        result.seconds = time.perf_counter() - t0
        return result

    def scan_path(self, path: str | os.PathLike[str]) -> ScanResult:
        """Read and scan one file (refused unread above :func:`max_file_bytes`)."""
        t0 = time.perf_counter()
        limit = max_file_bytes(self.options.max_pixels)
        try:  # non-blocking open: a FIFO named *.png must not hang the scan
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                         | getattr(os, "O_NOCTTY", 0))
            with open(fd, "rb") as f:
                st = os.fstat(f.fileno())
                if not stat.S_ISREG(st.st_mode):
                    what = ("cannot read: Is a directory" if stat.S_ISDIR(st.st_mode)
                            else "not a regular file (a FIFO, device or socket)")
                    return ScanResult(path=str(path), verdict="error", error=what,
                                      seconds=time.perf_counter() - t0)
                size = st.st_size
                data = f.read(limit + 1) if size <= limit else b""
        except OSError as exc:
            return ScanResult(path=str(path), verdict="error",
                              error=f"cannot read: {exc.strerror or exc}",
                              seconds=time.perf_counter() - t0)
        if size > limit or len(data) > limit:
            return ScanResult(path=str(path), verdict="error",
                              error=f"file too large: {max(size, len(data)):,} bytes (at most "
                              f"{limit:,} for --max-pixels {self.options.max_pixels:,})",
                              seconds=time.perf_counter() - t0)
        return self.scan_bytes(data, str(path))


def iter_image_paths(paths: Iterable[str | os.PathLike[str]], recursive: bool = False,
                     errors: list[str] | None = None) -> Iterator[Path]:
    """Files to scan: explicit files as given; image files inside directories (one level, or
    the whole tree with ``recursive``; symlinked directories are not followed)."""
    if isinstance(paths, str | bytes | os.PathLike):  # one path, not its characters
        paths = [paths]  # type: ignore[list-item]
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            if recursive:
                for root, dirs, files in os.walk(p):
                    dirs.sort()
                    for name in sorted(files):
                        child = Path(root) / name  # FIFOs and devices are skipped, as below
                        if child.suffix.lower() in IMAGE_EXTENSIONS and _regular(child):
                            yield child
            else:
                with contextlib.suppress(OSError):
                    for child in sorted(p.iterdir()):
                        if child.suffix.lower() in IMAGE_EXTENSIONS and _regular(child):
                            yield child
        else:
            yield p  # missing files become per-file errors


def _regular(path: Path) -> bool:
    """A regular file (following links), without opening it."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


# ---- parallel scanning ---------------------------------------------------------------------

_WORKER: Scanner | None = None


def _init_worker(options: ScanOptions, threads: int = 0) -> None:
    """Worker set-up; ``threads`` > 0 caps the intra-op threads of torch (learned detectors),
    so that ``--jobs`` processes share the cores instead of each starting one thread per core
    (two workers with two threads each ran the CNN scan 2.5x slower than one process)."""
    global _WORKER
    tune_malloc()
    from PIL import Image

    Image.MAX_IMAGE_PIXELS = None  # our own process: --max-pixels is checked before decoding
    if threads > 0:
        os.environ["OMP_NUM_THREADS"] = str(threads)  # torch reads it when first imported
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(threads)
    _WORKER = Scanner(options)


def _scan_in_worker(path: str) -> ScanResult:
    assert _WORKER is not None
    return _WORKER.scan_path(path)


def _mp_context() -> Any:
    # fork is cheap and safe while no torch/threads live in the parent; else spawn.
    if sys.platform.startswith("linux") and "torch" not in sys.modules:
        return mp.get_context("fork")
    return mp.get_context("spawn")


def scan_paths(paths: Iterable[str | os.PathLike[str]], options: ScanOptions, jobs: int = 1,
               scanner: Scanner | None = None) -> Iterator[ScanResult]:
    """Scan files, yielding results as they complete (input order when ``jobs == 1``).

    With ``jobs > 1`` once torch is loaded, workers are spawned: the calling script needs an
    ``if __name__ == "__main__":`` guard (multiprocessing's rule)."""
    if isinstance(paths, str | bytes | os.PathLike):  # one path, not its characters
        paths = [paths]  # type: ignore[list-item]
    if jobs <= 1:
        tune_malloc()
        sc = scanner or Scanner(options)
        for p in paths:
            yield sc.scan_path(p)
        return
    window = jobs * 4
    threads = max(1, (os.cpu_count() or 1) // jobs)
    it = iter(paths)
    exhausted = False
    retry: deque[tuple[str, int]] = deque()  # files in flight when a worker died
    while retry or not exhausted:
        # a dead worker (killed for memory, a crash) breaks the whole pool: the files in
        # flight are suspects, retried one at a time in a new pool, and only a file that
        # kills its worker when scanned alone is reported as an error
        with ProcessPoolExecutor(max_workers=jobs, mp_context=_mp_context(),
                                 initializer=_init_worker, initargs=(options, threads)) as pool:
            pending: dict[Future[ScanResult], tuple[str, int]] = {}
            broken = False
            while True:
                while not broken and len(pending) < window:
                    if any(t for _, t in pending.values()):
                        break  # a suspect runs alone
                    if retry:
                        if pending:
                            break  # let the pool drain, then the suspect alone
                        path, tries = retry.popleft()
                    elif not exhausted:
                        try:
                            path, tries = str(next(it)), 0
                        except StopIteration:
                            exhausted = True
                            break
                    else:
                        break
                    try:
                        pending[pool.submit(_scan_in_worker, path)] = (path, tries)
                    except BrokenProcessPool:
                        broken = True
                        retry.appendleft((path, tries))
                if not pending:
                    break
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in done:
                    path, tries = pending.pop(fut)
                    try:
                        yield fut.result()
                    except BrokenProcessPool:
                        broken = True
                        if not tries:
                            retry.append((path, 1))
                        else:
                            yield ScanResult(path=path, verdict="error", error=(
                                "its worker process died scanning it alone (killed, e.g. "
                                "for memory?)"))
                    except Exception as exc:  # the task itself failed
                        yield ScanResult(path=path, verdict="error",
                                         error=f"worker failed: {type(exc).__name__}: {exc}"
                                         .splitlines()[0])

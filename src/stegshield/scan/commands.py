"""Click commands ``scan``, ``watch`` and ``serve`` (registered by ``stegshield.cli``).

Exit codes of ``scan``: 0 nothing found, 1 at least one alert, 2 an error and no alert (or bad
usage).
"""

from __future__ import annotations

import functools
import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..cli_support import (  # noqa: F401
    EXIT_ERROR,
    EXIT_FOUND,
    EXIT_OK,
    FiniteFloatRange,
    fail,
    printable,
    warn,
)
from ..imaging import DEFAULT_MAX_PIXELS, ImageError, check_not_input
from .choices import DETECTOR_CHOICES, FORMATS
from .distributed import ClusterError

if TYPE_CHECKING:  # the scanner (NumPy, SciPy) is imported when a command runs
    from .scanner import Scanner, ScanOptions, ScanResult

# ``watch`` and ``serve`` are importable from here too (see ``__getattr__`` at the end).
__all__ = ["scan"]


def _stdout_is_pipe() -> bool:
    try:
        return stat.S_ISFIFO(os.fstat(sys.stdout.fileno()).st_mode)
    except (OSError, ValueError, AttributeError):
        return False


def want_progress(flag: bool | None) -> bool:
    """Progress bar only on a terminal, never when the output is piped (unless forced)."""
    if flag is not None:
        return flag
    try:
        return sys.stderr.isatty() and not _stdout_is_pipe()
    except (AttributeError, ValueError):
        return False


_detector = click.option(
    "--detector", type=click.Choice(DETECTOR_CHOICES), default="auto", show_default=True,
    help="auto = the fast default (today the classical WS/SPA group; a learned detector joins "
    "once it earns its place, see docs/SCAN.md); cnn = purpose-built CNN; cnn-thorough = its "
    "slower, more accurate full-resolution sibling; fused = cnn and srm-lsbm summed tile by "
    "tile (LSB matching; about 1.4x the time of cnn), fused-thorough = cnn-thorough and rich "
    "models likewise; "
    "pretrained = ImageNet EfficientNet-Lite0; "
    "classical; structural = learned combination of structural features (LSB replacement "
    "only; ~3x the classical time); spam = SPAM features + logistic regression (LSB matching, "
    "no torch); srm = small rich model + logistic regression (content-adaptive embedding, no "
    "torch); srm-lsbm = the same features trained against LSB matching (no torch); all = "
    "every registered detector but the fused ones (their members run on their own), "
    "learned and classical groups fused.")
_thorough = click.option(
    "--thorough", is_flag=True,
    help="Use the thorough CNN (same as --detector cnn-thorough, about 5x slower than cnn; "
    "with --detector fused: fused-thorough, about 2.7x slower than fused).")


def detector_option(f: Callable[..., Any]) -> Callable[..., Any]:
    """``--detector`` and its shorthand ``--thorough`` (merged into ``detector``)."""

    @functools.wraps(f)
    def wrapper(*args: Any, thorough: bool = False, **kwargs: Any) -> Any:
        if thorough:
            det = kwargs["detector"]
            if det not in ("auto", "cnn", "cnn-thorough", "fused", "fused-thorough"):
                fail(f"--thorough selects the thorough CNN; it does not combine with "
                     f"--detector {det}")
            kwargs["detector"] = "fused-thorough" if det.startswith("fused") else "cnn-thorough"
        return f(*args, **kwargs)

    return _detector(_thorough(wrapper))
fpr_option = click.option(
    "--fpr", type=FiniteFloatRange(min=0, max=0.5, min_open=True), default=None,
    help="Target false-positive rate on clean images  [default: 0.01].")
threshold_option = click.option(
    "--threshold", type=FiniteFloatRange(min=0, max=1), default=None,
    help="Alert at score >= T instead of --fpr (score 0.5 = the default --fpr 0.01 threshold; "
    "T is the same as --fpr 0.01*(1-T)/T).")
calibration_option = click.option(
    "--calibration", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
    help="Thresholds fitted on your own clean photographs (python -m stegshield.scan.calibrate "
    "DIR --detector NAME --fit FILE) for one tiled learned detector: cnn, cnn-thorough, "
    "fused or fused-thorough.")
max_pixels_option = click.option(
    "--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
    help="Refuse images with more pixels than this (decompression-bomb guard).")


def make_options(detector: str, fpr: float | None, threshold: float | None,
                 max_pixels: int, thumbnails: bool = False,
                 calibration: Path | None = None) -> ScanOptions:
    """Validate the shared detection options."""
    from .scanner import ScanOptions
    from .thresholds import DEFAULT_FPR

    if fpr is not None and threshold is not None:
        fail("give either --fpr or --threshold, not both")
    return ScanOptions(detector=detector, fpr=DEFAULT_FPR if fpr is None else fpr,
                       threshold=threshold, max_pixels=max_pixels, thumbnails=thumbnails,
                       calibration=None if calibration is None else str(calibration.resolve()))


def check_suite(options: ScanOptions) -> Scanner:
    """Build the scanner once in this process (fail early on an unavailable detector)."""
    from .scanner import Scanner
    from .suite import SuiteError

    try:
        scanner = Scanner(options)
    except SuiteError as exc:
        fail(str(exc))
    for note in scanner.suite.notes:
        warn(note)
    return scanner


def _subdirs(folder: Path) -> list[Path]:
    """Sub-folders of ``folder`` with image files directly inside (not ``.git`` and such)."""
    from .loader import IMAGE_EXTENSIONS

    def has_images(d: Path) -> bool:
        try:
            return any(c.suffix.lower() in IMAGE_EXTENSIONS for c in d.iterdir())
        except OSError:
            return False

    try:
        return sorted(c for c in folder.iterdir()
                      if c.is_dir() and not c.is_symlink() and has_images(c))
    except OSError:
        return []


@click.command()
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(path_type=Path))
@click.option("-r", "--recursive", is_flag=True, help="Descend into sub-directories.")
@detector_option
@fpr_option
@threshold_option
@calibration_option
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="table for people; jsonl / csv (one record per image) for programs.")
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path),
              help="Write a self-contained HTML report (thumbnails and heat maps).")
@click.option("--jobs", "-j", type=click.IntRange(min=0), default=1, show_default=True,
              help="Worker processes (0 = one per CPU); with --cluster local, Dask workers.")
@click.option("--scheduler", metavar="ADDRESS",
              help="Run on an existing Dask cluster, e.g. tcp://host:8786.")
@click.option("--cluster", type=click.Choice(["local"]),
              help="Start a local Dask cluster for this scan (--jobs workers).")
@click.option("--only-flagged", "-q", is_flag=True,
              help="Table: list only alerts, suspicious images and errors.")
@click.option("--heatmaps", is_flag=True, help="jsonl: include the per-tile heat map.")
@click.option("--progress/--no-progress", default=None,
              help="Progress bar  [default: on a terminal only].")
@max_pixels_option
def scan(paths: tuple[Path, ...], recursive: bool, detector: str, fpr: float | None,
         threshold: float | None, calibration: Path | None, fmt: str, report: Path | None,
         jobs: int, scheduler: str | None, cluster: str | None, only_flagged: bool, heatmaps: bool,
         progress: bool | None, max_pixels: int) -> None:
    """Scan images for hidden data (exit 0 clean, 1 alert, 2 an error and no alert).

    \b
    PATHS are image files or directories (their image files; all levels with -r).
    Scores: 0.01/(0.01+P), P = estimated share of clean images that score as high
    (0.5 = alert at the default --fpr); verdicts: clean, suspicious, alert
    (too_small and error are reported per file and never stop the scan).
    """
    from .output import Summary, make_writer
    from .scanner import iter_image_paths

    if scheduler and cluster:
        fail("give either --scheduler or --cluster, not both")
    options = make_options(detector, fpr, threshold, max_pixels, thumbnails=report is not None,
                           calibration=calibration)
    scanner = check_suite(options)
    files = list(iter_image_paths(paths, recursive=recursive))
    if report is not None:  # the report never replaces a scanned image
        from .report import check_report_path

        try:
            check_not_input(report, [(f"scanned image {f}", f) for f in files])
            check_report_path(report)  # now: hours of scanning must not end in "cannot write"
        except ImageError as exc:
            fail(str(exc))
    if not files:
        warn("no image files found" + ("" if recursive else " (use -r for sub-directories)"))
    elif not recursive:  # a clean verdict must not hide a sub-folder that was never looked at
        named = {Path(p).resolve() for p in paths}
        subdirs = [d for p in paths if Path(p).is_dir() for d in _subdirs(Path(p))
                   if d.resolve() not in named]
        if subdirs:
            warn(f"{len(subdirs)} sub-folder(s) not scanned (e.g. "
                 f"{printable(str(subdirs[0]))}); use -r to scan them")
    n_jobs = jobs or (os.cpu_count() or 1)
    if scheduler or cluster:
        from .distributed import scan_distributed

        results: Iterator[ScanResult] = scan_distributed(
            files, options, scheduler=scheduler, local_workers=n_jobs if cluster else None)
    else:
        from .scanner import scan_paths

        results = scan_paths(files, options, jobs=min(n_jobs, max(1, len(files))),
                             scanner=scanner)
    summary = Summary()
    columns = [*scanner.suite.names, *(f"group:{g}" for g in scanner.suite.groups
                                       if len(scanner.suite.groups) > 1)]
    writer = make_writer(fmt, sys.stdout, detector_columns=columns,
                         only_flagged=only_flagged, heatmaps=heatmaps)
    kept: list[ScanResult] = []
    bar = None
    if want_progress(progress) and files:
        from tqdm import tqdm

        bar = tqdm(total=len(files), unit="img", file=sys.stderr, leave=False,
                   dynamic_ncols=True)
    try:
        for r in results:
            summary.add(r)
            if report is not None:
                if not r.flagged:
                    r.heatmap = None
                kept.append(r)
            if bar is not None:
                with bar.external_write_mode():
                    writer.write(r)
                bar.update(1)
            else:
                writer.write(r)
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        click.echo(f"stegshield: interrupted; {summary.line()}", err=True)
        sys.exit(130)
    except ClusterError as exc:  # the Dask cluster could not be reached or went away
        if bar is not None:
            bar.close()
        fail(f"{exc}; {summary.line()}", EXIT_FOUND if summary.exit_code == EXIT_FOUND
             else EXIT_ERROR)  # an alert already found still wins
    finally:
        if bar is not None:
            bar.close()
    if fmt == "table":
        writer.close(summary)
    else:
        click.echo(summary.line(), err=True)
    if report is not None:
        from .report import write_report

        try:
            write_report(report, kept, summary, detector=scanner.suite.mode,
                         thresholds=scanner.thresholds.describe())
        except (ImageError, OSError) as exc:  # an alert already found still wins
            fail(f"report not written: {exc}", EXIT_FOUND if summary.exit_code == EXIT_FOUND
                 else EXIT_ERROR)
        click.echo(f"report written to {report}", err=True)
    sys.exit(summary.exit_code)


def __getattr__(name: str) -> click.Command:
    """``watch`` and ``serve`` live in their own modules (imported on first use)."""
    if name == "watch":
        from .watch import watch

        return watch
    if name == "serve":
        from ..server.commands import serve

        return serve
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""stegshield.scan: batch scanning for hidden data, reports, alerts, watching, Dask.

Python API: :class:`Scanner` (one image), :func:`scan_paths` (many, in processes),
:func:`build_suite` (which detectors run). Click commands live in :mod:`.commands`.
Names are loaded on first use, so that the command line starts without NumPy/SciPy work.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .choices import DETECTOR_CHOICES

__all__ = [
    "DETECTOR_CHOICES",
    "ScanOptions",
    "ScanResult",
    "Scanner",
    "Suite",
    "SuiteError",
    "build_suite",
    "iter_image_paths",
    "scan_paths",
]

_LAZY = {
    "ScanOptions": "scanner", "ScanResult": "scanner", "Scanner": "scanner",
    "iter_image_paths": "scanner", "scan_paths": "scanner",
    "Suite": "suite", "SuiteError": "suite", "build_suite": "suite",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Option choices shared by the commands (kept free of heavy imports: the CLI loads this)."""

from __future__ import annotations

__all__ = ["DETECTOR_CHOICES", "FORMATS"]

#: ``--detector`` values (see :mod:`.suite`).
DETECTOR_CHOICES = ("auto", "cnn", "cnn-thorough", "fused", "fused-thorough", "pretrained",
                    "classical", "structural", "spam", "srm", "srm-lsbm", "all")
#: ``--format`` values (see :mod:`.output`).
FORMATS = ("table", "jsonl", "csv")

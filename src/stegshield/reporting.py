"""Helpers for the benchmark and training scripts that write BENCHMARKS.md sections."""

from __future__ import annotations

import os
import platform
from pathlib import Path

__all__ = ["machine_description", "replace_section"]


def machine_description(load: bool = True) -> str:
    """OS, architecture, core count and CPU model (and the current load average)."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    extra = ""
    if load and hasattr(os, "getloadavg"):
        extra = f", load average {os.getloadavg()[0]:.1f}"
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}){extra}, "
            f"Python {platform.python_version()}")


def replace_section(path: Path, heading: str, text: str) -> None:
    """Put ``text`` (starting with the ``## heading`` line) in place of that section of
    ``path``, or append it; every other section is kept."""
    old = path.read_text() if path.exists() else "# stegshield benchmarks\n"
    lines = old.splitlines(keepends=True)
    start = next((i for i, ln in enumerate(lines) if ln.strip() == heading.strip()), None)
    body = text.rstrip("\n") + "\n"
    if start is None:
        new = old.rstrip("\n") + "\n\n" + body
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")),
                   len(lines))
        new = "".join(lines[:start]) + body + ("\n" + "".join(lines[end:]) if end < len(lines)
                                                else "")
    path.write_text(new)

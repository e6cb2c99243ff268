"""Shared test fixtures: small generated images and the repo's sample photographs."""

from __future__ import annotations

from pathlib import Path

import pytest

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


@pytest.fixture
def sample_paths() -> list[Path]:
    paths = sorted(SAMPLES.glob("*.png"))
    assert paths, "samples/ must ship sample photographs"
    return paths

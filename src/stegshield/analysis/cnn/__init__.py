"""Steganalysis CNN detector ("cnn").  Importing this package does not import torch.

Register it with the detector registry (done by :mod:`stegshield.analysis`)::

    from stegshield.analysis.cnn import cnn_detector
    register_detector("cnn", cnn_detector)

Modules: :mod:`.model` (architectures), :mod:`.inference` (loading, tiling scan),
:mod:`.tiling`, :mod:`.calibration`.  See docs/CNN.md.
"""

from __future__ import annotations

from typing import Any

__all__ = ["THOROUGH_MODEL", "cnn_detector", "shipped_models", "thorough_detector"]

#: The slower, more accurate model behind ``--detector cnn-thorough`` / ``scan --thorough``.
THOROUGH_MODEL = "light-thorough"


def cnn_detector(**kwargs: Any) -> Any:
    """Factory for :class:`.inference.CNNDetector` (imports torch on first use)."""
    from .inference import CNNDetector

    return CNNDetector(**kwargs)


def thorough_detector(**kwargs: Any) -> Any:
    """:class:`.inference.CNNDetector` with the thorough model (full-resolution, width 32);
    its ``name`` is ``"cnn-thorough"``."""
    from .inference import CNNDetector

    det = CNNDetector(kwargs.pop("model", THOROUGH_MODEL), **kwargs)
    det.name = "cnn-thorough"
    return det


def shipped_models() -> list[Any]:
    """:class:`.inference.ModelInfo` of every shipped model."""
    from .inference import list_models

    return list_models()

"""stegshield.analysis: steganalysis detectors and detection metrics.

Use :func:`get_detector` with one of :func:`available_detectors` to obtain a
:class:`~stegshield.analysis.base.Detector`; every detector returns a
:class:`~stegshield.analysis.base.DetectionResult`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import StegshieldError
from .base import (
    MIN_PIXELS,
    MIN_SIDE,
    Calibration,
    DetectionResult,
    Detector,
    PayloadDetector,
    split_channels,
    too_small,
)
from .cnn import cnn_detector, thorough_detector
from .features import SPAMDetector, SRMDetector, SRMLSBMDetector
from .fusion import fused_detector
from .pretrained import pretrained_detector
from .structural import ChiSquareDetector, RSDetector, SPADetector, WSDetector
from .structural.learned import StructuralLRDetector

__all__ = [
    "MIN_PIXELS",
    "MIN_SIDE",
    "Calibration",
    "DetectionResult",
    "Detector",
    "PayloadDetector",
    "UnknownDetectorError",
    "available_detectors",
    "get_detector",
    "is_model_file",
    "register_detector",
    "split_channels",
    "too_small",
]

_REGISTRY: dict[str, Callable[..., Detector]] = {
    "chi_square": ChiSquareDetector,
    "rs": RSDetector,
    "spa": SPADetector,
    "ws": WSDetector,
    "structural": StructuralLRDetector,  # learned combination of structural features (LSBR)
    "spam": SPAMDetector,  # SPAM features + logistic regression (LSB matching)
    "srm": SRMDetector,  # small rich model + logistic regression (adaptive embedding)
    "srm-lsbm": SRMLSBMDetector,  # the same features against LSB matching
    "cnn": cnn_detector,  # imports torch only when instantiated
    "cnn-thorough": thorough_detector,  # the slower, more accurate CNN (scan --thorough)
    "pretrained": pretrained_detector,  # ImageNet EfficientNet-Lite0, same tiled inference
    "fused": fused_detector("fused"),  # cnn + linear detectors summed per tile (torch)
    "fused-thorough": fused_detector("fused-thorough"),  # cnn-thorough + linear detectors
}


def register_detector(name: str, factory: Callable[..., Detector]) -> None:
    """Make ``factory`` available as :func:`get_detector` ``(name)``."""
    if name in _REGISTRY:
        raise ValueError(f"detector {name!r} already registered")
    _REGISTRY[name] = factory


def available_detectors() -> list[str]:
    """Names accepted by :func:`get_detector`, sorted."""
    return sorted(_REGISTRY)


class UnknownDetectorError(StegshieldError, KeyError):
    """A detector name that is not registered (a ``KeyError`` too, as it always was)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


def is_model_file(name: object) -> bool:
    """Whether ``name`` is the path of a model file rather than a registered detector name
    (``stegshield train``'s ``OUT/detector.safetensors``)."""
    return isinstance(name, str) and name.endswith(".safetensors") and Path(name).is_file()


def get_detector(name: str | os.PathLike[str], **kwargs: Any) -> Detector:
    """Return a new detector instance; ``kwargs`` go to its constructor.  ``name`` may also
    be the path of a CNN model file (``OUT/detector.safetensors`` from ``stegshield
    train``)."""
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    factory = _REGISTRY.get(name) if isinstance(name, str) else None
    if factory is None and is_model_file(name):
        from .cnn.inference import CNNDetector

        det = CNNDetector(name, **kwargs)
        det.name = name
        return det
    if factory is None:
        raise UnknownDetectorError(
            f"unknown detector {name!r}; available: {', '.join(available_detectors())} "
            "(or the path of a trained .safetensors model)")
    return factory(**kwargs)

"""stegshield.analysis: steganalysis detectors and detection metrics.

Use :func:`get_detector` with one of :func:`available_detectors` to obtain a
:class:`~stegshield.analysis.base.Detector`; every detector returns a
:class:`~stegshield.analysis.base.DetectionResult`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
    "available_detectors",
    "get_detector",
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


def get_detector(name: str, **kwargs: Any) -> Detector:
    """Return a new detector instance; ``kwargs`` go to its constructor."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"unknown detector {name!r}; available: {', '.join(available_detectors())}"
        ) from None
    return factory(**kwargs)

"""Steganalysis CNN detector ("cnn").  Importing this package does not import torch.

Register it with the detector registry (done by :mod:`stegshield.analysis`)::

    from stegshield.analysis.cnn import cnn_detector
    register_detector("cnn", cnn_detector)

Modules: :mod:`.model` (architectures), :mod:`.inference` (loading, tiling scan),
:mod:`.tiling`, :mod:`.calibration`.  See docs/CNN.md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["THOROUGH_MODEL", "cnn_detector", "model_detector", "shipped_models",
           "thorough_detector"]

#: The slower, more accurate model behind ``--detector cnn-thorough`` / ``scan --thorough``.
THOROUGH_MODEL = "light-thorough"


def cnn_detector(**kwargs: Any) -> Any:
    """Factory for :class:`.inference.CNNDetector` (imports torch on first use)."""
    from .inference import CNNDetector

    return CNNDetector(**kwargs)


def model_detector(name: str, default_model: str) -> Callable[..., Any]:
    """A registry factory: :class:`.inference.CNNDetector` on the shipped ``default_model``
    (``model=`` picks another file), reporting itself as ``name``."""

    def factory(**kwargs: Any) -> Any:
        from .inference import CNNDetector

        det = CNNDetector(kwargs.pop("model", default_model), **kwargs)
        det.name = name
        return det

    factory.__name__ = factory.__qualname__ = f"{name.replace('-', '_')}_detector"
    factory.__doc__ = f"CNNDetector on the shipped {default_model!r}, named {name!r}."
    return factory


#: The full-resolution width-32 model (``--detector cnn-thorough``).
thorough_detector = model_detector("cnn-thorough", THOROUGH_MODEL)


def shipped_models() -> list[Any]:
    """:class:`.inference.ModelInfo` of every shipped model."""
    from .inference import list_models

    return list_models()

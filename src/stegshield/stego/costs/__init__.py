"""Content-adaptive costs of ±1 changes for spatial-domain images.

``COSTS`` maps a name to a function ``f(x: 2-D array) -> float64 cost map`` of the same shape,
finite and positive everywhere (clipped to :data:`MAX_COST`). HILL runs in C
(``stegshield._native``); S-UNIWARD and WOW use numba, imported only when first called so that
hiding with HILL never pays numba's start-up.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import numpy as np

from ._base import MAX_COST
from .hill import hill

__all__ = ["COSTS", "MAX_COST", "hill"]


def _lazy(name: str) -> Callable[..., np.ndarray]:
    def cost(x: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        module = importlib.import_module(f"{__name__}.{name}")
        return getattr(module, name)(x, *args, **kwargs)

    cost.__name__ = cost.__qualname__ = name
    cost.__doc__ = f"{name} cost map (see :mod:`{__name__}.{name}`)."
    return cost


COSTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "hill": hill,
    "suniward": _lazy("suniward"),
    "wow": _lazy("wow"),
}

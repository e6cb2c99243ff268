"""Content-adaptive costs of ±1 changes for spatial-domain images.

``COSTS`` maps a name to a function ``f(x: 2-D array) -> float64 cost map`` of the same shape,
finite and positive everywhere (clipped to :data:`MAX_COST`).  The submodules ``hill``,
``suniward`` and ``wow`` each define a function of the same name.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import hill, suniward, wow
from ._common import MAX_COST

__all__ = ["COSTS", "MAX_COST", "hill", "suniward", "wow"]

COSTS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "hill": hill.hill,
    "suniward": suniward.suniward,
    "wow": wow.wow,
}

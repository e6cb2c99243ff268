"""Learned structural detector of LSB replacement (``structural``).

WS (Fridrich & Goljan 2004; Ker & Böhme 2008, see :mod:`.ws`) sums the parity-signed
prediction residual ``d_i (s_i - F(s)_i)`` with one fixed weight per pixel,
``1 / (5 + sigma_i^2)``, and compares the sum with one fixed threshold whatever the image.  On
the corpus the cover estimate varies with content (textured tiles reach +-0.25 bpp), which is
what limits its AUC at 0.1 bpp.  This detector keeps WS's per-pixel terms but lets a logistic
regression, trained on cover / LSB-replacement pairs, choose

* the weight of each local-variance bin (``sigma_i^2`` of the 8-neighbourhood, 11 bins),
* how much the parity correlation of neighbours (the term WS's bias correction estimates)
  counts in each bin, and
* a threshold that moves with the image's content (the share of pixels in each bin),

plus SPA's payload estimate (Dumitrescu, Wu & Wang 2003, :mod:`.spa`), whose errors are only
partly correlated with WS's.  The combination is ours; its features are those papers'.
Features are averages over the image, so any size works (trained on 128² and 256² tiles).

The model is a :class:`~stegshield.analysis.linear.LinearModel` shipped as
``analysis/weights/linear/lsbr-lr.safetensors`` with a model card beside it;
``scripts/train_linear.py --detector structural`` (``make train-linear``) writes both.
Like every structural attack it targets LSB *replacement*; it is blind to ±1 embedding.
"""

from __future__ import annotations

import math

import numpy as np

from ..linear import FeatureSet, LinearDetector
from .spa import spa_estimate
from .ws import _apply, _predict, _valid_run

__all__ = [
    "DEFAULT_STRUCTURAL",
    "FEATURE_NAMES",
    "FEATURE_VERSION",
    "STRUCTURAL_FEATURES",
    "VAR_EDGES",
    "StructuralLRDetector",
    "structural_features",
]

#: Bump when :func:`structural_features` changes meaning (models record it).
FEATURE_VERSION = 1
#: Bin edges of the local variance of the 8-neighbourhood (grey levels squared).
VAR_EDGES = (0.0, 0.5, 1.5, 3.0, 6.0, 12.0, 25.0, 50.0, 100.0, 200.0, 400.0)
_NB = len(VAR_EDGES)  # the last bin is open-ended
FEATURE_NAMES: tuple[str, ...] = (
    *(f"ws_num[{i}]" for i in range(_NB)),
    *(f"parity_corr[{i}]" for i in range(_NB)),
    *(f"share[{i}]" for i in range(_NB)),
    "spa",
)
#: The shipped model ``structural`` loads (``analysis/weights/linear/``).
DEFAULT_STRUCTURAL = "lsbr-lr"


def structural_features(x: np.ndarray) -> np.ndarray:
    """The feature vector (:data:`FEATURE_NAMES`) of a 2-D ``uint8`` plane; ``nan`` if the
    plane is smaller than 3×3.

    Per local-variance bin b, over the interior pixels i (``d_i = +1`` odd, ``-1`` even,
    ``F`` = Ker-Böhme predictor, N = interior pixels): ``2 Σ d_i (s_i - F(s)_i) / N`` (WS's
    numerator restricted to the bin), ``Σ d_i F(d)_i / N`` (neighbours' parity correlation)
    and the bin's share of pixels; then SPA's estimate (0 if undefined)."""
    xi = np.asarray(x)
    if xi.ndim != 2 or xi.dtype != np.uint8:
        raise ValueError("structural_features expects a 2-D uint8 plane")
    h, width = xi.shape
    if min(h, width) < 3:
        return np.full(len(FEATURE_NAMES), np.nan)
    sums = np.zeros((3, _NB))
    for r0 in range(1, h - 1, STRIP_ROWS):  # interior rows r0..r1-1, bounded memory
        r1 = min(h - 1, r0 + STRIP_ROWS)
        sums += _bin_sums(np.ascontiguousarray(xi[r0 - 1 : r1 + 1]))
    total = sums[2].sum()
    spa = spa_estimate(xi)
    return np.r_[sums[0] * (2.0 / total), sums[1] / total, sums[2] / total,
                 spa if math.isfinite(spa) else 0.0]


#: Rows per strip in :func:`structural_features` (about 40 bytes per pixel of the strip).
STRIP_ROWS = 512


def _bin_sums(xi: np.ndarray) -> np.ndarray:
    """Per variance bin: sums of ``d (s - F(s))``, of ``d F(d)`` and pixel counts over the
    interior of a 2-D ``uint8`` strip (3×NB)."""
    h, width = xi.shape
    flat = xi.reshape(-1)
    s = flat.astype(np.float32)
    pred, var = _predict(s, width, "kb")
    np.clip(pred, 0.0, 255.0, out=pred)
    n = pred.size
    d = (flat & 1).astype(np.float32)
    d *= 2.0
    d -= 1.0
    dc = d[width + 1 : width + 1 + n]
    valid = _valid_run(h, width) > 0
    resid = np.subtract(s[width + 1 : width + 1 + n], pred, out=pred)
    resid *= dc
    corr = _apply(d, width, "kb")
    corr *= dc
    bins = np.searchsorted(_EDGES32, var, side="right")
    bins, resid, corr = bins[valid], resid[valid], corr[valid]
    return np.stack([np.bincount(bins, weights=resid, minlength=_NB),
                     np.bincount(bins, weights=corr, minlength=_NB),
                     np.bincount(bins, minlength=_NB).astype(np.float64)])


_EDGES32 = np.asarray(VAR_EDGES[1:], dtype=np.float32)


STRUCTURAL_FEATURES = FeatureSet(
    name="structural", version=FEATURE_VERSION, names=FEATURE_NAMES,
    extract=structural_features, params={"var_edges": list(VAR_EDGES), "predictor": "kb"})


class StructuralLRDetector(LinearDetector):
    """Learned structural detector of LSB replacement (see the module docstring).

    ``raw`` is the model's logit (the mean over colour planes, like the payload estimators);
    ``score`` its Platt calibration on validation pairs (covers against LSB replacement at
    0.05 and 0.1 bpp, half and half).  No payload estimate: use ``ws``/``spa`` for that."""

    name = "structural"
    features = STRUCTURAL_FEATURES
    default_model = DEFAULT_STRUCTURAL

"""A small spatial rich model ("SRM-lite") and the ``srm`` detector.

J. Fridrich, J. Kodovský, "Rich models for steganalysis of digital images", IEEE Trans.
Information Forensics and Security 7(3), 2012.

The rich model's recipe, on a subset of its residuals: noise residuals ``R = predictor - x``
of several orders, quantised ``round(R / q)`` (halves away from zero, as the paper's code) and
truncated to [-T, T] (T = 2), described by 4th-order co-occurrences of four neighbouring
residual values along rows and along columns.  "spam" submodels use a directional residual
with the co-occurrence along the same direction (horizontal residual along rows plus vertical
along columns) and merge each 5⁴ co-occurrence under sign flip and reversal of the 4-tuple
(169 classes); "minmax" submodels use the minimum and the maximum of several directional
residuals (the non-linear residuals that make the rich model strong against content-adaptive
embedding), add the minimum's co-occurrence to the sign-flipped maximum's and merge under
reversal only (325 classes), as in the paper.  Ten submodels, 2,626 features:

=========================  =======================================================  ====
submodel                   residuals                                                q
=========================  =======================================================  ====
``s1_spam``                x[j+1] - x[j] (→ along rows, ↑ along columns)             1
``s1_minmax``              min / max of x[j±1] - x[j] over → ← ↑ ↓                   1
``s1_minmax_diag``         min / max over the four diagonal neighbours               1
``s2_spam``                x[j-1] + x[j+1] - 2 x[j] (h along rows, v along columns)  2
``s2_minmax_hv`` / ``s2_minmax``  min / max over h, v (and both diagonals)           2
``s3_spam``                -x[j+2] + 3 x[j+1] - 3 x[j] + x[j-1]                      3
``s3_minmax``              min / max of the third-order residual over → ← ↑ ↓        3
``s3x3_square``            the Ker-Böhme kernel [-1 2 -1; 2 -4 2; -1 2 -1]            4
``e3x3_minmax``            min / max over its four half-planes (EDGE 3×3)            4
=========================  =======================================================  ====

Features are normalised per submodel and square-rooted (a variance-stabilising step of ours;
the linear classifiers on top work better with it).  The classifier is a ridge logistic
regression (on validation it beat the regularised Fisher linear discriminant, the base learner
of Kodovský's ensemble classifier, by about 0.01 AUC on HILL and by up to 0.1 on LSB matching
at low rates), fitted against content-adaptive embedding (``scripts/train_linear.py --detector
srm``; ``--detector srm-lsbm`` fits the same features against LSB matching for the fused
detectors).  The counts come from a C kernel (``stegshield._native.srm_counts``, one pass with
a ring of four quantised residual rows: bounded memory); :func:`srm_counts_numpy` is its
readable reference (in strips of rows), and the tests hold the two equal.
"""

from __future__ import annotations

import numpy as np

from ..linear import FeatureSet, LinearDetector

__all__ = ["DEFAULT_SRM", "DEFAULT_SRM_LSBM", "SRM_FEATURES", "SRMDetector", "SRMLSBMDetector",
           "srm_counts", "srm_counts_numpy", "srm_features"]

T = 2
_NB = 2 * T + 1
FEATURE_VERSION = 2
#: Residual rows per strip.
STRIP_ROWS = 256
#: The shipped model ``srm`` loads (``analysis/weights/linear/``).
DEFAULT_SRM = "srm-adaptive"
#: The shipped model ``srm-lsbm`` loads.
DEFAULT_SRM_LSBM = "srm-lsbm"
SUBMODELS = ("s1_spam", "s1_minmax", "s1_minmax_diag", "s2_spam", "s2_minmax_hv",
             "s2_minmax", "s3_spam", "s3_minmax", "s3x3_square", "e3x3_minmax")
_IS_MINMAX = tuple("minmax" in m for m in SUBMODELS)
_BORDER = 2  # the residuals reach two pixels out


def _symmetry_classes(sign: bool) -> tuple[np.ndarray, int]:
    """Class of every 4-tuple code under reversal (and sign flip when ``sign``)."""
    classes: dict[tuple[int, ...], int] = {}
    out = np.zeros(_NB**4, dtype=np.intp)
    for code in range(_NB**4):
        d = tuple((code // _NB**k) % _NB for k in (3, 2, 1, 0))
        neg = tuple(2 * T - v for v in d)
        key = min(d, d[::-1], neg, neg[::-1]) if sign else min(d, d[::-1])
        out[code] = classes.setdefault(key, len(classes))
    return out, len(classes)


_CLASS_SPAM, _N_SPAM = _symmetry_classes(sign=True)  # 169
_CLASS_MINMAX, _N_MINMAX = _symmetry_classes(sign=False)  # 325


def _quant(r: np.ndarray, q: float) -> np.ndarray:
    """round(r / q) with halves away from zero, truncated to [-T, T], shifted to 0..2T."""
    a = np.floor(np.abs(r) / q + 0.5)
    return (np.clip(np.copysign(a, r), -T, T) + T).astype(np.intp)


def _cooc(Q: np.ndarray, axis: int, rows: int) -> np.ndarray:
    """Co-occurrence counts (5⁴,) of 4 consecutive values of ``Q`` along ``axis`` whose first
    value lies in the first ``rows`` rows."""
    if axis == 1:
        Q = Q[:rows]
        a, b, c, d = Q[:, :-3], Q[:, 1:-2], Q[:, 2:-1], Q[:, 3:]
    else:
        n = min(rows, Q.shape[0] - 3)
        a, b, c, d = Q[:n], Q[1 : n + 1], Q[2 : n + 2], Q[3 : n + 3]
    code = ((a * _NB + b) * _NB + c) * _NB + d
    return np.bincount(code.ravel(), minlength=_NB**4)


def _spam(rh: np.ndarray, rv: np.ndarray, q: float, rows: int) -> np.ndarray:
    return _cooc(_quant(rh, q), 1, rows) + _cooc(_quant(rv, q), 0, rows)


def _minmax(rs: list[np.ndarray], q: float, rows: int) -> np.ndarray:
    lo = _quant(np.minimum.reduce(rs), q)
    hi = _quant(-np.maximum.reduce(rs), q)  # the max, sign-flipped, joins the min's histogram
    return (_cooc(lo, 1, rows) + _cooc(lo, 0, rows) + _cooc(hi, 1, rows)
            + _cooc(hi, 0, rows))


def _strip_counts(x: np.ndarray, rows: int) -> np.ndarray:
    """Raw 5⁴ counts per submodel (10, 625) for the first ``rows`` residual rows of a float32
    strip ``x`` (which carries 2 + 3 + 2 more rows)."""
    h, w = x.shape

    def sh(dy: int, dx: int) -> np.ndarray:
        return x[_BORDER + dy : h - _BORDER + dy, _BORDER + dx : w - _BORDER + dx]

    c = sh(0, 0)
    right, left, up, down = sh(0, 1), sh(0, -1), sh(-1, 0), sh(1, 0)
    ul, ur, dl, dr = sh(-1, -1), sh(-1, 1), sh(1, -1), sh(1, 1)
    r1 = [right - c, left - c, up - c, down - c]
    r1d = [ul - c, ur - c, dl - c, dr - c]
    r2h, r2v = left + right - 2 * c, up + down - 2 * c
    r2d1, r2d2 = ul + dr - 2 * c, ur + dl - 2 * c
    rr, ll, uu, dd = sh(0, 2), sh(0, -2), sh(-2, 0), sh(2, 0)
    r3 = [-rr + 3 * right - 3 * c + left, -ll + 3 * left - 3 * c + right,
          -uu + 3 * up - 3 * c + down, -dd + 3 * down - 3 * c + up]
    square = 2 * (right + left + up + down) - (ul + ur + dl + dr) - 4 * c
    edges = [2 * (left + right + up) - ul - ur - 4 * c, 2 * (left + right + down) - dl - dr - 4 * c,
             2 * (up + down + left) - ul - dl - 4 * c, 2 * (up + down + right) - ur - dr - 4 * c]
    return np.stack([
        _spam(r1[0], r1[2], 1, rows), _minmax(r1, 1, rows), _minmax(r1d, 1, rows),
        _spam(r2h, r2v, 2, rows), _minmax([r2h, r2v], 2, rows),
        _minmax([r2h, r2v, r2d1, r2d2], 2, rows),
        _spam(r3[0], r3[2], 3, rows), _minmax(r3, 3, rows),
        _spam(square, square, 4, rows), _minmax(edges, 4, rows),
    ])


def srm_counts_numpy(x: np.ndarray) -> np.ndarray:
    """Raw 5⁴ counts per submodel (10, 625) of a 2-D ``uint8`` plane (at least 8×8) in numpy,
    in strips of :data:`STRIP_ROWS` residual rows: the readable reference of the C kernel
    ``stegshield._native.srm_counts`` that :func:`srm_features` runs (tests hold them equal)."""
    h = x.shape[0]
    n_res = h - 2 * _BORDER  # residual rows
    counts = np.zeros((len(SUBMODELS), _NB**4), dtype=np.int64)
    for r0 in range(0, n_res, STRIP_ROWS):
        rows = min(STRIP_ROWS, n_res - r0)
        strip = x[r0 : r0 + rows + 3 + 2 * _BORDER].astype(np.float32)
        counts += _strip_counts(strip, rows)
    return counts


def srm_counts(x: np.ndarray) -> np.ndarray:
    """Raw 5⁴ counts per submodel (10, 625) of a 2-D ``uint8`` plane (at least 8×8), by the C
    kernel (one pass, a ring of four quantised residual rows; 3.3–3.7× the numpy speed)."""
    from ... import _native

    if np.ndim(x) != 2 or np.asarray(x).dtype != np.uint8 or min(np.shape(x)) < 8:
        raise ValueError("srm_counts expects a 2-D uint8 plane of at least 8×8")
    xi = np.ascontiguousarray(x)
    out = np.zeros((len(SUBMODELS), _NB**4), dtype=np.int64)
    _native.srm_counts(xi, xi.shape[0], xi.shape[1], out)
    return out


def srm_features(x: np.ndarray) -> np.ndarray:
    """The 2,626 SRM-lite features of a 2-D ``uint8`` plane (``nan`` below 8×8)."""
    xi = np.asarray(x)
    if xi.ndim != 2 or xi.dtype != np.uint8:
        raise ValueError("srm_features expects a 2-D uint8 plane")
    h, w = xi.shape
    if min(h, w) < 8:
        return np.full(N_FEATURES, np.nan)
    # every submodel's symmetry classes merged by one bincount, then normalised per submodel
    merged = np.bincount(_FEATURE_OF_CODE, weights=srm_counts(xi).ravel(), minlength=N_FEATURES)
    totals = np.add.reduceat(merged, _SUBMODEL_START)
    sizes = np.diff(np.r_[_SUBMODEL_START, N_FEATURES])
    return np.sqrt(merged / np.repeat(np.maximum(totals, 1.0), sizes))


N_FEATURES = sum(_N_MINMAX if mm else _N_SPAM for mm in _IS_MINMAX)
#: First feature of each submodel, and the feature each (submodel, 5⁴ code) count goes to.
_SUBMODEL_START = np.cumsum([0] + [_N_MINMAX if mm else _N_SPAM for mm in _IS_MINMAX])[:-1]
_FEATURE_OF_CODE = np.concatenate([
    start + (_CLASS_MINMAX if mm else _CLASS_SPAM)
    for start, mm in zip(_SUBMODEL_START, _IS_MINMAX, strict=True)])
SRM_FEATURES = FeatureSet(
    name="srm", version=FEATURE_VERSION,
    names=tuple(f"{m}[{i}]" for m, mm in zip(SUBMODELS, _IS_MINMAX, strict=True)
                for i in range(_N_MINMAX if mm else _N_SPAM)),
    extract=srm_features, params={"T": T, "submodels": list(SUBMODELS), "sqrt": True})


class SRMDetector(LinearDetector):
    """SRM-lite + logistic regression against content-adaptive embedding (``srm``),
    torch-free.  ``raw`` is the logit (mean over colour planes), ``score`` its Platt
    calibration on validation pairs; FPR thresholds from validation cover tiles."""

    name = "srm"
    features = SRM_FEATURES
    default_model = DEFAULT_SRM


class SRMLSBMDetector(SRMDetector):
    """The same features and classifier trained against LSB matching (``srm-lsbm``): the
    strongest torch-free LSB-matching detector shipped, and a member of ``fused``."""

    name = "srm-lsbm"
    default_model = DEFAULT_SRM_LSBM

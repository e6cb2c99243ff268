"""Sample pair analysis (SPA).

S. Dumitrescu, X. Wu, Z. Wang, "Detection of LSB steganography via sample
pair analysis", IEEE Trans. Signal Processing 51(7), 2003.

For pairs ``(u, v)`` of adjacent samples let ``C_m`` be the pairs whose
7-bit traces differ by ``m`` (``|u//2 - v//2| = m``).  Inside ``C_m`` (m >= 1)
orient each pair so that its second element has the larger trace and split
it by the LSBs into ``A_m`` (equal LSBs, ``|u-v| = 2m``), ``B_m`` (LSBs 0,1:
``|u-v| = 2m+1``) and ``E_m`` (LSBs 1,0: ``|u-v| = 2m-1``).  The paper's
natural-image hypothesis is that pairs differing by an odd amount ``2m+1``
are as likely to have their even element as the smaller or as the larger
one, i.e. ``|B_m| = |E_{m+1}|`` (for m = 0: ``|B_0 u E_0| = |E_1|``, all
odd-difference pairs in C_0 against those in C_1).

Flipping each LSB independently with probability ``q = p/2`` leaves traces
unchanged and mixes A, B, E; with ``s = 1 - 2q = 1 - p``

    B'_m + E'_m = (1 - s^2)/2 |C_m| + s^2 (b_m + e_m),   B'_m - E'_m = s (b_m - e_m).

Inverting and imposing the hypothesis gives, for every ``m``, a quadratic
in ``s`` with coefficients linear in the observed counts.  As in the paper,
the equations of all ``m`` (here 0..126) are pooled (coefficients summed)
and the root giving the **smaller** payload ``p = 1 - s`` is taken; if the
roots are complex the vertex is used (degenerate images).  The derivation
is the paper's; the closed form is written in ``s`` rather than ``p``.

Pairs: horizontally and vertically adjacent samples (the paper uses
horizontal pairs; adding vertical ones doubles the sample at no cost).
"""

from __future__ import annotations

import numpy as np

from ..base import Calibration, PayloadDetector

__all__ = ["SPADetector", "spa_coefficients", "spa_estimate"]

#: default score map: P(stego | estimate) for a 50/50 mix of covers and LSB replacement at
#: 0.05/0.1/0.2 bpp, fitted on the corpus's validation split (221 tiles of 256, 37 photos) by
#: ``scripts/calibrate_structural.py``; test-split ECE in BENCHMARKS.md
DEFAULT_CALIBRATION = Calibration(a=129.1018, b=-4.0501)
_NM = 128


def _class_of(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Class index ``3 m + kind`` (kind 0: A, 1: B, 2: E) of pairs (u, v)."""
    tu, tv = u >> 1, v >> 1
    swap = tu > tv
    lo = np.where(swap, v, u)
    hi = np.where(swap, u, v)
    lo1, hi1 = lo & 1, hi & 1
    kind = np.where(lo1 == hi1, 0, np.where(lo1 == 0, 1, 2))
    return np.abs(tu - tv) * 3 + kind


def _build_lut() -> np.ndarray:
    """Class index of every (v - u, u parity) key; the class depends on nothing else."""
    d = np.arange(-255, 256)
    out = np.zeros((d.size, 2), dtype=np.intp)
    for par in (0, 1):
        u = np.where(d < 0, 254 + par, par)  # a u of this parity with u + d mostly in range
        v = u + d
        ok = (v >= 0) & (v <= 255)  # the two impossible keys keep class 0 (count 0)
        out[ok, par] = _class_of(u[ok], v[ok])
    return out.reshape(-1)


_LUT = _build_lut()


def _pair_counts(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Counts (128, 3) of (A, B, E) per trace difference m for int16 pairs (u, v)."""
    key = ((v - u + 255) * 2 + (u & 1)).ravel()
    hist = np.bincount(key, minlength=511 * 2)
    return np.bincount(_LUT, weights=hist, minlength=_NM * 3).reshape(_NM, 3)


def spa_coefficients(counts: np.ndarray, m_max: int = 126) -> tuple[float, float, float]:
    """Pooled quadratic ``a s^2 + b s + c`` from (A, B, E) counts per m."""
    cnt = counts.astype(np.float64)
    c_m = cnt.sum(axis=1)
    plus = cnt[:, 1] + cnt[:, 2]
    minus = cnt[:, 1] - cnt[:, 2]
    # m = 0:  (b0 + e0) = e1
    a = c_m[0] - 0.5 * c_m[1]
    b = minus[1]
    c = 2.0 * plus[0] - plus[1] - c_m[0] + 0.5 * c_m[1]
    # 1 <= m <= m_max:  b_m = e_{m+1}
    ms = np.arange(1, m_max + 1)
    a += 0.5 * (c_m[ms] - c_m[ms + 1]).sum()
    b += (minus[ms] + minus[ms + 1]).sum()
    c += (plus[ms] - plus[ms + 1] - 0.5 * (c_m[ms] - c_m[ms + 1])).sum()
    return float(a), float(b), float(c)


def _smaller_payload_root(a: float, b: float, c: float) -> float:
    """Payload ``p = 1 - s`` of the root with the smaller ``p`` (nan if undefined)."""
    if abs(a) < 1e-12 * max(abs(b), abs(c), 1.0):
        return float("nan") if b == 0 else 1.0 + c / b
    disc = b * b - 4.0 * a * c
    if disc < 0:
        return 1.0 + b / (2.0 * a)
    sq = np.sqrt(disc)
    s1, s2 = (-b + sq) / (2.0 * a), (-b - sq) / (2.0 * a)
    return float(1.0 - max(s1, s2))


def spa_estimate(x: np.ndarray) -> float:
    """SPA payload estimate (bits per pixel) of a 2-D ``uint8`` plane (unclipped)."""
    xa = np.asarray(x)
    if xa.dtype == np.uint8 and xa.ndim == 2 and xa.size:  # one C pass, both directions
        from ... import _native

        hist = np.empty(511 * 2, dtype=np.int64)
        _native.pair_hist(np.ascontiguousarray(xa), xa.shape[0], xa.shape[1], hist)
        counts = np.bincount(_LUT, weights=hist, minlength=_NM * 3).reshape(_NM, 3)
        return _smaller_payload_root(*spa_coefficients(counts))
    xi = xa.astype(np.int16)
    counts = _pair_counts(xi[:, :-1], xi[:, 1:]) + _pair_counts(xi[:-1, :], xi[1:, :])
    return _smaller_payload_root(*spa_coefficients(counts))


class SPADetector(PayloadDetector):
    """Sample pair analysis (Dumitrescu, Wu, Wang 2003) as a :class:`Detector`."""

    name = "spa"

    def __init__(self, calibration: Calibration = DEFAULT_CALIBRATION) -> None:
        self.calibration = calibration

    def estimate_channel(self, x: np.ndarray) -> tuple[float, np.ndarray | None]:
        """Return the SPA estimate of one plane (no tile map)."""
        return spa_estimate(x), None

"""Structural (classical) steganalysis of LSB replacement.

* :mod:`.chi_square` - Westfeld & Pfitzmann 1999, with the sequential scan;
* :mod:`.rs` - Fridrich, Goljan & Du 2001 (RS groups);
* :mod:`.spa` - Dumitrescu, Wu & Wang 2003 (sample pair analysis);
* :mod:`.ws` - Fridrich & Goljan 2004 / Ker & Böhme 2008 (weighted stego image).

All target LSB *replacement*; none of them detects LSB matching (+-1
embedding), whose changes do not have the pairs-of-values structure they
exploit.
"""

from .chi_square import ChiSquareDetector, SequentialScan, sequential_scan
from .rs import RSDetector, rs_estimate
from .spa import SPADetector, spa_estimate
from .ws import WSDetector, ws_estimate

__all__ = [
    "ChiSquareDetector",
    "RSDetector",
    "SPADetector",
    "SequentialScan",
    "WSDetector",
    "rs_estimate",
    "sequential_scan",
    "spa_estimate",
    "ws_estimate",
]

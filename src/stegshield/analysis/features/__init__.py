"""Feature-based steganalysis: hand-crafted features of the noise residual and a learned
linear classifier on top (:mod:`stegshield.analysis.linear`).

* :mod:`.spam` - SPAM, the subtractive pixel adjacency model (Pevný, Bas & Fridrich 2010), the
  ``spam`` detector, trained against LSB matching (±1 embedding).
"""

from .spam import SPAM_FEATURES, SPAMDetector, spam_features

__all__ = ["SPAM_FEATURES", "SPAMDetector", "spam_features"]

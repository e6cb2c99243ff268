"""Feature-based steganalysis: hand-crafted features of the noise residual and a learned
linear classifier on top (:mod:`stegshield.analysis.linear`).

* :mod:`.spam` - SPAM, the subtractive pixel adjacency model (Pevný, Bas & Fridrich 2010), the
  ``spam`` detector, trained against LSB matching (±1 embedding);
* :mod:`.srm` - a ten-submodel subset of the spatial rich model (Fridrich & Kodovský 2012), the
  ``srm`` detector, trained against content-adaptive embedding (HILL), and ``srm-lsbm``, the
  same features trained against LSB matching.
"""

from .spam import SPAM_FEATURES, SPAMDetector, spam_features
from .srm import SRM_FEATURES, SRMDetector, SRMLSBMDetector, srm_features

__all__ = ["SPAM_FEATURES", "SRM_FEATURES", "SPAMDetector", "SRMDetector", "SRMLSBMDetector",
           "spam_features", "srm_features"]

"""ImageNet-pretrained CNN detector ("pretrained").  Importing this package does not import torch.

EfficientNet-Lite0 (Tan & Le 2019) with ImageNet weights, adapted to steganalysis either as frozen
features + a linear classifier or fine-tuned with the stem's stride removed (Yousfi et al., WIFS
2020).  The shipped model runs through the same tiled inference as the purpose-built CNN
(:class:`stegshield.analysis.cnn.inference.CNNDetector`); see :mod:`.model` and docs/CNN.md.
"""

from __future__ import annotations

from ..cnn import model_detector

__all__ = ["DEFAULT_PRETRAINED", "pretrained_detector"]

#: Shipped model file (``analysis/weights/<name>.safetensors``) used by ``--detector pretrained``.
DEFAULT_PRETRAINED = "effnet-lite0"


#: A :class:`~stegshield.analysis.cnn.inference.CNNDetector` on the shipped pretrained model
#: (``model=`` picks another file); its ``name`` is ``"pretrained"``.
pretrained_detector = model_detector("pretrained", DEFAULT_PRETRAINED)

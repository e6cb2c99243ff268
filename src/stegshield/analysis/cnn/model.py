"""Steganalysis CNNs with a fixed SRM high-pass front end.

* :func:`srm_kernels` — the 30 basic high-pass filters of the spatial rich model (Fridrich &
  Kodovský, "Rich Models for Steganalysis of Digital Images", IEEE TIFS 2012), as integer
  numerators over a per-class divisor, zero-padded to 5×5 (as used by Ye-Net, Ye et al. 2017, and
  Yedroudj-Net, Yedroudj et al. ICASSP 2018).
* :class:`SRMFrontEnd` — convolution with those kernels followed by a truncation (TLU,
  Ye et al. 2017; T = 3 as in Yedroudj-Net), always evaluated in float32: rounding the kernels to
  bfloat16 would break their zero sum and leak brightness into the residuals.
* :class:`LightNet` — the CPU-sized default: 1×1 mixing conv, two residual depthwise-separable
  layers at full resolution (no pooling or stride early, the lesson of SRNet, Boroumand et al.
  IEEE TIFS 2019), three pooled separable blocks, global average + max pooling, linear head;
  optionally selection-channel aware (``sca=True``, :mod:`.sca`).
* :class:`YedroudjNet` — a compact Yedroudj-Net-like net (ABS + TLU in the first block).

Models take float tensors of raw pixel values (0..255, not normalised) of shape ``(N, 1, H, W)``
and return one logit per image (higher = stego).  New architectures plug in with
:func:`register_arch`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .sca import SCAMap

__all__ = [
    "ARCHS",
    "SCA_CONFIG_KEYS",
    "SCA_PARAMS",
    "LightNet",
    "SRMFrontEnd",
    "YedroudjNet",
    "build_model",
    "register_arch",
    "srm_kernels",
]


def _rot90s(k: np.ndarray, n: int) -> list[np.ndarray]:
    return [np.rot90(k, i) for i in range(n)]


def srm_kernels() -> tuple[np.ndarray, np.ndarray]:
    """Return ``(numerators (30, 5, 5) int, divisors (30,) float)`` of the 30 SRM filters.

    Classes (Fridrich & Kodovský 2012, Fig. 2): 8 first-order, 4 second-order, 8 third-order,
    SQUARE 3×3, 4 EDGE 3×3, SQUARE 5×5, 4 EDGE 5×5.  Every kernel sums to zero.
    """
    ks: list[np.ndarray] = []
    divs: list[float] = []
    c = 2  # centre of the 5×5 support
    dirs8 = [(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1)]
    for dy, dx in dirs8:  # first order: x[n + d] - x[n]
        k = np.zeros((5, 5), np.int64)
        k[c, c] = -1
        k[c + dy, c + dx] = 1
        ks.append(k)
        divs.append(1.0)
    for dy, dx in dirs8[:4]:  # second order: x[n - d] - 2 x[n] + x[n + d]
        k = np.zeros((5, 5), np.int64)
        k[c, c] = -2
        k[c + dy, c + dx] = 1
        k[c - dy, c - dx] = 1
        ks.append(k)
        divs.append(2.0)
    for dy, dx in dirs8:  # third order: -x[n - d] + 3 x[n] - 3 x[n + d] + x[n + 2d]
        k = np.zeros((5, 5), np.int64)
        k[c - dy, c - dx] = -1
        k[c, c] = 3
        k[c + dy, c + dx] = -3
        k[c + 2 * dy, c + 2 * dx] = 1
        ks.append(k)
        divs.append(3.0)
    sq3 = np.array([[-1, 2, -1], [2, -4, 2], [-1, 2, -1]], np.int64)
    k = np.zeros((5, 5), np.int64)
    k[1:4, 1:4] = sq3
    ks.append(k)
    divs.append(4.0)
    e3 = np.array([[-1, 2, -1], [2, -4, 2], [0, 0, 0]], np.int64)
    for r in _rot90s(e3, 4):
        k = np.zeros((5, 5), np.int64)
        k[1:4, 1:4] = r
        ks.append(k)
        divs.append(4.0)
    sq5 = np.array(
        [[-1, 2, -2, 2, -1], [2, -6, 8, -6, 2], [-2, 8, -12, 8, -2],
         [2, -6, 8, -6, 2], [-1, 2, -2, 2, -1]], np.int64)
    ks.append(sq5)
    divs.append(12.0)
    e5 = sq5.copy()
    e5[3:] = 0
    for r in _rot90s(e5, 4):
        ks.append(np.ascontiguousarray(r))
        divs.append(12.0)
    return np.stack(ks), np.asarray(divs)


class SRMFrontEnd(nn.Module):
    """30 SRM residuals (fixed by default, optionally learnable) + truncation at ``±T``."""

    def __init__(self, threshold: float = 3.0, learnable: bool = False) -> None:
        super().__init__()
        num, div = srm_kernels()
        w = torch.from_numpy(num / div[:, None, None]).float().unsqueeze(1)
        self.weight = nn.Parameter(w, requires_grad=learnable)
        self.threshold = float(threshold)

    def forward(self, x: Tensor) -> Tensor:
        """Residuals of ``x`` (N, 1, H, W), clipped to ``[-T, T]``; always float32."""
        # never under autocast: in bfloat16 a ±1 change would drown in the rounding of pixels
        with torch.autocast(device_type=x.device.type, enabled=False):
            r = nn.functional.conv2d(x.float(), self.weight.float(), padding=2)
            return torch.clamp(r, -self.threshold, self.threshold)


def _ds(cin: int, cout: int) -> nn.Sequential:
    """Depthwise 3×3 + pointwise 1×1 + BN (Howard et al., MobileNets, 2017)."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False),
        nn.Conv2d(cin, cout, 1, bias=False),
        nn.BatchNorm2d(cout),
    )


class _ResDS(nn.Module):
    """Residual depthwise-separable layer at full resolution (SRNet's unpooled type-2 layer)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.a = _ds(ch, ch)
        self.b = _ds(ch, ch)

    def forward(self, x: Tensor) -> Tensor:
        return torch.relu(x + self.b(torch.relu(self.a(x))))


class _PoolDS(nn.Module):
    """Separable block + ReLU + 2×2 average pooling (pooling after the noise residual layers)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = _ds(cin, cout)
        self.pool = nn.AvgPool2d(2)

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(torch.relu(self.conv(x)))


class _Net(nn.Module):
    """Front end (float32) → body (optionally bfloat16) → global avg+max → linear head."""

    front: SRMFrontEnd
    body: nn.Module
    head: nn.Linear

    def __init__(self) -> None:
        super().__init__()
        self.body_dtype = torch.float32

    def set_body_dtype(self, dtype: torch.dtype) -> None:
        """Run the body in ``dtype`` (bfloat16 for CPU inference); the front end stays fp32."""
        self.body.to(dtype)
        self.body_dtype = dtype

    def stem_input(self, x: Tensor) -> Tensor:
        """What the body sees: the front end's residuals (float32)."""
        return self.front(x)

    def features(self, x: Tensor) -> Tensor:
        f = self.body(self.stem_input(x).to(self.body_dtype))
        return torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1).float()

    def forward(self, x: Tensor) -> Tensor:
        """One logit per image."""
        return self.head(self.features(x)).squeeze(1)


class LightNet(_Net):
    """CPU-sized steganalyser (default ``arch="light"``); ~35 k parameters at width 16."""

    def __init__(self, width: int = 16, threshold: float = 3.0, learnable_front: bool = False,
                 full_res_layers: int = 2, widths: tuple[int, ...] = (32, 64, 128),
                 stem_pool: bool = False, sca: bool = False, sca_rate: float = 0.4) -> None:
        """``stem_pool=True`` (the fast variant, ``light-fast``): 2×2 average pooling right after
        the 1×1 mixing + BN + ReLU, so every later layer runs at half resolution (≈ 4× fewer
        body FLOPs and memory passes).  The ReLU before the pooling turns the residuals into
        non-negative energy-like maps, so the averaging keeps (part of) the ±1 stego energy
        instead of cancelling the zero-mean residual.

        ``sca=True``: selection-channel aware (:mod:`.sca`): each residual channel ``c``
        becomes ``r_c · (1 + g_c m) + o_c m``, with ``m`` the local change probability of HILL
        at ``sca_rate`` bits per pixel, computed from the image itself, and ``g``, ``o``
        learnt.  They start at zero, so a plain model's weights (``SCA_PARAMS`` missing) give
        exactly that model to start from."""
        super().__init__()
        self.front = SRMFrontEnd(threshold, learnable_front)
        self.sca = SCAMap(sca_rate) if sca else None
        if sca:
            self.sca_gain = nn.Parameter(torch.zeros(1, 30, 1, 1))
            self.sca_offset = nn.Parameter(torch.zeros(1, 30, 1, 1))
        layers: list[nn.Module] = [
            nn.Conv2d(30, width, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()]
        if stem_pool:
            layers.append(nn.AvgPool2d(2))
        layers += [_ResDS(width) for _ in range(full_res_layers)]
        cin = width
        for w in widths:
            layers.append(_PoolDS(cin, w))
            cin = w
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(2 * cin, 1)

    def stem_input(self, x: Tensor) -> Tensor:
        r = self.front(x)
        if self.sca is None:
            return r
        m = self.sca(x)  # (N, 1, H, W), broadcast over the residual channels
        return r + (r * self.sca_gain + self.sca_offset) * m


#: Parameters a selection-channel-aware ``light`` has beyond its plain twin (zero at start),
#: and the ``arch_config`` keys that make it one.
SCA_PARAMS = ("sca_gain", "sca_offset")
SCA_CONFIG_KEYS = ("sca", "sca_rate")


class _Abs(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.abs()


class _Clamp(nn.Module):
    def __init__(self, t: float) -> None:
        super().__init__()
        self.t = t

    def forward(self, x: Tensor) -> Tensor:
        return torch.clamp(x, -self.t, self.t)


class YedroudjNet(_Net):
    """Compact Yedroudj-Net-like model (Yedroudj, Comby, Chaumont, ICASSP 2018): ABS + TLU."""

    def __init__(self, threshold: float = 3.0, learnable_front: bool = False) -> None:
        super().__init__()
        self.front = SRMFrontEnd(threshold, learnable_front)

        def blk(cin: int, cout: int, k: int, pool: bool) -> list[nn.Module]:
            m: list[nn.Module] = [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False),
                                  nn.BatchNorm2d(cout), nn.ReLU()]
            return m + ([nn.AvgPool2d(2)] if pool else [])

        self.body = nn.Sequential(
            nn.Conv2d(30, 30, 5, padding=2, bias=False), _Abs(), nn.BatchNorm2d(30), _Clamp(3.0),
            nn.Conv2d(30, 30, 5, padding=2, bias=False), nn.BatchNorm2d(30), _Clamp(2.0),
            nn.AvgPool2d(2),
            *blk(30, 32, 3, True), *blk(32, 64, 3, True), *blk(64, 128, 3, False),
        )
        self.head = nn.Linear(256, 1)


def _effnet_lite0(**config: Any) -> nn.Module:
    """ImageNet-pretrained EfficientNet-Lite0 (:mod:`stegshield.analysis.pretrained.model`)."""
    from ..pretrained.model import EffNetLite0

    return EffNetLite0(**config)


ARCHS: dict[str, Callable[..., nn.Module]] = {
    "light": LightNet, "yedroudj": YedroudjNet, "effnet-lite0": _effnet_lite0}


def register_arch(name: str, factory: Callable[..., nn.Module]) -> None:
    """Make ``factory(**config)`` available to training (``--arch name``) and inference.

    The factory must return a module mapping ``(N, 1, H, W)`` raw pixels to ``(N,)`` logits.
    """
    if name in ARCHS:
        raise ValueError(f"architecture {name!r} already registered")
    ARCHS[name] = factory


def build_model(arch: str = "light", **config: Any) -> nn.Module:
    """Instantiate a registered architecture."""
    try:
        return ARCHS[arch](**config)
    except KeyError:
        raise KeyError(f"unknown arch {arch!r}; available: {', '.join(sorted(ARCHS))}") from None

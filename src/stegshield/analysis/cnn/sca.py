"""Selection-channel awareness: the detector's own estimate of where an adaptive embedder would
change pixels, used to weigh the noise residuals.

Content-adaptive schemes put their ±1 changes where the cost is low, and the cost hardly moves
under those changes, so a detector can recompute it from the image it scans.  The
selection-channel-aware SRM (Denemark, Sedighi, Holub, Cogranne & Fridrich, WIFS 2014) and the
SCA variant of Ye, Ni & Yi's CNN (IEEE TIFS 2017) feed the change probabilities ``β`` of an
assumed embedder, convolved with the absolute residual kernels, into the first layer.  Here the
embedder is HILL (Li et al., ICIP 2014) at an assumed payload, and the map is the 3×3 mean of
``β`` (the support of most SRM kernels); the network learns, per residual channel, a gain and
an offset by which that map modulates the residual (:class:`~.model.LightNet` ``sca=True``).
Concatenating the map as extra input channels was tried first: on 2 cores the concatenation of
channels-last full-resolution tensors alone cost nearly as much as the whole early-pooled
network (9 against 11 ms per tile, one profiling run).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F  # noqa: N812 (torch's own convention)

__all__ = ["SCAMap", "box_mean", "change_probability", "hill_cost", "hill_cost_fast", "sym_pad"]

_EPS32 = float(np.finfo(np.float32).eps)


def sym_pad(x: Tensor, p: int) -> Tensor:
    """Mirror-pad the last two dims by ``p`` (numpy ``mode="symmetric"``: ``c b a | a b c``)."""
    def index(n: int) -> Tensor:
        i = torch.arange(-p, n + p, device=x.device) % (2 * n)  # period 2n, as numpy reflects
        return torch.where(i >= n, 2 * n - 1 - i, i)

    return x.index_select(-2, index(x.shape[-2])).index_select(-1, index(x.shape[-1]))


def hill_cost(x: Tensor, eps: float = _EPS32) -> Tensor:
    """HILL cost of a ±1 change (Li, Wang, Huang & Li, ICIP 2014) for ``x`` (N, 1, H, W) of
    0..255 values, in ``x``'s dtype: KB high-pass, |.|, 3×3 mean, reciprocal, 15×15 mean
    (mirrored borders, as :mod:`stegshield.stego.costs`).  Not clamped to the embedders'
    maximum cost."""
    kb = torch.tensor([[-1.0, 2, -1], [2, -4, 2], [-1, 2, -1]], dtype=x.dtype,
                      device=x.device).view(1, 1, 3, 3) / 4
    r = F.conv2d(sym_pad(x, 1), kb).abs()
    r = F.avg_pool2d(sym_pad(r, 1), 3, stride=1).clamp_min(eps)
    return F.avg_pool2d(sym_pad(1.0 / r, 7), 15, stride=1)


def box_mean(x: Tensor, k: int) -> Tensor:
    """k×k mean (k odd) of (N, C, H, W), same size, reflected borders, by running sums: a few
    operations per pixel whatever ``k`` (values must be moderate: float32 running sums)."""
    if k == 1:
        return x
    p = k // 2
    xp = F.pad(x, (p, p, p, p), mode="reflect")
    c = F.pad(xp.cumsum(-2), (0, 0, 1, 0))
    v = c[..., k:, :] - c[..., :-k, :]
    c = F.pad(v.cumsum(-1), (1, 0, 0, 0))
    return (c[..., k:] - c[..., :-k]) / (k * k)


def hill_cost_fast(x: Tensor, floor: float = 0.01) -> Tensor:
    """HILL costs for detection (float32, (N, 1, H, W)): the KB filter as the product of two
    second differences (it is ``-(1/4) d2 ⊗ d2``), reflected borders, the 3×3 mean residual
    floored at ``floor`` (the smallest non-zero value is 1/36), running-sum means.  Equal to
    :func:`hill_cost` 10 pixels away from the borders where the floor does not bite."""
    xp = F.pad(x, (1, 1, 1, 1), mode="reflect")
    d = 2 * xp[..., 1:-1, :] - xp[..., :-2, :] - xp[..., 2:, :]
    d = 2 * d[..., 1:-1] - d[..., :-2] - d[..., 2:]
    r = box_mean(d.abs() / 4, 3).clamp_min(floor)
    return box_mean(1.0 / r, 15)


def change_probability(rho: Tensor, rate: float, iters: int = 14, stride: int = 4) -> Tensor:
    """Probability ``β = 2e^{-λρ} / (1 + 2e^{-λρ})`` that the optimal ternary embedder changes
    each pixel, with ``λ`` bisected per image so that the entropy is ``rate`` bits per pixel
    (Filler, Judas & Fridrich, IEEE TIFS 2011).  ``rho``: (N, 1, H, W) float32 costs.  The
    bisection runs on every ``stride``-th pixel of each axis: a detector needs the map's shape,
    not the embedder's exact λ (the defaults carry the payload to within ~10 % on 128² tests,
    at a quarter of the time of ``iters=20, stride=2``)."""
    sub = rho[..., ::stride, ::stride]
    target = rate * sub.shape[-1] * sub.shape[-2]
    lo = torch.full((rho.shape[0], 1, 1, 1), -28.0, device=rho.device)  # ln λ
    hi = torch.full_like(lo, 28.0)
    for _ in range(iters):
        mid = (lo + hi) / 2
        lr = torch.exp(mid) * sub
        e = 2.0 * torch.exp(-lr)
        # H = log2 Z + λρ·β / ln 2 with Z = 1 + 2e^{-λρ}, β = 1 - 1/Z
        h = (torch.log1p(e) + lr * e / (1.0 + e)).sum(dim=(1, 2, 3), keepdim=True) / math.log(2)
        more = h > target  # too much entropy: λ must grow
        lo = torch.where(more, mid, lo)
        hi = torch.where(more, hi, mid)
    e = 2.0 * torch.exp(-torch.exp((lo + hi) / 2) * rho)
    return e / (1.0 + e)


class SCAMap(nn.Module):
    """Selection channel of a (N, 1, H, W) image: the 3×3 mean of HILL's change probabilities
    ``β`` at ``rate`` bits per pixel, (N, 1, H, W) float32 always."""

    def __init__(self, rate: float = 0.4) -> None:
        super().__init__()
        if not 0.0 < rate <= math.log2(3.0):
            raise ValueError(f"sca_rate must be in (0, log2 3], not {rate}")
        self.rate = float(rate)

    @torch.no_grad()  # a property of the image, never differentiated
    def forward(self, x: Tensor) -> Tensor:
        if min(x.shape[-2:]) < 8:
            raise ValueError(f"the selection channel needs tiles of at least 8 px, not "
                             f"{tuple(x.shape[-2:])}")
        with torch.autocast(device_type=x.device.type, enabled=False):
            return box_mean(change_probability(hill_cost_fast(x.float()), self.rate), 3)

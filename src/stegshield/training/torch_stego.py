"""Training stego made in torch, in batches, on the training device (GPU or CPU).

The same algorithms as :mod:`.data`, on ``(B, H, W)`` tensors, so that a GPU run makes its own
stego instead of waiting for CPU workers (a 256×256 S-UNIWARD cost map takes ~0.16 s in numpy):

* cost maps — HILL (Li et al., ICIP 2014), S-UNIWARD (Holub, Fridrich & Denemark, EURASIP JIS
  2014) and WOW (Holub & Fridrich, WIFS 2012), computed exactly as :mod:`stegshield.stego.costs`
  (mirrored borders, Daubechies-8 filter bank), in float64, once per cover tile;
* the optimal ±1 simulator ``p±(λ) = e^{-λρ±} / (1 + e^{-λρ+} + e^{-λρ-})`` with λ bisected per
  image so that the ternary entropy equals the payload (Filler, Judas & Fridrich, IEEE TIFS 2011);
* LSB replacement / matching at random positions, sequential LSB replacement;
* ``hide`` is approximated by HILL at the same rate (what ``hide`` minimises, without the STC
  coding loss of a few per cent; the real ``hide`` output needs the crypto stack and the CPU).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.nn import functional as F  # noqa: N812 (torch's own convention)

from ..analysis.cnn.sca import hill_cost, sym_pad
from ..stego.costs._base import MAX_COST
from ..stego.costs._common import DB8_DEC_HI, DB8_DEC_LO

__all__ = [
    "DevicePairs",
    "DeviceStegoMaker",
    "cost_maps",
    "fixed_pairs_on_device",
    "lsb_batch",
    "sym_pad",
    "ternary_batch",
]

_COST_ALGS = ("hill", "suniward", "wow")
_EPS32 = float(np.finfo(np.float32).eps)


def _corr(x: Tensor, k: np.ndarray, axis: int) -> Tensor:
    """'Valid' 1-D correlation of (B, 1, H, W) along H (axis 0) or W (axis 1)."""
    w = torch.as_tensor(np.ascontiguousarray(k), dtype=x.dtype, device=x.device)
    w = w.view(1, 1, -1, 1) if axis == 0 else w.view(1, 1, 1, -1)
    return F.conv2d(x, w)


def _finalize(rho: Tensor) -> Tensor:
    rho = torch.nan_to_num(rho, nan=MAX_COST, posinf=MAX_COST)
    return rho.clamp(float(np.finfo(np.float64).tiny), MAX_COST)


def _hill(x: Tensor) -> Tensor:
    return _finalize(hill_cost(x, _EPS32))


def _wavelet(x: Tensor, transform: str, sigma: float = 1.0) -> list[Tensor]:
    H, W = x.shape[-2:]
    L = DB8_DEC_LO.size
    xp = sym_pad(x, L)
    lo, hi = DB8_DEC_LO[::-1], DB8_DEC_HI[::-1]
    a, b = _corr(xp, hi, 1), _corr(xp, lo, 1)
    residuals = [_corr(a, lo, 0), _corr(b, hi, 0), _corr(a, hi, 0)]
    kernels = [(DB8_DEC_LO, DB8_DEC_HI), (DB8_DEC_HI, DB8_DEC_LO), (DB8_DEC_HI, DB8_DEC_HI)]
    out = []
    for (col, row), w in zip(kernels, residuals, strict=True):
        w = w.abs()
        if transform == "uniward":
            w = 1.0 / (w + sigma)
        xi = _corr(_corr(w, np.abs(row), 1), np.abs(col), 0)
        out.append(xi[..., 1:H + 1, 1:W + 1])
    return out


def cost_maps(x: Tensor, alg: str) -> Tensor:
    """Cost of a ±1 change, (B, H, W) float64, for 0..255 images ``x`` (B, H, W).

    Same definitions and borders as :data:`stegshield.stego.costs.COSTS` (float64 throughout,
    TF32 off, so a GPU gives the CPU's numbers to rounding)."""
    if alg not in _COST_ALGS:
        raise ValueError(f"no cost map for {alg!r}; choose from {', '.join(_COST_ALGS)}")
    xx = x.to(torch.float64).unsqueeze(1)
    with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        if alg == "hill":
            rho = _hill(xx)
        elif alg == "suniward":
            xi = _wavelet(xx, "uniward")
            rho = _finalize(xi[0] + xi[1] + xi[2])
        else:
            xi = _wavelet(xx, "wow")
            floor = 1.0 / MAX_COST
            rho = _finalize(sum(1.0 / k.clamp_min(floor) for k in xi))
    return rho.squeeze(1)


def ternary_batch(x: Tensor, rho: Tensor, rates: Tensor, gen: torch.Generator,
                  iters: int = 32) -> Tensor:
    """Simulated optimal ±1 embedding of each image of ``x`` (B, H, W uint8) at ``rates`` (B,)
    bits per pixel; ``rho`` (B, H, W) are the costs, made wet at 0 (−1) and 255 (+1)."""
    wet = torch.tensor(MAX_COST, dtype=torch.float32, device=x.device)
    r = rho.to(torch.float32)
    rp = torch.where(x == 255, wet, r)
    rm = torch.where(x == 0, wet, r)
    n = x.shape[-1] * x.shape[-2]
    target = rates.to(torch.float64) * n
    lo = torch.full_like(target, -28.0)  # ln λ
    hi = torch.full_like(target, 28.0)

    def probs(log_lam: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        lam = torch.exp(log_lam).to(torch.float32).view(-1, 1, 1)
        ep, em = torch.exp(-lam * rp), torch.exp(-lam * rm)
        z = 1.0 + ep + em
        pp, pm = ep / z, em / z
        h = torch.log2(z) + lam * (pp * rp + pm * rm) / math.log(2.0)
        return h.to(torch.float64).sum(dim=(1, 2)), pp, pm

    for _ in range(iters):
        mid = (lo + hi) / 2
        h, _, _ = probs(mid)
        more = h > target  # too much entropy: λ must grow
        lo = torch.where(more, mid, lo)
        hi = torch.where(more, hi, mid)
    _, pp, pm = probs((lo + hi) / 2)
    u = torch.rand(x.shape, generator=gen, device=x.device)
    delta = (u < pp).to(torch.int16) - ((u >= pp) & (u < pp + pm)).to(torch.int16)
    delta = torch.where((rates > 0).view(-1, 1, 1), delta, torch.zeros_like(delta))
    return (x.to(torch.int16) + delta).clamp(0, 255).to(torch.uint8)


def lsb_batch(x: Tensor, rates: Tensor, gen: torch.Generator, matching: bool,
              sequential: bool) -> Tensor:
    """LSB replacement (or ±1 matching) of ``round(rate·n)`` pixels per image, at random
    positions (exactly that many, as :func:`.data.embed`) or (``sequential``) the first ones
    in raster order."""
    B, H, W = x.shape
    shape = (B, H, W)
    k = torch.round(rates.to(torch.float64) * H * W).to(torch.int64).clamp(0, H * W)
    if sequential:
        sel = torch.arange(H * W, device=x.device).view(1, H, W) < k.view(-1, 1, 1)
    else:  # the k smallest of n uniform keys: k positions without replacement
        keys = torch.rand((B, H * W), generator=gen, device=x.device)
        kth = keys.sort(dim=1).values.gather(1, (k - 1).clamp(min=0).view(-1, 1))
        sel = ((keys <= kth) & (k > 0).view(-1, 1)).view(shape)
    bits = torch.randint(0, 2, shape, generator=gen, device=x.device, dtype=torch.int16)
    cur = x.to(torch.int16)
    need = sel & ((cur & 1) != bits)
    if matching:
        up = torch.randint(0, 2, shape, generator=gen, device=x.device, dtype=torch.int16)
        sign = 2 * up - 1
        sign = torch.where(cur == 0, 1, torch.where(cur == 255, -1, sign))
        y = torch.where(need, cur + sign, cur)
    else:
        y = torch.where(need, cur ^ 1, cur)
    return y.to(torch.uint8)


class DeviceStegoMaker:
    """Stego for cover tiles held on the device; cost maps computed once per (tile, algorithm).

    ``covers`` is (N, H, W) uint8 on the training device; costs are cached as float32 there
    (3 × N × H × W × 4 bytes for the three adaptive algorithms: 0.8 GB for 1,000 tiles of 256²).
    """

    def __init__(self, covers: Tensor, algorithms: Sequence[str], chunk: int = 64) -> None:
        self.covers = covers
        self.algorithms = list(algorithms)
        self.chunk = chunk
        self._costs: dict[str, Tensor] = {}

    def costs(self, alg: str) -> Tensor:
        if alg == "hide":
            alg = "hill"
        if alg not in self._costs:
            parts = [cost_maps(self.covers[i:i + self.chunk], alg).to(torch.float32)
                     for i in range(0, len(self.covers), self.chunk)]
            self._costs[alg] = torch.cat(parts)
        return self._costs[alg]

    def make(self, index: Tensor, algs: Sequence[int], rates: Tensor,
             gen: torch.Generator) -> Tensor:
        """Stego of ``covers[index]``; image ``j`` uses ``algorithms[algs[j]]`` at ``rates[j]``."""
        from ..stego.errors import MAX_RATE

        x = self.covers[index]
        out = x.clone()
        alg_ids = torch.as_tensor(list(algs), device=x.device)
        adaptive: list[tuple[Tensor, Tensor, Tensor]] = []  # (positions, costs, rates)
        for ai in sorted(set(int(a) for a in algs)):
            name = self.algorithms[ai]
            sel = (alg_ids == ai).nonzero().squeeze(1)
            rs = rates[sel]
            if name in ("lsbr", "lsbm", "seq-lsb"):
                out[sel] = lsb_batch(x[sel], rs, gen, matching=name == "lsbm",
                                     sequential=name == "seq-lsb")
            elif name in _COST_ALGS or name == "hide":
                if name == "hide":
                    rs = rs.clamp(max=MAX_RATE)
                adaptive.append((sel, self.costs(name)[index[sel]], rs))
            else:
                raise ValueError(f"unknown algorithm {name!r}")
        if adaptive:  # one λ bisection for every cost-based image: it is launch-bound on a GPU
            sel = torch.cat([a[0] for a in adaptive])
            out[sel] = ternary_batch(x[sel], torch.cat([a[1] for a in adaptive]),
                                     torch.cat([a[2] for a in adaptive]), gen)
        return out


def _d4(x: Tensor, code: Tensor) -> Tensor:
    """Apply D4 transform ``code`` (0..7: rot90^(code % 4), flipped when code >= 4) per image
    (a non-square batch keeps its shape: odd quarter turns become the even ones)."""
    if x.shape[-1] != x.shape[-2]:
        code = code - code % 2
    out = x.clone()
    for c in range(8):
        sel = (code == c).nonzero().squeeze(1)
        if sel.numel() == 0:
            continue
        t = torch.rot90(x[sel], c % 4, dims=(-2, -1))
        out[sel] = torch.flip(t, dims=(-1,)) if c >= 4 else t
    return out


class DevicePairs:
    """Training batches made on the training device, with :class:`~.data.PairDataset`'s schedule.

    Per batch: the tiles of the :class:`~.data.EpochSampler` order, an algorithm and a rate per
    tile from the dataset's algorithm and payload curricula, stego from
    :class:`DeviceStegoMaker`, then the same random D4 transform and crop for a cover and its
    stego.  Everything is seeded by (seed, epoch, step), so a resumed run makes the same batches.
    """

    def __init__(self, ds: object, sampler: object, batch_pairs: int,
                 device: torch.device | str) -> None:
        from .data import EpochSampler, PairDataset

        if not isinstance(ds, PairDataset) or not isinstance(sampler, EpochSampler):
            raise TypeError("DevicePairs needs a PairDataset and an EpochSampler")
        shapes = {im.shape for im in ds.tiles.images}
        if len(shapes) != 1:
            raise ValueError(f"stego on the device needs tiles of one size, got {sorted(shapes)}")
        self.ds, self.sampler, self.batch_pairs = ds, sampler, batch_pairs
        self.device = torch.device(device)
        covers = torch.from_numpy(np.stack(ds.tiles.images)).to(self.device)
        self.maker = DeviceStegoMaker(covers, ds.algorithms)

    def steps(self, epoch: int) -> int:
        return math.ceil(len(self.sampler.order(epoch)) / self.batch_pairs)

    def batches(self, epoch: int, skip_steps: int = 0) -> Iterator[dict[str, Tensor]]:
        from .data import curriculum_rates

        ds, B = self.ds, self.batch_pairs
        order = self.sampler.order(epoch)
        active = ds.active_algorithms(epoch)
        for step in range(skip_steps, math.ceil(len(order) / B)):
            idx = order[step * B:(step + 1) * B]
            rng = np.random.default_rng([ds.seed, epoch, step, 11])
            algs, rates = [], []
            for _ in idx:
                alg = active[int(rng.integers(0, len(active)))]
                rs = curriculum_rates(ds.rates, epoch - ds.joined(alg), ds.stage_epochs)
                algs.append(ds.algorithms.index(alg))
                rates.append(float(rs[int(rng.integers(0, len(rs)))]))
            gen = torch.Generator(self.device).manual_seed(int(rng.integers(0, 2**62)))
            it = torch.as_tensor(idx, device=self.device)
            rt = torch.tensor(rates, device=self.device)
            cover = self.maker.covers[it]
            stego = self.maker.make(it, algs, rt, gen)
            if ds.augment:  # crop first (as augment_pair): D4 then works on any tile shape
                cover, stego = _crop(cover, stego, ds.crop, rng)
                code = torch.as_tensor(rng.integers(0, 8, size=len(idx)), device=self.device)
                cover, stego = _d4(cover, code), _d4(stego, code)
            elif ds.crop is not None:
                cover, stego = _centre_crop(cover, ds.crop), _centre_crop(stego, ds.crop)
            x = torch.cat([cover, stego]).unsqueeze(1).to(torch.float32)
            y = torch.cat([torch.zeros(len(idx)), torch.ones(len(idx))]).to(self.device)
            yield {"x": x, "y": y, "alg": torch.tensor(algs), "rate": torch.tensor(rates)}


def _centre_crop(x: Tensor, crop: int) -> Tensor:
    H, W = x.shape[-2:]
    if crop >= max(H, W):
        return x
    oy, ox = (H - crop) // 2, (W - crop) // 2
    return x[..., oy:oy + crop, ox:ox + crop]


def _crop(cover: Tensor, stego: Tensor, crop: int | None,
          rng: np.random.Generator) -> tuple[Tensor, Tensor]:
    H, W = cover.shape[-2:]
    if crop is None or crop >= max(H, W):
        return cover, stego
    c = min(crop, H, W)
    ys = rng.integers(0, H - c + 1, size=len(cover))
    xs = rng.integers(0, W - c + 1, size=len(cover))
    at = list(zip(ys.tolist(), xs.tolist(), strict=True))
    cs = torch.stack([cover[i, y:y + c, x:x + c] for i, (y, x) in enumerate(at)])
    ss = torch.stack([stego[i, y:y + c, x:x + c] for i, (y, x) in enumerate(at)])
    return cs, ss


def fixed_pairs_on_device(tiles: object, algorithms: Sequence[str], rates: Sequence[float],
                          seed: int, device: torch.device | str, crop: int | None = None,
                          batch: int = 64, every_algorithm: bool = False,
                          ) -> list[tuple[np.ndarray, np.ndarray, int, float]]:
    """Validation pairs as :func:`.data.fixed_pairs` lays them out (:func:`.data.val_layout`;
    centre crop), with the stego made on ``device``."""
    from .data import val_layout

    images = tiles.images  # type: ignore[attr-defined]
    covers = torch.from_numpy(np.stack(images)).to(device)
    maker = DeviceStegoMaker(covers, algorithms)
    layout = val_layout(len(images), len(algorithms), rates, every_algorithm)
    gen = torch.Generator(torch.device(device)).manual_seed(seed)
    out = []
    for s in range(0, len(layout), batch):
        part = layout[s:s + batch]
        it = torch.tensor([i for i, _, _ in part], device=device)
        st = maker.make(it, [a for _, a, _ in part],
                        torch.tensor([r for _, _, r in part], device=device), gen).cpu().numpy()
        for j, (i, a, r) in enumerate(part):
            x, y = images[i], st[j]
            if crop is not None:
                oy, ox = (x.shape[0] - crop) // 2, (x.shape[1] - crop) // 2
                x, y = x[oy:oy + crop, ox:ox + crop].copy(), y[oy:oy + crop, ox:ox + crop].copy()
            out.append((x, y, a, r))
    return out

"""Synthetic covers and simple LSB embedding simulators for tests and benchmarks.

The covers imitate a never-compressed, demosaiced-free grayscale photograph:
a random field with a roughly 1/f amplitude spectrum (sum of Gaussian-filtered
white noise at several scales), a few blurred step edges, a mild optical blur
and signal-dependent sensor noise, rounded to ``uint8`` (a little clipping at
0/255 may occur).  They are *not* real photos: they have no JPEG history, no
demosaicing or gamma "combing" of the histogram, no sharp texture/noise
structure of real sensors, so absolute error levels of the detectors on them
are only indicative.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

__all__ = ["lsb_match", "lsb_replace", "synthetic_cover"]


def _field(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Zero-mean, unit-std smooth random field with a ~1/f spectrum (periodic).

    White noise shaped in the Fourier domain by ``sum_k sigma_k^2 G_sigma_k``
    (Gaussian low-passes at scales 32, 12, 4, 1.5 px, each weighted so that its
    own output has a standard deviation proportional to its scale).
    """
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.rfftfreq(shape[1])[None, :]
    f2 = fy * fy + fx * fx
    gain = sum(sig**2 * np.exp(-2.0 * np.pi**2 * sig**2 * f2) for sig in (32.0, 12.0, 4.0, 1.5))
    out = np.fft.irfft2(np.fft.rfft2(rng.standard_normal(shape)) * gain, s=shape)
    out -= out.mean()
    return out / (out.std() + 1e-12)


def _gray(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Float noiseless luminance in roughly [0, 255]."""
    img = _field(rng, shape) * rng.uniform(18.0, 45.0)
    # a few blurred steps (object boundaries) from thresholded smooth fields
    for _ in range(int(rng.integers(1, 4))):
        mask = _field(rng, shape) > rng.uniform(-0.5, 0.8)
        img += gaussian_filter(mask.astype(float), 0.8) * rng.uniform(-50.0, 50.0)
    img += rng.uniform(70.0, 180.0) - img.mean()
    return gaussian_filter(img, 0.6)


def synthetic_cover(
    rng: np.random.Generator,
    shape: tuple[int, int] = (256, 256),
    channels: int | None = None,
    noise_scale: float = 1.0,
    edited: bool = False,
) -> np.ndarray:
    """Return a natural-looking synthetic ``uint8`` cover (HxW, or HxWxC if ``channels``).

    The sensor noise standard deviation is about 1.2-2.4 grey levels times
    ``noise_scale``; small values (~0.3) imitate denoised / downsampled photos
    with clean flat areas and hence "peaky" local histograms.  ``edited``
    applies an 8-bit-to-8-bit gamma / levels adjustment after quantisation,
    as photo editors do, which leaves the comb-like histogram (empty or
    doubled bins) typical of processed photos.
    """
    base = _gray(rng, shape)
    planes = [base]
    if channels is not None:
        planes = [
            base * rng.uniform(0.8, 1.2) + gaussian_filter(rng.standard_normal(shape), 6.0) * 40
            for _ in range(channels)
        ]
    out = []
    for p in planes:
        gain = rng.uniform(0.01, 0.04)  # shot-noise variance per grey level
        floor = rng.uniform(0.2, 1.0)  # read-noise variance
        sd = noise_scale * np.sqrt(gain * np.clip(p, 0, 255) + floor)
        noise = rng.standard_normal(shape) * sd
        q = np.clip(np.rint(p + noise), 0, 255)
        if edited:
            lo, hi = rng.uniform(0.0, 20.0), rng.uniform(235.0, 255.0)
            gamma = rng.uniform(0.75, 1.3)
            lut = 255.0 * np.clip((np.arange(256) - lo) / (hi - lo), 0, 1) ** gamma
            q = np.rint(lut)[q.astype(np.intp)]
        out.append(q.astype(np.uint8))
    return out[0] if channels is None else np.stack(out, axis=-1)


def _positions(rng: np.random.Generator, n: int, rate: float, sequential: bool) -> np.ndarray:
    """Indices (into the flattened sample array) that carry message bits."""
    k = round(float(np.clip(rate, 0.0, 1.0)) * n)
    if sequential:
        return np.arange(k)
    return rng.choice(n, size=k, replace=False)


def lsb_replace(
    image: np.ndarray, rate: float, rng: np.random.Generator, *, sequential: bool = False
) -> np.ndarray:
    """LSB replacement of a random message of ``rate`` bits per sample.

    Samples are taken in C (reading) order; with ``sequential`` the message
    occupies the first ``rate`` fraction of them, otherwise a random subset.
    """
    flat = np.array(image, dtype=np.uint8).reshape(-1)
    idx = _positions(rng, flat.size, rate, sequential)
    bits = rng.integers(0, 2, size=idx.size, dtype=np.uint8)
    flat[idx] = (flat[idx] & 0xFE) | bits
    return flat.reshape(np.shape(image))


def lsb_match(
    image: np.ndarray, rate: float, rng: np.random.Generator, *, sequential: bool = False
) -> np.ndarray:
    """LSB matching (+-1 embedding) of a random message of ``rate`` bits per sample."""
    flat = np.array(image, dtype=np.int16).reshape(-1)
    idx = _positions(rng, flat.size, rate, sequential)
    bits = rng.integers(0, 2, size=idx.size)
    change = (flat[idx] & 1) != bits
    step = rng.choice(np.array([-1, 1]), size=idx.size)
    vals = flat[idx]
    step = np.where(vals == 0, 1, np.where(vals == 255, -1, step))
    flat[idx] = vals + change * step
    return flat.astype(np.uint8).reshape(np.shape(image))

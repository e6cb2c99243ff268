"""The invertible integer coupling network, built as a LIONESS-style wide-block cipher.

The image's samples are split into two spatially interleaved halves: A = the even columns,
B = the odd columns (rows instead when the image is one pixel wide), each stored planar and
padded by one constant border sample, plus a 16-byte *tail* per half that carries redundancy.
Four additive coupling layers (Gomez et al. 2017, RevNets; Hoogeboom et al. 2019, integer
discrete flows; Dinh et al. 2017, checkerboard coupling) alternate between the halves::

    round r (Y = B for r even, A for r odd; X = the other half):
        Y += CNN_r(X) + ChaCha20(key = HMAC-SHA256(k_r, tweak || X)) (mod 256)

``CNN_r`` is a small integer network with key-derived weights (a depthwise 3x2 convolution
over the six nearest samples of the other half, ReLU, then a 1x1 convolution across the
channels). The keystream term makes each round a pseudorandom function of the whole other half,
so the four rounds are the Luby-Rackoff / LIONESS construction (Luby & Rackoff 1988; Anderson &
Biham 1996): a strong pseudorandom permutation whose security rests on HMAC-SHA256 and ChaCha20,
not on the CNN. Inverting runs the rounds backwards with subtraction; it is bit-exact.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numba as nb
import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

from ..runtime import jit_cache

_CACHE = jit_cache(__file__)  # on-disk numba cache where it can be written
ROUNDS = 4
TAIL_BYTES = 16
_ZERO_NONCE = bytes(16)
_TAIL_ZEROS = bytes(TAIL_BYTES)


@dataclass(frozen=True)
class NetworkKeys:
    """Per-round HMAC keys and the integer CNN weights of each round."""

    round_keys: tuple[bytes, ...]
    w1: tuple[np.ndarray, ...]  # (C, 3, 2) int32 depthwise taps in [-7, 7]
    b1: tuple[np.ndarray, ...]  # (C,) int32
    w2: tuple[np.ndarray, ...]  # (C, C) int32 1x1 mixing weights in [-128, 127]
    b2: tuple[np.ndarray, ...]  # (C,) int32


def keystream(key: bytes, length: int) -> np.ndarray:
    """``length`` bytes of ChaCha20 keystream (RFC 8439) under ``key``, counter and nonce 0."""
    enc = Cipher(algorithms.ChaCha20(key, _ZERO_NONCE), mode=None).encryptor()
    out = np.zeros(length, dtype=np.uint8)
    if length:
        enc.update_into(out, out)  # ChaCha20 of zeros, written in place
    return out


def network_keys(cnn_key: bytes, round_keys: tuple[bytes, ...], channels: int) -> NetworkKeys:
    """Derive the CNN weights for ``channels`` channels from ``cnn_key`` (ChaCha20 stream)."""
    c = channels
    per_round = c * 6 + c + c * c + c
    raw = keystream(cnn_key, per_round * len(round_keys)).astype(np.int32)
    w1, b1, w2, b2 = [], [], [], []
    for r in range(len(round_keys)):
        chunk = raw[r * per_round:(r + 1) * per_round]
        w1.append((chunk[:6 * c] % 15 - 7).reshape(c, 3, 2).copy())
        b1.append(chunk[6 * c:7 * c] - 128)
        w2.append((chunk[7 * c:7 * c + c * c] - 128).reshape(c, c).copy())
        b2.append(chunk[7 * c + c * c:].copy())
    return NetworkKeys(round_keys, tuple(w1), tuple(b1), tuple(w2), tuple(b2))


@nb.njit(cache=_CACHE, nogil=True)
def _split(pixels: np.ndarray, a: np.ndarray, b: np.ndarray, r0: int,
           r1: int) -> None:  # pragma: no cover - jit
    """Scatter rows r0..r1 of HxWxC pixels into padded planar halves (even columns -> a)."""
    w, c = pixels.shape[1], pixels.shape[2]
    wb = w // 2
    for i in range(r0, r1):
        row = pixels[i].ravel()
        for k in range(c):
            ar, br = a[k, i + 1], b[k, i + 1]
            for j in range(wb):
                ar[j + 1] = row[2 * j * c + k]
                br[j + 1] = row[(2 * j + 1) * c + k]
            if w & 1:
                ar[wb + 1] = row[(w - 1) * c + k]


@nb.njit(cache=_CACHE, nogil=True)
def _merge(a: np.ndarray, b: np.ndarray, pixels: np.ndarray, r0: int,
           r1: int) -> None:  # pragma: no cover - jit
    """Inverse of :func:`_split` for rows r0..r1."""
    w, c = pixels.shape[1], pixels.shape[2]
    wb = w // 2
    for i in range(r0, r1):
        row = pixels[i].ravel()
        for k in range(c):
            ar, br = a[k, i + 1], b[k, i + 1]
            for j in range(wb):
                row[2 * j * c + k] = ar[j + 1]
                row[(2 * j + 1) * c + k] = br[j + 1]
            if w & 1:
                row[(w - 1) * c + k] = ar[wb + 1]


@nb.njit(cache=_CACHE, nogil=True)
def _couple(y: np.ndarray, x: np.ndarray, ks: np.ndarray, w1: np.ndarray, b1: np.ndarray,
            w2: np.ndarray, b2: np.ndarray, off: int, sign: int, r0: int,
            r1: int) -> None:  # pragma: no cover - jit
    """``y += sign * (CNN(x) + ks) mod 256`` on the interior of the padded planar half ``y``.

    ``off`` is -1 when ``y`` holds the even columns (its other-half neighbours are columns
    j-1 and j of ``x``) and 0 when it holds the odd ones (neighbours j and j+1). Only rows
    r0..r1 are done (threads take disjoint row ranges); the column loops are innermost so
    LLVM vectorises them.
    """
    c, hp, wyp = y.shape
    h, wy = hp - 2, wyp - 2
    for i in range(r0, r1):
        hid = np.empty((c, wy), dtype=np.int32)
        s = np.empty(wy, dtype=np.int32)
        for k in range(c):  # depthwise 3x2 convolution over the other half, then ReLU
            t00, t01 = w1[k, 0, 0], w1[k, 0, 1]
            t10, t11 = w1[k, 1, 0], w1[k, 1, 1]
            t20, t21 = w1[k, 2, 0], w1[k, 2, 1]
            bias = b1[k] - 128 * (t00 + t01 + t10 + t11 + t20 + t21)  # inputs centred on 128
            r0, r1, r2 = x[k, i, 1 + off:], x[k, i + 1, 1 + off:], x[k, i + 2, 1 + off:]
            hk = hid[k]
            for j in range(wy):
                acc = (bias + t00 * np.int32(r0[j]) + t01 * np.int32(r0[j + 1])
                       + t10 * np.int32(r1[j]) + t11 * np.int32(r1[j + 1])
                       + t20 * np.int32(r2[j]) + t21 * np.int32(r2[j + 1]))
                hk[j] = max(acc, np.int32(0))
        for k2 in range(c):  # 1x1 convolution across channels, plus the keystream
            bb = np.int32(b2[k2])
            for j in range(wy):
                s[j] = bb
            for k in range(c):
                ww, hk = np.int32(w2[k2, k]), hid[k]
                for j in range(wy):
                    s[j] += ww * hk[j]
            kr = ks[(k2 * h + i) * wy:(k2 * h + i + 1) * wy]
            yrow = y[k2, i + 1, 1:wy + 1]
            if sign > 0:
                for j in range(wy):
                    yrow[j] = np.uint8((np.int32(yrow[j]) + s[j] + np.int32(kr[j])) & 255)
            else:
                for j in range(wy):
                    yrow[j] = np.uint8((np.int32(yrow[j]) - s[j] - np.int32(kr[j])) & 255)


#: Below this many samples the kernels run on the calling thread (thread hand-off costs more).
PARALLEL_MIN_SAMPLES = 1 << 21
_pool: ThreadPoolExecutor | None = None


def _threads() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def _rows(kernel: Callable[..., None], args: tuple[Any, ...], rows: int, samples: int) -> None:
    """Run ``kernel(*args, r0, r1)`` over ``rows`` rows, split across threads if large."""
    global _pool
    n = _threads() if samples >= PARALLEL_MIN_SAMPLES else 1
    if n == 1 or rows < 2 * n:
        kernel(*args, 0, rows)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=n, thread_name_prefix="stegshield-cipher")
    bounds = [rows * k // n for k in range(n + 1)]
    futures = [_pool.submit(kernel, *args, bounds[k], bounds[k + 1]) for k in range(1, n)]
    kernel(*args, bounds[0], bounds[1])
    for f in futures:
        f.result()


class Halves:
    """The two padded planar halves of an image and their tails (the cipher's state)."""

    def __init__(self, shape: tuple[int, int, int]) -> None:
        h, w, c = shape
        self.shape = shape
        wa, wb = (w + 1) // 2, w // 2
        self.a = np.full((c, h + 2, wa + 2), 128, dtype=np.uint8)
        self.b = np.full((c, h + 2, wb + 2), 128, dtype=np.uint8)
        self.a_tail = np.zeros(TAIL_BYTES, dtype=np.uint8)
        self.b_tail = np.zeros(TAIL_BYTES, dtype=np.uint8)

    @classmethod
    def from_pixels(cls, pixels: np.ndarray) -> Halves:
        halves = cls(pixels.shape)  # type: ignore[arg-type]
        _rows(_split, (pixels, halves.a, halves.b), pixels.shape[0], pixels.size)
        return halves

    def to_pixels(self) -> np.ndarray:
        out = np.empty(self.shape, dtype=np.uint8)
        _rows(_merge, (self.a, self.b, out), out.shape[0], out.size)
        return out


def _round(halves: Halves, keys: NetworkKeys, tweak: bytes, r: int, sign: int) -> None:
    """Apply round ``r`` (``sign`` +1) or undo it (``sign`` -1), in place."""
    if r % 2 == 0:
        x, x_tail, y, y_tail, off = halves.a, halves.a_tail, halves.b, halves.b_tail, 0
    else:
        x, x_tail, y, y_tail, off = halves.b, halves.b_tail, halves.a, halves.a_tail, -1
    mac = hmac.new(keys.round_keys[r], tweak, hashlib.sha256)
    mac.update(memoryview(x).cast("B"))
    mac.update(x_tail.tobytes())
    n_y = y.shape[0] * (y.shape[1] - 2) * (y.shape[2] - 2)
    ks = keystream(mac.digest(), n_y + TAIL_BYTES)
    if n_y:
        _rows(_couple, (y, x, ks, keys.w1[r], keys.b1[r], keys.w2[r], keys.b2[r], off, sign),
              y.shape[1] - 2, n_y)
    if sign > 0:
        np.add(y_tail, ks[n_y:], out=y_tail)
    else:
        np.subtract(y_tail, ks[n_y:], out=y_tail)


def _as_hwc(pixels: np.ndarray) -> tuple[np.ndarray, bool]:
    """View ``pixels`` as HxWxC; one-pixel-wide images are transposed so both halves fill."""
    arr = pixels if pixels.ndim == 3 else pixels[:, :, None]
    transposed = arr.shape[1] == 1 and arr.shape[0] > 1
    if transposed:
        arr = arr.transpose(1, 0, 2)
    return np.ascontiguousarray(arr), transposed


def _from_hwc(arr: np.ndarray, transposed: bool, ndim: int) -> np.ndarray:
    if transposed:
        arr = np.ascontiguousarray(arr.transpose(1, 0, 2))
    return arr if ndim == 3 else arr[:, :, 0]


def encipher(pixels: np.ndarray, keys: NetworkKeys, tweak: bytes) -> tuple[np.ndarray, bytes]:
    """Encipher uint8 pixels (HxW or HxWxC); return the cipher pixels and the 32-byte tails.

    The plaintext tails are zero (encode-then-encipher redundancy, Bellare & Rogaway 2000).
    """
    arr, transposed = _as_hwc(pixels)
    halves = Halves.from_pixels(arr)
    for r in range(len(keys.round_keys)):
        _round(halves, keys, tweak, r, +1)
    tails = halves.a_tail.tobytes() + halves.b_tail.tobytes()
    return _from_hwc(halves.to_pixels(), transposed, pixels.ndim), tails


def decipher(cipher: np.ndarray, tails: bytes, keys: NetworkKeys,
             tweak: bytes) -> tuple[np.ndarray, bool]:
    """Invert :func:`encipher`; return the pixels and whether the redundancy checked out."""
    if len(tails) != 2 * TAIL_BYTES:
        raise ValueError("tails must be 32 bytes")
    arr, transposed = _as_hwc(cipher)
    halves = Halves.from_pixels(arr)
    halves.a_tail[:] = np.frombuffer(tails[:TAIL_BYTES], dtype=np.uint8)
    halves.b_tail[:] = np.frombuffer(tails[TAIL_BYTES:], dtype=np.uint8)
    for r in reversed(range(len(keys.round_keys))):
        _round(halves, keys, tweak, r, -1)
    ok = hmac.compare_digest(halves.a_tail.tobytes() + halves.b_tail.tobytes(),
                             _TAIL_ZEROS + _TAIL_ZEROS)
    return _from_hwc(halves.to_pixels(), transposed, cipher.ndim), ok

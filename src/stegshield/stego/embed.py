"""Hide and reveal sealed payloads in pixel arrays (pure functions; file I/O lives in ``api``).

Pipeline (hide): seal the payload (Argon2id + ChaCha20-Poly1305, ``stegshield.crypto``) ->
derive embedding positions from the password (keyed permutation, ``positions``) -> compute a
content-adaptive cost map (HILL by default, ``costs``) -> code the header and the body with
syndrome-trellis codes (``stc``) so that few, low-cost samples change -> apply each change as
±1 (LSB matching; the sign is key-derived, never LSB replacement).

The receiver recomputes the positions from the password and the image shape, reads the fixed
header (salt + sealed length), derives the key, then reads and opens the body.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from ..crypto.aead import AuthenticationError
from ..crypto.container import (
    HEADER_BYTES,
    MAX_INFLATED_BYTES,
    RECORD_OVERHEAD,
    ContainerError,
    InflateLimitError,
    Payload,
    Sealed,
    open_body,
    open_header,
    seal_payload,
)
from ..crypto.kdf import DEFAULT_KDF, SALT_BYTES, KdfParams, derive_key, domain_salt, subkey
from ..imaging.io import array_mismatch
from .errors import (
    COST_NAMES,
    DEFAULT_RATE,
    MAX_RATE,
    ImageTooSmallError,
    IntegrityError,
    NoHiddenDataError,
    PayloadTooLargeError,
    StegoError,
)
from .positions import keyed_bits, permuted_indices
from .stc import stc_embed, stc_extract


def _costs() -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    from .costs import COSTS  # numba: imported on first use only (reveal never needs it)

    return COSTS

#: Constraint height of the syndrome-trellis code (2^h trellis states).
STC_HEIGHT = 7
#: Widest STC block: at most this many samples per message bit are visited, so that work grows
#: with the payload rather than with the image.
MAX_WIDTH = 20
HEADER_BITS = HEADER_BYTES * 8
_CARRIERS = {"L": 1, "LA": 1, "RGB": 3, "RGBA": 3}


@dataclass(frozen=True)
class HideReport:
    """What ``hide`` did, for the user and for benchmarks."""

    payload_bytes: int
    embedded_bytes: int
    carrier_samples: int
    samples_visited: int
    changes: int
    rate: float
    cost: str
    notes: tuple[str, ...] = ()
    """Warnings: a rate above the default, a lossy cover, metadata the output lacks."""

    @property
    def change_rate(self) -> float:
        """Changed samples per visited sample."""
        return self.changes / max(1, self.samples_visited)


def carrier_count(shape: tuple[int, ...], mode: str) -> int:
    """Number of samples that can carry data (alpha excluded)."""
    if mode not in _CARRIERS:
        raise StegoError(f"unsupported image mode {mode}")
    return int(shape[0]) * int(shape[1]) * _CARRIERS[mode]


def header_span(n: int) -> int:
    """Samples reserved for the header in an image with ``n`` carrier samples."""
    return min(HEADER_BITS * MAX_WIDTH, max(HEADER_BITS * 2, n // 8))


def capacity_bytes(n: int, rate: float = DEFAULT_RATE) -> int:
    """Largest payload (bytes, before compression, no file name) that fits at ``rate``."""
    if not 0 < rate <= MAX_RATE:
        raise StegoError(f"rate must be in (0, {MAX_RATE}] bits per sample")
    if header_span(n) * 2 > n:
        return 0
    body_bits = min(int(rate * n) - HEADER_BITS, n - header_span(n))
    return max(0, body_bits // 8 - RECORD_OVERHEAD)


def _carrier_view(pixels: np.ndarray, mode: str) -> np.ndarray:
    if mode in {"L"}:
        return pixels if pixels.ndim == 2 else pixels[..., 0]
    if mode == "LA":
        return pixels[..., 0]
    return pixels[..., :3]


def _flat_carrier(pixels: np.ndarray, mode: str) -> np.ndarray:
    return np.ascontiguousarray(_carrier_view(pixels, mode)).reshape(-1)


def cost_maps(pixels: np.ndarray, mode: str, cost: str) -> list[np.ndarray]:
    """One cost map per carrier channel (computed on parallel threads; the kernels drop the GIL)."""
    if cost == "hill":
        from .costs.hill import hill_f32 as fn  # float32: half the memory, same ranking
    else:
        fn = _costs()[cost]
    view = _carrier_view(pixels, mode)
    if view.ndim == 2:
        return [np.asarray(fn(view))]
    with ThreadPoolExecutor(max_workers=min(3, view.shape[2])) as pool:
        return list(pool.map(lambda c: np.asarray(fn(view[..., c])), range(view.shape[2])))


def _gather_costs(maps: list[np.ndarray], pos: np.ndarray) -> np.ndarray:
    """Costs at flat carrier positions (pixel-major, channel-minor) without stacking the maps."""
    if len(maps) == 1:
        return maps[0].reshape(-1)[pos].astype(np.float64)
    channel, pixel = pos % len(maps), pos // len(maps)
    out = np.empty(pos.size, dtype=np.float64)
    for k, m in enumerate(maps):
        sel = channel == k
        out[sel] = m.reshape(-1)[pixel[sel]]
    return out


def _bits(data: bytes) -> np.ndarray:
    return np.unpackbits(np.frombuffer(data, dtype=np.uint8))


def _position_key(password: bytes, shape: tuple[int, ...], mode: str, kdf: KdfParams) -> bytes:
    n = carrier_count(shape, mode)
    return derive_key(password, domain_salt("positions/v1", shape[0], shape[1], n), kdf)


def _embed_segment(flat: np.ndarray, costs: np.ndarray, pos: np.ndarray, bits: np.ndarray,
                   sign_key: bytes) -> int:
    cover = flat[pos]
    stego_bits = stc_embed((cover & 1).astype(np.uint8), costs, bits, h=STC_HEIGHT)
    changed = np.nonzero(stego_bits != (cover & 1))[0]
    vals = cover[changed].astype(np.int16)
    step = np.where(keyed_bits(sign_key, pos[changed]) == 1, 1, -1).astype(np.int16)
    step[vals == 0] = 1
    step[vals == 255] = -1
    flat[pos[changed]] = (vals + step).astype(np.uint8)
    return int(changed.size)


def warm_up(cost: str = "hill") -> None:
    """Load a numba cost kernel (S-UNIWARD, WOW) from its on-disk cache.

    Loading costs ~0.5 s of one core per process; callers run this in a thread while the image
    decodes, so the two overlap. HILL and the STC pass are C and need no warming.
    """
    if cost != "hill":
        _costs()[cost](np.zeros((4, 4), dtype=np.uint8))


@dataclass(frozen=True)
class SecretJobs:
    """The two Argon2id derivations of a hide, running in the background.

    They need only the image shape, so :mod:`.api` starts them before decoding the cover.
    """

    sealed: Future[Sealed]
    position_key: Future[bytes]
    positions: Future[np.ndarray]


def _spans(n: int, body_bytes: int) -> tuple[int, int]:
    """Samples visited by the header and by a body of ``body_bytes``."""
    n_head = header_span(n)
    return n_head, min(n - n_head, 8 * body_bytes * MAX_WIDTH)


def _all_positions(sealed: Future[Sealed], key: Future[bytes], n: int) -> np.ndarray:
    n_head, n_body = _spans(n, len(sealed.result().body))
    return permuted_indices(key.result(), n, n_head + n_body)


def start_secrets(pool: ThreadPoolExecutor, shape: tuple[int, ...], mode: str,
                  payload: Payload, password: bytes, kdf: KdfParams = DEFAULT_KDF,
                  compress: bool = True, salt: bytes | None = None) -> SecretJobs:
    """Seal the payload and derive the position key on ``pool`` (argon2-cffi drops the GIL).

    Every path that hides comes here, so the payload limit is checked here: reveal refuses
    to inflate more than ``MAX_INFLATED_BYTES``, so hiding more would lose the payload."""
    if len(payload.data) > MAX_INFLATED_BYTES:
        raise StegoError(f"payload too large: {len(payload.data):,} bytes; at most "
                         f"{MAX_INFLATED_BYTES:,} can be hidden (before compression)")
    if salt is not None and (not isinstance(salt, bytes) or len(salt) != SALT_BYTES):
        raise StegoError(f"salt must be {SALT_BYTES} bytes (another length is hidden and "
                         "never found again)")
    sealed = pool.submit(seal_payload, payload, password, kdf, compress, salt)
    key = pool.submit(_position_key, password, shape, mode, kdf)
    positions = pool.submit(_all_positions, sealed, key, carrier_count(shape, mode))
    return SecretJobs(sealed=sealed, position_key=key, positions=positions)


def _check_array(pixels: np.ndarray, mode: str) -> None:
    """Raise :class:`StegoError` unless ``pixels`` is a uint8 image of ``mode``."""
    wrong = array_mismatch(pixels, mode)
    if wrong:
        raise StegoError(wrong)


def check_cover(pixels: np.ndarray, mode: str, cost: str) -> None:
    if cost not in COST_NAMES:
        raise StegoError(f"unknown cost function {cost!r}; choose from {', '.join(COST_NAMES)}")
    _check_array(pixels, mode)
    n = carrier_count(pixels.shape, mode)
    if header_span(n) * 2 > n:
        raise ImageTooSmallError(f"image too small: {n} carrier samples, need at least "
                                 f"{HEADER_BITS * 4}")


def embed_sealed(pixels: np.ndarray, mode: str, payload_bytes: int, secrets: SecretJobs,
                 maps: list[np.ndarray], *, rate: float = DEFAULT_RATE,
                 cost: str = "hill") -> tuple[np.ndarray, HideReport]:
    """Embed an already sealed payload, given the cost maps of ``pixels`` (see ``hide_array``)."""
    n = carrier_count(pixels.shape, mode)
    cap = capacity_bytes(n, rate)
    sealed = secrets.sealed.result()
    if len(sealed.body) - RECORD_OVERHEAD > cap:
        raise PayloadTooLargeError(len(sealed.body) - RECORD_OVERHEAD, cap, rate,
                                   capacity_bytes(n, MAX_RATE))
    m_body = 8 * len(sealed.body)
    n_head, n_body = _spans(n, len(sealed.body))
    pos_key = secrets.position_key.result()
    pos = secrets.positions.result()
    out = np.array(pixels, copy=True)
    flat = _flat_carrier(out, mode)
    costs = _gather_costs(maps, pos)
    sign_key = subkey(pos_key, "sign")
    changes = _embed_segment(flat, costs[:n_head], pos[:n_head], _bits(sealed.header), sign_key)
    changes += _embed_segment(flat, costs[n_head:], pos[n_head:], _bits(sealed.body), sign_key)
    view = _carrier_view(out, mode)
    if not np.shares_memory(view, flat):
        view[...] = flat.reshape(view.shape)
    report = HideReport(
        payload_bytes=payload_bytes,
        embedded_bytes=HEADER_BYTES + len(sealed.body),
        carrier_samples=n,
        samples_visited=n_head + n_body,
        changes=changes,
        rate=(HEADER_BITS + m_body) / n,
        cost=cost,
    )
    return out, report


def hide_array(pixels: np.ndarray, mode: str, payload: Payload, password: bytes, *,
               rate: float = DEFAULT_RATE, cost: str = "hill", kdf: KdfParams = DEFAULT_KDF,
               compress: bool = True, salt: bytes | None = None) -> tuple[np.ndarray, HideReport]:
    """Return a copy of ``pixels`` carrying ``payload`` sealed under ``password``.

    ``salt`` is drawn at random unless given (only for reproducible datasets and tests: reusing
    a salt with the same password reuses the key).
    """
    check_cover(pixels, mode, cost)
    with ThreadPoolExecutor(max_workers=3) as pool:  # Argon2id overlaps the cost maps
        secrets = start_secrets(pool, pixels.shape, mode, payload, password, kdf, compress, salt)
        maps = cost_maps(pixels, mode, cost)
        return embed_sealed(pixels, mode, len(payload.data), secrets, maps, rate=rate, cost=cost)


def reveal_array(pixels: np.ndarray, mode: str, password: bytes, *,
                 kdf: KdfParams = DEFAULT_KDF, max_bytes: int | None = None) -> Payload:
    """Recover the payload hidden by :func:`hide_array` under ``password`` (a compressed
    payload inflating beyond ``max_bytes``, default ``MAX_INFLATED_BYTES``, is refused with a
    :class:`StegoError`)."""
    _check_array(pixels, mode)
    n = carrier_count(pixels.shape, mode)
    n_head = header_span(n)
    if n_head * 2 > n:
        raise NoHiddenDataError("image too small to hold hidden data")
    pos_key = _position_key(password, pixels.shape, mode, kdf)
    flat = _flat_carrier(pixels, mode)
    head_pos = permuted_indices(pos_key, n, n_head)
    header = np.packbits(stc_extract((flat[head_pos] & 1).astype(np.uint8), HEADER_BITS,
                                     h=STC_HEIGHT)).tobytes()
    try:
        key, body_len = open_header(header, password, kdf)
    except AuthenticationError:
        raise NoHiddenDataError("no hidden data found for this password (wrong password, "
                                "no hidden data, or the image was altered)") from None
    m_body = 8 * body_len
    if body_len < RECORD_OVERHEAD or m_body > n - n_head:
        raise IntegrityError("integrity failure: the hidden header is inconsistent")
    n_body = _spans(n, body_len)[1]
    body_pos = permuted_indices(pos_key, n, n_body, start=n_head)
    body = np.packbits(stc_extract((flat[body_pos] & 1).astype(np.uint8), m_body,
                                   h=STC_HEIGHT)).tobytes()
    try:
        return open_body(key, body, max_bytes)
    except InflateLimitError as exc:  # authentic, just larger than the caller accepts
        raise StegoError(str(exc)) from None
    except (AuthenticationError, ContainerError):
        raise IntegrityError("integrity failure: hidden data was found but the image was "
                             "altered after hiding (authentication failed)") from None

"""The cipher-image header (format version 1), carried in the PNG chunk ``stSH``.

Layout, big-endian, 111 + len(source format) bytes::

    version u8 = 1 | flags u8 (bit 0 key file, bit 1 deterministic)
    Argon2id time u32 | memory KiB u32 | lanes u8           (all zero with a key file)
    salt 16 | nonce 16 | mode u8 (0 L, 1 LA, 2 RGB, 3 RGBA) | width u32 | height u32
    rounds u8 = 4 | source format: length u8 + ASCII (at most 16)
    check 16   (key check value: PRF of the key and nonce)
    tails 32   (the enciphered redundancy: the cipher's authentication tag)

Everything before ``check`` is the *tweak*: it is hashed into every round, so changing any
header field changes the whole decryption and the tag check fails.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, replace

from ..crypto.kdf import SALT_BYTES, KdfParams
from .errors import CipherIntegrityError
from .network import ROUNDS, TAIL_BYTES

FORMAT_VERSION = 1
CHUNK_TYPE = b"stSH"
NONCE_BYTES = 16
CHECK_BYTES = 16
TAG_BYTES = 2 * TAIL_BYTES
MODES = ("L", "LA", "RGB", "RGBA")
CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}
FLAG_KEY_FILE = 1
FLAG_DETERMINISTIC = 2
MAX_SOURCE_FORMAT = 16
#: Upper bounds accepted when reading (a forged header must not make us allocate 1 TiB).
MAX_KDF_TIME, MAX_KDF_MEMORY_KIB, MAX_KDF_LANES = 64, 4 * 1024 * 1024, 64
_FIXED = struct.Struct(">BBIIB16s16sBIIB")
_TWEAK_PERSON = b"stegshield/ciph"


@dataclass(frozen=True)
class CipherHeader:
    """Public, authenticated parameters of one cipher-image."""

    kdf: KdfParams | None  # None: 32-byte key file
    salt: bytes
    nonce: bytes
    mode: str
    width: int
    height: int
    deterministic: bool = False
    source_format: str = ""
    check: bytes = bytes(CHECK_BYTES)
    tag: bytes = bytes(TAG_BYTES)
    rounds: int = ROUNDS
    version: int = FORMAT_VERSION

    def __post_init__(self) -> None:
        if len(self.salt) != SALT_BYTES or len(self.nonce) != NONCE_BYTES:
            raise ValueError(f"salt and nonce must be {SALT_BYTES} and {NONCE_BYTES} bytes")
        if self.mode not in CHANNELS:
            raise ValueError(f"unsupported mode {self.mode}")
        if not (0 < self.width < 2**31 and 0 < self.height < 2**31):
            raise ValueError("bad image size")
        if not valid_source_format(self.source_format):
            raise ValueError("source format must be at most 16 printable ASCII characters")
        if len(self.check) != CHECK_BYTES or len(self.tag) != TAG_BYTES:
            raise ValueError("bad check or tag length")

    @property
    def key_file(self) -> bool:
        return self.kdf is None

    @property
    def channels(self) -> int:
        return CHANNELS[self.mode]

    def prefix(self) -> bytes:
        """The serialised fields that form the tweak (everything but check and tag)."""
        kdf = self.kdf
        flags = (FLAG_KEY_FILE if kdf is None else 0) | (FLAG_DETERMINISTIC if self.deterministic
                                                        else 0)
        t, m, p = (0, 0, 0) if kdf is None else (kdf.time_cost, kdf.memory_kib, kdf.parallelism)
        fmt = self.source_format.encode("ascii")
        return _FIXED.pack(self.version, flags, t, m, p, self.salt, self.nonce,
                           MODES.index(self.mode), self.width, self.height,
                           self.rounds) + bytes([len(fmt)]) + fmt

    def tweak(self) -> bytes:
        """32-byte digest of :meth:`prefix`, hashed into every round of the cipher."""
        return hashlib.blake2b(self.prefix(), digest_size=32, person=_TWEAK_PERSON).digest()

    def pack(self) -> bytes:
        return self.prefix() + self.check + self.tag

    def with_(self, **changes: object) -> CipherHeader:
        return replace(self, **changes)  # type: ignore[arg-type]


def valid_source_format(name: str) -> bool:
    """At most 16 printable ASCII characters without spaces (e.g. ``PNG``, ``JPEG``)."""
    return len(name) <= MAX_SOURCE_FORMAT and all(32 < ord(ch) < 127 for ch in name)


def unpack(data: bytes) -> CipherHeader:
    """Parse a header, raising :class:`CipherIntegrityError` for anything malformed."""
    def bad(why: str) -> CipherIntegrityError:
        return CipherIntegrityError(f"the cipher-image header is damaged or altered ({why})")

    if len(data) < _FIXED.size + 1:
        raise bad("too short")
    (version, flags, t, m, p, salt, nonce, mode, width, height,
     rounds) = _FIXED.unpack_from(data)
    if version != FORMAT_VERSION:
        raise CipherIntegrityError(f"unsupported cipher-image format version {version} (made by "
                                   "a newer stegshield, or the header was altered)")
    if flags & ~(FLAG_KEY_FILE | FLAG_DETERMINISTIC):
        raise bad("unknown flags")
    fmt_len = data[_FIXED.size]
    start = _FIXED.size + 1
    if fmt_len > MAX_SOURCE_FORMAT or len(data) != start + fmt_len + CHECK_BYTES + TAG_BYTES:
        raise bad("wrong length")
    fmt = data[start:start + fmt_len]
    if not all(32 < c < 127 for c in fmt):
        raise bad("source format")
    if mode >= len(MODES) or rounds != ROUNDS or not (0 < width < 2**31 and 0 < height < 2**31):
        raise bad("mode, size or rounds")
    kdf: KdfParams | None
    if flags & FLAG_KEY_FILE:
        if (t, m, p) != (0, 0, 0):
            raise bad("KDF parameters with a key file")
        kdf = None
    else:
        if not (1 <= t <= MAX_KDF_TIME and 1 <= p <= MAX_KDF_LANES
                and 8 * p <= m <= MAX_KDF_MEMORY_KIB):
            raise bad(f"Argon2id parameters t={t}, m={m} KiB, p={p} out of range")
        kdf = KdfParams(time_cost=t, memory_kib=m, parallelism=p)
    pos = start + fmt_len
    return CipherHeader(kdf=kdf, salt=salt, nonce=nonce, mode=MODES[mode], width=width,
                        height=height, deterministic=bool(flags & FLAG_DETERMINISTIC),
                        source_format=fmt.decode("ascii"), check=data[pos:pos + CHECK_BYTES],
                        tag=data[pos + CHECK_BYTES:], rounds=rounds, version=version)

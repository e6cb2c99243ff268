"""The sealed payload container embedded by ``stegshield hide`` (format version 1).

Embedded bit stream = HEADER (36 bytes) || BODY (variable), all of it uniformly random-looking:

* HEADER = salt (16 random bytes) || AEAD(k, nonce 0, body length as 4 bytes)  -> 16 + 4 + 16
* BODY   = AEAD(k, nonce 1, record)
* record = version (1) || flags (1) || name length (1) || name (UTF-8) || data
* k = Argon2id(password, salt)

There are no magic bytes and no clear length: without the password both parts are
indistinguishable from random bytes (ChaCha20-Poly1305 ciphertexts and a random salt).
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass

from .aead import TAG_BYTES, AuthenticationError, counter_nonce, open_sealed, seal
from .kdf import DEFAULT_KDF, SALT_BYTES, KdfParams, derive_key

FORMAT_VERSION = 1
HEADER_BYTES = SALT_BYTES + 4 + TAG_BYTES
RECORD_OVERHEAD = 3 + TAG_BYTES  # version, flags, name length + body tag
_AAD_HEADER = b"stegshield/1/header"
_AAD_BODY = b"stegshield/1/body"
_FLAG_COMPRESSED = 1
_FLAG_TEXT = 2
MAX_NAME_BYTES = 255
#: Refuse to inflate a compressed payload beyond this (a hostile "zip bomb" record).
MAX_INFLATED_BYTES = 512 << 20


class ContainerError(ValueError):
    """The record inside a successfully authenticated body is malformed."""


class InflateLimitError(ContainerError):
    """An authentic payload inflates beyond the limit the caller set (not an alteration)."""


@dataclass(frozen=True)
class Payload:
    """What the user hides: bytes, whether they are text, and an optional file name."""

    data: bytes
    is_text: bool = False
    name: str = ""


def _name_bytes(name: str) -> bytes:
    """The file name's bytes (undecodable ones as they were), at most MAX_NAME_BYTES, never
    cut inside a UTF-8 character."""
    raw = name.encode("utf-8", "surrogateescape")
    cut = raw[:MAX_NAME_BYTES]
    if len(raw) > MAX_NAME_BYTES:
        try:
            cut.decode("utf-8")
        except UnicodeDecodeError as exc:
            if exc.reason == "unexpected end of data":  # a character split at the cut
                cut = cut[:exc.start]
    return cut


def encode_record(payload: Payload, compress: bool = True) -> bytes:
    """Serialise ``payload``; compress with zlib when that makes it smaller."""
    name = _name_bytes(payload.name)
    data = payload.data
    flags = _FLAG_TEXT if payload.is_text else 0
    if compress and data:
        packed = zlib.compress(data, 9)
        if len(packed) < len(data):
            data, flags = packed, flags | _FLAG_COMPRESSED
    return bytes([FORMAT_VERSION, flags, len(name)]) + name + data


def decode_record(record: bytes, max_bytes: int | None = None) -> Payload:
    """Parse a record produced by :func:`encode_record`; a compressed payload may inflate to
    at most ``max_bytes`` (default :data:`MAX_INFLATED_BYTES`; :class:`InflateLimitError`
    beyond)."""
    limit = MAX_INFLATED_BYTES if max_bytes is None else max_bytes
    if len(record) < 3 or record[0] != FORMAT_VERSION:
        raise ContainerError("unsupported payload record version")
    flags, name_len = record[1], record[2]
    if len(record) < 3 + name_len:
        raise ContainerError("truncated payload record")
    name = record[3:3 + name_len].decode("utf-8", errors="replace")
    data = record[3 + name_len:]
    if flags & _FLAG_COMPRESSED:
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(data, limit)
        except zlib.error as exc:
            raise ContainerError("corrupt compressed payload") from exc
        if inflater.unconsumed_tail:
            raise InflateLimitError(f"the hidden payload inflates beyond {limit:,} bytes")
    return Payload(data=data, is_text=bool(flags & _FLAG_TEXT), name=name)


@dataclass(frozen=True)
class Sealed:
    """A sealed payload split into the fixed-size header and the body."""

    header: bytes
    body: bytes


def seal_payload(payload: Payload, password: bytes, kdf: KdfParams = DEFAULT_KDF,
                 compress: bool = True, salt: bytes | None = None) -> Sealed:
    """Compress (optionally), then encrypt and authenticate ``payload`` under ``password``."""
    if salt is not None and (not isinstance(salt, bytes) or len(salt) != SALT_BYTES):
        # the header holds exactly SALT_BYTES: another length was hidden, never revealed
        raise ValueError(f"salt must be {SALT_BYTES} bytes")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    key = derive_key(password, salt, kdf)
    body = seal(key, counter_nonce(1), encode_record(payload, compress), _AAD_BODY)
    length = seal(key, counter_nonce(0), len(body).to_bytes(4, "big"), _AAD_HEADER)
    return Sealed(header=salt + length, body=body)


def sealed_size(record_bytes: int) -> int:
    """Total embedded bytes (header + body) for a record of ``record_bytes``."""
    return HEADER_BYTES + record_bytes + TAG_BYTES


def open_header(header: bytes, password: bytes, kdf: KdfParams = DEFAULT_KDF) -> tuple[bytes, int]:
    """Return (key, body length) or raise :class:`AuthenticationError`."""
    if len(header) != HEADER_BYTES:
        raise ValueError("header must be exactly HEADER_BYTES long")
    salt, sealed_len = header[:SALT_BYTES], header[SALT_BYTES:]
    key = derive_key(password, salt, kdf)
    length = int.from_bytes(open_sealed(key, counter_nonce(0), sealed_len, _AAD_HEADER), "big")
    return key, length


def open_body(key: bytes, body: bytes, max_bytes: int | None = None) -> Payload:
    """Decrypt and parse the body, raising :class:`AuthenticationError` if it was altered."""
    return decode_record(open_sealed(key, counter_nonce(1), body, _AAD_BODY), max_bytes)


__all__ = [
    "HEADER_BYTES",
    "RECORD_OVERHEAD",
    "AuthenticationError",
    "ContainerError",
    "InflateLimitError",
    "Payload",
    "Sealed",
    "decode_record",
    "encode_record",
    "open_body",
    "open_header",
    "seal_payload",
    "sealed_size",
]

"""Authenticated encryption recipes over `cryptography`'s ChaCha20-Poly1305 (RFC 8439)."""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

TAG_BYTES = 16
NONCE_BYTES = 12


class AuthenticationError(Exception):
    """The ciphertext failed authentication: wrong key, or data altered."""


def counter_nonce(counter: int) -> bytes:
    """A 96-bit nonce from a counter; safe because every key is fresh (random salt)."""
    return counter.to_bytes(NONCE_BYTES, "big")


def seal(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate; output is ``len(plaintext) + 16`` bytes."""
    return ChaCha20Poly1305(key).encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
    """Decrypt and verify, raising :class:`AuthenticationError` on any failure."""
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as exc:
        raise AuthenticationError("authentication failed") from exc

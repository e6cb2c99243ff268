"""Errors of the image cipher (no heavy imports: the command line loads this first)."""

from __future__ import annotations

from ..errors import StegshieldError


class CipherError(StegshieldError):
    """Bad input or usage for encrypt/decrypt; the message is one line for the user (exit 2)."""


class CipherFormatError(CipherError):
    """The file is not a stegshield cipher-image (no ``stSH`` chunk, not a PNG)."""


class CipherAuthError(CipherError):
    """Decryption refused: wrong key, or the cipher-image was altered (exit 1, no output)."""


class WrongKeyError(CipherAuthError):
    """The password or key file does not match this cipher-image."""


class CipherIntegrityError(CipherAuthError):
    """The key matches, but the cipher-image (pixels or header) was altered or corrupted."""


__all__ = [
    "CipherAuthError",
    "CipherError",
    "CipherFormatError",
    "CipherIntegrityError",
    "WrongKeyError",
]

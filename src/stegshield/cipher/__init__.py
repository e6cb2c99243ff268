"""stegshield.cipher: image encryption with an exactly invertible integer coupling network.

The network is a LIONESS-style wide-block cipher (Anderson & Biham 1996) whose coupling shifts
are small key-derived CNNs plus ChaCha20 keystreams keyed by HMAC-SHA256 of the other half;
see ``docs/CIPHER.md``. Public names are loaded lazily so that importing the commands does not
import numba.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .errors import (
    CipherAuthError,
    CipherError,
    CipherFormatError,
    CipherIntegrityError,
    WrongKeyError,
)

_LAZY = {
    "CipherHeader": "header",
    "CipherReport": "api",
    "DecryptedImage": "api",
    "EncryptedImage": "api",
    "decrypt": "api",
    "decrypt_array": "api",
    "decrypt_image": "api",
    "encode_cipher_image": "api",
    "encrypt": "api",
    "encrypt_array": "api",
    "encrypt_image": "api",
    "read_cipher_image": "api",
    "AuditReport": "audit",
    "audit": "audit",
    "audit_array": "audit",
    "format_audit": "audit",
    "load_key_file": "keys",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "AuditReport",
    "CipherAuthError",
    "CipherError",
    "CipherFormatError",
    "CipherHeader",
    "CipherIntegrityError",
    "CipherReport",
    "DecryptedImage",
    "EncryptedImage",
    "WrongKeyError",
    "audit",
    "audit_array",
    "decrypt",
    "decrypt_array",
    "decrypt_image",
    "encode_cipher_image",
    "encrypt",
    "encrypt_array",
    "encrypt_image",
    "format_audit",
    "load_key_file",
    "read_cipher_image",
]

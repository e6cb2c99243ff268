"""Key schedule of the image cipher: master key, key check, SIV key, round keys, CNN weights.

master = Argon2id(password, salt, recorded parameters)            (RFC 9106)
       | BLAKE2b-256(key = 32-byte key file, "stegshield-cipher/v1/key-file" || salt)
Every other key is ``crypto.kdf.subkey(master, label)`` (keyed BLAKE2b as a PRF, RFC 7693).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path

from argon2.exceptions import HashingError

from ..crypto.kdf import KEY_BYTES, KdfParams, derive_key, domain_salt, subkey
from .errors import CipherError
from .header import CHECK_BYTES, CipherHeader
from .network import ROUNDS, NetworkKeys, network_keys

#: The fixed, public salt of ``--deterministic`` mode (a random salt would defeat determinism).
DETERMINISTIC_SALT = domain_salt("stegshield-cipher/v1/deterministic")
_KEY_FILE_PERSON = b"stegshield/kf"


@dataclass(frozen=True)
class Secret:
    """What the user holds: a password (stretched with Argon2id) or a 32-byte raw key."""

    password: bytes | None = None
    key: bytes | None = None

    def __post_init__(self) -> None:
        if (self.password is None) == (self.key is None):
            raise CipherError("give exactly one of a password or a key file")
        if self.password is not None and not self.password:
            raise CipherError("the password must not be empty")
        if self.key is not None and len(self.key) != KEY_BYTES:
            raise CipherError(f"a key must be exactly {KEY_BYTES} bytes")

    @property
    def is_key(self) -> bool:
        return self.key is not None

    def __repr__(self) -> str:  # never print secrets
        return f"Secret({'key' if self.is_key else 'password'}=***)"


def load_key_file(path: str | os.PathLike[str]) -> bytes:
    """Read a key file: exactly 32 raw bytes, or 64 hexadecimal digits (whitespace ignored)."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise CipherError(f"{path}: cannot read key file: {exc.strerror or exc}") from exc
    if len(data) == KEY_BYTES:
        return data
    text = data.strip()
    if len(text) == 2 * KEY_BYTES:
        try:
            return bytes.fromhex(text.decode("ascii"))
        except (UnicodeDecodeError, ValueError):
            pass
    raise CipherError(f"{path}: a key file holds exactly {KEY_BYTES} random bytes (or "
                      f"{2 * KEY_BYTES} hex digits); make one with: head -c 32 /dev/urandom > KEY")


def master_key(secret: Secret, salt: bytes, kdf: KdfParams | None) -> bytes:
    """The 32-byte master key for ``salt`` (Argon2id for passwords, keyed BLAKE2b for keys)."""
    if secret.key is not None:
        h = hashlib.blake2b(salt, key=secret.key, digest_size=KEY_BYTES, person=_KEY_FILE_PERSON)
        return h.digest()
    if kdf is None:
        raise CipherError("a password needs Argon2id parameters")
    assert secret.password is not None
    try:
        return derive_key(secret.password, salt, kdf)
    except HashingError as exc:  # e.g. the memory a (forged) header asks for is not there
        raise CipherError(f"Argon2id failed (t={kdf.time_cost}, m={kdf.memory_kib} KiB, "
                          f"p={kdf.parallelism}): {exc}") from None


@dataclass(frozen=True)
class CipherKeys:
    """All keys for one cipher-image, derived from its master key."""

    master: bytes

    def check_value(self, nonce: bytes) -> bytes:
        """Key check value stored in the header: tells a wrong key from an altered image."""
        k = subkey(self.master, "cipher/v1/check")
        return hashlib.blake2b(nonce, key=k, digest_size=CHECK_BYTES).digest()

    def siv_nonce(self, header: CipherHeader, pixels: memoryview) -> bytes:
        """Deterministic nonce = PRF(key, header fields, pixels) (SIV, Rogaway & Shrimpton 2006)."""
        mac = hmac.new(subkey(self.master, "cipher/v1/siv"), header.prefix(), hashlib.sha256)
        mac.update(pixels)
        return mac.digest()[:len(header.nonce)]

    def network(self, channels: int, rounds: int = ROUNDS) -> NetworkKeys:
        round_keys = tuple(subkey(self.master, f"cipher/v1/round/{r}") for r in range(rounds))
        return network_keys(subkey(self.master, "cipher/v1/cnn"), round_keys, channels)

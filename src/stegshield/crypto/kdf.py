"""Password-based key derivation with Argon2id (RFC 9106).

The default profile is RFC 9106's second recommended option ("low memory"): t=3 passes,
m=64 MiB, p=4 lanes. Tests and benchmarks may pass a cheaper profile explicitly; the
format stores no parameters in clear, so the same profile must be used to reveal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from argon2.low_level import Type, hash_secret_raw

SALT_BYTES = 16
KEY_BYTES = 32


@dataclass(frozen=True)
class KdfParams:
    """Argon2id cost parameters."""

    time_cost: int = 3
    memory_kib: int = 64 * 1024
    parallelism: int = 4

    def __post_init__(self) -> None:
        if self.time_cost < 1 or self.parallelism < 1 or self.memory_kib < 8 * self.parallelism:
            raise ValueError(f"invalid Argon2id parameters: {self}")


DEFAULT_KDF = KdfParams()
#: A deliberately weak profile for unit tests only (never use for real secrets).
TEST_KDF = KdfParams(time_cost=1, memory_kib=64, parallelism=1)


def derive_key(password: bytes, salt: bytes, params: KdfParams = DEFAULT_KDF,
               length: int = KEY_BYTES) -> bytes:
    """Derive ``length`` key bytes from ``password`` and ``salt`` with Argon2id."""
    if not isinstance(password, bytes | bytearray):
        raise TypeError(f"the password must be bytes, not {type(password).__name__} "
                        "(e.g. 'my pass'.encode())")
    if not password:  # the CLI, the server and the cipher refuse it too
        raise ValueError("the password must not be empty")
    password = bytes(password)  # argon2-cffi refuses a bytearray
    if len(salt) < 8:
        raise ValueError("salt must be at least 8 bytes")
    return hash_secret_raw(
        secret=password,
        salt=salt,
        time_cost=params.time_cost,
        memory_cost=params.memory_kib,
        parallelism=params.parallelism,
        hash_len=length,
        type=Type.ID,
    )


def domain_salt(label: str, *context: int) -> bytes:
    """A fixed, public salt for a purpose (``label``) and integer context (e.g. image shape).

    Used where the receiver cannot read a random salt yet (to find embedding positions).
    """
    h = hashlib.blake2b(digest_size=SALT_BYTES, person=b"stegshield-salt")
    h.update(label.encode())
    for c in context:
        h.update(int(c).to_bytes(8, "big"))
    return h.digest()


def subkey(key: bytes, label: str, length: int = KEY_BYTES) -> bytes:
    """Derive an independent subkey from ``key`` for ``label`` (keyed BLAKE2b as a PRF)."""
    return hashlib.blake2b(label.encode(), key=key, digest_size=length).digest()

"""Sealing: Argon2id + ChaCha20-Poly1305 container, no recognisable structure."""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stegshield.crypto.aead import AuthenticationError
from stegshield.crypto.container import (
    HEADER_BYTES,
    RECORD_OVERHEAD,
    Payload,
    decode_record,
    encode_record,
    open_body,
    open_header,
    seal_payload,
)
from stegshield.crypto.kdf import DEFAULT_KDF, TEST_KDF, KdfParams, derive_key

PW = b"correct horse battery staple"


def test_default_kdf_is_rfc9106_low_memory_profile() -> None:
    assert (DEFAULT_KDF.time_cost, DEFAULT_KDF.memory_kib, DEFAULT_KDF.parallelism) == (
        3, 65536, 4)


def test_kdf_depends_on_password_and_salt() -> None:
    k = derive_key(PW, b"s" * 16, TEST_KDF)
    assert len(k) == 32
    assert k == derive_key(PW, b"s" * 16, TEST_KDF)
    assert k != derive_key(PW + b"!", b"s" * 16, TEST_KDF)
    assert k != derive_key(PW, b"t" * 16, TEST_KDF)
    with pytest.raises(ValueError):
        KdfParams(time_cost=0)
    # a str password from the Python API gave a cryptic cffi TypeError
    with pytest.raises(TypeError, match=r"the password must be bytes, not str \(e.g. "):
        derive_key("my pass", b"s" * 16, TEST_KDF)  # type: ignore[arg-type]


def test_empty_password_is_refused_by_the_key_derivation() -> None:
    """The Python API hid and revealed with b"" (the CLI, server and cipher refused it)."""
    with pytest.raises(ValueError, match="must not be empty"):
        derive_key(b"", b"0123456789abcdef", TEST_KDF)


@given(data=st.binary(max_size=2000), text=st.booleans(), name=st.text(max_size=40))
@settings(max_examples=60, deadline=None)
def test_seal_open_round_trip(data: bytes, text: bool, name: str) -> None:
    p = Payload(data, is_text=text, name=name)
    sealed = seal_payload(p, PW, TEST_KDF)
    assert len(sealed.header) == HEADER_BYTES
    key, length = open_header(sealed.header, PW, TEST_KDF)
    assert length == len(sealed.body)
    out = open_body(key, sealed.body)
    assert out.data == data and out.is_text == text
    assert out.name == name.encode("utf-8")[:255].decode("utf-8", errors="replace")


def test_wrong_password_and_tampering_fail_authentication() -> None:
    sealed = seal_payload(Payload(b"secret"), PW, TEST_KDF)
    with pytest.raises(AuthenticationError):
        open_header(sealed.header, b"wrong", TEST_KDF)
    key, _ = open_header(sealed.header, PW, TEST_KDF)
    body = bytearray(sealed.body)
    body[len(body) // 2] ^= 1
    with pytest.raises(AuthenticationError):
        open_body(key, bytes(body))


def test_compression_only_when_smaller() -> None:
    text = Payload(b"abc" * 1000, is_text=True)
    assert len(encode_record(text)) < 100
    rand = Payload(np.random.default_rng(0).bytes(1000))
    assert len(encode_record(rand)) == 1000 + 3
    assert decode_record(encode_record(text)).data == text.data
    assert len(encode_record(text, compress=False)) == 3003


def test_zip_bomb_record_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from stegshield.crypto import container

    monkeypatch.setattr(container, "MAX_INFLATED_BYTES", 10_000)
    rec = encode_record(Payload(b"\0" * 20_000))
    with pytest.raises(container.ContainerError, match="inflates beyond"):
        decode_record(rec)
    assert decode_record(encode_record(Payload(b"\0" * 9_000))).data == b"\0" * 9_000


def test_sealed_stream_looks_random() -> None:
    """Same payload twice: different bytes (random salt); bytes are near-uniform, incompressible."""
    p = Payload(b"\x00" * 4000)
    a = seal_payload(p, PW, TEST_KDF, compress=False)
    b = seal_payload(p, PW, TEST_KDF, compress=False)
    assert a.header != b.header and a.body != b.body
    stream = a.header + a.body
    assert len(zlib.compress(stream, 9)) >= len(stream)
    bits = np.unpackbits(np.frombuffer(stream, np.uint8))
    assert abs(bits.mean() - 0.5) < 4 * 0.5 / np.sqrt(bits.size)
    assert len(a.body) == 4000 + RECORD_OVERHEAD

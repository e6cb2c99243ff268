"""Hide/reveal round trips, capacity, refusals and tamper detection (Python API)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stegshield.crypto.container import Payload
from stegshield.crypto.kdf import TEST_KDF
from stegshield.imaging import ImageError, encode_image, open_image
from stegshield.stego import api
from stegshield.stego.embed import (
    DEFAULT_RATE,
    MAX_RATE,
    IntegrityError,
    NoHiddenDataError,
    PayloadTooLargeError,
    capacity_bytes,
    carrier_count,
    header_span,
    hide_array,
    reveal_array,
)

from imagegen import natural_like

PW = b"pass phrase"
MODES = {"L": 0, "LA": 2, "RGB": 3, "RGBA": 4}


def make(mode: str, h: int, w: int, seed: int = 0) -> np.ndarray:
    img = natural_like(h, w, MODES[mode], seed)
    if mode in {"LA", "RGBA"}:
        img[..., -1] = np.random.default_rng(seed).integers(0, 256, (h, w), dtype=np.uint8)
    return img


FORMATS = {"PNG": {"L", "LA", "RGB", "RGBA"}, "BMP": {"L", "RGB"},
           "TIFF": {"L", "LA", "RGB", "RGBA"}, "PPM": {"L", "RGB"}, "WEBP": {"RGB", "RGBA"}}


@given(mode=st.sampled_from(sorted(MODES)), h=st.integers(48, 120), w=st.integers(48, 120),
       frac=st.floats(0, 1), seed=st.integers(0, 10_000),
       cost=st.sampled_from(["hill", "suniward", "wow"]), fmt=st.sampled_from(sorted(FORMATS)))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_round_trip_any_size_mode_payload(mode: str, h: int, w: int, frac: float, seed: int,
                                          cost: str, fmt: str) -> None:
    cover = make(mode, h, w, seed)
    n = carrier_count(cover.shape, mode)
    cap = capacity_bytes(n)
    data = np.random.default_rng(seed).bytes(int(frac * cap))  # 0 bytes .. exact capacity
    stego, report = hide_array(cover, mode, Payload(data), PW, cost=cost, kdf=TEST_KDF)
    assert stego.shape == cover.shape and stego.dtype == np.uint8
    diff = stego.astype(int) - cover.astype(int)
    assert np.abs(diff).max() <= 1  # ±1 only
    assert int(np.count_nonzero(diff)) == report.changes
    if mode in {"LA", "RGBA"}:
        assert np.array_equal(stego[..., -1], cover[..., -1])  # alpha untouched
    assert reveal_array(stego, mode, PW, kdf=TEST_KDF).data == data
    if mode in FORMATS[fmt]:  # through a lossless file format and back
        img = open_image(encode_image(stego, mode, fmt))
        assert img.mode == mode
        assert reveal_array(img.pixels, img.mode, PW, kdf=TEST_KDF).data == data


def test_exact_capacity_fits_and_one_more_byte_does_not() -> None:
    cover = make("RGB", 96, 80)
    n = carrier_count(cover.shape, "RGB")
    cap = capacity_bytes(n)
    data = np.random.default_rng(1).bytes(cap)
    stego, _ = hide_array(cover, "RGB", Payload(data), PW, kdf=TEST_KDF)
    assert reveal_array(stego, "RGB", PW, kdf=TEST_KDF).data == data
    with pytest.raises(PayloadTooLargeError) as err:
        hide_array(cover, "RGB", Payload(data + b"x"), PW, kdf=TEST_KDF)
    assert err.value.needed == cap + 1 and err.value.available == cap
    assert f"{cap + 1:,} bytes" in str(err.value)


def test_rate_raises_capacity_up_to_the_hard_maximum() -> None:
    n = 256 * 256
    assert capacity_bytes(n, 0.1) < capacity_bytes(n, DEFAULT_RATE) < capacity_bytes(n, MAX_RATE)
    # rate x samples, less 55 bytes of header, tag and record fields
    assert capacity_bytes(n, DEFAULT_RATE) == int(DEFAULT_RATE * n) // 8 - 55
    cover = make("L", 256, 256)
    big = np.random.default_rng(2).bytes(capacity_bytes(n, MAX_RATE))
    stego, rep = hide_array(cover, "L", Payload(big), PW, rate=MAX_RATE, kdf=TEST_KDF)
    assert rep.rate <= MAX_RATE
    assert reveal_array(stego, "L", PW, kdf=TEST_KDF).data == big


def test_wrong_password_finds_nothing() -> None:
    cover = make("L", 80, 80)
    stego, _ = hide_array(cover, "L", Payload(b"hello"), PW, kdf=TEST_KDF)
    with pytest.raises(NoHiddenDataError):
        reveal_array(stego, "L", b"not the password", kdf=TEST_KDF)
    with pytest.raises(NoHiddenDataError):
        reveal_array(cover, "L", PW, kdf=TEST_KDF)  # clean image


def test_tampered_body_is_an_integrity_failure() -> None:
    """Flip the LSB of a sample that carries the body: authenticated error, never garbage."""
    from stegshield.stego import embed

    cover = make("RGB", 96, 96, seed=3)
    stego, rep = hide_array(cover, "RGB", Payload(b"attack at dawn" * 20), PW, kdf=TEST_KDF)
    n = rep.carrier_samples
    pos_key = embed._position_key(PW, stego.shape, "RGB", TEST_KDF)
    body_pos = embed.permuted_indices(pos_key, n, rep.samples_visited)[header_span(n):]
    tampered = stego.copy()
    flat = tampered[..., :3].reshape(-1)
    flat[body_pos[len(body_pos) // 2]] ^= 1
    tampered[..., :3] = flat.reshape(96, 96, 3)
    with pytest.raises(IntegrityError, match="altered"):
        reveal_array(tampered, "RGB", PW, kdf=TEST_KDF)
    # a global change (e.g. brightness +1) is caught too, as no data or integrity failure
    with pytest.raises((IntegrityError, NoHiddenDataError)):
        reveal_array(np.clip(stego.astype(int) + 1, 0, 255).astype(np.uint8), "RGB", PW,
                     kdf=TEST_KDF)


def test_changes_are_few_and_adaptive() -> None:
    """STC + HILL: far fewer changes than payload bits, placed in textured areas."""
    cover = make("L", 256, 256, seed=4)  # texture grows from left (smooth) to right (noisy)
    data = np.random.default_rng(4).bytes(800)
    stego, rep = hide_array(cover, "L", Payload(data), PW, kdf=TEST_KDF)
    assert rep.changes < 0.4 * rep.embedded_bytes * 8
    cols = np.nonzero(stego != cover)[1]
    assert np.mean(cols > 128) > 0.75


def test_positions_spread_over_the_whole_image() -> None:
    cover = make("L", 256, 256, seed=5)
    cover[:] = 128 + (np.random.default_rng(5).integers(-8, 9, cover.shape))  # uniform texture
    stego, _ = hide_array(cover, "L", Payload(np.random.default_rng(6).bytes(300)), PW,
                          kdf=TEST_KDF)
    rows = np.nonzero(stego != cover)[0]
    assert np.histogram(rows, bins=4, range=(0, 256))[0].min() > 0.15 * rows.size


@pytest.mark.parametrize("ext", [".png", ".bmp", ".tiff", ".webp"])
def test_file_api_round_trip_formats(tmp_path: Path, sample_paths: list[Path], ext: str) -> None:
    for src in sample_paths:
        if (ext == ".webp" and "_gray" in src.name) or (ext == ".bmp" and "_rgba" in src.name):
            continue  # refused with a clear message (tested in test_imaging)
        out = tmp_path / f"{src.stem}{ext}"
        api.hide(src, out, Payload(b"file api", is_text=True), PW, kdf=TEST_KDF)
        assert api.reveal(out, PW, kdf=TEST_KDF) == Payload(b"file api", is_text=True)
        assert open_image(out).mode == open_image(src).mode


def test_file_api_never_overwrites(tmp_path: Path, sample_paths: list[Path]) -> None:
    cover = tmp_path / "c.png"
    cover.write_bytes(sample_paths[0].read_bytes())
    before = cover.read_bytes()
    with pytest.raises(ImageError, match="cover"):
        api.hide(cover, cover, Payload(b"x"), PW, kdf=TEST_KDF, force=True)
    existing = tmp_path / "e.png"
    existing.write_bytes(b"keep me")
    with pytest.raises(ImageError, match="exists"):
        api.hide(cover, existing, Payload(b"x"), PW, kdf=TEST_KDF)
    with pytest.raises(ImageError, match="lossy"):
        api.hide(cover, tmp_path / "o.jpg", Payload(b"x"), PW, kdf=TEST_KDF)
    big = tmp_path / "big.png"
    with pytest.raises(PayloadTooLargeError):
        api.hide(cover, big, Payload(np.random.default_rng(0).bytes(10**6)), PW, kdf=TEST_KDF)
    assert cover.read_bytes() == before and existing.read_bytes() == b"keep me"
    assert not big.exists() and not (tmp_path / "o.jpg").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "e.png"]


def test_payload_that_reveal_could_not_inflate_is_refused(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A highly compressible payload above the inflate limit was hidden, then revealed as
    "altered after hiding": never recoverable.  hide refuses it; reveal with a lower limit
    (the server's) says what happened instead of crying tampering."""
    from stegshield.stego import embed
    from stegshield.stego.errors import StegoError

    monkeypatch.setattr(embed, "MAX_INFLATED_BYTES", 4096)
    cover = make("L", 96, 96)
    with pytest.raises(StegoError, match="at most 4,096 can be hidden"):
        hide_array(cover, "L", Payload(bytes(5000)), PW, kdf=TEST_KDF)
    from stegshield.imaging import save_image

    save_image(tmp_path / "c.png", cover, "L")
    with pytest.raises(StegoError, match="at most 4,096 can be hidden"):  # the CLI's path
        api.hide(tmp_path / "c.png", tmp_path / "s.png", Payload(bytes(5000)), PW,
                 kdf=TEST_KDF)
    assert not (tmp_path / "s.png").exists()
    stego, _ = hide_array(cover, "L", Payload(bytes(4000)), PW, kdf=TEST_KDF)
    assert reveal_array(stego, "L", PW, kdf=TEST_KDF).data == bytes(4000)
    with pytest.raises(StegoError, match="inflates beyond 1,000 bytes") as err:
        reveal_array(stego, "L", PW, kdf=TEST_KDF, max_bytes=1000)
    assert not isinstance(err.value, IntegrityError)


def test_long_file_names_are_cut_at_a_character_boundary() -> None:
    """A name over 255 bytes was cut inside a UTF-8 character (revealed with U+FFFD)."""
    cover = make("L", 160, 160)
    name = "é" * 200  # 400 bytes: 255 would split the 128th character
    stego, _ = hide_array(cover, "L", Payload(b"x", name=name), PW, kdf=TEST_KDF)
    got = reveal_array(stego, "L", PW, kdf=TEST_KDF).name
    assert got == "é" * 127 and "\ufffd" not in got

"""Image encryption: bit-exact round trips, authentication, measured randomness, commands."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from pathlib import Path

import click
import numpy as np
import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from stegshield.cipher import api, metrics
from stegshield.cipher.audit import audit_array, format_audit
from stegshield.cipher.commands import cipher_audit, decrypt, encrypt
from stegshield.cipher.errors import (
    CipherAuthError,
    CipherError,
    CipherFormatError,
    CipherIntegrityError,
    WrongKeyError,
)
from stegshield.cipher.header import CHUNK_TYPE, CipherHeader, unpack
from stegshield.cipher.keys import load_key_file
from stegshield.cipher.pngchunk import insert_chunk, iter_chunks, make_chunk, read_chunk
from stegshield.crypto.kdf import TEST_KDF
from stegshield.imaging import ImageError, OutputExistsError, open_image
from stegshield.imaging.png import encode_png

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
KEY = bytes(range(32))
SALT = bytes.fromhex("000102030405060708090a0b0c0d0e0f")
NONCE = bytes.fromhex("f0e0d0c0b0a090807060504030201000")
PW = "correct horse"
CHANNELS = {"L": 1, "LA": 2, "RGB": 3, "RGBA": 4}


def random_image(h: int, w: int, mode: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = CHANNELS[mode]
    return rng.integers(0, 256, (h, w) if c == 1 else (h, w, c), dtype=np.uint8)


def photo(name: str, size: int) -> np.ndarray:
    """A real sample photograph: centre square crop resized to ``size`` x ``size``."""
    img = Image.open(SAMPLES / name)
    w, h = img.size
    s = min(w, h)
    box = ((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s)
    return np.asarray(img.crop(box).resize((size, size), Image.Resampling.BICUBIC))


def enc(pixels: np.ndarray, mode: str, **kw: object) -> api.EncryptedImage:
    kw.setdefault("key", KEY)
    return api.encrypt_array(pixels, mode, **kw)  # type: ignore[arg-type]


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize("shape", [(1, 1), (1, 2), (1, 9), (9, 1), (2, 1), (3, 5), (4, 4),
                                   (17, 33), (64, 31)])
def test_round_trip_bit_exact(mode: str, shape: tuple[int, int]) -> None:
    p = random_image(*shape, mode, seed=shape[0] * 100 + shape[1])
    e = enc(p, mode)
    assert e.pixels.shape == p.shape and e.pixels.dtype == np.uint8
    d = api.decrypt_array(e.pixels, e.header, key=KEY)
    assert d.mode == mode and np.array_equal(d.pixels, p)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(h=st.integers(1, 24), w=st.integers(1, 24), mode=st.sampled_from(list(CHANNELS)),
       seed=st.integers(0, 2**32 - 1), smooth=st.booleans())
def test_round_trip_property(h: int, w: int, mode: str, seed: int, smooth: bool) -> None:
    p = random_image(h, w, mode, seed)
    if smooth:  # constant images are the hardest case for a weak cipher
        p[...] = seed % 256
    e = enc(p, mode)
    assert np.array_equal(api.decrypt_array(e.pixels, e.header, key=KEY).pixels, p)


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.glob("*.png")))
def test_samples_round_trip_through_png_files(name: str, tmp_path: Path) -> None:
    src = SAMPLES / name
    out, back = tmp_path / "c.png", tmp_path / "d.png"
    r = api.encrypt(src, out, password=PW.encode(), kdf=TEST_KDF)
    orig = open_image(src)
    cipher = Image.open(out)
    assert cipher.size == (r.width, r.height) == (orig.pixels.shape[1], orig.pixels.shape[0])
    assert cipher.mode == orig.mode == r.mode  # same width, height and channels
    api.decrypt(out, back, password=PW.encode())
    restored = open_image(back)
    assert restored.mode == orig.mode and np.array_equal(restored.pixels, orig.pixels)
    header = unpack(read_chunk(out.read_bytes(), CHUNK_TYPE) or b"")
    assert header.kdf == TEST_KDF and header.source_format == "PNG"


def test_password_mode_and_header_fields() -> None:
    p = random_image(5, 7, "RGB")
    e = enc(p, "RGB", key=None, password=b"pw", kdf=TEST_KDF, salt=SALT, nonce=NONCE)
    h = unpack(e.header.pack())
    assert h == e.header
    assert (h.kdf, h.salt, h.nonce, h.mode, h.width, h.height) == (TEST_KDF, SALT, NONCE,
                                                                  "RGB", 7, 5)
    assert len(e.header.pack()) < 128
    assert np.array_equal(api.decrypt_array(e.pixels, h, password=b"pw").pixels, p)


def test_explicit_salt_nonce_reproducible_and_random_by_default() -> None:
    p = random_image(16, 16, "RGB")
    a = enc(p, "RGB", salt=SALT, nonce=NONCE)
    b = enc(p, "RGB", salt=SALT, nonce=NONCE)
    assert np.array_equal(a.pixels, b.pixels) and a.header == b.header
    c, d = enc(p, "RGB"), enc(p, "RGB")
    assert c.header.nonce != d.header.nonce and not np.array_equal(c.pixels, d.pixels)
    other = enc(p, "RGB", salt=SALT, nonce=NONCE[::-1])
    assert metrics.npcr_uaci(a.pixels, other.pixels)[0] > 98


def test_deterministic_mode() -> None:
    p = random_image(20, 30, "RGBA", seed=1)
    q = p.copy()
    q[0, 0, 0] ^= 1
    a1, a2 = enc(p, "RGBA", deterministic=True), enc(p, "RGBA", deterministic=True)
    b = enc(q, "RGBA", deterministic=True)
    assert a1.header.deterministic and np.array_equal(a1.pixels, a2.pixels)
    assert a1.header.pack() == a2.header.pack()
    assert a1.header.nonce != b.header.nonce
    assert np.array_equal(api.decrypt_array(a1.pixels, a1.header, key=KEY).pixels, p)
    with pytest.raises(CipherError):
        enc(p, "RGBA", deterministic=True, salt=SALT)
    pa = api.encrypt_array(p, "RGBA", password=b"pw", kdf=TEST_KDF, deterministic=True)
    pb = api.encrypt_array(p, "RGBA", password=b"pw", kdf=TEST_KDF, deterministic=True)
    assert np.array_equal(pa.pixels, pb.pixels)


def test_bad_arrays_refused() -> None:
    with pytest.raises(CipherError):
        enc(random_image(4, 4, "RGB"), "L")
    with pytest.raises(CipherError):
        enc(random_image(4, 4, "L").astype(np.uint16), "L")
    with pytest.raises(CipherError):
        api.encrypt_array(random_image(4, 4, "L"), "L", password=b"x", key=KEY)
    with pytest.raises(CipherError):
        enc(random_image(4, 4, "L"), "L", salt=b"short")


# ---------------------------------------------------------------- authentication


def test_wrong_password_and_key() -> None:
    p = random_image(8, 8, "L")
    e = api.encrypt_array(p, "L", password=b"right", kdf=TEST_KDF)
    with pytest.raises(WrongKeyError):
        api.decrypt_array(e.pixels, e.header, password=b"wrong")
    with pytest.raises(WrongKeyError, match="password"):
        api.decrypt_array(e.pixels, e.header, key=KEY)
    k = enc(p, "L")
    with pytest.raises(WrongKeyError):
        api.decrypt_array(k.pixels, k.header, key=KEY[:-1] + b"\x00")
    with pytest.raises(WrongKeyError, match="key file"):
        api.decrypt_array(k.pixels, k.header, password=b"right")


@pytest.mark.parametrize("mode", ["L", "RGBA"])
def test_every_flipped_pixel_bit_is_detected(mode: str) -> None:
    p = random_image(3, 5, mode, seed=7)
    e = enc(p, mode)
    flat = e.pixels.reshape(-1)
    for i in range(flat.size):
        for bit in range(8):
            bad = flat.copy()
            bad[i] ^= 1 << bit
            with pytest.raises(CipherIntegrityError):
                api.decrypt_array(bad.reshape(e.pixels.shape), e.header, key=KEY)


def test_every_flipped_header_bit_is_detected_key_file() -> None:
    p = random_image(4, 6, "RGB", seed=3)
    e = enc(p, "RGB")
    raw = bytearray(e.header.pack())
    for i in range(len(raw)):
        for bit in range(8):
            bad = raw.copy()
            bad[i] ^= 1 << bit
            with pytest.raises(CipherAuthError):
                hdr = unpack(bytes(bad))
                api.decrypt_array(e.pixels, hdr, key=KEY)


def test_flipped_header_bits_detected_password() -> None:
    """Every header bit, except high bits of the Argon2 memory that would cost gigabytes."""
    p = random_image(4, 6, "LA", seed=4)
    e = api.encrypt_array(p, "LA", password=b"pw", kdf=TEST_KDF)
    raw = bytearray(e.header.pack())
    mem_offset = 2 + 4  # version, flags, time u32, then memory u32
    for i in range(len(raw)):
        for bit in range(8):
            if mem_offset <= i < mem_offset + 3 or (i == mem_offset + 3 and bit > 3):
                continue  # would ask for >= 1 MiB ... 4 GiB of Argon2 memory
            bad = raw.copy()
            bad[i] ^= 1 << bit
            with pytest.raises(CipherAuthError):
                api.decrypt_array(e.pixels, unpack(bytes(bad)), password=b"pw")


def test_header_edits_report_integrity_not_wrong_key() -> None:
    p = random_image(6, 6, "RGB")
    e = enc(p, "RGB")
    for change in ({"mode": "RGB", "source_format": "JPEG"}, {"tag": bytes(32)},
                   {"deterministic": True}):
        with pytest.raises(CipherIntegrityError):
            api.decrypt_array(e.pixels, e.header.with_(**change), key=KEY)
    with pytest.raises(CipherIntegrityError):
        api.decrypt_array(e.pixels[:, :5], e.header, key=KEY)  # size mismatch


def test_every_flipped_file_bit_is_an_integrity_error() -> None:
    p = random_image(3, 2, "RGB", seed=9)
    data = api.encode_cipher_image(enc(p, "RGB"))
    assert np.array_equal(api.decrypt_image(data, key=KEY).pixels, p)
    for i in range(len(data)):
        for bit in range(8):
            bad = bytearray(data)
            bad[i] ^= 1 << bit
            with pytest.raises(CipherAuthError):
                api.decrypt_image(bytes(bad), key=KEY)


def test_reencoded_png_with_one_pixel_changed_is_refused() -> None:
    p = random_image(9, 11, "RGB", seed=5)
    e = enc(p, "RGB")
    bad = e.pixels.copy()
    bad[4, 5, 1] ^= 0x10
    data = insert_chunk(encode_png(bad), CHUNK_TYPE, e.header.pack())  # valid PNG, valid CRCs
    with pytest.raises(CipherIntegrityError):
        api.decrypt_image(data, key=KEY)


@pytest.mark.parametrize("shape", [(1, 1), (1, 65534), (3, 65534), (5, 13107, 1), (7, 3, 4),
                                   (300, 301, 3)])
def test_stored_png_writer_and_reader(shape: tuple[int, ...]) -> None:
    """Valid PNG for Pillow, including stored-block edge cases (rows of 65535 bytes)."""
    from stegshield.cipher.pngchunk import decode_stored_png, encode_stored_png

    p = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    if p.ndim == 3 and p.shape[2] == 1:
        p = p[:, :, 0]
    png = encode_stored_png(p, [(b"stSH", b"x")])
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), p)
    assert np.array_equal(decode_stored_png(png, iter_chunks(png)), p)
    assert decode_stored_png(encode_png(p), iter_chunks(encode_png(p))) is None  # filtered


def test_stored_png_split_over_several_idat_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    from stegshield.cipher import pngchunk

    monkeypatch.setattr(pngchunk, "_IDAT_MAX", 1000)
    e = enc(random_image(30, 40, "RGB"), "RGB")
    png = api.encode_cipher_image(e)
    assert sum(t == b"IDAT" for t, _, _ in iter_chunks(png)) > 3
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), e.pixels)
    assert np.array_equal(api.decrypt_image(png, key=KEY).pixels, random_image(30, 40, "RGB"))


def test_cipher_image_resaved_with_compression_still_decrypts() -> None:
    p = random_image(40, 50, "RGBA", seed=2)
    e = enc(p, "RGBA")
    data = insert_chunk(encode_png(e.pixels, level=9), CHUNK_TYPE, e.header.pack())
    assert np.array_equal(api.decrypt_image(data, key=KEY).pixels, p)


def test_truncated_or_foreign_files(tmp_path: Path) -> None:
    data = api.encode_cipher_image(enc(random_image(5, 5, "L"), "L"))
    for cut in (len(data) - 1, len(data) - 12):  # our chunk is still there
        with pytest.raises(CipherIntegrityError):
            api.decrypt_image(data[:cut], key=KEY)
    start = data.index(CHUNK_TYPE) - 4
    for cut in (8, 40, start):  # cut before our chunk: cannot tell what it was
        with pytest.raises(CipherFormatError, match="truncated"):
            api.decrypt_image(data[:cut], key=KEY)
    with pytest.raises(CipherIntegrityError):
        api.decrypt_image(data + b"junk", key=KEY)
    with pytest.raises(CipherFormatError):
        api.decrypt_image(encode_png(random_image(5, 5, "L")), key=KEY)  # plain PNG
    with pytest.raises(CipherFormatError):
        api.decrypt_image(b"not an image at all", key=KEY)
    with pytest.raises(ImageError):
        api.decrypt_image(tmp_path / "missing.png", key=KEY)


def test_header_parser_rejects_garbage() -> None:
    good = enc(random_image(2, 2, "L"), "L").header.pack()
    for bad in (b"", good[:10], good + b"x", bytes([2]) + good[1:]):
        with pytest.raises(CipherIntegrityError):
            unpack(bad)
    with pytest.raises(ValueError):
        CipherHeader(kdf=None, salt=b"x", nonce=NONCE, mode="L", width=1, height=1)


def test_png_chunk_helpers() -> None:
    png = encode_png(random_image(3, 3, "RGB"))
    out = insert_chunk(png, b"stSH", b"hello")
    assert [c[0] for c in iter_chunks(out)] == [b"IHDR", b"IDAT", b"stSH", b"IEND"]
    assert read_chunk(out, b"stSH") == b"hello" and read_chunk(png, b"stSH") is None
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(out))),
                          random_image(3, 3, "RGB"))
    two = insert_chunk(out, b"stSH", b"again")
    with pytest.raises(ValueError):
        read_chunk(two, b"stSH")
    assert make_chunk(b"stSH", b"")[-4:] == struct.pack(">I", zlib.crc32(b"stSH"))


# ---------------------------------------------------------------- files and key files


def test_key_files(tmp_path: Path) -> None:
    raw, hexf, bad = tmp_path / "k.bin", tmp_path / "k.hex", tmp_path / "bad"
    raw.write_bytes(KEY)
    hexf.write_text(KEY.hex() + "\n")
    bad.write_bytes(b"too short")
    assert load_key_file(raw) == KEY == load_key_file(hexf)
    with pytest.raises(CipherError, match="32"):
        load_key_file(bad)
    with pytest.raises(CipherError):
        load_key_file(tmp_path / "missing")


def test_file_rules(tmp_path: Path) -> None:
    src = tmp_path / "in.png"
    Image.fromarray(random_image(10, 12, "RGB")).save(src)
    out = tmp_path / "c.png"
    api.encrypt(src, out, key=KEY)
    before = out.read_bytes()
    with pytest.raises(OutputExistsError):
        api.encrypt(src, out, key=KEY)
    assert out.read_bytes() == before
    api.encrypt(src, out, key=KEY, force=True)
    for name in ("c.jpg", "c.webp", "c.bmp", "c"):
        with pytest.raises(ImageError, match="PNG"):
            api.encrypt(src, tmp_path / name, key=KEY)
        assert not (tmp_path / name).exists()
    with pytest.raises(ImageError, match="overwrite"):
        api.encrypt(src, src, key=KEY, force=True)
    with pytest.raises(ImageError, match="exceeds"):
        api.encrypt(src, tmp_path / "big.png", key=KEY, max_pixels=100)
    with pytest.raises(ImageError, match="exceeds"):
        api.decrypt(out, tmp_path / "d.png", key=KEY, max_pixels=100)
    with pytest.raises(ImageError, match="lossy"):
        api.decrypt(out, tmp_path / "d.jpg", key=KEY)
    api.decrypt(out, tmp_path / "d.tiff", key=KEY)  # any lossless format
    assert np.array_equal(np.asarray(Image.open(tmp_path / "d.tiff")),
                          random_image(10, 12, "RGB"))
    wrong = tmp_path / "w.png"
    with pytest.raises(WrongKeyError):
        api.decrypt(out, wrong, key=bytes(32))
    assert not wrong.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.png", "d.tiff", "in.png"]


# ---------------------------------------------------------------- measured security


def test_wu_critical_values() -> None:
    assert metrics.npcr_critical(256 * 256) == pytest.approx(99.5693, abs=5e-5)
    assert metrics.uaci_interval(256 * 256) == pytest.approx((33.2824, 33.6447), abs=5e-5)
    assert metrics.npcr_critical(512 * 512) == pytest.approx(99.5893, abs=5e-5)
    assert metrics.uaci_interval(512 * 512) == pytest.approx((33.3730, 33.5541), abs=5e-5)


def configs(k: int) -> list[tuple[bytes, bytes, bytes]]:
    """``k`` fixed (key, salt, nonce) triples, the first being (KEY, SALT, NONCE)."""
    out = [(KEY, SALT, NONCE)]
    for i in range(1, k):
        d = hashlib.sha512(b"cipher-test-%d" % i).digest()
        out.append((d[:32], d[32:48], d[48:]))
    return out


def bump(p: np.ndarray, i: int, j: int) -> np.ndarray:
    """``p`` with the first sample of pixel (i, j) changed by one level."""
    q = p.copy()
    v = q if q.ndim == 3 else q[:, :, None]
    v[i, j, 0] = v[i, j, 0] + 1 if v[i, j, 0] < 255 else 254
    return q


@pytest.mark.parametrize("name", ["grey_gray.png", "coldripple_gray.png"])
def test_plaintext_and_key_sensitivity_256(name: str) -> None:
    """One pixel changed by one level / one key bit flipped, same salt and nonce.

    Wu et al.'s tests are hypothesis tests: at alpha = 0.05 an ideal cipher passes NPCR and
    UACI together with probability about 0.90, so one fixed configuration may fail by chance.
    Over 8 fixed configurations we require at least 6 passes of each test (an ideal cipher
    does worse with probability about 3 %), and every value within 4.5 standard deviations of
    the ideal mean (a weak cipher misses by far more).
    """
    p = photo(name, 256)
    assert p.shape == (256, 256)
    passes = {"plain": 0, "key": 0}
    for n, (key, salt, nonce) in enumerate(configs(8)):
        base = enc(p, "L", key=key, salt=salt, nonce=nonce).pixels
        q = bump(p, (100 + 13 * n) % 256, (77 + 29 * n) % 256)
        k2 = key[:-1] + bytes([key[-1] ^ 1])
        for what, other in (("plain", enc(q, "L", key=key, salt=salt, nonce=nonce)),
                            ("key", enc(p, "L", key=k2, salt=salt, nonce=nonce))):
            s = metrics.sensitivity(base, other.pixels)
            assert s.npcr_critical == pytest.approx(99.5693, abs=1e-4)
            assert (s.uaci_low, s.uaci_high) == pytest.approx((33.2824, 33.6447), abs=1e-4)
            assert abs(s.npcr - 99.6094) < 4.5 * 0.0244, (what, s)
            assert abs(s.uaci - 33.4635) < 4.5 * 0.0924, (what, s)
            passes[what] += s.passed
    assert passes["plain"] >= 6 and passes["key"] >= 6, passes


def test_diffusion_from_every_region() -> None:
    """A one-level change anywhere (either half, corners, edges) changes the whole image.

    An ideal cipher passes each NPCR/UACI test with probability about 0.9; over 16
    positions we ask for at least 11 passes and an NPCR always near 99.6 %.
    """
    p = photo("path_rgb.png", 64)
    base = enc(p, "RGB", salt=SALT, nonce=NONCE).pixels
    passes, h, w = 0, *p.shape[:2]
    positions = [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (0, 1), (1, 0), (31, 31),
                 (31, 32), (17, 40), (40, 17), (63, 30), (5, 62), (62, 5), (33, 1), (2, 2),
                 (50, 51)]
    for k, (i, j) in enumerate(positions):
        q = p.copy()
        q[i, j, k % 3] ^= 1  # one level up or down
        s = metrics.sensitivity(base, enc(q, "RGB", salt=SALT, nonce=NONCE).pixels)
        assert s.npcr > 99.3, (i, j, s)
        passes += s.passed
    assert passes >= 11


@pytest.fixture(scope="module")
def cipher_512() -> dict[str, list[np.ndarray]]:
    """512x512 real photographs (sample crops upscaled), each encrypted under 4 keys."""
    images = {"L": photo("bythewater_gray.png", 512), "RGB": photo("eveningglow_rgb.png", 512)}
    return {mode: [enc(p, mode, key=k, salt=s, nonce=n).pixels for k, s, n in configs(4)]
            for mode, p in images.items()}


@pytest.mark.parametrize("mode", ["L", "RGB"])
def test_randomness_512(cipher_512: dict[str, list[np.ndarray]], mode: str) -> None:
    """Entropy >= 7.997 and |r| < 0.01 always; the chi-square test at alpha = 0.05 (which an
    ideal cipher fails 5 % of the time) in at least 3 of 4 keys, never grossly."""
    chi_passes = 0
    for c in cipher_512[mode]:
        assert c.shape[:2] == (512, 512)
        for ch in metrics.channels(c):
            assert metrics.entropy(ch) >= 7.997
            for r in metrics.adjacent_correlation(ch).values():
                assert abs(r) < 0.01
        chi = metrics.chi_square_uniform(c, 0.05)
        assert chi.p_value > 1e-4
        chi_passes += chi.passed
    assert chi_passes >= 3


def test_audit_report_on_real_photo() -> None:
    p = photo("flower_rgb.png", 256)
    r = audit_array(p, "RGB", key=KEY, salt=SALT, nonce=NONCE)
    text = format_audit(r)
    for word in ("entropy", "correlation", "chi-square", "NPCR", "UACI"):
        assert word in text
    assert r.checks["entropy"] and r.checks["correlation"]
    assert all(s.correlation["horizontal"] > 0.8 for s in r.plain)  # a real photo
    json.dumps(r.to_dict())


# ---------------------------------------------------------------- commands


@pytest.fixture
def cli() -> click.Group:
    @click.group()
    def main() -> None:
        """Test group standing in for stegshield.cli.main."""

    for cmd in (encrypt, decrypt, cipher_audit):
        main.add_command(cmd)
    return main


@pytest.fixture
def photo_file(tmp_path: Path) -> Path:
    dst = tmp_path / "photo.png"
    Image.fromarray(photo("path_rgb.png", 48)).save(dst)
    return dst


def run(cli: click.Group, *args: object, env: dict[str, str | None] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


def test_cli_names_and_help(cli: click.Group) -> None:
    assert (encrypt.name, decrypt.name, cipher_audit.name) == ("encrypt", "decrypt",
                                                                "cipher-audit")
    r = run(cli, "encrypt", "--help")
    for opt in ("--password", "--key-file", "--deterministic", "--salt", "--nonce", "--force"):
        assert opt in r.output


def test_cli_round_trip_and_exit_codes(cli: click.Group, photo_file: Path,
                                       tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import stegshield.cipher.api as api_mod

    real = api_mod.encrypt
    monkeypatch.setattr(api_mod, "encrypt", lambda *a, **k: real(*a, **{**k, "kdf": TEST_KDF}))
    c, d = tmp_path / "c.png", tmp_path / "d.png"
    r = run(cli, "encrypt", photo_file, "-o", c, "--password", PW)
    assert r.exit_code == 0, r.output
    assert run(cli, "encrypt", photo_file, "-o", c, "-p", PW).exit_code == 2  # exists
    r = run(cli, "decrypt", c, "-o", d, "-p", "nope")
    assert r.exit_code == 1 and "wrong password" in r.output and not d.exists()
    r = run(cli, "decrypt", c, "-o", d, env={"STEGSHIELD_PASSWORD": PW})
    assert r.exit_code == 0, r.output
    assert np.array_equal(open_image(d).pixels, open_image(photo_file).pixels)
    bad = tmp_path / "bad.png"
    data = bytearray(c.read_bytes())
    data[len(data) // 2] ^= 4
    bad.write_bytes(bytes(data))
    r = run(cli, "decrypt", bad, "-o", tmp_path / "x.png", "-p", PW)
    assert r.exit_code == 1 and "altered" in r.output
    assert not (tmp_path / "x.png").exists()
    r = run(cli, "decrypt", photo_file, "-o", tmp_path / "y.png", "-p", PW)
    assert r.exit_code == 2 and "not a stegshield cipher-image" in r.output
    r = run(cli, "encrypt", photo_file, "-o", tmp_path / "z.jpg", "-p", PW)
    assert r.exit_code == 2 and "lossy" in r.output
    r = run(cli, "encrypt", tmp_path / "missing.png", "-o", tmp_path / "m.png", "-p", PW)
    assert r.exit_code == 2 and r.output.startswith("stegshield: error:")


def test_cli_refusals_speak_of_encryption_not_hiding(cli: click.Group, photo_file: Path,
                                                     tmp_path: Path) -> None:
    """The shared image checks used to explain refusals in terms of hidden data."""
    pal = tmp_path / "pal.png"
    Image.open(photo_file).convert("P").save(pal)
    bw = tmp_path / "bw.png"
    Image.open(photo_file).convert("1").save(bw)
    c = tmp_path / "c.png"
    assert run(cli, "encrypt", photo_file, "-o", c, "-p", PW, "-q").exit_code == 0
    for args, says in (
            (("encrypt", pal, "-o", tmp_path / "1.png"), "palette images are not supported"),
            (("encrypt", bw, "-o", tmp_path / "2.png"), "1-bit"),
            (("decrypt", c, "-o", tmp_path / "3.jpg"), "would not keep the pixels exactly"),
            (("encrypt", photo_file, "-o", tmp_path / "4.bmp"),
             "cipher-images are PNG files (the header travels in a PNG chunk), not .bmp;")):
        r = run(cli, *args, "-p", PW)
        assert r.exit_code == 2 and says in r.output, r.output
        assert "hid" not in r.output and "±1" not in r.output


def test_cli_key_file_salt_nonce_deterministic(cli: click.Group, photo_file: Path,
                                               tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    key.write_bytes(KEY)
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    args = ["--salt", SALT.hex(), "--nonce", NONCE.hex(), "-k", key, "-q"]
    assert run(cli, "encrypt", photo_file, "-o", a, *args).exit_code == 0
    assert run(cli, "encrypt", photo_file, "-o", b, *args).exit_code == 0
    assert a.read_bytes() == b.read_bytes()
    r = run(cli, "encrypt", photo_file, "-o", tmp_path / "c.png", "-k", key, "--salt", "abc")
    assert r.exit_code == 2 and "32 hexadecimal" in r.output
    r = run(cli, "encrypt", photo_file, "-o", tmp_path / "c.png", "-k", key, "-p", "x")
    assert r.exit_code == 2
    r = run(cli, "encrypt", photo_file, "-o", tmp_path / "c.png", "-k", key,
            "--deterministic", "--salt", SALT.hex())
    assert r.exit_code == 2
    d1, d2 = tmp_path / "d1.png", tmp_path / "d2.png"
    assert run(cli, "encrypt", photo_file, "-o", d1, "-k", key, "--deterministic").exit_code == 0
    assert run(cli, "encrypt", photo_file, "-o", d2, "-k", key, "--deterministic").exit_code == 0
    assert d1.read_bytes() == d2.read_bytes()
    out = tmp_path / "plain.png"
    assert run(cli, "decrypt", d1, "-o", out, "-k", key).exit_code == 0
    assert np.array_equal(open_image(out).pixels, open_image(photo_file).pixels)
    r = run(cli, "decrypt", d1, "-o", tmp_path / "p2.png", "-p", PW)
    assert r.exit_code == 1 and "key file" in r.output
    key_png = tmp_path / "key.png"  # a key file named like an image: never an output
    key_png.write_bytes(KEY)
    for cmd, src in (("encrypt", photo_file), ("decrypt", d1)):
        r = run(cli, cmd, src, "-o", key_png, "-k", key_png, "--force")
        assert r.exit_code == 2 and "refusing to overwrite the key file" in r.output
        assert key_png.read_bytes() == KEY


def test_cli_no_password_without_terminal(cli: click.Group, photo_file: Path,
                                          tmp_path: Path) -> None:
    r = run(cli, "encrypt", photo_file, "-o", tmp_path / "c.png",
            env={"STEGSHIELD_PASSWORD": None})
    assert r.exit_code == 2 and "no password" in r.output
    assert not (tmp_path / "c.png").exists()


def test_cli_audit(cli: click.Group, tmp_path: Path) -> None:
    src = tmp_path / "p.png"
    Image.fromarray(photo("grey_gray.png", 128)).save(src)
    r = run(cli, "cipher-audit", src, "--salt", SALT.hex(), "--nonce", NONCE.hex())
    assert r.exit_code == 0, r.output
    assert "NPCR" in r.output and "entropy" in r.output
    r = run(cli, "cipher-audit", src, "--json")
    doc = json.loads(r.output)
    assert {"plaintext_sensitivity", "key_sensitivity", "checks", "passed"} <= set(doc)
    tiny = tmp_path / "t.png"
    Image.fromarray(random_image(2, 2, "L")).save(tiny)
    assert run(cli, "cipher-audit", tiny).exit_code == 2
    r = run(cli, "cipher-audit", src, "-p", "")  # used to audit a random key instead
    assert r.exit_code == 2 and "must not be empty" in r.output


def test_numba_cache_is_used_only_where_it_can_be_written(tmp_path: Path) -> None:
    """A service account with no writable package folder nor home crashed encrypt, decrypt
    and hide --cost wow/suniward ("cannot cache function"); they now compile in memory."""
    import os
    import shutil
    import subprocess
    import sys

    from stegshield.cipher import network
    from stegshield.runtime import jit_cache

    assert jit_cache(network.__file__) is network._CACHE
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run as an unprivileged user")
    tmp_path.chmod(0o777)
    code = ("import numpy as np; from stegshield.cipher import network; "
            "from stegshield.stego.costs import COSTS; "
            "print(network._CACHE, float(COSTS['wow'](np.full((16, 16), 7, np.uint8) + "
            "np.arange(16, dtype=np.uint8)).min()) >= 0)")
    env = {**os.environ, "HOME": "/nonexistent", "NUMBA_CACHE_DIR": ""}
    env.pop("NUMBA_CACHE_DIR")
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        sys.executable, "-c", code], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=300)
    if "Permission denied" in r.stderr and "python" in r.stderr.lower():
        pytest.skip("the unprivileged user cannot read this Python")
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split() == ["False", "True"]


def test_decrypt_to_webp_never_drops_an_opaque_alpha_channel(tmp_path: Path) -> None:
    """libwebp stores an RGBA image whose alpha is 255 everywhere as RGB: the decrypted
    file read back as RGB, not the original RGBA."""
    src = tmp_path / "in.png"
    rgba = random_image(16, 16, "RGBA")
    rgba[..., 3] = 255
    Image.fromarray(rgba, "RGBA").save(src)
    api.encrypt(src, tmp_path / "c.png", key=KEY)
    with pytest.raises(ImageError, match="fully opaque"):
        api.decrypt(tmp_path / "c.png", tmp_path / "d.webp", key=KEY)
    assert not (tmp_path / "d.webp").exists()
    rgba[0, 0, 3] = 7  # real transparency survives in lossless WebP
    Image.fromarray(rgba, "RGBA").save(src)
    api.encrypt(src, tmp_path / "c2.png", key=KEY)
    api.decrypt(tmp_path / "c2.png", tmp_path / "d2.webp", key=KEY)
    back = Image.open(tmp_path / "d2.webp")
    assert back.mode == "RGBA" and np.array_equal(np.asarray(back), rgba)

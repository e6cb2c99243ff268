"""The Python API as a library user meets it: argument checks, exception types, no global
side effects (found by a library-user review; each test failed before its fix)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stegshield.crypto.container import Payload
from stegshield.crypto.kdf import TEST_KDF, derive_key
from stegshield.imaging import ImageError, OutputExistsError, save_image
from stegshield.scan import ScanOptions, scan_paths
from stegshield.stego import api
from stegshield.stego.embed import hide_array, reveal_array
from stegshield.stego.errors import StegoError

from imagegen import natural_like


def test_a_salt_of_another_length_is_refused_not_lost() -> None:
    """A 12-byte salt was hidden without complaint, and the payload never found again."""
    rgb = natural_like(96, 96, 3)
    for salt in (b"12345678", b"x" * 20, "0123456789abcdef"):
        with pytest.raises(StegoError, match="salt must be 16 bytes"):
            hide_array(rgb, "RGB", Payload(b"hi"), b"pw", kdf=TEST_KDF, salt=salt)  # type: ignore[arg-type]
    stego, _ = hide_array(rgb, "RGB", Payload(b"hi"), b"pw", kdf=TEST_KDF, salt=b"s" * 16)
    assert reveal_array(stego, "RGB", b"pw", kdf=TEST_KDF).data == b"hi"


def test_arrays_must_match_their_mode() -> None:
    """A 2-D array as "RGB" gave an IndexError; "L" on an H×W×3 array used channel 0 only;
    save_image wrote an RGBA array as "RGB" scrambled."""
    rgb, gray = natural_like(64, 64, 3), natural_like(64, 64)
    for pixels, mode in ((gray, "RGB"), (rgb, "L"), (rgb, "RGBA"), (gray[0], "L")):
        with pytest.raises(StegoError, match="is not a"):
            hide_array(pixels, mode, Payload(b"x"), b"pw", kdf=TEST_KDF)
        with pytest.raises(StegoError, match="is not a"):
            reveal_array(pixels, mode, b"pw", kdf=TEST_KDF)
    with pytest.raises(StegoError, match="uint16 array"):
        reveal_array(gray.astype(np.uint16), "L", b"pw", kdf=TEST_KDF)


def test_save_image_checks_the_array(tmp_path: Path) -> None:
    rgba = np.dstack([natural_like(16, 16, 3), np.full((16, 16), 255, np.uint8)])
    for ext in (".bmp", ".png", ".tif"):
        with pytest.raises(ImageError, match="is not a RGB image"):
            save_image(tmp_path / f"x{ext}", rgba, "RGB")
    with pytest.raises(ImageError, match="is not a L image"):
        save_image(tmp_path / "y.png", natural_like(16, 16).astype(np.uint16), "L")
    assert not list(tmp_path.iterdir())


def test_scan_options_have_the_command_lines_ranges() -> None:
    """fpr=0 gave 'clean' with score 0.9999, fpr=2 made every image alert."""
    for kw in ({"fpr": 0}, {"fpr": 2}, {"fpr": float("nan")}, {"threshold": 5},
               {"threshold": float("nan")}, {"max_pixels": 0}):
        with pytest.raises(ValueError):
            ScanOptions(**kw)  # type: ignore[arg-type]
    assert ScanOptions(fpr=0.5, threshold=1.0).threshold == 1.0


def test_one_path_is_one_file(tmp_path: Path) -> None:
    """scan_paths("photo.png") scanned each character of the string as a file."""
    save_image(tmp_path / "p.png", natural_like(64, 64, 3), "RGB")
    got = list(scan_paths(str(tmp_path / "p.png"), ScanOptions(detector="classical")))
    assert len(got) == 1 and got[0].error is None


def test_exception_types_and_bytearray_password(tmp_path: Path) -> None:
    """api.hide raised a plain ImageError for an existing output (the cipher and
    save_image raise OutputExistsError); a bytearray password failed inside argon2-cffi."""
    assert derive_key(bytearray(b"pw"), b"0123456789abcdef", TEST_KDF) == derive_key(
        b"pw", b"0123456789abcdef", TEST_KDF)
    save_image(tmp_path / "c.png", natural_like(96, 96, 3), "RGB")
    (tmp_path / "s.png").write_bytes(b"taken")
    with pytest.raises(OutputExistsError, match="force=True"):  # advice a caller can follow
        api.hide(tmp_path / "c.png", tmp_path / "s.png", Payload(b"x"), b"pw", kdf=TEST_KDF)
    with pytest.raises(ImageError, match="max_pixels="):
        api.capacity(tmp_path / "c.png", max_pixels=100)


def test_importing_the_library_leaves_pillows_bomb_guard_alone() -> None:
    """`import stegshield.imaging` set PIL.Image.MAX_IMAGE_PIXELS = None for the host
    application (its own Image.open calls lost their decompression-bomb protection)."""
    code = ("from PIL import Image; before = Image.MAX_IMAGE_PIXELS; "
            "import stegshield.stego.api, stegshield.scan, stegshield.imaging; "
            "print(before == Image.MAX_IMAGE_PIXELS and before is not None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "True"


def test_one_base_class_catches_every_refusal(tmp_path: Path) -> None:
    """A library caller had to catch StegoError, ImageError, CipherError and SuiteError apart
    (no common base)."""
    from stegshield.cipher.errors import CipherError
    from stegshield.errors import StegshieldError
    from stegshield.scan.suite import SuiteError, build_suite

    assert all(issubclass(c, StegshieldError) for c in (StegoError, ImageError, CipherError,
                                                          SuiteError, OutputExistsError))
    save_image(tmp_path / "c.png", natural_like(96, 96, 3), "RGB")
    for call in (lambda: api.reveal(tmp_path / "c.png", b"pw", kdf=TEST_KDF),  # nothing hidden
                 lambda: api.capacity(tmp_path / "missing.png"),
                 lambda: build_suite("nonsense")):
        with pytest.raises(StegshieldError):
            call()


def test_hide_report_carries_the_warnings_the_cli_prints(tmp_path: Path) -> None:
    """A library caller got no word of a lossy cover, dropped metadata or a high rate."""
    from PIL import Image

    jpg = tmp_path / "c.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation
    Image.fromarray(natural_like(96, 96, 3)).save(jpg, quality=95, exif=exif)
    rep = api.hide(jpg, tmp_path / "s.png", Payload(b"x"), b"pw", kdf=TEST_KDF, rate=0.3)
    text = " ".join(rep.notes)
    assert "JPEG-compressed" in text and "EXIF" in text and "rate 0.3" in text
    save_image(tmp_path / "c.png", natural_like(96, 96, 3), "RGB")
    assert api.hide(tmp_path / "c.png", tmp_path / "s2.png", Payload(b"x"), b"pw",
                    kdf=TEST_KDF).notes == ()


def test_scan_options_refuse_an_unknown_detector_at_once() -> None:
    """ScanOptions(detector="nope") was accepted; the error came when a Scanner was built."""
    from stegshield.errors import StegshieldError
    from stegshield.scan import ScanOptions

    with pytest.raises(StegshieldError, match="unknown detector choice 'nope'"):
        ScanOptions(detector="nope")

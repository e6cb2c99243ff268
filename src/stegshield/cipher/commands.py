"""Click commands ``encrypt``, ``decrypt`` and ``cipher-audit`` (registered by ``cli.main``).

Same conventions as the rest of the command line: one-line errors ``stegshield: error: ...``,
exit 1 for a wrong password/key or an altered cipher-image (nothing written), exit 2 for bad
input or usage; password from ``--password``, else ``$STEGSHIELD_PASSWORD``, else a prompt.
Heavy modules (numba, the network) are imported only when a command runs.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from ..cli_support import (
    EXIT_ERROR,
    EXIT_FOUND,
    FiniteFloatRange,
    fail,
    get_password,
    handle_errors,
    password_option,
    text_bytes,
)
from ..imaging import DEFAULT_MAX_PIXELS, ImageError, check_not_input
from .errors import CipherAuthError, CipherError

EXIT_AUTH = EXIT_FOUND
_fail = fail
_handle_errors = handle_errors([(CipherAuthError, EXIT_AUTH),
                                ((CipherError, ImageError), EXIT_ERROR)])


def _password(option: str | None, confirm: bool) -> bytes:
    return get_password(option, confirm, alternatives="--password or --key-file")


def _secret(password: str | None, key_file: Path | None,
            confirm: bool) -> tuple[bytes | None, bytes | None]:
    """(password, key): exactly one is set."""
    if key_file is not None:
        if password is not None:
            _fail("give either --password or --key-file, not both")
        from .keys import load_key_file

        return None, load_key_file(key_file)
    return _password(password, confirm), None


def _elapsed(started: float, report: Any) -> float:
    """Wall time of the command without the password prompt and without Argon2id."""
    return time.perf_counter() - started - report.kdf_seconds


def _hex16(value: str | None, name: str) -> bytes | None:
    if value is None:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raw = b""
    if len(raw) != 16:
        _fail(f"--{name} must be 32 hexadecimal digits (16 bytes)")
    return raw


_password_option = password_option
_key_file_option = click.option(
    "--key-file", "-k", metavar="K", type=click.Path(dir_okay=False, path_type=Path),
    help="Use a 32-byte key file instead of a password (head -c 32 /dev/urandom > K).")
_max_pixels_option = click.option(
    "--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
    help="Refuse images with more pixels than this (decompression-bomb guard).")
_path = click.Path(dir_okay=False, path_type=Path)


@click.command()
@click.argument("image", type=_path)
@click.option("-o", "--output", required=True, type=_path,
              help="Cipher-image to write (.png: the header travels in a PNG chunk).")
@_password_option
@_key_file_option
@click.option("--deterministic", is_flag=True,
              help="Derive salt and nonce from the key and the image: equal images give equal "
              "cipher-images (reveals when two images are equal).")
@click.option("--salt", metavar="HEX", help="Salt, 32 hex digits (tests and audits only).")
@click.option("--nonce", metavar="HEX", help="Nonce, 32 hex digits (tests and audits only: "
              "reusing one with the same key and salt reveals which images are equal).")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
@_max_pixels_option
@_handle_errors
def encrypt(image: Path, output: Path, password: str | None, key_file: Path | None,
            deterministic: bool, salt: str | None, nonce: str | None, force: bool,
            quiet: bool, max_pixels: int) -> None:
    """Encrypt IMAGE into a cipher-image of the same size (a noise-like PNG).

    An exactly invertible integer coupling network (CNN shift functions) built as a
    LIONESS wide-block cipher over ChaCha20 and HMAC-SHA256, with Argon2id for passwords.
    Any change to the cipher-image makes decryption fail. See docs/CIPHER.md.
    """
    salt_b, nonce_b = _hex16(salt, "salt"), _hex16(nonce, "nonce")
    if deterministic and (salt_b is not None or nonce_b is not None):
        _fail("--deterministic derives the salt and nonce: do not give --salt or --nonce")
    started = time.perf_counter()
    from ..imaging import open_image
    from . import api

    api.check_cipher_output(image, output, force)  # refuse before asking for a password
    check_not_input(output, [("key file", key_file)])
    img = open_image(image, max_pixels)  # bad input -> exit 2 before the prompt
    prompt = time.perf_counter()
    pw, key = _secret(password, key_file, confirm=True)
    started += time.perf_counter() - prompt  # time at a password prompt is not work
    report = api.encrypt(img, output, password=pw, key=key, deterministic=deterministic,
                         salt=salt_b, nonce=nonce_b, force=force, max_pixels=max_pixels)
    if not quiet:
        kdf = f" + {report.kdf_seconds:.2f} s Argon2id" if not report.key_file else ""
        click.echo(f"encrypted {image} ({report.width}x{report.height} {report.mode}) to "
                   f"{output} in {_elapsed(started, report):.2f} s{kdf}"
                   + (" (deterministic)" if report.deterministic else ""), err=True)


@click.command()
@click.argument("cipher", type=_path)
@click.option("-o", "--output", required=True, type=_path,
              help="Image to write (lossless: .png, .bmp, .tiff, .webp, .pgm/.ppm).")
@_password_option
@_key_file_option
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success.")
@_max_pixels_option
@_handle_errors
def decrypt(cipher: Path, output: Path, password: str | None, key_file: Path | None,
            force: bool, quiet: bool, max_pixels: int) -> None:
    """Decrypt CIPHER back to the exact original pixels.

    Exit 1, writing nothing, for a wrong password or key or an altered cipher-image.
    """
    started = time.perf_counter()
    from ..imaging import output_format
    from . import api

    api.check_output(cipher, output, force)
    check_not_input(output, [("key file", key_file)])
    parsed = api.read_cipher_image(cipher, max_pixels)  # bad input -> exit 2 first
    output_format(output, parsed[1].mode)
    prompt = time.perf_counter()
    pw, key = _secret(password, key_file, confirm=False)
    started += time.perf_counter() - prompt  # time at a password prompt is not work
    report = api.decrypt(parsed, output, password=pw, key=key, force=force)
    if not quiet:
        kdf = f" + {report.kdf_seconds:.2f} s Argon2id" if not report.key_file else ""
        click.echo(f"decrypted {cipher} ({report.width}x{report.height} {report.mode}) to "
                   f"{output} in {_elapsed(started, report):.2f} s{kdf}", err=True)


@click.command("cipher-audit")
@click.argument("image", type=_path)
@click.option("--password", "-p", metavar="P", default=None,
              help="Derive the key from this password (Argon2id); default: a random key.")
@_key_file_option
@click.option("--salt", metavar="HEX", help="Salt, 32 hex digits (default: random).")
@click.option("--nonce", metavar="HEX", help="Nonce, 32 hex digits (default: random).")
@click.option("--alpha", type=FiniteFloatRange(min=0.0001, max=0.5), default=0.05,
              show_default=True, help="Significance level of the hypothesis tests.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--strict", is_flag=True, help="Exit 1 when any check fails.")
@_max_pixels_option
@_handle_errors
def cipher_audit(image: Path, password: str | None, key_file: Path | None, salt: str | None,
                 nonce: str | None, alpha: float, as_json: bool, strict: bool,
                 max_pixels: int) -> None:
    """Encrypt IMAGE and print the cipher's security metrics for it.

    Entropy, adjacent-pixel correlation, histogram chi-square, and NPCR/UACI for a one-level
    change of one pixel and for a one-bit key change (same salt and nonce), judged with the
    critical values of Wu, Noonan & Agaian (2011).
    """
    from .audit import audit, format_audit

    key = None
    if key_file is not None:
        if password is not None:
            _fail("give either --password or --key-file, not both")
        from .keys import load_key_file

        key = load_key_file(key_file)
    if password == "":  # not a random key in disguise: encrypt refuses it too
        _fail("the password must not be empty")
    pw = text_bytes(password, "the password") if password is not None else None
    report = audit(image, password=pw, key=key, salt=_hex16(salt, "salt"),
                   nonce=_hex16(nonce, "nonce"), alpha=alpha, max_pixels=max_pixels)
    click.echo(json.dumps(report.to_dict(), indent=2) if as_json else format_audit(report))
    if strict and not report.passed:
        sys.exit(EXIT_AUTH)


__all__ = ["cipher_audit", "decrypt", "encrypt"]

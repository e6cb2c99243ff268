"""File-level and array-level image encryption: the Python API the commands mirror.

``encrypt`` turns an image into a cipher-image PNG of the same width, height and channels;
the header (version, KDF parameters, salt, nonce, tag, mode, source format) travels in the
PNG chunk ``stSH``. ``decrypt`` checks the key, inverts the network bit-exactly and verifies
the tag before anything is written. See ``docs/CIPHER.md``.
"""

from __future__ import annotations

import hmac
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..crypto.kdf import DEFAULT_KDF, SALT_BYTES, KdfParams
from ..imaging import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    LoadedImage,
    atomic_write,
    check_not_input,
    encode_image,
    open_image,
    output_format,
)
from ..imaging.io import LOSSY_EXTENSIONS, MAX_PIXELS_HINT, already_exists
from .errors import CipherError, CipherFormatError, CipherIntegrityError, WrongKeyError
from .header import (
    CHANNELS,
    CHUNK_TYPE,
    NONCE_BYTES,
    CipherHeader,
    unpack,
    valid_source_format,
)
from .keys import DETERMINISTIC_SALT, CipherKeys, Secret, master_key
from .network import decipher, encipher
from .pngchunk import (
    PngChunkError,
    decode_stored_png,
    encode_stored_png,
    ihdr_size,
    iter_chunks,
    mentions_chunk,
)

PathLike = str | os.PathLike[str]


@dataclass
class EncryptedImage:
    """Cipher pixels (same shape and mode as the input) and their header."""

    pixels: np.ndarray
    header: CipherHeader
    kdf_seconds: float = 0.0
    cipher_seconds: float = 0.0


@dataclass
class DecryptedImage:
    """Recovered pixels, their mode and the recorded source format."""

    pixels: np.ndarray
    mode: str
    header: CipherHeader
    kdf_seconds: float = 0.0
    cipher_seconds: float = 0.0

    @property
    def source_format(self) -> str:
        return self.header.source_format


@dataclass(frozen=True)
class CipherReport:
    """What ``encrypt`` / ``decrypt`` did, with the time split into Argon2id and the rest."""

    output: str
    width: int
    height: int
    mode: str
    deterministic: bool
    key_file: bool
    kdf_seconds: float
    cipher_seconds: float
    total_seconds: float


def _secret(password: bytes | None, key: bytes | None) -> Secret:
    return Secret(password=password, key=key)


def _check_pixels(pixels: np.ndarray, mode: str) -> np.ndarray:
    if mode not in CHANNELS:
        raise CipherError(f"image mode {mode} is not supported (use L, LA, RGB or RGBA)")
    if pixels.dtype != np.uint8:
        raise CipherError("pixels must be uint8")
    c = CHANNELS[mode]
    ok = pixels.ndim == 2 if c == 1 else pixels.ndim == 3 and pixels.shape[2] == c
    if not ok or pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise CipherError(f"pixel array of shape {pixels.shape} does not match mode {mode}")
    return np.ascontiguousarray(pixels)


def _bytes16(value: bytes | None, name: str) -> bytes | None:
    if value is not None and len(value) != 16:
        raise CipherError(f"--{name} must be 16 bytes (32 hex digits)")
    return value


def encrypt_array(pixels: np.ndarray, mode: str, *, password: bytes | None = None,
                  key: bytes | None = None, kdf: KdfParams = DEFAULT_KDF,
                  deterministic: bool = False, salt: bytes | None = None,
                  nonce: bytes | None = None, source_format: str = "") -> EncryptedImage:
    """Encrypt uint8 ``pixels`` of ``mode`` under a password (Argon2id ``kdf``) or a raw key.

    ``salt`` and ``nonce`` (16 bytes each) are random unless given. ``deterministic`` uses a
    fixed public salt and a nonce derived from the key and the image (SIV): equal images then
    give equal cipher-images.
    """
    pixels = _check_pixels(pixels, mode)
    secret = _secret(password, key)
    salt, nonce = _bytes16(salt, "salt"), _bytes16(nonce, "nonce")
    if deterministic and (salt is not None or nonce is not None):
        raise CipherError("--deterministic derives the salt and nonce: do not give them")
    if not valid_source_format(source_format):
        source_format = ""
    if deterministic:
        salt = DETERMINISTIC_SALT
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    header = CipherHeader(kdf=None if secret.is_key else kdf, salt=salt,
                          nonce=nonce or bytes(NONCE_BYTES), mode=mode,
                          width=pixels.shape[1], height=pixels.shape[0],
                          deterministic=deterministic, source_format=source_format)
    t0 = time.perf_counter()
    keys = CipherKeys(master_key(secret, salt, header.kdf))
    t1 = time.perf_counter()
    if deterministic:
        header = header.with_(nonce=keys.siv_nonce(header, memoryview(pixels.reshape(-1))))
    elif nonce is None:
        header = header.with_(nonce=os.urandom(NONCE_BYTES))
    cipher, tag = encipher(pixels, keys.network(header.channels), header.tweak())
    header = header.with_(check=keys.check_value(header.nonce), tag=tag)
    return EncryptedImage(cipher, header, t1 - t0, time.perf_counter() - t1)


def _check_kdf(kdf: KdfParams | None, limit: KdfParams | None) -> None:
    """Refuse Argon2id parameters above ``limit``: they come from the unauthenticated header,
    and a forged one must not make a server spend gigabytes and minutes on each request."""
    if kdf is None or limit is None:
        return
    if (kdf.time_cost > limit.time_cost or kdf.memory_kib > limit.memory_kib
            or kdf.parallelism > limit.parallelism):
        raise CipherError(f"the cipher-image asks for Argon2id t={kdf.time_cost}, "
                          f"m={kdf.memory_kib} KiB, p={kdf.parallelism}, more than allowed here "
                          f"(t={limit.time_cost}, m={limit.memory_kib} KiB, "
                          f"p={limit.parallelism})")


def decrypt_array(pixels: np.ndarray, header: CipherHeader, *, password: bytes | None = None,
                  key: bytes | None = None, max_kdf: KdfParams | None = None) -> DecryptedImage:
    """Check the key, invert the network and verify the tag; raise before returning anything.

    Raises :class:`WrongKeyError` (wrong password or key) or :class:`CipherIntegrityError`
    (pixels or header altered); :class:`CipherError` when the header's Argon2id parameters
    exceed ``max_kdf`` (when given).
    """
    _check_kdf(header.kdf, max_kdf)
    secret = _secret(password, key)
    if header.key_file != secret.is_key:
        need = "a key file (--key-file)" if header.key_file else "a password, not a key file"
        raise WrongKeyError(f"this cipher-image was encrypted with {need}")
    if pixels.dtype != np.uint8:
        raise CipherError("pixels must be uint8")
    c = header.channels
    expected = (header.height, header.width) + ((c,) if c > 1 else ())
    if pixels.shape != expected:
        raise CipherIntegrityError(f"the cipher-image shape {pixels.shape} does not match its "
                                   f"header ({header.width}x{header.height} {header.mode}): "
                                   "altered")
    pixels = np.ascontiguousarray(pixels)
    t0 = time.perf_counter()
    keys = CipherKeys(master_key(secret, header.salt, header.kdf))
    t1 = time.perf_counter()
    if not hmac.compare_digest(keys.check_value(header.nonce), header.check):
        raise WrongKeyError("wrong password or key (or the cipher-image header was altered)")
    plain, ok = decipher(pixels, header.tag, keys.network(header.channels), header.tweak())
    if not ok:
        raise CipherIntegrityError("integrity failure: the cipher-image was altered or "
                                   "corrupted after encryption; nothing was written")
    return DecryptedImage(plain, header.mode, header, t1 - t0, time.perf_counter() - t1)


def encode_cipher_image(enc: EncryptedImage) -> bytes:
    """The cipher-image as PNG bytes: stored (incompressible) pixels + the ``stSH`` chunk."""
    return encode_stored_png(enc.pixels, [(CHUNK_TYPE, enc.header.pack())])


def _read_source(source: PathLike | bytes, max_pixels: int) -> bytes:
    if isinstance(source, bytes | bytearray):
        return bytes(source)
    try:
        size = os.stat(source).st_size
        if size > 5 * max_pixels + (1 << 20):
            raise ImageError(f"{source}: file too large for the pixel limit of {max_pixels:,} "
                             f"{MAX_PIXELS_HINT}")
        return Path(source).read_bytes()
    except OSError as exc:
        raise ImageError(f"{source}: cannot open: {exc.strerror or exc}") from exc


def read_cipher_image(source: PathLike | bytes,
                      max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[np.ndarray, CipherHeader]:
    """Parse a cipher-image file (or its bytes): pixels and header, CRCs and sizes checked.

    A file that carries our chunk but is damaged anywhere raises
    :class:`CipherIntegrityError`; a file that is no cipher-image raises
    :class:`CipherFormatError`.
    """
    data = _read_source(source, max_pixels)
    label = "<bytes>" if isinstance(source, bytes | bytearray) else str(source)
    try:
        chunks = iter_chunks(data)
        found = [(off, n) for t, off, n in chunks if t == CHUNK_TYPE]
        if len(found) > 1:
            raise PngChunkError("more than one stSH chunk")
    except PngChunkError as exc:
        if mentions_chunk(data, CHUNK_TYPE):
            raise CipherIntegrityError(f"{label}: the cipher-image is corrupt or was altered "
                                       f"({exc}); nothing was written") from exc
        raise CipherFormatError(f"{label}: not a stegshield cipher-image, or a truncated one "
                                f"(broken PNG: {exc})") from exc
    if not found:
        raise CipherFormatError(f"{label}: not a stegshield cipher-image (no stSH header "
                                "chunk); make one with: stegshield encrypt")
    off, n = found[0]
    header = unpack(data[off:off + n])
    w, h = ihdr_size(data)
    if (w, h) != (header.width, header.height):
        raise CipherIntegrityError(f"{label}: the cipher-image size does not match its header")
    if w * h > max_pixels:
        raise ImageError(f"{label}: {w}x{h} = {w * h:,} pixels exceeds the limit of "
                         f"{max_pixels:,} {MAX_PIXELS_HINT}")
    try:
        pixels = decode_stored_png(data, chunks)  # our own files: no filter, stored deflate
    except PngChunkError as exc:
        raise CipherIntegrityError(f"{label}: the cipher-image pixels cannot be decoded "
                                   f"(corrupt or altered: {exc})") from exc
    if pixels is not None:
        mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[1 if pixels.ndim == 2 else pixels.shape[2]]
        if mode != header.mode:
            raise CipherIntegrityError(f"{label}: the cipher-image mode does not match its "
                                       "header")
        return pixels, header
    try:
        img = open_image(data, max_pixels)  # re-saved by another tool: let Pillow decode it
    except ImageError as exc:
        raise CipherIntegrityError(f"{label}: the cipher-image pixels cannot be decoded "
                                   "(corrupt or altered)") from exc
    if img.mode != header.mode:
        raise CipherIntegrityError(f"{label}: the cipher-image mode does not match its header")
    return img.pixels, header


def check_cipher_output(image: PathLike | bytes | LoadedImage, output: PathLike,
                        force: bool) -> None:
    """Refuse a non-PNG (or lossy) cipher-image name, the input itself, or an existing file."""
    ext = Path(output).suffix.lower()
    if ext != ".png":
        lossy = " (a lossy format: it would destroy the cipher-image)" \
            if ext in LOSSY_EXTENSIONS else ""
        raise ImageError(f"{output}: cipher-images are PNG files (the header travels in a PNG "
                         f"chunk), not {ext or 'files without an extension'}{lossy}; use a "
                         ".png name")
    check_output(image, output, force)


def check_output(source: PathLike | bytes | LoadedImage, output: PathLike, force: bool) -> None:
    """Refuse to write over the input, or over an existing file without ``force``."""
    if not isinstance(source, bytes | bytearray | LoadedImage):
        check_not_input(output, [("input image", source)])
    if Path(output).exists() and not force:
        raise already_exists(output)


def encrypt_image(image: PathLike | bytes | LoadedImage, *, password: bytes | None = None,
                  key: bytes | None = None, kdf: KdfParams = DEFAULT_KDF,
                  deterministic: bool = False, salt: bytes | None = None,
                  nonce: bytes | None = None,
                  max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[bytes, EncryptedImage]:
    """Encrypt an image (path, file bytes or loaded); return the cipher-image PNG and details."""
    img = image if isinstance(image, LoadedImage) else open_image(image, max_pixels)
    fmt = img.format if valid_source_format(img.format) else ""
    enc = encrypt_array(img.pixels, img.mode, password=password, key=key, kdf=kdf,
                        deterministic=deterministic, salt=salt, nonce=nonce, source_format=fmt)
    return encode_cipher_image(enc), enc


def encrypt(image: PathLike | bytes | LoadedImage, output: PathLike, *,
            password: bytes | None = None, key: bytes | None = None,
            kdf: KdfParams = DEFAULT_KDF, deterministic: bool = False,
            salt: bytes | None = None, nonce: bytes | None = None, force: bool = False,
            max_pixels: int = DEFAULT_MAX_PIXELS) -> CipherReport:
    """Encrypt ``image`` into the cipher-image ``output`` (.png), atomically, never clobbering."""
    t0 = time.perf_counter()
    _secret(password, key)
    check_cipher_output(image, output, force)
    data, enc = encrypt_image(image, password=password, key=key, kdf=kdf,
                              deterministic=deterministic, salt=salt, nonce=nonce,
                              max_pixels=max_pixels)
    atomic_write(output, data, force=force)
    hd = enc.header
    return CipherReport(str(output), hd.width, hd.height, hd.mode, hd.deterministic,
                        hd.key_file, enc.kdf_seconds, enc.cipher_seconds,
                        time.perf_counter() - t0)


def decrypt_image(cipher: PathLike | bytes | tuple[np.ndarray, CipherHeader], *,
                  password: bytes | None = None, key: bytes | None = None,
                  max_pixels: int = DEFAULT_MAX_PIXELS,
                  max_kdf: KdfParams | None = None) -> DecryptedImage:
    """Decrypt a cipher-image (path, file bytes, or :func:`read_cipher_image`'s result);
    ``max_kdf`` bounds the Argon2id cost a header may ask for (see :func:`decrypt_array`)."""
    pixels, header = (cipher if isinstance(cipher, tuple)
                      else read_cipher_image(cipher, max_pixels))
    return decrypt_array(pixels, header, password=password, key=key, max_kdf=max_kdf)


def decrypt(cipher: PathLike | bytes | tuple[np.ndarray, CipherHeader], output: PathLike, *,
            password: bytes | None = None, key: bytes | None = None, force: bool = False,
            max_pixels: int = DEFAULT_MAX_PIXELS) -> CipherReport:
    """Decrypt ``cipher`` into ``output`` (any lossless format); write only if all checks pass."""
    t0 = time.perf_counter()
    _secret(password, key)
    if not isinstance(cipher, tuple):
        check_output(cipher, output, force)
        cipher = read_cipher_image(cipher, max_pixels)
    elif Path(output).exists() and not force:
        raise already_exists(output)
    fmt = output_format(output, cipher[1].mode)
    dec = decrypt_image(cipher, password=password, key=key)
    if fmt == "WEBP" and dec.mode == "RGBA" and bool((dec.pixels[..., 3] == 255).all()):
        # libwebp leaves out an alpha channel that is opaque everywhere
        raise ImageError(f"{output}: WebP would store this fully opaque RGBA image as RGB, "
                         "not the original; write .png or .tiff")
    atomic_write(output, encode_image(dec.pixels, dec.mode, fmt), force=force)
    hd = dec.header
    return CipherReport(str(output), hd.width, hd.height, hd.mode, hd.deterministic,
                        hd.key_file, dec.kdf_seconds, dec.cipher_seconds,
                        time.perf_counter() - t0)

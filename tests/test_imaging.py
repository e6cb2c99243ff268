"""Safe loading and lossless, atomic, no-clobber saving."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stegshield.imaging import (
    ImageError,
    OutputExistsError,
    atomic_write,
    open_image,
    probe_image,
    save_image,
    webp_is_lossy,
)
from stegshield.imaging.png import encode_png

from imagegen import natural_like


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (40, 33, 2), (31, 17, 3), (16, 64, 4)])
def test_png_writer_is_lossless(shape: tuple[int, ...]) -> None:
    a = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    b = np.asarray(Image.open(io.BytesIO(encode_png(a))))
    assert np.array_equal(a, b)


def test_png_writer_multichunk() -> None:
    a = natural_like(1200, 1500, 3)  # > one 4 MiB deflate chunk
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(encode_png(a)))), a)


@pytest.mark.parametrize("ext,mode", [(".png", "L"), (".png", "RGBA"), (".bmp", "RGB"),
                                      (".tiff", "RGBA"), (".pgm", "L"), (".ppm", "RGB"),
                                      (".webp", "RGB"), (".webp", "RGBA"), (".png", "LA")])
def test_lossless_save_round_trip(tmp_path: Path, ext: str, mode: str) -> None:
    channels = {"L": 0, "LA": 2, "RGB": 3, "RGBA": 4}[mode]
    a = natural_like(24, 40, channels)
    if mode in {"RGBA", "LA"}:
        a[..., -1] = np.linspace(0, 255, 40).astype(np.uint8)[None, :]  # includes alpha 0
    path = tmp_path / f"x{ext}"
    save_image(path, a, mode)
    img = open_image(path)
    assert img.mode == mode and np.array_equal(img.pixels, a)


def test_formats_that_would_lose_channels_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="grayscale"):
        save_image(tmp_path / "g.webp", natural_like(8, 8), "L")
    with pytest.raises(ImageError, match="alpha"):
        save_image(tmp_path / "a.bmp", natural_like(8, 8, 4), "RGBA")
    with pytest.raises(ImageError, match="alpha"):
        save_image(tmp_path / "a.ppm", natural_like(8, 8, 4), "RGBA")


@pytest.mark.parametrize("ext", [".jpg", ".jpeg", ".gif"])
def test_lossy_output_refused(tmp_path: Path, ext: str) -> None:
    with pytest.raises(ImageError, match="lossy"):
        save_image(tmp_path / f"x{ext}", natural_like(8, 8), "L")
    assert not list(tmp_path.iterdir())


def test_no_clobber_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    path.write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        save_image(path, natural_like(8, 8), "L")
    assert path.read_bytes() == b"precious"
    save_image(path, natural_like(8, 8), "L", force=True)
    assert open_image(path).pixels.shape == (8, 8)
    atomic_write(tmp_path / "b.bin", b"x")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_outputs_get_normal_permissions(tmp_path: Path) -> None:
    """Atomic writes go through a private temp file, but the result must not stay 0600."""
    import os

    old = os.umask(0o022)
    try:
        save_image(tmp_path / "a.png", natural_like(8, 8), "L")
        assert (tmp_path / "a.png").stat().st_mode & 0o777 == 0o644
        (tmp_path / "b.bin").write_bytes(b"")
        os.chmod(tmp_path / "b.bin", 0o600)
        atomic_write(tmp_path / "b.bin", b"new", force=True)  # replacing keeps the mode
        assert (tmp_path / "b.bin").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)


def test_refusals(tmp_path: Path) -> None:
    pal = tmp_path / "p.png"
    Image.fromarray(natural_like(8, 8, 3)).convert("P").save(pal)
    with pytest.raises(ImageError, match="palette"):
        open_image(pal)
    deep = tmp_path / "d.png"
    Image.fromarray(np.zeros((8, 8), np.uint16) + 1000).save(deep)
    with pytest.raises(ImageError, match="16-bit"):
        open_image(deep)
    anim = tmp_path / "a.gif"
    frames = [Image.fromarray(natural_like(8, 8, seed=i)) for i in range(2)]
    frames[0].save(anim, save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match="multi-frame"):
        open_image(anim)
    junk = tmp_path / "j.png"
    junk.write_bytes(b"not an image at all")
    with pytest.raises(ImageError, match="not a recognised image"):
        open_image(junk)
    good = tmp_path / "g.png"
    save_image(good, natural_like(64, 64, 3), "RGB")
    trunc = tmp_path / "t.png"
    trunc.write_bytes(good.read_bytes()[:600])
    with pytest.raises(ImageError, match="truncated"):
        open_image(trunc)
    with pytest.raises(ImageError, match="exceeds the limit"):
        open_image(good, max_pixels=64 * 63)
    with pytest.raises(ImageError, match="cannot open"):
        open_image(tmp_path / "missing.png")


def _png16(path: Path, px: np.ndarray, color_type: int) -> None:
    """A 16-bit PNG (Pillow cannot write 16-bit colour): big-endian samples, filter 0."""
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data)))

    h, w = px.shape[:2]
    raw = b"".join(b"\x00" + px[y].astype(">u2").tobytes() for y in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("channels", "color_type"), [(3, 2), (4, 6), (2, 4)])
def test_16_bit_colour_is_refused_not_truncated(tmp_path: Path, channels: int,
                                                color_type: int) -> None:
    """Pillow opens 16-bit RGB/RGBA/gray+alpha PNGs as 8-bit modes: they were hidden in and
    encrypted after silently losing the low byte of every sample."""
    path = tmp_path / "deep.png"
    px = np.random.default_rng(0).integers(0, 65536, (8, 8, channels)).astype(np.uint16)
    _png16(path, px, color_type)
    for fn in (open_image, probe_image):
        with pytest.raises(ImageError, match="16-bit"):
            fn(path)


def test_trns_transparency_becomes_an_alpha_channel(tmp_path: Path) -> None:
    """A PNG whose transparency is a tRNS colour key lost it (the outputs were opaque)."""
    gray = natural_like(32, 32)
    key = int(gray[0, 0])
    path = tmp_path / "t.png"
    Image.fromarray(gray).save(path, transparency=key)
    img = open_image(path)
    assert img.mode == "LA" and probe_image(path).mode == "LA"
    assert np.array_equal(img.pixels[..., 0], gray)
    assert np.array_equal(img.pixels[..., 1] == 0, gray == key)
    rgb = natural_like(32, 32, 3)
    Image.fromarray(rgb).save(path, transparency=tuple(int(v) for v in rgb[0, 0]))
    img = open_image(path)
    assert img.mode == "RGBA" and np.array_equal(img.pixels[..., :3], rgb)
    assert img.pixels[0, 0, 3] == 0


def test_jpeg_compressed_tiff_is_marked_lossy(tmp_path: Path) -> None:
    lossy, lossless = tmp_path / "j.tif", tmp_path / "d.tif"
    Image.fromarray(natural_like(32, 32, 3)).save(lossy, compression="jpeg", quality=60)
    Image.fromarray(natural_like(32, 32, 3)).save(lossless, compression="tiff_adobe_deflate")
    assert open_image(lossy).lossy_source and probe_image(lossy).lossy_source
    assert not open_image(lossless).lossy_source


def test_unwritable_output_folder_names_the_output(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The error named the hidden temporary file, not the output the user asked for."""
    import tempfile

    def refuse(*a: object, **k: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ImageError, match=r"out\.png: cannot write in .*Permission denied"):
        atomic_write(tmp_path / "out.png", b"x")


def test_hostile_files_are_refused_before_decoding(tmp_path: Path) -> None:
    """From a fuzzing session: an ICO decodes its embedded PNG (of any size) inside
    Image.open, before the pixel limit; a JPEG repeating a scan thousands of times costs
    minutes; a 16-bit PPM was cut to 8 bits; a TIFF with a broken page pointer and a PNG
    whose text chunk inflates too far after the pixels crashed with tracebacks."""
    import struct
    import zlib

    ico = tmp_path / "x.ico"
    Image.fromarray(natural_like(16, 16, 3)).save(ico)
    with pytest.raises(ImageError, match="not a recognised image"):
        open_image(ico)
    jpg = io.BytesIO()
    Image.fromarray(natural_like(32, 32)).save(jpg, "JPEG", progressive=True)
    data = jpg.getvalue()
    last = data.rfind(b"\xff\xda")
    bomb = tmp_path / "bomb.jpg"  # the last scan repeated: decodes, ever more slowly
    bomb.write_bytes(data[:last] + data[last:-2] * 300 + b"\xff\xd9")
    with pytest.raises(ImageError, match="scans"):
        open_image(bomb)
    # FF DA bytes in metadata or after the image are not scans (review: a 20 MB trailer
    # of random bytes, as in a motion photo, was refused)
    com = b"\xff\xda" * 300
    noisy = tmp_path / "noisy.jpg"
    noisy.write_bytes(data[:2] + b"\xff\xfe" + struct.pack(">H", len(com) + 2) + com
                      + data[2:] + com)
    assert open_image(noisy).mode == "L"
    ppm = tmp_path / "deep.ppm"
    ppm.write_bytes(b"P6\n8 8\n65535\n" + (np.arange(192) * 300).astype(">u2").tobytes())
    with pytest.raises(ImageError, match="16-bit"):
        probe_image(ppm)
    tif = tmp_path / "pages.tif"
    frames = [Image.fromarray(natural_like(16, 16, seed=i)) for i in range(2)]
    frames[0].save(tif, save_all=True, append_images=frames[1:])
    raw = bytearray(tif.read_bytes())
    first_ifd = struct.unpack("<I", raw[4:8])[0]
    n = struct.unpack("<H", raw[first_ifd:first_ifd + 2])[0]
    raw[first_ifd + 2 + 12 * n:first_ifd + 6 + 12 * n] = struct.pack("<I", 0x7FFFFFFF)
    tif.write_bytes(bytes(raw))
    with pytest.raises(ImageError):
        open_image(tif)

    def chunk(tag: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + tag + body
                + struct.pack(">I", zlib.crc32(tag + body)))

    png = io.BytesIO()
    Image.fromarray(natural_like(16, 16)).save(png, "PNG")
    good = png.getvalue()
    ztxt = chunk(b"zTXt", b"Comment\x00\x00" + zlib.compress(bytes(2 << 20)))
    late = tmp_path / "late.png"
    late.write_bytes(good[:-12] + ztxt + good[-12:])  # after IDAT, before IEND
    assert probe_image(late).mode == "L"  # the header is fine: no decode to name metadata
    with pytest.raises(ImageError):
        open_image(late)


def test_review_regressions_of_the_new_checks(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A 5-6-5 BMP (Pillow's raw mode BGR;16) was taken for 16-bit samples; a 2-bit grey
    PNG's tRNS key was compared unscaled (nothing became transparent); probing a PNG decoded
    it whole to look for text chunks."""
    import struct
    import zlib

    from PIL import ImageFile

    bmp = tmp_path / "565.bmp"
    w = h = 4
    header = struct.pack("<2sIHHI", b"BM", 14 + 40 + 12 + w * h * 2, 0, 0, 14 + 40 + 12)
    info = struct.pack("<IiiHHIIiiII", 40, w, h, 1, 16, 3, w * h * 2, 0, 0, 0, 0)
    masks = struct.pack("<III", 0xF800, 0x07E0, 0x001F)
    bmp.write_bytes(header + info + masks + bytes(range(32)))
    assert open_image(bmp).mode == "RGB"

    def chunk(tag: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + tag + body
                + struct.pack(">I", zlib.crc32(tag + body)))

    png2 = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 1, 2, 0, 0, 0, 0))
            + chunk(b"tRNS", struct.pack(">H", 1)) + chunk(b"IDAT", zlib.compress(b"\x00\x1b"))
            + chunk(b"IEND", b""))
    img = open_image(png2)
    assert img.mode == "LA" and img.pixels.tolist() == [[[0, 255], [85, 0], [170, 255],
                                                         [255, 255]]]
    big = tmp_path / "big.png"
    Image.fromarray(natural_like(64, 64)).save(big)
    loads: list[int] = []
    real = ImageFile.ImageFile.load

    def counting(self):  # type: ignore[no-untyped-def]
        loads.append(1)
        return real(self)

    monkeypatch.setattr(ImageFile.ImageFile, "load", counting)
    probe_image(big)
    assert not loads


def test_jpeg_cover_decodes_and_is_marked_lossy(tmp_path: Path) -> None:
    path = tmp_path / "c.jpg"
    Image.fromarray(natural_like(32, 32, 3)).save(path, quality=90)
    img = open_image(path)
    assert img.mode == "RGB" and img.lossy_source


@pytest.mark.parametrize("alpha", [False, True])
def test_lossy_webp_is_marked_lossy_and_lossless_webp_is_not(tmp_path: Path,
                                                            alpha: bool) -> None:
    """Lossy WebP covers were taken for never-compressed ones (no warning on hide, scanned as
    reliable); the RIFF chunks say which kind a file is (VP8 or VP8L, behind VP8X/ALPH)."""
    px = natural_like(48, 64, 4 if alpha else 3)
    lossy, lossless = tmp_path / "a.webp", tmp_path / "b.webp"
    Image.fromarray(px).save(lossy, quality=80)
    Image.fromarray(px).save(lossless, lossless=True)
    assert open_image(lossy).lossy_source and probe_image(lossy).lossy_source
    assert not open_image(lossless).lossy_source and not probe_image(lossless).lossy_source
    with lossy.open("rb") as fp:
        fp.seek(7)
        assert webp_is_lossy(fp) and fp.tell() == 7  # position restored
    assert not webp_is_lossy(io.BytesIO(b"RIFF\x04\x00\x00\x00WEBP"))  # truncated: no claim
    frames = [Image.fromarray(px), Image.fromarray(px[::-1].copy())]
    anim = io.BytesIO()
    frames[0].save(anim, "WEBP", save_all=True, append_images=frames[1:], quality=70)
    assert webp_is_lossy(anim)


def _png(w: int, h: int, depth: int, colour: int, raw: bytes, interlace: int = 0) -> bytes:
    import struct
    import zlib

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data)))

    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, interlace))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _adam7(a: np.ndarray) -> bytes:
    """Filter-0 Adam7 scanlines of an 8-bit grey array."""
    out = b""
    for x0, y0, dx, dy in ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4),
                           (1, 0, 2, 2), (0, 1, 1, 2)):
        sub = a[y0::dy, x0::dx]
        if sub.size:
            out += b"".join(b"\x00" + row.tobytes() for row in sub)
    return out


def test_png_whose_pixel_stream_ends_early_is_refused(tmp_path: Path) -> None:
    # A well-formed zlib stream with half the rows: Pillow fills the rest in without an error.
    a = natural_like(40, 37)
    rows = b"".join(b"\x00" + r.tobytes() for r in a)
    short = tmp_path / "short.png"
    short.write_bytes(_png(37, 40, 8, 0, rows[:len(rows) // 2]))
    Image.open(short).load()  # the decoder does not notice
    with pytest.raises(ImageError, match="truncated PNG"):
        open_image(short)
    probe_image(short)  # the header alone is fine: probing does not inflate
    with pytest.raises(ImageError, match="truncated PNG"):  # from bytes as from a file
        open_image(short.read_bytes())
    if Path("/dev/fd").is_dir():  # and through a pipe (re-reading the path gave b"")
        import os
        import threading

        r, w = os.pipe()
        writer = threading.Thread(target=lambda: (os.write(w, short.read_bytes()), os.close(w)))
        writer.start()
        try:
            with pytest.raises(ImageError, match="truncated PNG"):
                open_image(f"/dev/fd/{r}")
        finally:
            writer.join()
            os.close(r)
        # a pipe under a large pixel limit: read(limit + 1) reserved the limit at once
        good = encode_png(a)
        r, w = os.pipe()
        writer = threading.Thread(target=lambda: (os.write(w, good), os.close(w)))
        writer.start()
        try:
            assert np.array_equal(open_image(f"/dev/fd/{r}", max_pixels=10**11).pixels, a)
        finally:
            writer.join()
            os.close(r)
    # Interlaced: complete is accepted and decodes as the array, short is refused
    full = _adam7(a)
    assert np.array_equal(open_image(_png(37, 40, 8, 0, full, 1)).pixels, a)
    with pytest.raises(ImageError, match="truncated PNG"):
        open_image(_png(37, 40, 8, 0, full[:-3 * 38], 1))  # three rows of the last pass


@pytest.mark.parametrize("mode,kw", [("1", {}), ("L", {}), ("P", {"bits": 4}), ("P", {}),
                                     ("RGB", {}), ("RGBA", {}), ("LA", {}), ("I;16", {}),
                                     ("RGB", {"optimize": True})])
def test_complete_pngs_pass_the_pixel_stream_check(mode: str, kw: dict[str, object]) -> None:
    from stegshield.imaging.png import png_shortfall

    img = Image.fromarray(natural_like(29, 31, 3)).convert(mode)
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    assert png_shortfall(buf.getvalue()) is None
    assert png_shortfall(encode_png(natural_like(29, 31, 3))) is None

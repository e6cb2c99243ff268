"""Tests of the cover-corpus builder (fast, no network: synthetic images and samples/)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stegshield.datasets import covers as cov
from stegshield.datasets import debian as deb

SAMPLES = Path(__file__).resolve().parents[1] / "samples"


# ---- synthetic images -----------------------------------------------------------------
def _natural(h: int = 512, w: int = 512, seed: int = 0, rgb: bool = False) -> np.ndarray:
    """A natural-like image: 1/f^2 random field (smooth large structure + fine detail)
    plus Gaussian sensor noise, 8-bit."""
    rng = np.random.default_rng(seed)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    chans = []
    for _ in range(3 if rgb else 1):
        spec = (rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))) / f**1.0
        spec[0, 0] = 0
        field = np.real(np.fft.ifft2(spec))
        field = (field - field.mean()) / field.std()
        chans.append(128 + 40 * field + rng.normal(0, 2.5, size=(h, w)))
    a = np.stack(chans, -1) if rgb else chans[0]
    return np.clip(np.rint(a), 0, 255)


def _gradient(h: int = 512, w: int = 512) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.rint(40 + 150 * (x / w) * 0.7 + 60 * (y / h) * 0.3).astype(np.float64)


def _flat_render(h: int = 512, w: int = 512) -> np.ndarray:
    """A 'vector drawing': solid RGB fills with a few shapes."""
    a = np.zeros((h, w, 3))
    a[:] = (30, 90, 200)
    a[100:300, 50:400] = (250, 200, 20)
    yy, xx = np.mgrid[0:h, 0:w]
    a[(yy - 380) ** 2 + (xx - 380) ** 2 < 90**2] = (200, 30, 30)
    return a


# ---- heuristics --------------------------------------------------------------------------
def test_photo_check_rejects_gradient_and_flat_render():
    ok, reason, _ = cov.photo_check(_gradient())
    assert not ok and reason in {"few_colours", "flat_areas", "low_noise"}
    ok, reason, _ = cov.photo_check(_flat_render())
    assert not ok and reason in {"few_colours", "flat_areas"}
    # a smooth RGB gradient has many colours but no noise: low_noise (or flat areas)
    y, x = np.mgrid[0:512, 0:512]
    grad_rgb = np.stack([x / 2, y / 2, (x + y) / 4], -1).astype(np.float64)
    ok, reason, feat = cov.photo_check(grad_rgb)
    assert not ok and reason in {"flat_areas", "low_noise", "few_colours"}, (reason, feat)


def test_photo_check_keeps_noisy_natural_images():
    ok, reason, feat = cov.photo_check(_natural())
    assert ok, (reason, feat)
    ok, reason, feat = cov.photo_check(_natural(rgb=True, seed=3))
    assert ok, (reason, feat)


def test_photo_check_too_small():
    ok, reason, _ = cov.photo_check(_natural(200, 300))
    assert not ok and reason == "too_small"


@pytest.mark.parametrize("name", ["path_rgb.png", "eveningglow_rgb.png", "grey_gray.png",
                                  "bythewater_gray.png"])
def test_photo_check_keeps_sample_photos(name):
    pixels, _ = cov.load_image(SAMPLES / name)
    ok, reason, feat = cov.photo_check(pixels)
    assert ok, (reason, feat)


def test_immerkaer_estimates_noise_and_ignores_gradients():
    rng = np.random.default_rng(1)
    g = _gradient().astype(np.float64)
    assert cov.immerkaer_sigma(g) < 0.3          # only rounding residue
    noisy = g + rng.normal(0, 3.0, g.shape)
    assert 2.6 < cov.immerkaer_sigma(noisy) < 3.4


def test_tile_check():
    flat = np.full((128, 128), 77.0)
    assert cov.tile_check(flat) == "flat"
    nat = _natural(128, 128)
    assert cov.tile_check(nat) is None
    alpha = np.full((128, 128), 255.0)
    alpha[0, 0] = 0
    assert cov.tile_check(nat, alpha) == "transparent"
    alpha[0, 0] = 128   # partially transparent: colour values still valid
    assert cov.tile_check(nat, alpha) is None
    clipped = nat.copy()
    clipped[:80] = 255
    assert cov.tile_check(clipped) == "clipped"


# ---- near-duplicates ---------------------------------------------------------------------
def test_dhash_near_duplicates():
    a = _natural(seed=5)
    rng = np.random.default_rng(9)
    noisy = np.clip(a + rng.normal(0, 2, a.shape), 0, 255)
    # a 90 % resize of the same image and a light noise version: near-duplicates
    resized = np.asarray(
        Image.fromarray(a.astype(np.uint8)).resize((460, 460), Image.Resampling.BOX),
        dtype=np.float64,
    )
    other = _natural(seed=6)
    ha, hn, hr, ho = (cov.dhash(x) for x in (a, noisy, resized, other))
    assert cov.hamming(ha, hn) <= cov.DHASH_MAX_DISTANCE
    assert cov.hamming(ha, hr) <= cov.DHASH_MAX_DISTANCE
    assert cov.hamming(ha, ho) > cov.DHASH_MAX_DISTANCE
    idx = cov.NearDuplicateIndex()
    idx.add("a", ha)
    assert idx.find(hn) == "a"
    assert idx.find(ho) is None
    assert 0 <= ha < 2**64


def test_hamming():
    assert cov.hamming(0b1011, 0b0001) == 2
    assert cov.hamming(5, 5) == 0


# ---- resizing, tiles, splits ---------------------------------------------------------------
def test_box_downscale_is_block_mean():
    a = np.arange(36, dtype=np.float64).reshape(6, 6)
    b = cov.box_downscale(a, 2)
    assert b.shape == (3, 3)
    assert b[0, 0] == np.mean([0, 1, 6, 7])
    rgb = np.random.default_rng(0).uniform(0, 255, (9, 7, 3))
    assert cov.box_downscale(rgb, 3).shape == (3, 2, 3)


def test_tile_positions_non_overlapping_and_centred():
    pos = cov.tile_positions(300, 530, 128)
    assert len(pos) == 2 * 4
    assert pos[0] == ((300 - 256) // 2, (530 - 512) // 2)
    ys = sorted({y for y, _ in pos})
    xs = sorted({x for _, x in pos})
    assert np.all(np.diff(ys) == 128) and np.all(np.diff(xs) == 128)
    assert cov.tile_positions(100, 100, 128) == []


def test_split_is_deterministic_and_roughly_proportional():
    keys = [f"pkg:photo{i}" for i in range(3000)]
    s1 = [cov.split_for(k) for k in keys]
    s2 = [cov.split_for(k) for k in keys]
    assert s1 == s2
    frac = {s: s1.count(s) / len(s1) for s in ("train", "val", "test")}
    assert abs(frac["train"] - 0.70) < 0.04
    assert abs(frac["val"] - 0.15) < 0.03
    assert abs(frac["test"] - 0.15) < 0.03
    assert cov.split_for("x", salt="a") in ("train", "val", "test")
    with pytest.raises(ValueError):
        cov.split_for("x", fractions=(0.5, 0.5, 0.5))
    for bad in ((float("nan"), 0.5, 0.5), (0.5, float("nan"), 0.5)):  # nan passed
        with pytest.raises(ValueError):
            cov.split_for("x", fractions=bad)


# ---- grouping, licences, reserved packages ---------------------------------------------------
def test_group_rules_and_policy():
    plasma = next(s for s in deb.DEFAULT_SOURCES if s.name == "plasma-workspace-wallpapers")
    g1 = deb.group_key(plasma, plasma.name,
                       "usr/share/wallpapers/Path/contents/images/2560x1600.jpg")
    g2 = deb.group_key(plasma, plasma.name,
                     "usr/share/wallpapers/Path/contents/images_dark/720x1440.jpg")
    assert g1 == g2 == "plasma-workspace-wallpapers:Path"
    assert deb.policy_reason(plasma, "usr/share/wallpapers/Path/contents/screenshot.jpg") \
        == "thumbnail"
    assert deb.reviewed_reason(plasma, "usr/share/wallpapers/Shell/contents/images/a.jpg")
    assert deb.reviewed_reason(plasma, "usr/share/wallpapers/Path/contents/images/a.jpg") is None
    stel = next(s for s in deb.DEFAULT_SOURCES if s.name == "stellarium-data")
    assert deb.policy_reason(stel, "usr/share/stellarium/nebulae/default/m31.png") == "telescope"
    assert deb.group_key(None, "p", "a/b/c.png") == "p:a/b/c"


def test_dep5_licences():
    text = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: the authors
License: BSD-3-clause

Files: external/wesaturate/*
Copyright: none
License: CC0

Files: debian/*
Copyright: someone
License: GPL-2+
"""
    st = deb.parse_dep5(text)
    assert [s["license"] for s in st] == ["BSD-3-clause", "CC0", "GPL-2+"]
    pkg = deb.FetchedPackage("x", "1", "deb", Path("/nonexistent"), "BSD-3-clause", dep5=st)
    assert deb.licence_for(pkg, "usr/share/x/external/wesaturate/500px/a.png") == "CC0"
    assert deb.licence_for(pkg, "usr/share/x/jxl/flower.png") == "BSD-3-clause"


def test_reserved_packages_are_refused(tmp_path):
    for name in deb.RESERVED_PACKAGES:
        with pytest.raises(deb.ReservedPackageError):
            deb.fetch_deb(name, tmp_path)
    with pytest.raises(deb.ReservedPackageError):
        cov.build_covers(tmp_path / "o", debian=True, cache_dir=tmp_path,
                       sources=[deb.SourceSpec("mate-backgrounds")])
    assert not any(s.name in deb.RESERVED_PACKAGES for s in deb.DEFAULT_SOURCES)


def test_new_sources_rules():
    by = {s.name: s for s in deb.DEFAULT_SOURCES}
    gc = by["gcompris-qt-data"]
    rcc = f"{deb.UNPACK_DIR}/usr/share/gcompris-qt/rcc"
    assert deb.group_key(gc, gc.name, f"{rcc}/erase.rcc/gcompris/src/activities/erase/resource/"
                         "alpaca.webp") == "gcompris-qt-data:erase/alpaca"
    assert deb.policy_reason(gc, f"{rcc}/categorization.rcc/gcompris/src/activities/"
                             "categorization/resource/images/monuments/x.webp")
    assert not any("lang.rcc" in r for r in gc.roots)        # word pictures are drawings
    kpa = by["kphotoalbum"]
    assert deb.group_key(kpa, "k", "usr/share/kphotoalbum/demo/grand_canyon_3.jpg") == \
        deb.group_key(kpa, "k", "usr/share/kphotoalbum/demo/grand_canyon_1.jpg") == \
        "k:grand_canyon"
    assert deb.group_key(kpa, "k", "usr/share/kphotoalbum/demo/bar55_2.jpg") == "k:bar55"
    en = by["enlightenment-data"]
    f = f"{deb.UNPACK_DIR}/usr/share/enlightenment/data/backgrounds/Peaks.edj/edje/images/0.jpg"
    assert deb.group_key(en, "e", f) == "e:Peaks"
    assert deb.reviewed_reason(en, f) is None
    assert deb.reviewed_reason(en, f.replace("Peaks", "Dunes"))
    cv = by["opencv-doc"]
    d = "usr/share/doc/opencv-doc/examples/data/"
    assert deb.group_key(cv, "o", d + "left03.jpg") == deb.group_key(cv, "o", d + "right11.jpg")
    assert deb.group_key(cv, "o", d + "graf1.png") == deb.group_key(cv, "o", d + "graf3.png")
    assert deb.policy_reason(cv, d + "messi5.jpg") and deb.policy_reason(cv, d + "fruits.jpg") \
        is None
    # reserved packages stay out, whatever was added
    assert not {s.name for s in deb.DEFAULT_SOURCES} & (deb.RESERVED_PACKAGES
                                                        | {"lomiri-wallpapers"})


# ---- containers: Qt resource files and Eet files ------------------------------------------
def _encoded(fmt: str, size=(40, 30), seed=0) -> bytes:
    import io

    rng = np.random.default_rng(seed)
    a = rng.integers(0, 255, size=(size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format=fmt)
    return buf.getvalue()


def _make_rcc(files: dict[str, tuple[bytes, bool]]) -> bytes:
    """A version-2 Qt resource file: root/<dir>/<name> for each 'dir/name' key; the bool
    says whether the member is stored qCompress-ed."""
    import struct
    import zlib

    dirs: dict[str, list[str]] = {}
    for k in files:
        d, n = k.split("/")
        dirs.setdefault(d, []).append(n)
    names = b""
    name_off: dict[str, int] = {}

    def nm(n: str) -> int:
        nonlocal names
        if n not in name_off:
            name_off[n] = len(names)
            enc = n.encode("utf-16-be")
            names += struct.pack(">HI", len(n), 0) + enc
        return name_off[n]

    data = b""
    nodes: list[bytes] = [b""]          # root filled in below
    dir_list = sorted(dirs)
    # children of root: the dirs (indices 1..len(dirs)); then each dir's files
    first_file = 1 + len(dir_list)
    file_nodes: list[bytes] = []
    dir_nodes: list[bytes] = []
    for d in dir_list:
        dir_nodes.append(struct.pack(">IHII", nm(d), 2, len(dirs[d]), first_file + len(file_nodes))
                         + b"\0" * 8)
        for n in dirs[d]:
            payload, comp = files[f"{d}/{n}"]
            stored = struct.pack(">I", len(payload)) + zlib.compress(payload) if comp else payload
            file_nodes.append(struct.pack(">IHHHI", nm(n), 1 if comp else 0, 0, 0, len(data))
                              + b"\0" * 8)
            data += struct.pack(">I", len(stored)) + stored
    nodes[0] = struct.pack(">IHII", 0, 2, len(dir_list), 1) + b"\0" * 8
    tree = b"".join(nodes + dir_nodes + file_nodes)
    head = 20
    return (b"qres" + struct.pack(">IIII", 2, head + len(names) + len(data),
                                  head + len(names), head) + names + data + tree)


def _make_eet(entries: list[tuple[str, bytes, int]]) -> bytes:
    import struct

    n = len(entries)
    off = 12 + 24 * n
    dirs, blob = b"", b""
    for name, payload, flags in entries:
        nb = name.encode() + b"\0"
        dirs += struct.pack(">6I", off + len(blob) + len(nb), len(payload), len(payload),
                            off + len(blob), len(nb), flags)
        blob += nb + payload
    return struct.pack(">III", 0x1EE70F42, n, 0) + dirs + blob


def test_read_qt_rcc_and_eet():
    png, jpg = _encoded("PNG"), _encoded("JPEG", seed=1)
    rcc = _make_rcc({"img/a.png": (png, False), "img/b.jpg": (jpg, True),
                     "qml/Main.qml": (b"import QtQuick", True)})
    got = dict(deb.read_qt_rcc(rcc))
    assert got == {"img/a.png": png, "img/b.jpg": jpg, "qml/Main.qml": b"import QtQuick"}
    with pytest.raises(ValueError):
        deb.read_qt_rcc(b"nope" + rcc[4:])

    small, big = _encoded("JPEG", (20, 10)), _encoded("JPEG", (80, 60), seed=2)
    eet = _make_eet([("edje/images/1", small, 0), ("edje/images/0", big, 0),
                     ("edje/file", b"\x78\x9cxx", 1), ("edje/images/2", png, 0),
                     ("text", b"hello", 0)])
    got = dict(deb.read_eet_images(eet))
    assert got == {"edje/images/1": small, "edje/images/0": big, "edje/images/2": png}
    with pytest.raises(ValueError):
        deb.read_eet_images(b"\0" * 16)


def test_unpack_containers(tmp_path):
    root = tmp_path / "pkg"
    (root / "share/rcc").mkdir(parents=True)
    (root / "share/bg").mkdir(parents=True)
    png = _encoded("PNG")
    (root / "share/rcc/act.rcc").write_bytes(_make_rcc({"res/p.png": (png, True),
                                                        "res/x.qml": (b"x", False)}))
    small, big = _encoded("JPEG", (20, 10)), _encoded("JPEG", (80, 60), seed=2)
    (root / "share/bg/Wall.edj").write_bytes(_make_eet([("edje/images/1", small, 0),
                                                       ("edje/images/0", big, 0)]))
    spec = deb.SourceSpec("x", unpack=(("share/rcc/*.rcc", "qt-rcc"), ("share/bg/*.edj", "eet")))
    assert deb.unpack_containers(root, spec) == 2
    u = root / deb.UNPACK_DIR
    assert (u / "share/rcc/act.rcc/res/p.png").read_bytes() == png
    assert not (u / "share/rcc/act.rcc/res/x.qml").exists()      # rasters only
    assert (u / "share/bg/Wall.edj/edje/images/0.jpg").read_bytes() == big   # largest only
    assert not (u / "share/bg/Wall.edj/edje/images/1.jpg").exists()
    assert deb.unpack_containers(root, spec) == 0                 # idempotent
    assert deb.unpack_containers(root, deb.SourceSpec("x")) == 0


# ---- end to end on a local folder ---------------------------------------------------------------
@pytest.fixture()
def photo_dir(tmp_path):
    d = tmp_path / "photos"
    (d / "scene").mkdir(parents=True)
    for i in range(8):
        Image.fromarray(_natural(512, 640, seed=100 + i).astype(np.uint8)).save(d / f"p{i}.png")
    # a near-duplicate of p0 (light noise), a render, a flat gradient, an SVG, a tiny photo
    rng = np.random.default_rng(7)
    p0 = np.asarray(Image.open(d / "p0.png"), dtype=np.float64)
    Image.fromarray(np.clip(p0 + rng.normal(0, 1.5, p0.shape), 0, 255).astype(np.uint8)).save(
        d / "scene" / "p0_copy.png")
    Image.fromarray(_flat_render().astype(np.uint8)).save(d / "render.png")
    Image.fromarray(_gradient().astype(np.uint8)).save(d / "gradient.png")
    (d / "drawing.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    Image.fromarray(_natural(100, 120, seed=1).astype(np.uint8)).save(d / "tiny.png")
    # an RGBA photo with a fully transparent band: those tiles are dropped
    rgba = np.dstack([_natural(512, 512, seed=50, rgb=True),
                      np.full((512, 512), 255.0)]).astype(np.uint8)
    rgba[:, :64, 3] = 0
    Image.fromarray(rgba, "RGBA").save(d / "alpha.png")
    return d


def test_build_covers_end_to_end(tmp_path, photo_dir):
    out = tmp_path / "corpus"
    m = cov.build_covers(out, from_dirs=[photo_dir], debian=False, tile=(256, 128), mode="gray",
                       scales=(2, 4))
    by_file = {r["file"]: r for r in m.sources}
    assert by_file["render.png"]["reason"] in {"few_colours", "flat_areas"}
    assert by_file["gradient.png"]["reason"] in {"few_colours", "flat_areas", "low_noise"}
    assert by_file["drawing.svg"]["reason"] == "filetype"
    assert by_file["tiny.png"]["reason"] == "too_small"
    assert by_file["scene/p0_copy.png"]["reason"] == "near_duplicate"
    assert by_file["scene/p0_copy.png"]["duplicate_of"].endswith(":p0.png")
    # the near-duplicate joined its original's group, hence its split
    assert by_file["scene/p0_copy.png"]["group"] == by_file["p0.png"]["group"]
    assert by_file["scene/p0_copy.png"]["split"] == by_file["p0.png"]["split"]
    kept = [r for r in m.sources if r["kept"]]
    assert len(kept) == 9   # p0..p7 + alpha.png
    assert any(t["reason"] == "transparent" for t in m.rejected_tiles)

    # tiles: sizes, fields, sha256, positions inside the scaled image, files on disk
    assert {t["tile"] for t in m.tiles} == {256, 128}
    fields = {"path", "source", "package", "version", "file", "licence", "group", "split",
              "scale", "tile", "y", "x", "mode", "sha256"}
    for t in m.tiles:
        assert fields <= set(t)
        data = (out / t["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == t["sha256"]
        im = Image.open(out / t["path"])
        assert im.size == (t["tile"], t["tile"]) and im.mode == "L"
        assert t["path"].startswith(f"{t['split']}/{t['tile']}/")
    # p0 at 1/2: 320x256 -> one 256 tile and 2x2 128 tiles; at 1/4: 160x128 -> one 128 tile
    p0 = [t for t in m.tiles if t["file"] == "p0.png"]
    assert sorted((t["scale"], t["tile"]) for t in p0) == sorted(
        [("1/2", 256), ("1/2", 128), ("1/2", 128), ("1/2", 128), ("1/2", 128), ("1/4", 128)])

    # the split is by source: no group (and no source file) in two splits
    split_of: dict[str, str] = {}
    for t in m.tiles:
        assert split_of.setdefault(t["group"], t["split"]) == t["split"]
        assert split_of.setdefault("file:" + t["source"], t["split"]) == t["split"]

    # files written, consistent with the returned manifest
    rows = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == len(m.tiles)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["images_kept"] == 9
    assert sum(int(v) for v in summary["tiles"].values()) == len(m.tiles)
    assert summary["rejected_sources"]["near_duplicate"] == 1

    # deterministic: a second build gives identical tiles
    m2 = cov.build_covers(tmp_path / "corpus2", from_dirs=[photo_dir], debian=False,
                        tile=(256, 128), mode="gray", scales=(2, 4))
    assert [(t["path"], t["sha256"]) for t in m.tiles] == [(t["path"], t["sha256"])
                                                           for t in m2.tiles]


def test_build_covers_rgb_mode(tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    Image.fromarray(_natural(512, 512, seed=2, rgb=True).astype(np.uint8)).save(d / "c.png")
    Image.fromarray(_natural(512, 512, seed=3).astype(np.uint8)).save(d / "g.png")
    m = cov.build_covers(tmp_path / "o", from_dirs=[d], debian=False, tile=128, mode="rgb",
                       scales=(2,))
    assert {t["file"] for t in m.tiles} == {"c.png"}      # gray sources give no rgb tiles
    assert len(m.tiles) == 4
    im = Image.open(tmp_path / "o" / m.tiles[0]["path"])
    assert im.mode == "RGB" and im.size == (128, 128)
    with pytest.raises(ValueError):
        cov.build_covers(tmp_path / "o2", debian=False, scales=(1,))


def test_rebuild_inside_the_source_folder_ignores_its_own_tiles(tmp_path):
    """With --out inside a --from folder, a --force rebuild took the first build's tiles as
    new photographs, each its own group: tiles of test photos landed in train and val."""
    src = tmp_path / "photos"
    src.mkdir()
    for i in range(3):
        Image.fromarray(_natural(512, 640, seed=200 + i).astype(np.uint8)).save(src / f"p{i}.png")
    out = src / "corpus"
    first = cov.build_covers(out, from_dirs=[src], debian=False, tile=(128,), mode="gray",
                             scales=(2,))
    again = cov.build_covers(out, from_dirs=[src], debian=False, tile=(128,), mode="gray",
                             scales=(2,))
    assert len(again.sources) == len(first.sources) == 3
    assert len(again.tiles) == len(first.tiles)
    # photographs kept inside OUT (--from OUT/photos) are still sources
    inner = tmp_path / "c2"
    (inner / "photos").mkdir(parents=True)
    for p in src.glob("p*.png"):
        (inner / "photos" / p.name).write_bytes(p.read_bytes())
    m = cov.build_covers(inner, from_dirs=[inner / "photos"], debian=False, tile=(128,),
                         mode="gray", scales=(2,))
    assert len(m.sources) == 3 and len(m.tiles) == len(first.tiles)

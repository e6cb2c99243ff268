"""Training loop for the steganalysis CNNs (resumable, paired batches, curriculum).

Design (see docs/CNN.md): cover/stego pairs share a batch and the same augmentation (Yedroudj
et al. 2018; Boroumand et al. 2019 train with pairs), payload curriculum from high to low rates
(Ye et al. 2017), several embedding algorithms mixed per batch, validation on held-out source
photographs, early stopping on validation AUC, checkpoint every ``checkpoint_every`` steps and
at each epoch end (resume continues bit-for-bit: data order and stego are seeded by (seed,
epoch, tile), not by process state).
"""

from __future__ import annotations

import csv
import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..analysis.cnn.inference import load_model, save_model
from ..analysis.cnn.model import build_model
from ..analysis.metrics import p_e, roc_auc
from .data import (
    ALGORITHMS,
    EpochSampler,
    PairDataset,
    TileSet,
    collate_pairs,
    fixed_pairs,
    group_weights,
    load_tiles,
)

__all__ = ["TrainConfig", "predict", "train"]

DEFAULT_ALGS = ("lsbr", "lsbm", "hill", "suniward", "wow", "hide", "seq-lsb")


@dataclass
class TrainConfig:
    """Everything that defines a run (saved in the checkpoint and the model metadata)."""

    covers: str = ".cache/corpus/gray"
    out: str = "out/train/light"
    stego: list[str] = field(default_factory=list)
    arch: str = "light"
    arch_config: dict[str, Any] = field(default_factory=dict)
    init: str = "random"  # "imagenet": load_imagenet(); a model name/file: warm start from it
    algorithms: list[str] = field(default_factory=lambda: list(DEFAULT_ALGS))
    rates: list[float] = field(default_factory=lambda: [0.4, 0.2])
    stage_epochs: int = 4
    early_algorithms: list[str] = field(default_factory=list)  # algorithm curriculum
    alg_stage_epochs: int = 0  # epochs with only early_algorithms
    group_balance: float = 0.0  # sampling weight 1/(tiles of the source photo)^group_balance
    val_rates: list[float] = field(default_factory=lambda: [0.4, 0.2])
    # validation: a stego of every algorithm for every tile (else one algorithm per tile), and
    # per-tile weights 1/(tiles of its source photo)^val_group_balance in the validation
    # metrics (0: every tile equal; 1: every photo equal).  A resumed run keeps the values of
    # the run it continues (runs from before these fields: False and 0).
    val_every_algorithm: bool = True
    val_group_balance: float = 0.5
    epochs: int = 30
    batch_pairs: int = 16
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    crop: int = 128
    train_tiles: list[int] = field(default_factory=lambda: [128])
    val_tile: int = 128
    limit: int | None = None
    patience: int = 6
    seed: int = 1
    workers: int = 1
    threads: int = 2
    device: str = "cpu"
    stego_on_device: bool | None = None  # None: on when the device is a GPU (torch_stego)
    epoch_repeats: int = 1  # passes over the tiles per epoch (validation once per epoch)
    max_minutes: float | None = None  # time budget: the cosine schedule ends with it
    checkpoint_every: int = 50
    stop_after_steps: int | None = None  # simulate an interruption (tests)
    progress: bool = True


#: Settings that define a run: resuming with other values would silently mix two runs (the
#: budget, patience, device and worker settings may change between sessions).
RUN_SETTINGS = ("arch", "arch_config", "init", "covers", "stego", "algorithms", "rates",
                "stage_epochs", "early_algorithms", "alg_stage_epochs", "group_balance",
                "val_rates", "batch_pairs", "lr", "weight_decay", "warmup_steps", "crop",
                "train_tiles", "val_tile", "limit", "seed", "epoch_repeats")


class _StopFlag:
    """Ctrl-C while training: the first one asks the loop to save a checkpoint at the end of
    the current step and return (a step cut in half would leave the optimizer half-updated);
    a second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False

    def __enter__(self) -> _StopFlag:
        import signal
        import threading

        self.requested = False
        self._old = None
        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # nohup'ed: leave it
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        import signal

        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        signal.signal(signal.SIGINT, signal.default_int_handler)  # the next one stops now
        print("\nstopping after this step (Ctrl-C again to stop at once)", flush=True)

    def __exit__(self, *exc: object) -> None:
        import signal

        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


_STOP = _StopFlag()


def _ignore_sigint(_worker: int) -> None:
    """Data workers leave Ctrl-C to the training loop (which saves a checkpoint first)."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _resolved_paths(cfg: TrainConfig) -> dict[str, Any]:
    """The run's input folders as absolute paths (kept in the checkpoint: a relative
    ``--covers`` means another folder from another working directory)."""
    return {"covers": str(Path(cfg.covers).resolve()),
            "stego": [str(Path(d).resolve()) for d in cfg.stego]}


def _check_same_run(saved: dict[str, Any], cfg: TrainConfig, out: Path,
                    saved_paths: dict[str, Any] | None = None) -> None:
    """Raise ``ValueError`` naming the settings that differ from the checkpoint's run."""
    now = json.loads(json.dumps(asdict(cfg)))
    was = json.loads(json.dumps(saved))
    paths = _resolved_paths(cfg)

    def same_path(a: Any, b: Any) -> bool:  # checkpoints without resolved paths: by spelling
        return isinstance(a, str) and isinstance(b, str) and (
            os.path.normpath(a) == os.path.normpath(b) or Path(a).resolve() == Path(b).resolve())

    def same(k: str) -> bool:
        a, b = was[k], now[k]
        if k in ("covers", "stego") and saved_paths is not None:
            return bool(saved_paths.get(k) == paths[k])
        if k == "covers":
            return same_path(a, b)
        if k == "stego" and isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            return all(same_path(x, y) for x, y in zip(a, b, strict=True))
        return bool(a == b)

    def shown(k: str) -> str:
        if k in ("covers", "stego") and saved_paths is not None:
            return f"{k} {saved_paths.get(k)!r} -> {paths[k]!r}"  # the folders, resolved
        return f"{k} {was[k]!r} -> {now[k]!r}"

    diff = [shown(k) for k in RUN_SETTINGS if k in was and not same(k)]
    if diff:
        raise ValueError(f"{out} holds a run made with other settings ({'; '.join(diff)}): "
                         "rerun with its settings to resume it, or train into another --out")


def _device(name: str) -> torch.device:
    """The torch device; ``cuda`` without a usable GPU is an error, never a silent CPU run."""
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is available here (train with --device "
                         "cpu; nothing needs a GPU)")
    return torch.device(name)


@torch.no_grad()
def predict(model: nn.Module, images: Sequence[np.ndarray], device: torch.device | str = "cpu",
            batch: int = 64) -> np.ndarray:
    """Logits of same-shaped gray images (model in eval mode)."""
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        x = torch.from_numpy(np.stack(images[i:i + batch]).astype(np.float32)).unsqueeze(1)
        x = x.to(device).contiguous(memory_format=torch.channels_last)
        out.append(model(x).float().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def _lr_at(step: int, total: int, cfg: TrainConfig, time_frac: float = 0.0) -> float:
    """Linear warm-up then cosine decay (Loshchilov & Hutter, SGDR, 2017); with a time budget
    the decay follows whichever of steps and time is further along (``time_frac``)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, total - cfg.warmup_steps))
    t = max(t, min(1.0, time_frac))
    return cfg.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def _train_tiles(cfg: TrainConfig) -> TileSet:
    sets = [load_tiles(cfg.covers, "train", t, cfg.limit) for t in cfg.train_tiles]
    if not (Path(cfg.covers) / "manifest.jsonl").exists():
        sets = [load_tiles(cfg.covers, limit=cfg.limit)]
    images = [im for s in sets for im in s.images]
    rows = [r for s in sets for r in s.rows]
    return TileSet(images, rows)


def _val_tiles(cfg: TrainConfig) -> TileSet:
    root = Path(cfg.covers)
    if (root / "manifest.jsonl").exists():
        tiles = load_tiles(root, "val", cfg.val_tile, cfg.limit)
        if not tiles.images:  # found only after a whole epoch, as "need both ... examples"
            raise ValueError(f"{root}: the validation split has no tiles of {cfg.val_tile} px "
                             "(too few source photographs for three splits?)")
        return tiles
    raise ValueError("validation needs a corpus folder with manifest.jsonl (split by source)")


#: Validation settings a resumed run takes from its checkpoint, with their values for runs
#: saved before the setting existed.
_VAL_LEGACY: dict[str, Any] = {"val_every_algorithm": False, "val_group_balance": 0.0}


def _validation_set(cfg: TrainConfig, device: torch.device | None
                    ) -> tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray]:
    """Validation images (each cover once, then its stego), labels, algorithm index (-1 for
    covers) and weights that sum to 1/2 per class (``val_group_balance``).  The stego is
    made on ``device`` when given (torch_stego), else by the CPU embedders."""
    if not 0.0 <= cfg.val_group_balance <= 1.0:
        raise ValueError(f"val_group_balance must be in [0, 1], not {cfg.val_group_balance}")
    tiles = _val_tiles(cfg)
    every = cfg.val_every_algorithm
    if device is not None:  # the CPU embedders (conseal, the crypto stack) need not be installed
        from .torch_stego import fixed_pairs_on_device

        pairs = fixed_pairs_on_device(tiles, cfg.algorithms, cfg.val_rates, cfg.seed + 1000,
                                      device, crop=cfg.crop, every_algorithm=every)
    else:
        pairs = fixed_pairs(tiles, cfg.algorithms, cfg.val_rates, cfg.seed + 1000,
                            crop=cfg.crop, every_algorithm=every)
    per_tile = len(cfg.algorithms) if every else 1
    n = len(tiles)
    covers = [pairs[i * per_tile][0] for i in range(n)]
    x = covers + [p[1] for p in pairs]
    y = np.r_[np.zeros(n), np.ones(len(pairs))]
    alg = np.r_[np.full(n, -1), np.array([p[2] for p in pairs])]
    gw = group_weights(tiles.rows, cfg.val_group_balance)
    cw = np.ones(n) if gw is None else gw
    w = np.r_[cw / cw.sum(), np.repeat(cw, per_tile) / (cw.sum() * per_tile)] / 2.0
    return x, y, alg, w


def validation_auc(models: Sequence[str | Path], cfg: TrainConfig,
                   val: tuple[list[np.ndarray], np.ndarray, np.ndarray, np.ndarray] | None = None
                   ) -> list[dict[str, float]]:
    """The trainer's validation statistic for saved models: weighted AUC overall (``"all"``)
    and per algorithm, on one validation set (``_validation_set`` with the CPU embedders, or
    ``val`` when given).  This is how candidates trained elsewhere (a GPU run) are compared
    with the shipped model; the test split only reports.  ``cfg``'s validation settings are
    used as given (a run resumed from before the photo-balanced validation logged its own)."""
    from ..runtime import tune_malloc

    tune_malloc()  # as train() does: 1.7-3.6x faster inference on the CPU
    x, y, alg, w = val if val is not None else _validation_set(cfg, None)
    return [_validation_aucs(predict(load_model(path)[0], x), y, alg, w, cfg.algorithms)
            for path in models]


def _validation_aucs(logits: np.ndarray, y: np.ndarray, alg: np.ndarray, w: np.ndarray,
                     algorithms: Sequence[str]) -> dict[str, float]:
    """Weighted validation AUC overall (``"all"``) and for each algorithm present (its stego
    against every cover): what the trainer logs each epoch and ``validation_auc`` reports."""
    logits = np.asarray(logits, np.float64)
    out = {"all": roc_auc(y, logits, w)}
    for ai, a in enumerate(algorithms):
        m = (alg == ai) | (y == 0)
        if (alg == ai).any():
            out[a] = roc_auc(y[m], logits[m], w[m])
    return out


def stego_on_device(cfg: TrainConfig, device: torch.device) -> bool:
    """Whether the training stego is made on ``device`` (default: on a GPU, unless precomputed
    ``--stego`` folders are given, which the CPU loader reads)."""
    if cfg.stego_on_device is None:
        return device.type == "cuda" and not cfg.stego
    if cfg.stego_on_device and cfg.stego:
        raise ValueError("--stego folders are read by the CPU loader; drop --stego-on-device")
    return cfg.stego_on_device


def _warm_start(model: nn.Module, cfg: TrainConfig) -> None:
    """Start from the weights of a model file (shipped name or path) of the same architecture:
    short training sessions (a 15-minute GPU lease) can then add up."""
    from ..analysis.cnn.inference import load_model, resolve_model

    try:
        path = resolve_model(cfg.init)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise ValueError(f"--init {cfg.init!r}: choose random, imagenet, a shipped model or a "
                         f".safetensors file ({exc})") from None
    from ..analysis.cnn.model import SCA_CONFIG_KEYS, SCA_PARAMS

    src, meta = load_model(path)
    # the model may add selection-channel awareness to the one it starts from
    plain = {k: v for k, v in cfg.arch_config.items() if k not in SCA_CONFIG_KEYS}
    src_conf = meta.get("config") or {}
    if meta.get("arch") != cfg.arch or src_conf not in (cfg.arch_config, plain):
        raise ValueError(f"--init {cfg.init}: its architecture {meta.get('arch')} "
                         f"{meta.get('config')} differs from --arch {cfg.arch} {cfg.arch_config}")
    # a plain model into its selection-channel-aware twin: the SCA parameters stay at zero
    try:
        missing, unexpected = model.load_state_dict(src.state_dict(), strict=False)
    except RuntimeError as exc:  # shapes that differ
        raise ValueError(f"--init {cfg.init}: weights do not fit ({exc})") from None
    if unexpected or set(missing) - set(SCA_PARAMS):
        raise ValueError(f"--init {cfg.init}: weights do not fit (missing {missing}, "
                         f"unexpected {unexpected})")


#: The resumable state of a run, in ``OUT``: safetensors with JSON metadata, never a pickle.
CHECKPOINT = "checkpoint.safetensors"
#: What older versions wrote (a torch pickle): refused, never loaded.
OLD_CHECKPOINT = "checkpoint.pt"
_CKPT_FORMAT = "stegshield-train-checkpoint/1"


def save_checkpoint(path: Path, blob: dict[str, Any]) -> None:
    """Write ``{"model", "opt", "state", "torch_rng"}`` atomically as safetensors: tensors by
    name (``model.*``, ``opt.<param>.<name>``, ``torch_rng``), the rest as JSON metadata."""
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().cpu().clone().contiguous()
               for k, v in blob["model"].items()}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in blob["opt"]["state"].items():
        for name, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{idx}.{name}"] = v.detach().cpu().clone().contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = v
    tensors["torch_rng"] = blob["torch_rng"].clone()
    meta = {"format": _CKPT_FORMAT, "state": json.dumps(blob["state"]),
            "opt_groups": json.dumps(blob["opt"]["param_groups"]),
            "opt_scalars": json.dumps(scalars)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read what :func:`save_checkpoint` wrote (no code runs: safetensors and JSON only)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except Exception as exc:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a readable training checkpoint ({exc})") from None
    if meta.get("format") != _CKPT_FORMAT:
        raise ValueError(f"{path}: not a stegshield training checkpoint")
    opt_state: dict[int, dict[str, Any]] = {}
    for k, v in tensors.items():
        if k.startswith("opt."):
            _, idx, name = k.split(".", 2)
            opt_state.setdefault(int(idx), {})[name] = v
    for idx, d in json.loads(meta["opt_scalars"]).items():
        opt_state.setdefault(int(idx), {}).update(d)
    groups = json.loads(meta["opt_groups"])
    for g in groups:
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    return {"model": {k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
            "opt": {"state": opt_state, "param_groups": groups},
            "state": json.loads(meta["state"]), "torch_rng": tensors["torch_rng"]}


def _save_ckpt(path: Path, model: nn.Module, opt: torch.optim.Optimizer,
               state: dict[str, Any]) -> None:
    save_checkpoint(path, {"model": model.state_dict(), "opt": opt.state_dict(),
                           "state": state, "torch_rng": torch.get_rng_state()})


def _plot(csv_path: Path, png: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    rows = list(csv.DictReader(csv_path.open()))
    if not rows:
        return
    ep = [int(r["epoch"]) for r in rows]
    fig, ax = plt.subplots(1, 2, figsize=(10, 4))
    ax[0].plot(ep, [float(r["train_loss"]) for r in rows], label="train loss")
    ax[0].plot(ep, [float(r["val_loss"]) for r in rows], label="val loss")
    ax[0].set_xlabel("epoch")
    ax[0].legend()
    ax[1].plot(ep, [float(r["train_acc"]) for r in rows], label="train acc")
    ax[1].plot(ep, [float(r["val_acc"]) for r in rows], label="val acc")
    ax[1].plot(ep, [float(r["val_auc"]) for r in rows], label="val AUC")
    ax[1].set_xlabel("epoch")
    ax[1].legend()
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def _stage_text(ds: Any, cfg: TrainConfig, epoch: int) -> str:
    """Rates in use at ``epoch`` (log column); with an algorithm curriculum, per joining group."""
    from .data import curriculum_rates

    def rates(e: int) -> str:
        return "/".join(f"{r:g}" for r in curriculum_rates(cfg.rates, e, cfg.stage_epochs))

    if not isinstance(ds, PairDataset) or not ds.alg_stage_epochs:
        return rates(epoch)
    early = rates(epoch)
    if epoch < ds.alg_stage_epochs:
        return f"{'+'.join(ds.early_algorithms)}:{early}"
    return f"{'+'.join(ds.early_algorithms)}:{early} others:{rates(epoch - ds.alg_stage_epochs)}"


def train(cfg: TrainConfig) -> dict[str, Any]:
    """Run (or resume) training; returns the final state (best epoch, metrics, paths).  Ctrl-C
    saves a checkpoint after the current step and returns with ``interrupted`` set."""
    with _STOP:
        return _train(cfg)


def _train(cfg: TrainConfig) -> dict[str, Any]:
    from torch.utils.data import DataLoader

    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, cfg.threads))
    from ..runtime import tune_malloc

    tune_malloc()  # keeps large activations mapped (1.7-3.6x faster steps); workers inherit it
    device = _device(cfg.device)
    torch.manual_seed(cfg.seed)
    for a in cfg.algorithms:
        if a not in ALGORITHMS:
            raise ValueError(f"unknown algorithm {a!r}; choose from {', '.join(ALGORITHMS)}")
    on_device = stego_on_device(cfg, device)
    if cfg.stego:
        from .data import StegoFolderDataset

        train_ds: Any = StegoFolderDataset(cfg.covers, cfg.stego, "train", cfg.seed, cfg.crop,
                                           tile_sizes=cfg.train_tiles, limit=cfg.limit)
    else:
        train_ds = PairDataset(_train_tiles(cfg), cfg.algorithms, cfg.rates, cfg.seed, cfg.crop,
                               cfg.stage_epochs, early_algorithms=cfg.early_algorithms,
                               alg_stage_epochs=cfg.alg_stage_epochs)
    if (out / OLD_CHECKPOINT).exists():
        raise ValueError(f"{out / OLD_CHECKPOINT}: a checkpoint of an older stegshield (a torch "
                         "pickle, which is never loaded); remove it to start over, or train "
                         "into another --out")
    ckpt = out / CHECKPOINT
    blob = load_checkpoint(ckpt) if ckpt.exists() else None
    if blob is not None:  # validate as the run being continued did, so best_auc compares
        saved = blob["state"]["config"]
        _check_same_run(saved, cfg, out, blob["state"].get("paths"))
        kept = {k: saved.get(k, legacy) for k, legacy in _VAL_LEGACY.items()}
        for k, v in kept.items():
            if v != getattr(cfg, k):
                print(f"resuming: {k} = {v!r} as in the saved run (not {getattr(cfg, k)!r})")
        cfg = replace(cfg, **kept)
    val_x, val_y, val_alg, val_w = _validation_set(cfg, device if on_device else None)

    model = build_model(cfg.arch, **cfg.arch_config)
    if cfg.init == "imagenet":
        if not hasattr(model, "load_imagenet"):
            raise ValueError(f"arch {cfg.arch!r} has no ImageNet weights")
        model.load_imagenet()
    elif cfg.init != "random":
        _warm_start(model, cfg)
    model = model.to(device)
    model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_ds) * cfg.epoch_repeats / cfg.batch_pairs)
    total = steps_per_epoch * cfg.epochs
    state: dict[str, Any] = {"epoch": 0, "step_in_epoch": 0, "global_step": 0,
                             "best_auc": -1.0, "best_epoch": -1, "bad_epochs": 0,
                             "sum_loss": 0.0, "sum_correct": 0.0, "sum_n": 0.0,
                             "done": False, "elapsed": 0.0, "config": asdict(cfg),
                             "paths": _resolved_paths(cfg)}
    if blob is not None:  # loaded on the CPU: load_state_dict moves model and optimizer state
        model.load_state_dict(blob["model"])
        opt.load_state_dict(blob["opt"])
        torch.set_rng_state(blob["torch_rng"])  # a CPU ByteTensor (never map it to a GPU)
        saved_cfg = blob["state"]["config"]
        state = blob["state"]
        state.setdefault("paths", _resolved_paths(cfg))  # older checkpoints: from now on
        state["config"] = {**saved_cfg, "epochs": cfg.epochs, "max_minutes": cfg.max_minutes,
                           **{k: getattr(cfg, k) for k in _VAL_LEGACY}}
        if state.get("budget_spent") and (cfg.max_minutes is None
                                          or 60.0 * cfg.max_minutes > state["elapsed"]):
            state["done"] = state["budget_spent"] = False  # a larger budget: go on
        if state.get("budget_spent"):
            print(f"resuming: the run spent its time budget ({state['elapsed'] / 60:.1f} min); "
                  "raise --max-minutes to go on")
        elif state.get("done"):  # early stopping
            print(f"resuming: the run ended by early stopping after epoch {state['epoch']} "
                  "(patience); train into another --out to start over")
        elif state["epoch"] >= cfg.epochs:
            print(f"resuming: the run is finished ({state['epoch']} of {cfg.epochs} epochs; "
                  "raise --epochs to go on)")
        else:
            print(f"resuming: {state['epoch']} of {cfg.epochs} epochs done; epoch "
                  f"{state['epoch'] + 1} from step {state['step_in_epoch']}")
    log_path = out / "log.csv"
    fields = ["epoch", "global_step", "lr", "rates", "train_loss", "train_acc", "val_loss",
              "val_acc", "val_auc", "val_pe", "val_auc_by_alg", "seconds"]
    if not log_path.exists():
        with log_path.open("w", newline="") as fh:
            csv.DictWriter(fh, fieldnames=fields).writeheader()

    weights = None
    if cfg.group_balance > 0 and not cfg.stego:
        weights = group_weights(train_ds.tiles.rows, cfg.group_balance)
    sampler = EpochSampler(len(train_ds), cfg.seed, weights=weights, repeats=cfg.epoch_repeats)
    stream = None
    if on_device:
        from .torch_stego import DevicePairs

        stream = DevicePairs(train_ds, sampler, cfg.batch_pairs, device)
        loader: Any = None
    else:
        loader = DataLoader(train_ds, batch_size=cfg.batch_pairs, sampler=sampler,
                            collate_fn=collate_pairs, num_workers=cfg.workers,
                            persistent_workers=cfg.workers > 0,
                            worker_init_fn=_ignore_sigint if cfg.workers > 0 else None)
    # bfloat16 body on a GPU; the SRM front end stays float32, and models whose first layer
    # sees the pixels directly (effnet-lite0: bf16_inference False) stay float32 throughout
    amp = device.type == "cuda" and getattr(model, "bf16_inference", True)
    if amp:
        torch.backends.cudnn.benchmark = True  # fixed tile shapes: pick the fastest kernels
    budget = None if cfg.max_minutes is None else 60.0 * cfg.max_minutes
    t_start = time.time() - float(state.get("elapsed", 0.0))
    loss_fn = nn.BCEWithLogitsLoss()
    from .data import curriculum_rates

    while state["epoch"] < cfg.epochs and not state["done"]:
        epoch = state["epoch"]
        sampler.epoch = epoch
        sampler.skip = state["step_in_epoch"] * cfg.batch_pairs
        t0 = time.time()
        model.train()
        it: Any = loader if stream is None else stream.batches(epoch, state["step_in_epoch"])
        if cfg.progress:
            from tqdm import tqdm

            it = tqdm(it, total=steps_per_epoch - state["step_in_epoch"],
                      desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False)
        lr = opt.param_groups[0]["lr"]  # no batch left: a run stopped after its last step
        for batch in it:
            elapsed = time.time() - t_start
            lr = _lr_at(state["global_step"], total, cfg,
                        0.0 if budget is None else elapsed / budget)
            for g in opt.param_groups:
                g["lr"] = lr
            x = batch["x"].to(device).contiguous(memory_format=torch.channels_last)
            y = batch["y"].to(device)
            with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
                logits = model(x).float()
            loss = loss_fn(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            n = float(y.numel())
            state["sum_loss"] += loss.item() * n
            state["sum_correct"] += float(((logits > 0).float() == y).sum())
            state["sum_n"] += n
            state["step_in_epoch"] += 1
            state["global_step"] += 1
            state["elapsed"] = time.time() - t_start
            if cfg.progress:
                it.set_postfix(loss=f"{state['sum_loss'] / state['sum_n']:.4f}",
                               acc=f"{state['sum_correct'] / state['sum_n']:.3f}")
            if state["step_in_epoch"] % cfg.checkpoint_every == 0:
                _save_ckpt(ckpt, model, opt, state)
            if budget is not None and state["elapsed"] >= budget:
                break  # validate what we have, then stop
            if (cfg.stop_after_steps is not None
                    and state["global_step"] >= cfg.stop_after_steps) or _STOP.requested:
                _save_ckpt(ckpt, model, opt, state)
                if _STOP.requested:
                    print(f"interrupted: checkpoint saved at epoch {epoch + 1} step "
                          f"{state['step_in_epoch']}; run the same command to resume",
                          flush=True)
                return {"interrupted": True, **state}
        # ---- validation
        logits = predict(model, val_x, device)
        per = nn.functional.binary_cross_entropy_with_logits(
            torch.from_numpy(logits), torch.from_numpy(val_y).float(), reduction="none").numpy()
        vloss = float(np.sum(val_w * per))  # val_w: each class sums to 1/2
        vacc = float(np.sum(val_w * ((logits > 0) == val_y)))
        aucs = _validation_aucs(logits, val_y, val_alg, val_w, cfg.algorithms)
        vauc = aucs.pop("all")
        by_alg = {a: round(v, 4) for a, v in aucs.items()}
        row = {"epoch": epoch + 1, "global_step": state["global_step"], "lr": f"{lr:.3g}",
               "rates": _stage_text(train_ds, cfg, epoch),
               "train_loss": f"{state['sum_loss'] / max(1, state['sum_n']):.5f}",
               "train_acc": f"{state['sum_correct'] / max(1, state['sum_n']):.4f}",
               "val_loss": f"{vloss:.5f}", "val_acc": f"{vacc:.4f}", "val_auc": f"{vauc:.4f}",
               "val_pe": f"{p_e(val_y, logits, val_w):.4f}", "val_auc_by_alg": json.dumps(by_alg),
               "seconds": f"{time.time() - t0:.1f}"}
        with log_path.open("a", newline="") as fh:
            csv.DictWriter(fh, fieldnames=fields).writerow(row)
        print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        if isinstance(train_ds, PairDataset):
            final_stage = train_ds.final_stage(epoch)
        else:
            final_stage = len(curriculum_rates(cfg.rates, epoch, cfg.stage_epochs)) == len(
                cfg.rates)
        state["elapsed"] = time.time() - t_start  # validation counts too
        if budget is not None and state["elapsed"] >= budget:
            print(f"time budget of {cfg.max_minutes:g} min reached")
            state["done"] = state["budget_spent"] = True
        if vauc > state["best_auc"]:
            state["best_auc"], state["best_epoch"], state["bad_epochs"] = vauc, epoch + 1, 0
            save_model(out / "best.safetensors", model,
                       {"arch": cfg.arch, "config": cfg.arch_config, "epoch": epoch + 1,
                        "val_auc": vauc, "train": asdict(cfg)})
        elif final_stage:
            state["bad_epochs"] += 1
            if state["bad_epochs"] >= cfg.patience:
                print(f"early stop: no val AUC gain for {cfg.patience} epochs")
                state["done"] = True
        state.update(epoch=epoch + 1, step_in_epoch=0, sum_loss=0.0, sum_correct=0.0,
                     sum_n=0.0)
        _save_ckpt(ckpt, model, opt, state)
        _plot(log_path, out / "curves.png")
    save_model(out / "last.safetensors", model, {"arch": cfg.arch, "config": cfg.arch_config,
                                                 "epoch": state["epoch"], "train": asdict(cfg)})
    return {"interrupted": False, **state, "best": str(out / "best.safetensors")}


def calibrate_and_export(model_path: str | Path, out_path: str | Path, cfg: TrainConfig,
                         tile: int = 256, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Calibrate ``model_path`` on the validation split and write a shippable detector file.

    Validation pairs (every training algorithm at the validation rates, held-out source photos)
    give the Platt map and the raw thresholds at 1 % / 5 % false positives (of cover tiles).
    """
    from ..analysis.cnn.calibration import fit_calibration, fpr_thresholds
    from ..analysis.cnn.inference import _Runner, load_model

    model, meta = load_model(model_path)
    val = _val_tiles(cfg)
    pairs = fixed_pairs(val, cfg.algorithms, cfg.val_rates, cfg.seed + 2000, crop=None)
    x = [p[0] for p in pairs] + [p[1] for p in pairs]
    y = np.r_[np.zeros(len(pairs)), np.ones(len(pairs))]
    # the inference path itself (bfloat16 body where the model allows it), so that the
    # calibration and thresholds describe the logits a scan computes
    copy, _ = load_model(model_path)  # the runner converts its model in place
    logits = _Runner(copy, bf16=True, jit=False)(np.stack(x)).astype(np.float64)
    cal = fit_calibration(logits, y)
    thresholds = fpr_thresholds(logits, y)
    meta = {**meta, "tile": tile, "calibration": {"a": cal.a, "b": cal.b},
            "thresholds": thresholds, "val_pairs": len(pairs),
            "val_auc_calibration_set": roc_auc(y, logits), **(extra or {})}
    save_model(out_path, model, meta)
    return meta

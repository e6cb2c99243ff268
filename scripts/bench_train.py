"""Training throughput: where a training step's time goes, on the CPU or a GPU.

Times, for one architecture and batch size, (1) making a batch of stego pairs on the device
(:class:`stegshield.training.torch_stego.DevicePairs`: costs cached, simulator, D4), (2) one
optimizer step on a ready batch (forward + backward + AdamW; bf16 autocast on CUDA), and
(3) both together as ``stegshield train`` runs them.  Synthetic smooth covers stand in for the
corpus (the costs do not change the timing), so it runs anywhere:

    python scripts/bench_train.py --device cuda --arch-config '{"stem_pool": true}' --batch 32 128
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import torch  # noqa: E402

from stegshield.analysis.cnn.model import build_model  # noqa: E402
from stegshield.training.data import EpochSampler, PairDataset, TileSet  # noqa: E402
from stegshield.training.torch_stego import DevicePairs  # noqa: E402

ALGS = ["lsbr", "lsbm", "hill", "suniward", "wow", "hide", "seq-lsb"]


def covers(n: int, size: int, seed: int = 0) -> TileSet:
    """Smooth random gray tiles with sensor-like noise."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = rng.normal(0, 1, (size // 16 + 1, size // 16 + 1)).cumsum(0).cumsum(1)
        big = np.kron(base, np.ones((16, 16)))[:size, :size]
        big = (big - big.min()) / (np.ptp(big) + 1e-9) * 200 + 28
        out.append(np.clip(np.rint(big + rng.normal(0, 2, big.shape)), 0, 255).astype(np.uint8))
    return TileSet(out, [{"path": str(i), "group": str(i)} for i in range(n)])


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def run(arch_config: dict, batch: int, device: torch.device, tiles: TileSet,
        seconds: float) -> dict[str, float]:
    ds = PairDataset(tiles, ALGS, [0.4, 0.2, 0.1], seed=1, crop=None)
    sampler = EpochSampler(len(ds), 1, repeats=100)
    pairs = DevicePairs(ds, sampler, batch, device)
    for a in ("hill", "suniward", "wow"):
        pairs.maker.costs(a)  # cached once per tile in training too
    model = build_model("light", **arch_config).to(device).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    amp = device.type == "cuda"

    def step(b: dict) -> None:
        x = b["x"].contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x).float()
        loss = loss_fn(logits, b["y"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def timed(fn: object) -> float:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            fn()  # type: ignore[operator]
            n += 1
        sync(device)
        return n / (time.perf_counter() - t0)

    it = pairs.batches(0)
    ready = next(it)
    step(ready)  # warm-up (cudnn autotune, allocator)
    sync(device)
    gen_rate = timed(lambda: next(it))
    step_rate = timed(lambda: step(ready))
    both_rate = timed(lambda: step(next(it)))
    return {"batch_pairs": batch, "make_batches_per_s": gen_rate, "step_per_s": step_rate,
            "train_steps_per_s": both_rate, "train_images_per_s": both_rate * 2 * batch}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--arch-config", action="append", default=None,
                    help="JSON architecture options of arch light (repeatable).")
    ap.add_argument("--batch", type=int, nargs="+", default=[32])
    ap.add_argument("--tiles", type=int, default=256, help="Number of synthetic covers.")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--seconds", type=float, default=10.0, help="Per measurement.")
    args = ap.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    tiles = covers(args.tiles, args.size)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "cpu"
    print(f"device {name}, torch {torch.__version__}, {args.tiles} covers of {args.size}²")
    for conf in args.arch_config or ["{}"]:
        for b in args.batch:
            r = run(json.loads(conf), b, device, tiles, args.seconds)
            print(json.dumps({"arch_config": conf, **{k: round(v, 2) for k, v in r.items()}}),
                  flush=True)


if __name__ == "__main__":
    main()

"""Stego made in torch on the training device: same costs as stego.costs, simulator, batches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stegshield.stego.costs import COSTS  # noqa: E402
from stegshield.training.data import EpochSampler, PairDataset, TileSet  # noqa: E402
from stegshield.training.torch_stego import (  # noqa: E402
    DevicePairs,
    cost_maps,
    fixed_pairs_on_device,
    lsb_batch,
    sym_pad,
    ternary_batch,
)

from imagegen import natural_like, smooth_tile, tile_corpus  # noqa: E402


@pytest.mark.parametrize("p", [1, 3, 7, 16])
def test_sym_pad_is_numpy_symmetric(p: int) -> None:
    x = np.arange(12, dtype=np.float64).reshape(3, 4)  # p > size: numpy reflects periodically
    got = sym_pad(torch.from_numpy(x)[None, None], p)[0, 0].numpy()
    assert np.array_equal(got, np.pad(x, p, mode="symmetric"))


@pytest.mark.parametrize("alg", ["hill", "suniward", "wow"])
def test_costs_equal_the_cpu_cost_maps(alg: str) -> None:
    imgs = [natural_like(40, 56, seed=s) for s in (1, 2)]
    imgs[1][:6, :6] = 0  # a flat, saturated corner (clipped costs)
    got = cost_maps(torch.from_numpy(np.stack(imgs)), alg).numpy()
    for g, im in zip(got, imgs, strict=True):
        ref = COSTS[alg](im)
        np.testing.assert_allclose(g, ref, rtol=2e-5)


def _entropy_bits(p_plus: np.ndarray, p_minus: np.ndarray) -> float:
    p0 = 1 - p_plus - p_minus
    h = 0.0
    for p in (p_plus, p_minus, p0):
        q = p[p > 0]
        h -= float((q * np.log2(q)).sum())
    return h


def test_ternary_batch_meets_the_payload_and_respects_wet_pixels() -> None:
    x = np.stack([natural_like(64, 64, seed=3), natural_like(64, 64, seed=4)])
    x[0, :8] = 255  # saturated rows: +1 is impossible there
    x[1, :8] = 0
    xt = torch.from_numpy(x)
    rho = cost_maps(xt, "hill")
    rates = torch.tensor([0.4, 0.1])
    changes = np.zeros(2)
    for s in range(20):
        y = ternary_batch(xt, rho, rates, torch.Generator().manual_seed(s)).numpy()
        d = y.astype(int) - x.astype(int)
        assert np.abs(d).max() <= 1
        assert not (d[0, :8] > 0).any() and not (d[1, :8] < 0).any()
        changes += (d != 0).mean(axis=(1, 2))
    changes /= 20
    # an optimal ternary code changes fewer pixels than the payload, more at the higher rate
    assert 0 < changes[1] < changes[0] < 0.4 / 2
    none = ternary_batch(xt, rho, torch.tensor([0.0, 0.0]), torch.Generator().manual_seed(0))
    assert torch.equal(none, xt)


def test_simulated_entropy_equals_the_payload() -> None:
    """The bisection finds λ whose change probabilities carry exactly rate·n bits."""
    import math

    x = torch.from_numpy(natural_like(48, 48, seed=5))[None]
    rho = cost_maps(x, "suniward").to(torch.float32)
    # re-derive the probabilities of the λ found, through a seeded sample of many draws
    n, rate = 48 * 48, 0.2
    ups = np.zeros((48, 48))
    downs = np.zeros((48, 48))
    draws = 400
    for s in range(draws):
        d = ternary_batch(x, rho, torch.tensor([rate]), torch.Generator().manual_seed(s))
        d = d.numpy().astype(int)[0] - x.numpy().astype(int)[0]
        ups += d > 0
        downs += d < 0
    h = _entropy_bits(ups / draws, downs / draws)
    assert math.isclose(h, rate * n, rel_tol=0.08)


def test_lsb_batches() -> None:
    x = torch.from_numpy(np.stack([natural_like(64, 64, seed=s) for s in (6, 7)]))
    x[0, 0, :10] = 0
    x[1, 0, :10] = 255
    g = torch.Generator().manual_seed(0)
    rates = torch.tensor([0.4, 0.4])
    sel = lsb_batch(torch.zeros_like(x), torch.tensor([0.4, 0.0]), g, matching=True,
                    sequential=False)  # from 0 every selected pixel whose bit is 1 goes to 1
    keys = torch.Generator().manual_seed(1)
    picks = [int((lsb_batch(torch.zeros_like(x), torch.tensor([0.3, 0.1]), keys, False, False)
                  != 0).sum(dim=(1, 2))[i]) for i in range(2)]
    assert sel[1].sum() == 0 and 0 < picks[1] < picks[0] <= round(0.3 * 64 * 64)
    r = lsb_batch(x, rates, g, matching=False, sequential=False)
    assert torch.equal(r >> 1, x >> 1)  # replacement touches the LSB only
    frac = (r != x).float().mean().item()
    assert 0.15 < frac < 0.25  # half of the selected pixels already hold the bit
    m = lsb_batch(x, rates, g, matching=True, sequential=False)
    d = m.to(torch.int16) - x.to(torch.int16)
    assert d.abs().max() <= 1 and 0.15 < (d != 0).float().mean().item() < 0.25
    assert not (d[0, 0, :10] < 0).any() and not (d[1, 0, :10] > 0).any()
    s = lsb_batch(x, torch.tensor([0.25, 0.25]), g, matching=False, sequential=True)
    changed = (s != x).reshape(2, -1)
    assert not changed[:, 1024:].any() and changed[:, :1024].any()


def _pairs(n: int = 6, size: int = 32) -> DevicePairs:
    rng = np.random.default_rng(0)
    tiles = TileSet([smooth_tile(rng, size) for _ in range(n)],
                    [{"path": str(i), "group": str(i)} for i in range(n)])
    ds = PairDataset(tiles, ["lsbm", "hill", "wow", "seq-lsb"], [0.4, 0.2], seed=3, crop=24)
    return DevicePairs(ds, EpochSampler(n, 3, repeats=2), 4, "cpu")


def test_device_pairs_are_paired_augmented_and_resumable() -> None:
    pairs = _pairs()
    assert pairs.steps(0) == 3  # 6 tiles x 2 passes / 4 pairs
    batches = list(pairs.batches(1))
    assert len(batches) == 3
    for b in batches:
        x = b["x"]
        assert x.shape == (8, 1, 24, 24) and b["y"].tolist() == [0.0] * 4 + [1.0] * 4
        # the same crop and D4 transform for a cover and its stego: they differ by ±1 at most
        assert (x[4:] - x[:4]).abs().max() <= 1
    # a resumed epoch (skip 2 steps) makes exactly the batches the full epoch made
    resumed = list(pairs.batches(1, skip_steps=2))
    assert torch.equal(resumed[0]["x"], batches[2]["x"])
    assert not torch.equal(next(iter(pairs.batches(2)))["x"], batches[0]["x"])


def test_device_pairs_on_non_square_tiles() -> None:
    rng = np.random.default_rng(2)
    tiles = TileSet([smooth_tile(rng, 48)[:32] for _ in range(4)], [{}] * 4)
    for crop in (24, None):
        ds = PairDataset(tiles, ["lsbm", "hill"], [0.4], seed=1, crop=crop)
        pairs = DevicePairs(ds, EpochSampler(4, 1), 4, "cpu")
        x = next(iter(pairs.batches(0)))["x"]
        assert x.shape == ((8, 1, 24, 24) if crop else (8, 1, 32, 48))
        assert (x[4:] - x[:4]).abs().max() <= 1


def test_stego_on_device_default() -> None:
    from stegshield.training.train import TrainConfig, stego_on_device

    gpu, cpu = torch.device("cuda"), torch.device("cpu")
    assert stego_on_device(TrainConfig(), gpu) and not stego_on_device(TrainConfig(), cpu)
    # precomputed stego folders are read by the CPU loader, also on a GPU
    assert not stego_on_device(TrainConfig(stego=["s"]), gpu)
    with pytest.raises(ValueError, match="--stego"):
        stego_on_device(TrainConfig(stego=["s"], stego_on_device=True), gpu)


def test_fixed_pairs_on_device_layout() -> None:
    rng = np.random.default_rng(1)
    tiles = TileSet([smooth_tile(rng, 32) for _ in range(5)], [{}] * 5)
    pairs = fixed_pairs_on_device(tiles, ["lsbr", "hill"], [0.4, 0.2], seed=9, device="cpu",
                                  crop=16)
    assert [(p[2], p[3]) for p in pairs] == [(0, 0.4), (1, 0.4), (0, 0.2), (1, 0.2), (0, 0.4)]
    assert all(p[0].shape == (16, 16) and p[1].shape == (16, 16) for p in pairs)
    assert all((p[0] != p[1]).sum() > 0 for p in pairs)
    every = fixed_pairs_on_device(tiles, ["lsbr", "hill"], [0.4, 0.2], seed=9, device="cpu",
                                  every_algorithm=True)
    assert [(p[2], p[3]) for p in every[:4]] == [(0, 0.4), (1, 0.2), (0, 0.2), (1, 0.4)]
    assert len(every) == 10 and all(np.array_equal(every[2 * i][0], tiles.images[i])
                                    and np.array_equal(every[2 * i + 1][0], tiles.images[i])
                                    for i in range(5))


def test_epoch_sampler_repeats() -> None:
    s = EpochSampler(5, 2, repeats=3)
    order = s.order(0)
    assert sorted(order.tolist()) == sorted(list(range(5)) * 3) and len(s) == 15
    # one pass is the permutation earlier runs used (resumed checkpoints see the same order)
    assert EpochSampler(5, 2).order(4).tolist() == \
        np.random.default_rng([2, 4, 7]).permutation(5).tolist()


def test_front_end_stays_float32_under_autocast() -> None:
    from stegshield.analysis.cnn.model import SRMFrontEnd

    front = SRMFrontEnd()
    x = torch.from_numpy(natural_like(32, 32, seed=8).astype(np.float32))[None, None]
    ref = front(x)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        got = front(x)
    assert got.dtype == torch.float32 and torch.equal(got, ref)


def test_training_with_stego_on_device_and_a_time_budget(tmp_path: Path) -> None:
    from stegshield.training.train import TrainConfig, train

    tile_corpus(tmp_path / "corpus", 32, {"train": 8, "val": 4}, seed=7)
    cfg = TrainConfig(covers=str(tmp_path / "corpus"), out=str(tmp_path / "run"),
                      algorithms=["lsbm", "hill", "hide"], rates=[0.4], epochs=50,
                      batch_pairs=4, crop=32, train_tiles=[32], val_tile=32, threads=1,
                      progress=False, warmup_steps=1, stego_on_device=True, epoch_repeats=2,
                      max_minutes=1e-4)
    res = train(cfg)
    # the budget (6 ms) ends the run after its first step, validated and saved
    assert res["done"] and res["epoch"] == 1 and res["global_step"] == 1
    assert (tmp_path / "run" / "best.safetensors").exists()
    rows = (tmp_path / "run" / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 2
    # rerun with a larger budget: it goes on from the checkpoint instead of stopping at once
    cfg.max_minutes = 1e-4 + res["elapsed"] / 60
    more = train(cfg)
    assert more["epoch"] == 2 and more["global_step"] > 1


def test_train_cli_with_stego_on_device_without_calibration(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from stegshield.training.train_commands import train

    tile_corpus(tmp_path / "corpus", 32, {"train": 6, "val": 4}, seed=3)
    r = CliRunner().invoke(train, ["--covers", str(tmp_path / "corpus"), "--epochs", "2",
                                   "--out", str(tmp_path / "o"), "--algorithms", "lsbm,wow",
                                   "--rates", "0.4", "--tile", "32", "--crop", "32",
                                   "--stego-on-device", "--epoch-repeats", "2",
                                   "--batch-pairs", "4",
                                   "--no-calibrate", "--no-progress", "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "best.safetensors").exists()
    assert not (tmp_path / "o" / "detector.safetensors").exists()
    rows = (tmp_path / "o" / "log.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[1].split(",")[1] == "3"  # 6 tiles x 2 passes / 4 pairs


def test_warm_start_from_a_model_file(tmp_path: Path) -> None:
    from stegshield.analysis.cnn.inference import load_model
    from stegshield.training.train import CHECKPOINT, TrainConfig, load_checkpoint, train

    tile_corpus(tmp_path / "corpus", 32, {"train": 6, "val": 4}, seed=4)
    base = dict(covers=str(tmp_path / "corpus"), algorithms=["lsbm"], rates=[0.4], epochs=1,
                batch_pairs=3, crop=32, train_tiles=[32], val_tile=32, threads=1,
                progress=False, warmup_steps=1, stego_on_device=True)
    train(TrainConfig(out=str(tmp_path / "a"), **base))
    src, _ = load_model(tmp_path / "a" / "best.safetensors")
    # lr 0: one step leaves the weights where the warm start put them
    train(TrainConfig(out=str(tmp_path / "b"), init=str(tmp_path / "a" / "best.safetensors"),
                      lr=0.0, stop_after_steps=1, **base))
    got = load_checkpoint(tmp_path / "b" / CHECKPOINT)["model"]
    for k, v in src.state_dict().items():
        if v.dtype.is_floating_point and "running" not in k:
            assert torch.equal(got[k].float(), v), k
    with pytest.raises(ValueError, match="architecture"):
        train(TrainConfig(out=str(tmp_path / "c"), init=str(tmp_path / "a" / "best.safetensors"),
                          arch_config={"stem_pool": True}, **base))
    with pytest.raises(ValueError, match="--init"):
        train(TrainConfig(out=str(tmp_path / "d"), init="no-such-model", **base))


def test_train_cli_rejects_an_empty_time_budget(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from stegshield.training.train_commands import train

    tile_corpus(tmp_path / "corpus", 32, {"train": 2, "val": 2}, seed=3)
    for opt, val in (("--max-minutes", "0"), ("--epoch-repeats", "0")):
        r = CliRunner().invoke(train, ["--covers", str(tmp_path / "corpus"), opt, val,
                                       "--out", str(tmp_path / "o")])
        assert r.exit_code == 2 and opt in r.output

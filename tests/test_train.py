"""Training pipeline: embedding, pair augmentation, tiny runs, checkpoint/resume equivalence."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from stegshield.training.data import (  # noqa: E402
    ALGORITHMS,
    PairDataset,
    TileSet,
    augment_pair,
    collate_pairs,
    curriculum_rates,
    embed,
)

from imagegen import smooth_tile, tile_corpus  # noqa: E402


def test_augmentation_identical_for_cover_and_stego() -> None:
    rng = np.random.default_rng(0)
    cover = rng.integers(0, 256, (40, 40), dtype=np.uint8)
    stego = cover.copy()
    stego[3, 7] ^= 1
    for seed in range(16):
        c, s = augment_pair(cover, stego, np.random.default_rng(seed), crop=32)
        c2, _ = augment_pair(cover, cover, np.random.default_rng(seed), crop=32)
        assert c.shape == (32, 32) and np.array_equal(c, c2)
        diff = c.astype(int) != s.astype(int)
        assert diff.sum() <= 1


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_embed_changes_by_at_most_one(alg: str) -> None:
    x = smooth_tile(np.random.default_rng(1), 64)
    y = embed(x, alg, 0.4, np.random.default_rng(2))
    d = y.astype(int) - x.astype(int)
    assert np.abs(d).max() == 1 and 0.005 < (d != 0).mean() < 0.3
    y2 = embed(x, alg, 0.4, np.random.default_rng(2))
    if alg != "hide":  # hide adds a random salt
        assert np.array_equal(y, y2)


def test_curriculum_goes_high_to_low() -> None:
    assert curriculum_rates([0.1, 0.4, 0.2], 0, 2) == [0.4]
    assert curriculum_rates([0.1, 0.4, 0.2], 2, 2) == [0.4, 0.2]
    assert curriculum_rates([0.1, 0.4, 0.2], 99, 2) == [0.4, 0.2, 0.1]


def test_pair_batches() -> None:
    rng = np.random.default_rng(3)
    ts = TileSet([smooth_tile(rng, 40) for _ in range(4)], [{"path": str(i)} for i in range(4)])
    ds = PairDataset(ts, ["lsbm", "hill"], [0.4], seed=5, crop=32)
    a = ds[(0, 1)]
    b = ds[(0, 1)]
    assert np.array_equal(a[1], b[1])  # seeded per (seed, epoch, tile)
    batch = collate_pairs([ds[(0, i)] for i in range(4)])
    assert batch["x"].shape == (8, 1, 32, 32)
    assert batch["y"].tolist() == [0.0] * 4 + [1.0] * 4


def _corpus(root: Path) -> Path:
    return tile_corpus(root, 32, {"train": 8, "val": 4}, seed=7)


def _cfg(tmp: Path, out: str, **kw: object):
    from stegshield.training.train import TrainConfig

    base = dict(covers=str(tmp / "corpus"), out=str(tmp / out), algorithms=["lsbm", "lsbr"],
                rates=[0.4, 0.2], stage_epochs=1, epochs=2, batch_pairs=4, crop=32,
                train_tiles=[32], val_tile=32, workers=0, threads=1, progress=False,
                checkpoint_every=1, warmup_steps=2)
    base.update(kw)
    return TrainConfig(**base)


def test_tiny_run_and_resume_equivalence(tmp_path: Path) -> None:
    from stegshield.analysis.cnn.inference import load_model
    from stegshield.training.train import calibrate_and_export, train

    _corpus(tmp_path / "corpus")
    full = train(_cfg(tmp_path, "full"))
    assert full["epoch"] == 2 and (tmp_path / "full" / "log.csv").exists()
    assert (tmp_path / "full" / "curves.png").exists()
    # interrupted mid-epoch 2 (step 3 of 4), then resumed in a fresh call
    part = train(_cfg(tmp_path, "resumed", stop_after_steps=3))
    assert part["interrupted"]
    done = train(_cfg(tmp_path, "resumed"))
    assert done["epoch"] == 2
    a, _ = load_model(tmp_path / "full" / "last.safetensors")
    b, _ = load_model(tmp_path / "resumed" / "last.safetensors")
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.allclose(va.float(), vb.float(), atol=1e-6), k
    meta = calibrate_and_export(tmp_path / "full" / "best.safetensors",
                                tmp_path / "det.safetensors", _cfg(tmp_path, "full"), tile=32)
    assert meta["calibration"]["a"] > 0 and set(meta["thresholds"]) == {"0.01", "0.05"}


def test_checkpoint_is_safetensors_and_old_pickles_are_refused(tmp_path: Path) -> None:
    """The resumable checkpoint is safetensors + JSON (loading it runs no code); a torch
    pickle left by an older version is refused by name, never unpickled."""
    import json
    import zipfile

    from stegshield.training.train import CHECKPOINT, OLD_CHECKPOINT, train

    _corpus(tmp_path / "corpus")
    assert train(_cfg(tmp_path, "run", stop_after_steps=1))["interrupted"]
    ck = tmp_path / "run" / CHECKPOINT
    assert not zipfile.is_zipfile(ck)  # torch.save writes a zip of pickles
    raw = ck.read_bytes()
    header = json.loads(raw[8:8 + int.from_bytes(raw[:8], "little")])
    assert header["__metadata__"]["format"].startswith("stegshield-train-checkpoint")
    assert any(k.startswith("opt.") for k in header) and "torch_rng" in header
    old = tmp_path / "old"
    old.mkdir()
    torch.save({"state": {}}, old / OLD_CHECKPOINT)
    with pytest.raises(ValueError, match=r"older stegshield.*never loaded"):
        train(_cfg(tmp_path, "old"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the machine without a GPU")
def test_device_cuda_without_a_gpu_is_an_error(tmp_path: Path) -> None:
    """`--device cuda` where there is no GPU says so and stops (it used to fall back to a
    CPU run, hours longer than the user asked for)."""
    from click.testing import CliRunner

    from stegshield.training.train_commands import train as train_cmd

    _corpus(tmp_path / "corpus")
    r = CliRunner().invoke(train_cmd, ["--covers", str(tmp_path / "corpus"), "--out",
                                       str(tmp_path / "o" / "a" / "b"), "--device", "cuda",
                                       "--tile", "32",
                                       "--no-progress"])
    assert r.exit_code == 2 and "no CUDA GPU" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()  # no empty --out folder left behind


def test_cli_commands(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from stegshield.training.train_commands import models, train

    _corpus(tmp_path / "corpus")
    r = CliRunner().invoke(models, [])
    assert r.exit_code == 0
    assert "light-gray\tdetector=cnn\t" in r.output
    assert "light-thorough\tdetector=cnn-thorough\t" in r.output
    r = CliRunner().invoke(train, ["--covers", str(tmp_path / "corpus"), "--epochs", "1",
                                   "--out", str(tmp_path / "o"), "--algorithms", "lsbm",
                                   "--rates", "0.4", "--tile", "32", "--crop", "32",
                                   "--workers", "0", "--no-progress", "--threads", "1"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "o" / "detector.safetensors").exists()
    # 4 validation covers cannot resolve 1 % or 5 %: a detector that never alerts, said so
    # (it was written silently)
    assert "no finite threshold at 0.01, 0.05 false positives" in r.stderr


def test_cli_bad_arguments_are_one_line_errors(tmp_path: Path) -> None:
    """Each of these ended in a Python traceback (exit 1) from deep inside training."""
    from click.testing import CliRunner

    from stegshield.training.train_commands import train

    corpus = _corpus(tmp_path / "corpus")
    (tmp_path / "plain").mkdir()
    (tmp_path / "afile").write_text("x")
    base = ["--covers", str(corpus), "--epochs", "1", "--algorithms", "lsbm", "--rates", "0.4",
            "--tile", "32", "--crop", "32", "--workers", "0", "--no-progress", "--threads", "1",
            "--no-calibrate"]
    for extra, says in (
            (["--covers", str(tmp_path / "plain")], "no manifest.jsonl"),
            (["--arch", "bogus"], "unknown arch 'bogus'"),
            (["--algorithms", "nope"], "unknown algorithm 'nope'"),
            (["--rates", "abc"], "expected comma-separated numbers"),
            (["--rates", "2"], "each in (0, 1]"),
            (["--arch-config", "{bad"], "not valid JSON"),
            (["--arch-config", '{"nosuch": 1}'], "nosuch"),
            (["--batch-pairs", "0"], "0"),
            (["--epochs", "0"], "0"),
            (["--tile", "64", "--crop", "64"], "the corpus has tiles of 32 px"),
            (["--crop", "48"], "--crop 48 is larger than --tile 32"),  # was accepted
            (["--group-balance", "-2"], "-2"),  # was accepted
            (["--group-balance", "nan"], "not a finite number"),  # passed every range test
            (["--lr", "nan"], "not a finite number"),
            (["--out", str(tmp_path / "afile")], "not a folder")):
        args = [*base, "--out", str(tmp_path / "o"), *extra]
        r = CliRunner().invoke(train, args)
        assert r.exit_code == 2, (extra, r.output)
        assert says in r.output and "Traceback" not in r.output, (extra, r.output)
    # resuming a run with other settings mixed two runs silently; now refused
    from stegshield.training.train import train as run

    assert run(_cfg(tmp_path, "part", stop_after_steps=3))["interrupted"]
    with pytest.raises(ValueError, match=r"other settings \(rates \[0.4, 0.2\] -> \[0.1\]"):
        run(_cfg(tmp_path, "part", rates=[0.1]))
    r = CliRunner().invoke(train, [*base, "--out", str(tmp_path / "part"), "--tile", "32"])
    assert r.exit_code == 2 and "training stopped:" in r.output and "other settings" in r.output
    # another corpus was resumed silently (validation on other photographs chose "best")
    import shutil

    other = tmp_path / "other_corpus"
    shutil.copytree(_cfg(tmp_path, "part").covers, other)
    with pytest.raises(ValueError, match=r"other settings \(covers "):
        run(_cfg(tmp_path, "part", covers=str(other)))
    same = _cfg(tmp_path, "part")  # the same folder spelt otherwise is the same corpus
    from dataclasses import replace

    assert run(replace(same, covers=same.covers + "/", epochs=3))["epoch"] == 3


def test_algorithm_curriculum_and_group_weights() -> None:
    from stegshield.training.data import EpochSampler, group_weights

    rng = np.random.default_rng(4)
    ts = TileSet([smooth_tile(rng, 40) for _ in range(6)], [{"path": str(i)} for i in range(6)])
    ds = PairDataset(ts, ["lsbm", "lsbr", "hill"], [0.4, 0.2], seed=1, crop=32, stage_epochs=1,
                     early_algorithms=["lsbm", "lsbr"], alg_stage_epochs=2)
    assert ds.active_algorithms(0) == ["lsbm", "lsbr"]
    assert ds.active_algorithms(2) == ["lsbm", "lsbr", "hill"]
    assert {ds[(0, i)][2] for i in range(6)} <= {0, 1}
    # hill joins at epoch 2 with its own curriculum: only 0.4 there, both rates from epoch 3
    assert not ds.final_stage(2) and ds.final_stage(3)
    assert {ds[(2, i)][3] for i in range(6) if ds[(2, i)][2] == 2} <= {0.4}
    w = group_weights([{"group": "a"}] * 4 + [{"group": "b"}], 1.0)
    assert w is not None and np.allclose(w, [0.25] * 4 + [1.0])
    assert group_weights([{"group": "a"}], 0.0) is None
    s = EpochSampler(5, seed=3, weights=w)
    s.epoch = 1
    order = [k[1] for k in s]
    assert len(order) == 5 and order == [k[1] for k in s]  # deterministic per epoch


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_resume_on_cuda(tmp_path: Path) -> None:
    """A GPU run cut off mid-way resumes (the checkpoint's CPU RNG state was once mapped onto
    the GPU, and set_rng_state refused it)."""
    from stegshield.training.train import train

    _corpus(tmp_path / "corpus")
    part = train(_cfg(tmp_path, "gpu", device="cuda", stop_after_steps=3))
    assert part["interrupted"]
    assert train(_cfg(tmp_path, "gpu", device="cuda"))["epoch"] == 2


def test_validation_set_covers_every_algorithm_and_weighs_photos_equally(tmp_path: Path) -> None:
    """The best epoch is chosen on a validation set where each source photo counts once (a
    photo that gave many tiles used to dominate it) and every tile meets every algorithm."""
    import json

    from stegshield.training.train import _validation_set

    root = _corpus(tmp_path / "corpus")
    rows = [json.loads(line) for line in (root / "manifest.jsonl").open()]
    for r in rows:  # three val tiles from one big photo, one from a small photo
        if r["split"] == "val":
            r["group"] = "small" if r["path"].endswith("t3.png") else "big"
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = _cfg(tmp_path, "v", algorithms=["lsbm", "lsbr", "hill"], val_group_balance=1.0)
    x, y, alg, w = _validation_set(cfg, None)
    assert len(x) == 4 + 4 * 3 and y.sum() == 12
    assert all(sorted(alg[4:][3 * i:3 * i + 3]) == [0, 1, 2] for i in range(4))
    assert w[y == 0].sum() == pytest.approx(0.5) and w[y == 1].sum() == pytest.approx(0.5)
    assert w[3] == pytest.approx(w[:3].sum())  # the small photo weighs as much as the big one
    for i in range(4):  # each stego differs from its own cover by ±1 changes only
        for k in range(3):
            d = x[4 + 3 * i + k].astype(int) - x[i].astype(int)
            assert np.abs(d).sum() > 0 and np.abs(d).max() == 1
    _, _, _, wd = _validation_set(_cfg(tmp_path, "v", algorithms=["lsbm", "lsbr", "hill"]), None)
    assert wd[:3].sum() / wd[3] == pytest.approx(3 ** 0.5)  # default power 0.5: in between
    _, _, alg1, w1 = _validation_set(_cfg(tmp_path, "v", algorithms=["lsbm", "lsbr", "hill"],
                                          val_every_algorithm=False, val_group_balance=0.0),
                                     None)
    assert len(alg1) == 8 and np.allclose(w1, 1 / 8)


def test_resumed_run_keeps_the_validation_it_started_with(tmp_path: Path, capsys) -> None:
    """A checkpoint from before the photo-balanced, every-algorithm validation resumes with
    the old validation, so its best AUC is compared with the same statistic."""
    from stegshield.analysis.cnn.inference import load_model
    from stegshield.training.train import CHECKPOINT, load_checkpoint, save_checkpoint, train

    _corpus(tmp_path / "corpus")
    assert train(_cfg(tmp_path, "old", stop_after_steps=3))["interrupted"]
    ck = tmp_path / "old" / CHECKPOINT
    blob = load_checkpoint(ck)
    for k in ("val_every_algorithm", "val_group_balance"):  # as saved by older versions
        del blob["state"]["config"][k]
    save_checkpoint(ck, blob)
    assert train(_cfg(tmp_path, "old"))["epoch"] == 2
    assert "val_every_algorithm = False as in the saved run" in capsys.readouterr().out
    _, meta = load_model(tmp_path / "old" / "last.safetensors")
    assert meta["train"]["val_every_algorithm"] is False
    assert meta["train"]["val_group_balance"] == 0.0


def test_validation_auc_reproduces_the_trainers_statistic(tmp_path: Path) -> None:
    """Candidates trained elsewhere (a GPU run) are compared with the shipped model by
    ``validation_auc``: it must give, for a saved epoch, the overall and per-algorithm values
    that the trainer logged for it, photo weights included."""
    import csv
    import json

    from stegshield.analysis.cnn.inference import load_model
    from stegshield.training.train import train, validation_auc

    root = tile_corpus(tmp_path / "corpus", 32, {"train": 8, "val": 10}, seed=11)
    rows = [json.loads(line) for line in (root / "manifest.jsonl").open()]
    for r in rows:  # one photo gave 6 of the 10 validation tiles: weights are not uniform
        if r["split"] == "val" and int(r["path"].rsplit("t", 1)[1].split(".")[0]) < 6:
            r["group"] = "big"
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = _cfg(tmp_path, "v", algorithms=["lsbm", "lsbr", "hill"], val_group_balance=1.0)
    train(cfg)
    log = list(csv.DictReader((tmp_path / "v" / "log.csv").open()))
    best = tmp_path / "v" / "best.safetensors"
    row = log[int(load_model(best)[1]["epoch"]) - 1]
    (got,) = validation_auc([best], cfg)
    assert got["all"] == pytest.approx(float(row["val_auc"]), abs=6e-5)
    logged = json.loads(row["val_auc_by_alg"])
    assert set(got) == {"all", *logged}
    for alg, auc in logged.items():
        assert got[alg] == pytest.approx(auc, abs=6e-5), alg
    # the photo weights matter: every tile equal gives another value on this set
    (flat,) = validation_auc([best], _cfg(tmp_path, "v", algorithms=["lsbm", "lsbr", "hill"],
                                          val_group_balance=0.0))
    assert any(abs(flat[k] - got[k]) > 1e-6 for k in got)


def test_ctrl_c_saves_a_checkpoint_and_the_run_resumes(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       request: pytest.FixtureRequest) -> None:
    """Ctrl-C lost every step since the last periodic checkpoint (up to an epoch): now the
    first one stops after the current step with a checkpoint, and the rerun continues to the
    same weights as an uninterrupted run."""
    import os
    import signal

    import stegshield.training.train as tr
    from stegshield.analysis.cnn.inference import load_model

    _corpus(tmp_path / "corpus")
    full = tr.train(_cfg(tmp_path, "full", checkpoint_every=100))
    # as in a terminal (a background `make test` may have SIGINT ignored, which train respects)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    request.addfinalizer(lambda: signal.signal(signal.SIGINT, before))
    real_save = tr._save_ckpt
    saves: list[int] = []

    def save_and_interrupt(ckpt, model, opt, state):  # type: ignore[no-untyped-def]
        saves.append(state["global_step"])
        real_save(ckpt, model, opt, state)

    monkeypatch.setattr(tr, "_save_ckpt", save_and_interrupt)
    real_step = torch.optim.AdamW.step
    calls = {"n": 0}

    def step_then_ctrl_c(self, *a, **k):  # type: ignore[no-untyped-def]
        out = real_step(self, *a, **k)
        calls["n"] += 1
        if calls["n"] == 3:  # Ctrl-C during step 3: the step completes, then the loop stops
            os.kill(os.getpid(), signal.SIGINT)
        return out

    monkeypatch.setattr(torch.optim.AdamW, "step", step_then_ctrl_c)
    part = tr.train(_cfg(tmp_path, "cut", checkpoint_every=100))
    assert part["interrupted"] and saves[-1] == 3 and part["global_step"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    monkeypatch.setattr(torch.optim.AdamW, "step", real_step)
    done = tr.train(_cfg(tmp_path, "cut", checkpoint_every=100))
    assert done["epoch"] == full["epoch"] == 2
    a, _ = load_model(tmp_path / "full" / "last.safetensors")
    b, _ = load_model(tmp_path / "cut" / "last.safetensors")
    for (k, va), (_, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.allclose(va.float(), vb.float(), atol=1e-6), k
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # started with nohup: Ctrl-C stays ignored
    with tr._STOP:
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


def test_stego_folders_pair_by_stem_size_and_manifest(tmp_path: Path) -> None:
    """`train --stego DIR` paired by full file name: PGM covers (BOSSbase) never paired with
    their PNG stego, a name shared by two tile sizes took the last one (a crash mid-training),
    and files left by an earlier run, in no manifest, were trained on."""
    import json

    from PIL import Image

    from stegshield.training.data import StegoFolderDataset

    rng = np.random.default_rng(0)

    def img(path: Path, size: int) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size), np.uint8)).save(path)

    covers, stego = tmp_path / "covers", tmp_path / "stego" / "lsbm" / "0.4"
    img(covers / "128" / "t0.png", 32)
    img(covers / "256" / "t0.png", 48)
    img(covers / "boss" / "u.pgm", 40)
    img(covers / "256" / "v.png", 48)
    for name, size in (("t0.png", 48), ("u.png", 40), ("v.png", 48)):
        img(stego / name, size)
    rows = [{"path": "t0.png"}, {"path": "u.png"}, {"path": "gone.png"}]  # v.png: stale
    (stego / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = StegoFolderDataset(covers, [str(tmp_path / "stego")], None, crop=None)
    got = {(Path(ds.tiles.rows[ci]["path"]).as_posix(), p.name) for ci, p, _ in ds.pairs}
    assert got == {("256/t0.png", "t0.png"), ("boss/u.pgm", "u.png")}
    for i in range(len(ds)):
        x, y, _, _ = ds[(0, i)]
        assert x.shape == y.shape


def test_stego_folders_honour_tile_and_limit(tmp_path: Path) -> None:
    """With --stego, training used the stego of every tile size and every cover: --tile 64
    trained on 128 px pairs, and --limit 5 on all 33 steps' worth."""
    import json

    from PIL import Image

    from stegshield.training.data import StegoFolderDataset

    root = tmp_path / "corpus"
    rows = []
    rng = np.random.default_rng(0)
    stego = tmp_path / "stego"
    stego.mkdir()
    for size, n in ((32, 6), (48, 6)):
        (root / "train" / str(size)).mkdir(parents=True)
        for i in range(n):
            p = f"train/{size}/s{size}_{i}.png"
            Image.fromarray(smooth_tile(rng, size)).save(root / p)
            Image.fromarray(smooth_tile(rng, size)).save(stego / f"s{size}_{i}.png")
            rows.append({"path": p, "split": "train", "tile": size, "group": f"g{size}{i}"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    every = StegoFolderDataset(root, [str(stego)], "train", crop=None)
    assert len(every) == 12
    ds = StegoFolderDataset(root, [str(stego)], "train", crop=None, tile_sizes=[32], limit=4)
    assert len(ds) == 4 and all(ds.tiles.images[ci].shape == (32, 32) for ci, _, _ in ds.pairs)


def test_an_empty_validation_split_is_refused_before_training(tmp_path: Path) -> None:
    """It trained a whole epoch first, then stopped with "need both positive and negative
    examples" and no checkpoint."""
    from stegshield.training.train import train as run

    root = tile_corpus(tmp_path / "corpus", 32, {"train": 4}, seed=1)
    with pytest.raises(ValueError, match="validation split has no tiles of 32 px"):
        run(_cfg(tmp_path, "o", covers=str(root)))
    assert not (tmp_path / "o" / "log.csv").exists()


def test_bad_tiles_are_named(tmp_path: Path) -> None:
    """A tile of the wrong size stopped training with "all input arrays must have the same
    shape" (or "Caught ValueError in DataLoader worker process 0"), and a 16-bit tile was
    clipped to white without a word."""
    from PIL import Image

    from stegshield.training.data import load_tiles

    root = _corpus(tmp_path / "corpus")
    Image.fromarray(np.zeros((20, 20), np.uint8)).save(root / "train" / "32" / "t1.png")
    with pytest.raises(ValueError, match=r"t1.png: 20x20 px, but the manifest lists it as a "
                                         r"tile of 32"):
        load_tiles(root, "train", 32)
    Image.fromarray(np.full((32, 32), 4000, np.uint16)).save(root / "train" / "32" / "t1.png")
    with pytest.raises(ValueError, match=r"t1.png: a I;16 image; tiles must be 8-bit"):
        load_tiles(root, "train", 32)


def test_cli_detector_scans_the_tile_size_it_was_calibrated_on(tmp_path: Path) -> None:
    """The exported detector always scanned 256 px tiles, with thresholds measured on
    validation tiles of --tile (64 px, say); and --rates 0.4 still validated at 0.4 and 0.2."""
    from click.testing import CliRunner

    from stegshield.analysis.cnn.inference import CNNDetector
    from stegshield.training.train_commands import train

    corpus = _corpus(tmp_path / "corpus")
    base = ["--covers", str(corpus), "--epochs", "1", "--algorithms", "lsbm", "--rates", "0.4",
            "--tile", "32", "--crop", "32", "--workers", "0", "--no-progress", "--threads",
            "1", "--batch-pairs", "4"]
    r = CliRunner().invoke(train, [*base, "--out", str(tmp_path / "a"), "--val-rates", "0.4"])
    assert r.exit_code == 0, r.output
    det = CNNDetector(tmp_path / "a" / "detector.safetensors")
    assert det.tile == 32 and det.meta["train"]["val_rates"] == [0.4]
    r = CliRunner().invoke(train, [*base, "--out", str(tmp_path / "b"), "--scan-tile", "64"])
    assert r.exit_code == 0 and CNNDetector(tmp_path / "b" / "detector.safetensors").tile == 64


def test_resume_compares_the_corpus_folder_not_its_spelling(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative --covers was compared as spelt: "covers" from another directory (another
    corpus) resumed, and the same corpus spelt "../covers" was refused."""
    import shutil

    from stegshield.training.train import train as run

    _corpus(tmp_path / "corpus")
    (tmp_path / "sub").mkdir()
    shutil.copytree(tmp_path / "corpus", tmp_path / "sub" / "corpus")
    monkeypatch.chdir(tmp_path)
    # stopped after the last step of epoch 1 (2 steps of 4 pairs): resuming that crashed
    # with UnboundLocalError ('lr'), no batch being left before validation
    assert run(_cfg(tmp_path, "run", covers="corpus", stop_after_steps=2))["interrupted"]
    monkeypatch.chdir(tmp_path / "sub")
    with pytest.raises(ValueError, match="other settings"):  # sub/corpus: another corpus
        run(_cfg(tmp_path, "run", covers="corpus"))
    assert run(_cfg(tmp_path, "run", covers="../corpus"))["epoch"] == 2

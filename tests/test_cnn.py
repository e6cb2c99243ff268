"""CNN detector: SRM kernels, tiling, calibration, safetensors round trip, detection."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")

from stegshield.analysis.cnn.calibration import (  # noqa: E402
    aggregate_max,
    fit_calibration,
    fpr_thresholds,
)
from stegshield.analysis.cnn.inference import CNNDetector, load_model, save_model  # noqa: E402
from stegshield.analysis.cnn.model import LightNet, build_model, srm_kernels  # noqa: E402
from stegshield.analysis.cnn.tiling import axis_splits, tile_boxes  # noqa: E402


def test_srm_kernels_are_30_zero_sum_distinct() -> None:
    num, div = srm_kernels()
    assert num.shape == (30, 5, 5) and div.shape == (30,)
    assert (num.sum(axis=(1, 2)) == 0).all()
    assert len({k.tobytes() for k in num}) == 30


def test_front_end_ignores_brightness() -> None:
    m = LightNet().eval()
    flat = torch.full((1, 1, 32, 32), 77.0)
    r = m.front(flat)[..., 4:-4, 4:-4]
    assert torch.allclose(r, torch.zeros_like(r), atol=1e-5)


def test_stem_pool_variant_shapes_and_old_layout() -> None:
    fast = LightNet(stem_pool=True).eval()
    x = torch.rand(2, 1, 64, 48) * 255
    assert fast(x).shape == (2,)
    # the pooled stem adds no parameters; weights saved without ``stem_pool`` in their config
    # (the old layout) build the unpooled body and load unchanged
    old = LightNet().eval()
    assert sum(p.numel() for p in fast.parameters()) == sum(p.numel() for p in old.parameters())
    assert not any(isinstance(m, torch.nn.AvgPool2d) for m in list(old.body)[:4])
    assert isinstance(list(fast.body)[3], torch.nn.AvgPool2d)


@pytest.mark.parametrize("h,w,t", [(256, 256, 256), (300, 1000, 256), (100, 37, 64),
                                   (513, 129, 128), (10, 10, 256)])
def test_tiling_covers_every_pixel_once(h: int, w: int, t: int) -> None:
    boxes, (rows, cols) = tile_boxes(h, w, t)
    assert len(boxes) == rows * cols
    cover = np.zeros((h, w), int)
    for y0, y1, x0, x1 in boxes:
        cover[y0:y1, x0:x1] += 1
    assert (cover == 1).all()
    for a, b in axis_splits(max(h, w), t):
        assert b - a <= 1.5 * t


def test_calibration_monotone_and_thresholds() -> None:
    rng = np.random.default_rng(0)
    logits = np.r_[rng.normal(-1, 1, 500), rng.normal(1.5, 1, 500)]
    labels = np.r_[np.zeros(500), np.ones(500)]
    cal = fit_calibration(logits, labels)
    xs = np.linspace(-5, 5, 50)
    s = np.array([cal(x) for x in xs])
    assert cal.a > 0 and (np.diff(s) > 0).all()
    th = fpr_thresholds(logits, labels)
    assert th["0.01"] >= th["0.05"]
    assert (logits[:500] >= th["0.05"]).mean() <= 0.05 + 1e-9
    # the multiple-testing shift lowers the statistic of many equal tiles
    assert aggregate_max(np.zeros(100), 1.0) < aggregate_max(np.zeros(1), 1.0)


def test_safetensors_round_trip(tmp_path) -> None:
    torch.manual_seed(0)
    m = build_model("light").eval()
    for mod in m.modules():  # non-trivial BN statistics
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.uniform_(-1, 1)
            mod.running_var.uniform_(0.5, 2)
    p = tmp_path / "m.safetensors"
    save_model(p, m, {"arch": "light", "config": {}, "tile": 64,
                      "calibration": {"a": 2.0, "b": -1.0}})
    assert p.read_bytes()[:8] != b"\x80\x02\x8a\n"  # not a pickle
    m2, meta = load_model(p)
    x = torch.rand(2, 1, 48, 48) * 255
    with torch.no_grad():
        assert torch.allclose(m(x), m2(x), atol=1e-5)
    assert meta["tile"] == 64 and meta["calibration"]["a"] == 2.0


def test_detector_tiles_and_colour(tmp_path) -> None:
    torch.manual_seed(0)
    p = tmp_path / "m.safetensors"
    save_model(p, build_model("light").eval(), {"arch": "light", "config": {}, "tile": 64,
                                                "calibration": {"a": 1.0, "b": 0.0},
                                                "thresholds": {"0.01": 2.0, "0.05": 1.0}})
    rng = np.random.default_rng(1)
    gray = rng.integers(0, 256, (150, 200), dtype=np.uint8)
    fp32 = CNNDetector(p, bf16=False, jit=False, malloc_tune=False)
    r = fp32.detect(gray)
    assert r.tile_map is not None and r.tile_map.shape == (2, 3)
    assert 0.0 <= r.score <= 1.0 and np.isfinite(r.raw)
    # compiled bfloat16 path agrees with eager fp32 up to bf16 rounding
    fast = CNNDetector(p, bf16=True, jit=True, malloc_tune=False)
    r2 = fast.detect(gray)
    assert np.allclose(r.tile_map, r2.tile_map, atol=0.05 + 0.05 * np.abs(r.tile_map).max())
    rgb = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
    rc = fp32.detect(rgb)
    assert rc.channels is not None and len(rc.channels) == 3
    assert fp32.thresholds["0.01"] > fp32.thresholds["0.05"]
    tiny = fp32.detect(np.zeros((8, 8), np.uint8))
    assert tiny.score == 0.5


def test_registry_factory_is_lazy() -> None:
    import subprocess
    import sys

    code = ("import sys, stegshield.analysis, stegshield.analysis.cnn; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_shipped_models_load_and_fit_budget() -> None:
    from stegshield.analysis.cnn.inference import list_models

    infos = list_models()
    assert sum(m.size_bytes for m in infos) <= 25 * 2**20
    for m in infos:
        assert m.path.with_suffix(".md").exists(), "every shipped model needs a model card"
        for key in ("arch", "calibration", "thresholds", "command", "test_metrics"):
            assert key in m.meta, key
        det = CNNDetector(m.path, jit=False, malloc_tune=False)
        r = det.detect(np.full((64, 64), 128, np.uint8))
        assert 0.0 <= r.score <= 1.0


def test_threshold_at_fpr_is_continuous_and_hits_the_validation_points() -> None:
    """scan turns CNN scores into estimated FPRs; a step function would rank images badly."""
    from stegshield.analysis.cnn.inference import CNNDetector

    det = CNNDetector("light-gray")
    t1, t5 = det.thresholds["0.01"], det.thresholds["0.05"]
    assert det.threshold_at_fpr(0.01) == pytest.approx(t1, abs=1e-9)
    assert det.threshold_at_fpr(0.05) == pytest.approx(t5, abs=1e-9)
    fprs = [1e-5, 1e-4, 1e-3, 0.005, 0.01, 0.02, 0.05, 0.2]
    ths = [det.threshold_at_fpr(f) for f in fprs]
    assert all(a > b for a, b in itertools.pairwise(ths))  # strictly decreasing
    from stegshield.scan.thresholds import learned_fpr

    for f in (1e-4, 0.003, 0.03):
        assert learned_fpr(det, det.threshold_at_fpr(f)) == pytest.approx(f, rel=1e-3)


def test_scan_thorough_uses_the_thorough_model(tmp_path) -> None:
    import json

    from click.testing import CliRunner
    from PIL import Image

    from stegshield.analysis.cnn import THOROUGH_MODEL
    from stegshield.analysis.cnn.inference import list_models
    from stegshield.scan.commands import scan

    from imagegen import smooth_tile

    shipped = {m.name: m for m in list_models()}
    assert THOROUGH_MODEL in shipped and "light-gray" in shipped
    # the thorough model keeps full resolution and is wider than the fast default
    assert shipped[THOROUGH_MODEL].meta["config"].get("width", 16) > 16
    img = tmp_path / "x.png"
    Image.fromarray(smooth_tile(np.random.default_rng(5), 96)).save(img)
    r = CliRunner().invoke(scan, [str(img), "--thorough", "--format", "jsonl"])
    assert r.exit_code in (0, 1), r.output
    rec = json.loads(r.output.strip().splitlines()[0])
    assert list(rec["detectors"]) == ["cnn-thorough"]
    bad = CliRunner().invoke(scan, [str(img), "--thorough", "--detector", "classical"])
    assert bad.exit_code == 2 and "--thorough" in bad.output


def test_batchnorm_folding_keeps_the_logits() -> None:
    import torch

    from stegshield.analysis.cnn.inference import fold_batchnorm
    from stegshield.analysis.cnn.model import build_model

    from imagegen import natural_like

    torch.manual_seed(0)
    net = build_model("light", width=8, full_res_layers=1)
    for m in net.modules():  # non-trivial statistics, as after training
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 1.5)
    net.eval()
    x = torch.from_numpy(natural_like(64, 64, seed=2).astype(np.float32))[None, None]
    with torch.no_grad():
        ref = net(x)
        assert fold_batchnorm(net) > 0
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.body.modules())
        torch.testing.assert_close(net(x), ref, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError):
        fold_batchnorm(build_model("light").train())


def test_save_model_is_atomic(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Model files were written in place: a crash mid-write left a truncated best/last file."""
    import stegshield.analysis.cnn.inference as inf

    path = tmp_path / "m.safetensors"
    save_model(path, build_model("light"), {"arch": "light", "config": {}})
    before = path.read_bytes()

    def crash(state, filename, metadata=None):  # type: ignore[no-untyped-def]
        with open(filename, "wb") as f:
            f.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(inf, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save_model(path, build_model("light"), {"arch": "light", "config": {}})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == [path.name]
    load_model(path)

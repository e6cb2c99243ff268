"""The learned structural detector (``structural``): features, fit, model file, shipped model,
scan integration."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import stegshield.analysis.structural.learned as learned
from stegshield.analysis import get_detector
from stegshield.analysis.features.spam import SPAM_FEATURES
from stegshield.analysis.linear import LinearModel, fit_logistic
from stegshield.analysis.metrics import roc_auc
from stegshield.analysis.structural import spa_estimate, ws_estimate
from stegshield.analysis.structural.learned import (
    FEATURE_NAMES,
    STRUCTURAL_FEATURES,
    StructuralLRDetector,
    structural_features,
)
from stegshield.analysis.synthetic import lsb_match, lsb_replace, synthetic_cover
from stegshield.cli import main as cli
from stegshield.scan.suite import build_suite
from stegshield.scan.thresholds import learned_fpr


@pytest.fixture(scope="module")
def covers() -> list[np.ndarray]:
    rng = np.random.default_rng(77)
    return [synthetic_cover(rng, (192, 192)) for _ in range(30)]


def test_features_shape_and_small_images() -> None:
    x = synthetic_cover(np.random.default_rng(1), (40, 50))
    f = structural_features(x)
    assert f.shape == (len(FEATURE_NAMES),) and np.isfinite(f).all()
    k = (len(FEATURE_NAMES) - 1) // 3
    assert f[2 * k : 3 * k].sum() == pytest.approx(1.0)  # the bins' shares
    assert f[-1] == pytest.approx(spa_estimate(x))
    assert np.isnan(structural_features(np.zeros((2, 9), np.uint8))).all()
    with pytest.raises(ValueError, match="uint8"):
        structural_features(x.astype(np.float32))


def test_features_by_strips_equal_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Large images are processed in row strips (bounded memory) with the same result."""
    x = synthetic_cover(np.random.default_rng(2), (301, 173))
    whole = structural_features(x)
    monkeypatch.setattr(learned, "STRIP_ROWS", 7)
    np.testing.assert_allclose(structural_features(x), whole, rtol=1e-9, atol=1e-12)


def test_ws_numerators_sum_to_unweighted_ws(covers: list[np.ndarray]) -> None:
    """Summed over the bins, the numerators are WS with equal weights (moderation -> inf)."""
    x = covers[0]
    f = structural_features(x)
    k = (len(FEATURE_NAMES) - 1) // 3
    flat = ws_estimate(x, moderation=1e12, bias_correction=False)
    assert f[:k].sum() == pytest.approx(flat, rel=1e-4, abs=1e-6)


def test_fit_logistic_recovers_a_known_model() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4000, 3)) * [1.0, 2.0, 0.5] + [0.0, 1.0, -1.0]
    true = np.array([1.5, -0.5, 0.0])
    logit = (X - X.mean(0)) @ true + 0.3
    y = rng.random(4000) < 1 / (1 + np.exp(-logit))
    _mean, scale, coef, _icpt = fit_logistic(X, y, l2=1e-6)
    w = coef / scale  # back on the raw feature scale
    np.testing.assert_allclose(w, true, atol=0.15)
    with pytest.raises(ValueError, match="both classes"):
        fit_logistic(X, np.zeros(4000))


def test_model_file_round_trip_and_refusals(tmp_path: Path) -> None:
    n = len(FEATURE_NAMES)
    m = LinearModel(np.zeros(n), np.ones(n), np.linspace(-1, 1, n), 0.25,
                    raw_thresholds={0.01: 2.0, 0.05: 1.0})
    p = tmp_path / "m.safetensors"
    m.save(p, STRUCTURAL_FEATURES, {"name": "m"})
    back = LinearModel.load(p, STRUCTURAL_FEATURES)
    np.testing.assert_array_equal(back.coef, m.coef)
    assert back.intercept == 0.25 and back.raw_thresholds == {0.01: 2.0, 0.05: 1.0}
    assert not list(tmp_path.glob("*.tmp"))  # written atomically
    from safetensors.numpy import save_file

    with pytest.raises(ValueError, match="not a spam"):  # another feature set's model
        LinearModel.load(p, SPAM_FEATURES)
    meta = {"kind": "structural-linear", "feature_version": 999,
            "feature_params": STRUCTURAL_FEATURES.params, "intercept": 0.0}
    bad = tmp_path / "bad.safetensors"
    save_file({"mean": m.mean, "scale": m.scale, "coef": m.coef}, str(bad),
              metadata={"stegshield": json.dumps(meta)})
    with pytest.raises(ValueError, match="feature version"):
        LinearModel.load(bad, STRUCTURAL_FEATURES)
    save_file({"w": np.zeros(2)}, str(bad), metadata={"stegshield": "{}"})
    with pytest.raises(ValueError, match="not a structural"):
        LinearModel.load(bad, STRUCTURAL_FEATURES)
    meta["feature_version"] = STRUCTURAL_FEATURES.version
    meta["feature_params"] = dict(STRUCTURAL_FEATURES.params, var_edges=[0.0, 1.0])
    save_file({"mean": m.mean, "scale": m.scale, "coef": m.coef}, str(bad),
              metadata={"stegshield": json.dumps(meta)})
    with pytest.raises(ValueError, match="feature version"):  # other bins, same version
        LinearModel.load(bad, STRUCTURAL_FEATURES)
    with pytest.raises(FileNotFoundError, match="shipped"):
        StructuralLRDetector("no-such-model")
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="cannot read"):
        LinearModel.load(bad, STRUCTURAL_FEATURES)


def test_shipped_model_detects_lsb_replacement_not_matching(covers: list[np.ndarray]) -> None:
    """Trained on corpus photos, it must still separate LSB replacement at 0.1 bpp on other
    covers, and stay near chance on LSB matching (it models parity, not ±1 noise)."""
    det = get_detector("structural")
    rng = np.random.default_rng(5)
    c = np.array([det.detect(x).raw for x in covers])
    r = np.array([det.detect(lsb_replace(x, 0.1, rng)).raw for x in covers])
    m = np.array([det.detect(lsb_match(x, 0.4, rng)).raw for x in covers])
    y = np.r_[np.zeros(len(c)), np.ones(len(c))]
    assert roc_auc(y, np.r_[c, r]) > 0.95
    assert roc_auc(y, np.r_[c, m]) < 0.8
    assert np.median(r) > np.median(c)


def test_colour_planes_and_result_fields() -> None:
    det = get_detector("structural")
    rgb = synthetic_cover(np.random.default_rng(6), (64, 80), channels=3)
    res = det.detect(rgb)
    assert res.channels is not None and len(res.channels) == 3
    assert res.raw == pytest.approx(np.mean(res.channels))
    assert 0.0 <= res.score <= 1.0 and res.payload_bpp is None
    tiny = det.detect(np.zeros((2, 2), np.uint8))
    assert math.isnan(tiny.raw) and tiny.score == 0.5


def test_thresholds_are_monotone_and_invert() -> None:
    det = get_detector("structural")
    fprs = [1e-6, 1e-3, 0.005, 0.01, 0.03, 0.05, 0.2, 0.5, 0.9]
    th = [det.threshold_at_fpr(f) for f in fprs]
    assert all(a >= b for a, b in itertools.pairwise(th))
    for f, t in det.thresholds.items():
        assert det.threshold_at_fpr(f) == pytest.approx(t)
        assert learned_fpr(det, t) == pytest.approx(f, rel=1e-3)


def test_scan_structural_exit_codes_and_all(tmp_path: Path) -> None:
    rng = np.random.default_rng(8)
    cover = synthetic_cover(rng, (256, 256))
    Image.fromarray(cover).save(tmp_path / "clean.png")
    Image.fromarray(lsb_replace(cover, 0.5, rng)).save(tmp_path / "stego.png")
    run = CliRunner().invoke
    res = run(cli, ["scan", "--detector", "structural", str(tmp_path / "clean.png")])
    assert res.exit_code == 0, res.output
    res = run(cli, ["scan", "--detector", "structural", "--format", "jsonl",
                    str(tmp_path / "stego.png")])
    assert res.exit_code == 1, res.output
    row = json.loads(res.output.splitlines()[0])
    assert row["verdict"] == "alert" and row["detectors"]["structural"] > 0.99
    suite = build_suite("all")
    assert "structural" in suite.groups and "classical" in suite.groups


def test_large_images_in_blocks_keep_the_whole_image_statistic(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the block size the scan averages the blocks' logits (the features are per-pixel
    means), so a payload in one block of four is not diluted by averaging probabilities."""
    import stegshield.scan.suite as suite_mod

    rng = np.random.default_rng(9)
    img = synthetic_cover(rng, (256, 256), channels=3)
    img[:128, :128] = lsb_replace(img[:128, :128], 1.0, rng)
    whole = build_suite("structural").analyse(img).fprs["structural"]
    monkeypatch.setattr(suite_mod, "BLOCK_PIXELS", 128 * 128)
    monkeypatch.setattr(suite_mod, "BLOCK_SIDE", 128)
    blocked = build_suite("structural").analyse(img).fprs["structural"]
    assert whole < 1e-3 and blocked < 1e-3


def test_too_small_means_no_judgement() -> None:
    a = build_suite("structural").analyse(np.zeros((2, 2), np.uint8))
    assert math.isnan(a.fprs["structural"]) and a.score == 0.0


def test_broken_model_file_is_a_note_not_a_crash(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import stegshield.analysis.linear as linear_mod
    from stegshield.scan.suite import SuiteError

    n = len(FEATURE_NAMES)
    LinearModel(np.zeros(n), np.ones(n), np.zeros(n), 0.0).save(
        tmp_path / "lsbr-lr.safetensors", STRUCTURAL_FEATURES)
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file

    with safe_open(str(tmp_path / "lsbr-lr.safetensors"), framework="numpy") as fh:
        meta = json.loads(fh.metadata()["stegshield"])
    meta["intercept"] = None  # a hand-edited or damaged file
    save_file(load_file(str(tmp_path / "lsbr-lr.safetensors")),
              str(tmp_path / "lsbr-lr.safetensors"), metadata={"stegshield": json.dumps(meta)})
    monkeypatch.setattr(linear_mod, "LINEAR_DIR", tmp_path)
    with pytest.raises(SuiteError, match="structural detector could not be loaded"):
        build_suite("structural")
    suite = build_suite("all")
    assert "structural" not in suite.groups
    assert any("structural" in note for note in suite.notes)


def test_models_lists_every_linear_model_with_card_and_metrics() -> None:
    """`stegshield models` shows the linear models like the CNNs (metrics per tile size),
    each with a model card; all shipped weights stay within the 25 MB budget."""
    from stegshield.analysis.cnn.inference import list_models
    from stegshield.analysis.linear import shipped_linear

    res = CliRunner().invoke(cli, ["models", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    for name, detector in (("lsbr-lr", "structural"), ("spam-lsbm", "spam"),
                           ("srm-adaptive", "srm")):
        assert rows[name]["detector"] == detector
        assert 0.5 < rows[name]["metrics"]["256"]["lsbr@0.1"] <= 1.0
        assert Path(rows[name]["path"]).with_suffix(".md").exists()
    total = sum(m.size_bytes for m in list_models()) + sum(
        p.stat().st_size for _, p, _ in shipped_linear())
    assert total <= 25 * 2**20
    text = CliRunner().invoke(cli, ["models"]).output  # the table says "-", never "None"
    assert "tile=None" not in text and "lsbr-lr\tdetector=structural\tarch=structural-linear" \
        "\ttile=-\t" in text
    assert "srm-lsbm" in CliRunner().invoke(cli, ["models", "--help"]).output

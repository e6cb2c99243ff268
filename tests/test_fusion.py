"""Tile-level fusion of the CNN with linear detectors (``fused``, ``fused-thorough``)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from stegshield.analysis import get_detector
from stegshield.analysis.cnn.calibration import aggregate_max
from stegshield.analysis.cnn.tiling import tile_boxes
from stegshield.analysis.features.spam import SPAMDetector
from stegshield.analysis.fusion import (
    FUSED_MODELS,
    FusedDetector,
    fusion_features,
    linear_logits,
    read_fusion_params,
)
from stegshield.analysis.linear import LINEAR_DIR, LinearModel
from stegshield.analysis.synthetic import lsb_match, synthetic_cover
from stegshield.scan.suite import SuiteError, build_suite
from test_spam import lsbm_sample_auc

FUSED = LINEAR_DIR / f"{FUSED_MODELS['fused']}.safetensors"


@pytest.fixture(scope="module")
def fused() -> FusedDetector:
    return get_detector("fused")  # type: ignore[return-value]


def test_image_score_is_the_weighted_sum_of_member_logits_per_tile(
        fused: FusedDetector) -> None:
    """Recomputed by hand from the members: each tile's standardised logits times the
    weights, then the largest tile shifted by ln(n)/a."""
    x = synthetic_cover(np.random.default_rng(5), (600, 520))  # 2×2 tiles, ragged edges
    res = fused.detect(x)
    boxes, grid = tile_boxes(*x.shape, fused.tile)
    cnn_logits = fused.cnn.plane_map(x).ravel()
    m = fused.model
    expect = []
    for (y0, y1, x0, x1), c in zip(boxes, cnn_logits, strict=True):
        row = [c, *(d.logit_of_plane(x[y0:y1, x0:x1]) for d in fused.linear)]
        expect.append(float(((np.array(row) - m.mean) / m.scale) @ m.coef + m.intercept))
    np.testing.assert_allclose(res.tile_map.ravel(), expect, rtol=1e-9, atol=1e-9)
    assert res.tile_map.shape == grid
    assert res.raw == pytest.approx(aggregate_max(np.array(expect), fused.tail_slope))
    assert fused.tail_slope > fused.calibration.a  # the covers' tail, not the Platt slope
    assert res.score == pytest.approx(fused.calibration(res.raw))
    assert len(fused.linear) >= 1 and m.coef[0] == 1.0  # the CNN's weight is the unit


def test_colour_takes_the_worst_plane_and_tiny_images_get_no_judgement(
        fused: FusedDetector) -> None:
    rgb = synthetic_cover(np.random.default_rng(6), (300, 300), channels=3)
    res = fused.detect(rgb)
    assert res.channels is not None and len(res.channels) == 3
    planes = np.stack([fused.plane_map(np.ascontiguousarray(rgb[..., c])) for c in range(3)])
    assert res.raw == pytest.approx(aggregate_max(planes.ravel(), fused.tail_slope))  # n = 3 × 1
    np.testing.assert_allclose(res.tile_map, planes.max(axis=0))
    for shape in ((8, 8), (127, 400), (400, 100)):  # under the calibrated tile sizes
        assert math.isnan(fused.detect(synthetic_cover(np.random.default_rng(7), shape)).raw)
    assert math.isfinite(fused.detect(synthetic_cover(np.random.default_rng(7), (128, 128))).raw)


def test_members_sharing_a_feature_set_extract_once(monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = SPAMDetector(), SPAMDetector()
    calls = []
    feats = a.features

    class Counting:
        def __getattr__(self, k: str) -> object:
            return getattr(feats, k)

        def extract(self, x: np.ndarray) -> np.ndarray:
            calls.append(1)
            return feats.extract(x)

    counting = Counting()
    monkeypatch.setattr(a, "features", counting, raising=False)
    monkeypatch.setattr(b, "features", counting, raising=False)
    tiles = np.stack([synthetic_cover(np.random.default_rng(i), (64, 64)) for i in range(3)])
    la, lb = linear_logits([a, b], tiles)
    assert len(calls) == 3
    np.testing.assert_allclose(la, [SPAMDetector().logit_of_plane(t) for t in tiles])
    np.testing.assert_array_equal(la, lb)


def test_refuses_a_fusion_fitted_on_other_member_weights(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = read_fusion_params(FUSED)
    model = LinearModel.load(FUSED, fusion_features(params))
    stale = json.loads(json.dumps(params))
    stale["digests"][params["cnn"]] = "0" * 16  # as if the CNN had been retrained since
    bad = tmp_path / "stale.safetensors"
    model.save(bad, fusion_features(stale))
    with pytest.raises(ValueError, match=f"fitted on other weights of {params['cnn']}"):
        FusedDetector(bad)
    member = params["linear"][0][1]
    stale2 = json.loads(json.dumps(params))
    stale2["digests"][member] = "f" * 16  # a retrained linear member
    model.save(tmp_path / "stale2.safetensors", fusion_features(stale2))
    with pytest.raises(ValueError, match=f"fitted on other weights of {member}"):
        FusedDetector(tmp_path / "stale2.safetensors")
    monkeypatch.setitem(FUSED_MODELS, "fused", str(bad))  # scan: a one-line reason
    with pytest.raises(SuiteError, match=r"fused detector could not be loaded.*refit") as exc:
        build_suite("fused")
    assert "\n" not in str(exc.value)
    not_fusion = LINEAR_DIR / "spam-lsbm.safetensors"
    with pytest.raises(ValueError, match="not a fusion model"):
        FusedDetector(not_fusion)


def test_thresholds_fall_as_the_false_positive_rate_rises(fused: FusedDetector) -> None:
    t = [fused.threshold_at_fpr(f) for f in (0.001, 0.01, 0.05, 0.2)]
    assert all(a > b for a, b in itertools.pairwise(t))
    assert set(fused.thresholds) >= {0.01, 0.05}


def test_detects_lsb_matching_on_sample_photos(fused: FusedDetector) -> None:
    """Tiles of the bundled photographs (never in the training corpus), LSB matching at
    0.4 bpp, one tile per image."""
    assert lsbm_sample_auc(fused) > 0.8


def test_scan_fused_choice_is_its_own_group_and_not_in_all() -> None:
    suite = build_suite("fused")
    assert suite.groups == ["fused"]
    a = suite.analyse(synthetic_cover(np.random.default_rng(4), (300, 280), channels=3))
    assert 0.0 < a.fprs["fused"] <= 1.0 and a.heatmap is not None
    assert not {"fused", "fused-thorough"} & set(build_suite("all").groups)
    assert build_suite("fused-thorough").groups == ["fused-thorough"]


def test_models_lists_the_fusions_and_their_members() -> None:
    from click.testing import CliRunner

    from stegshield.cli import main as cli

    res = CliRunner().invoke(cli, ["models", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    fused = rows[FUSED_MODELS["fused"]]
    assert fused["detector"] == "fused" and fused["arch"] == "fusion-linear"
    assert 0.5 < fused["metrics"]["256"]["lsbm@0.4"] <= 1.0
    # where scan's thresholds come from: whole photographs for the tiled fusions and CNNs
    assert fused["thresholds"] == "photos" and rows["light-gray"]["thresholds"] == "photos"
    assert rows["srm-lsbm"]["thresholds"] == "tiles"
    assert Path(fused["path"]).with_suffix(".md").exists()
    for _, member in read_fusion_params(FUSED)["linear"]:
        assert rows[member]["detector"] is not None  # its own detector, or "fused (member)"


@pytest.mark.parametrize(("detector", "fpr"), [("fused", 0.01), ("cnn", 0.05)])
def test_a_spread_payload_stays_caught_as_the_image_grows(detector: str, fpr: float) -> None:
    """The size correction (largest tile minus ln(n)/a) uses the covers' tail slope: with the
    Platt slope (flattened by the near-chance rows it is fitted on) an LSB-matching photo
    mirrored to 16 times its area fell below the 1 % threshold.  Since the thresholds come
    from whole validation photographs, ``cnn`` alone catches these two samples at 5 %, not
    1 % (at either size); growing them must not lose them."""
    from PIL import Image

    def grow(a: np.ndarray, k: int) -> np.ndarray:  # mirrored copies: no new evidence
        row = np.hstack([a if j % 2 == 0 else a[:, ::-1] for j in range(k)])
        return np.vstack([row if i % 2 == 0 else row[::-1] for i in range(k)])

    suite = build_suite(detector)
    for name in ("coldripple_gray", "grey_gray"):
        x = np.array(Image.open(Path(__file__).parent.parent / "samples" / f"{name}.png"))
        s = lsb_match(x, 0.4, np.random.default_rng(1))
        grown = suite.analyse(grow(s, 4)).fprs[detector]
        assert grown < fpr, name
        assert grown <= suite.analyse(s).fprs[detector] * 1.01, name
        assert suite.analyse(grow(x, 4)).fprs[detector] > 0.05, name


def test_scan_calls_images_under_the_fused_tile_size_too_small(tmp_path: Path) -> None:
    """Not "clean": ``fused`` judges tiles of at least 128 px, so a 100×100 image (or a
    120-px banner) gets the too-small verdict with the reason; ``cnn`` still judges it."""
    from PIL import Image

    from stegshield.scan import Scanner, ScanOptions

    rng = np.random.default_rng(8)
    for shape in ((100, 100), (120, 600)):
        f = tmp_path / f"x{shape[0]}.png"
        Image.fromarray(synthetic_cover(rng, shape)).save(f)
        res = Scanner(ScanOptions(detector="fused")).scan_path(f)
        assert res.verdict == "too_small" and "128 per side" in " ".join(res.notes)
        assert Scanner(ScanOptions(detector="cnn")).scan_path(f).verdict != "too_small"


def test_models_labels_a_member_no_scan_detector_loads(monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    """A linear model used only inside a fusion is listed as that fusion's member; a fusion
    file with malformed members is refused as "not a fusion model", never a crash."""
    from click.testing import CliRunner

    import stegshield.analysis.features.srm as srm_mod
    from stegshield.cli import main as cli

    member = read_fusion_params(FUSED)["linear"][0][1]
    monkeypatch.setattr(srm_mod, "DEFAULT_SRM_LSBM", "no-such-model")  # no scan detector
    res = CliRunner().invoke(cli, ["models", "--json"])
    assert res.exit_code == 0, res.output
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows[member]["detector"] == "fused (member)"
    from stegshield.analysis.linear import FeatureSet

    bad = {**read_fusion_params(FUSED), "linear": [["srm"]]}  # not a (detector, model) pair
    fs = FeatureSet(name="fusion", version=1, names=("a", "b"), extract=np.asarray, params=bad)
    LinearModel(np.zeros(2), np.ones(2), np.ones(2), 0.0).save(tmp_path / "bad.safetensors", fs)
    with pytest.raises(ValueError, match="not a fusion model"):
        read_fusion_params(tmp_path / "bad.safetensors")

"""Thresholds of the image statistic fitted on whole clean photographs (photo_calibration)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from stegshield.analysis.photo_calibration import (
    PhotoCalibration,
    drop_stale,
    file_digest,
    fit_gumbel,
    load_photo_calibration,
    photo_weights,
    sidecar_path,
)


def test_gumbel_fit_recovers_the_law_and_its_tail() -> None:
    rng = np.random.default_rng(0)
    x = 3.0 + 0.7 * -np.log(-np.log(rng.random(20_000)))  # Gumbel(3, 0.7) by inversion
    mu, beta = fit_gumbel(x)
    assert mu == pytest.approx(3.0, abs=0.03) and beta == pytest.approx(0.7, abs=0.02)
    cal = PhotoCalibration(mu, beta, "d")
    for f in (0.01, 0.05, 0.2):  # the fitted tail matches the sample's
        assert float((x >= cal.raw_at_fpr(f)).mean()) == pytest.approx(f, rel=0.15)
        assert cal.fpr_of_raw(cal.raw_at_fpr(f)) == pytest.approx(f, rel=1e-9)
    assert cal.raw_at_fpr(0.01) > cal.raw_at_fpr(0.05)
    # scale-equivariant, and far from 0 without overflow
    mu2, beta2 = fit_gumbel(1000.0 * x - 5e4)
    assert mu2 == pytest.approx(1000 * mu - 5e4, rel=1e-6)
    assert beta2 == pytest.approx(1000 * beta, rel=1e-6)


def test_every_photograph_weighs_the_same() -> None:
    """Ten crops of one photograph must not outvote nine other photographs."""
    rng = np.random.default_rng(1)
    base = list(rng.normal(0, 1, 9))
    x = [*base, *([8.0] * 10)]
    groups = [f"p{i}" for i in range(9)] + ["big"] * 10
    assert list(photo_weights(groups)) == [1.0] * 9 + [0.1] * 10
    weighted = fit_gumbel(x, photo_weights(groups))
    assert weighted == pytest.approx(fit_gumbel([*base, 8.0]), rel=1e-9)
    assert fit_gumbel(x)[0] > weighted[0] + 1.0  # unweighted, the crops pull mu up
    with pytest.raises(ValueError, match="at least 10"):
        PhotoCalibration.fit(x, ["a"] * 19, "d")
    with pytest.raises(ValueError):
        fit_gumbel([1.0, 1.0, 1.0])


def test_gumbel_fit_is_the_likelihood_optimum_under_very_uneven_weights() -> None:
    """One far point with a tiny weight (a group of thousands of files) pushed the root of
    the likelihood equation past the search bracket, and the fit came back at its edge."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(2)
    x = np.r_[rng.gumbel(0.0, 1.0, 36), -100.0]
    w = np.r_[np.ones(36), 1e-3]

    def nll(mu: float, beta: float) -> float:
        z = (x - mu) / beta
        return float(np.sum(w * (np.log(beta) + z + np.exp(-np.clip(z, -700, 700)))))

    mu, beta = fit_gumbel(x, w)
    best = minimize(lambda p: nll(p[0], math.exp(p[1])), [0.0, 0.0], method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 10_000})
    assert nll(mu, beta) <= best.fun + 1e-6
    assert PhotoCalibration(mu, beta, "d").fpr_of_raw(-1e6) == 1.0  # no overflow


def test_sidecar_round_trip_and_refuses_other_weights(tmp_path: Path) -> None:
    model = tmp_path / "m.safetensors"
    model.write_bytes(b"weights v1")
    assert load_photo_calibration(model) is None  # none: the caller keeps its tile thresholds
    cal = PhotoCalibration(1.5, 0.8, file_digest(model), {"split": "val"})
    path = cal.save(model)
    assert path == sidecar_path(model) == tmp_path / "m.photos.json"
    assert load_photo_calibration(model) == cal
    assert not drop_stale(model) and path.exists()  # current: kept
    model.write_bytes(b"weights v2")  # retrained in place: the old fit must not be used
    with pytest.raises(ValueError, match="other weights"):
        load_photo_calibration(model)
    assert drop_stale(model) and not path.exists()  # what the shipping scripts do
    assert load_photo_calibration(model) is None
    cal.save(model)
    path.write_text("{not json")
    with pytest.raises(ValueError, match="unreadable"):
        load_photo_calibration(model)
    path.write_text(json.dumps({"law": "gumbel", "mu": 1.0, "beta": -1.0, "sha256": "x"}))
    with pytest.raises(ValueError, match="unreadable"):
        load_photo_calibration(model)


torch = pytest.importorskip("torch")


def test_cnn_detector_thresholds_its_image_statistic_with_the_photo_fit(tmp_path: Path
                                                                        ) -> None:
    from stegshield.analysis.cnn.inference import CNNDetector, save_model
    from stegshield.analysis.cnn.model import build_model
    from stegshield.scan.thresholds import learned_fpr

    torch.manual_seed(0)
    p = tmp_path / "m.safetensors"
    save_model(p, build_model("light").eval(), {"arch": "light", "config": {}, "tile": 64,
                                                "calibration": {"a": 0.5, "b": -1.0},
                                                "thresholds": {"0.01": 2.0, "0.05": 1.0}})
    kw = {"bf16": False, "malloc_tune": False}
    tiles_only = CNNDetector(p, **kw)
    assert tiles_only.photo_calibration is None
    assert tiles_only.threshold_at_fpr(0.01) == pytest.approx(tiles_only.calibration(2.0))
    cal = PhotoCalibration(mu=-1.0, beta=2.0, digest=file_digest(p))
    cal.save(p)
    det = CNNDetector(p, **kw)
    for f in (0.001, 0.01, 0.05):
        assert det.threshold_at_fpr(f) == pytest.approx(det.calibration(cal.raw_at_fpr(f)))
        assert learned_fpr(det, det.threshold_at_fpr(f)) == pytest.approx(f, rel=1e-3)
        assert det.tile_raw_at_fpr(f) == pytest.approx(tiles_only.tile_raw_at_fpr(f))
    assert det.thresholds["0.01"] == pytest.approx(det.threshold_at_fpr(0.01))
    # the image statistic itself does not change, only where it is cut
    x = np.random.default_rng(2).integers(0, 256, (130, 70), dtype=np.uint8)
    assert det.detect(x).raw == pytest.approx(tiles_only.detect(x).raw)
    torch.manual_seed(1)  # retrained in place: refuse the stale fit
    save_model(p, build_model("light").eval(), {"arch": "light", "config": {}, "tile": 64})
    with pytest.raises(ValueError, match="other weights"):
        CNNDetector(p, **kw)
    # the tools that measure and refit never load the fit, so a stale one cannot block them
    assert CNNDetector(p, photo_calibration=False, **kw).photo_calibration is None


def test_shipped_tiled_detectors_carry_a_current_photo_fit() -> None:
    """``cnn``, ``cnn-thorough`` and both fusions over-flag clean validation photographs at
    their tile thresholds, so each ships a fit made on its own weights (a stale one raises),
    from validation photographs only, with a few dozen photographs behind it."""
    from stegshield.analysis.cnn import THOROUGH_MODEL
    from stegshield.analysis.cnn.inference import DEFAULT_MODEL, WEIGHTS_DIR, list_models
    from stegshield.analysis.fusion import FUSED_MODELS, shipped_fusions
    from stegshield.analysis.linear import LINEAR_DIR

    required = {DEFAULT_MODEL, THOROUGH_MODEL, *FUSED_MODELS.values()}
    paths = {m.name: m.path for m in list_models()}
    paths.update({n: LINEAR_DIR / f"{n}.safetensors" for n in shipped_fusions()})
    assert required <= set(paths)
    for name, p in paths.items():
        cal = load_photo_calibration(p)  # raises if fitted on other weights
        if cal is None:
            assert name not in required, name
            continue
        assert cal.info["split"] == "val" and cal.info["photos"] >= 30, name
        assert math.isfinite(cal.raw_at_fpr(0.01)) and cal.raw_at_fpr(0.01) > \
            cal.raw_at_fpr(0.05)
    # no fit lies about without its model
    for side in [*WEIGHTS_DIR.glob("*.photos.json"), *LINEAR_DIR.glob("*.photos.json")]:
        assert side.name.removesuffix(".photos.json") in paths, side.name


def test_fit_on_your_own_photographs_and_scan_with_it(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    """``python -m stegshield.scan.calibrate DIR --detector cnn --fit F`` then
    ``scan --calibration F``: the scan thresholds with the user's fit; a fit for other
    weights, or for a detector it cannot set, is refused with exit 2."""
    from click.testing import CliRunner
    from PIL import Image

    from stegshield.analysis.cnn.inference import resolve_model
    from stegshield.scan import calibrate
    from stegshield.scan.commands import scan
    from stegshield.scan.scanner import Scanner, ScanOptions
    from stegshield.scan.thresholds import learned_threshold

    from imagegen import natural_like

    photos = tmp_path / "mine"
    photos.mkdir()
    for i in range(12):
        Image.fromarray(natural_like(96, 128, seed=i)).save(photos / f"p{i}.png")
    fit_file = tmp_path / "cnn-fit.json"
    calibrate.main([str(photos), "--detector", "cnn", "--fit", str(fit_file)])
    fit = load_photo_calibration(resolve_model("default"), fit_file)
    assert fit is not None and fit.info["files"] == 12 and fit.info["detector"] == "cnn"
    # --fit never replaces a measured image, nor an existing file without --force
    before = (photos / "p3.png").read_bytes(), fit_file.read_bytes()
    for target, says in ((photos / "p3.png", "refusing to overwrite the calibration image"),
                         (fit_file, "already exists (use --force")):
        with pytest.raises(SystemExit) as stop:
            calibrate.main([str(photos), "--detector", "cnn", "--fit", str(target)])
        assert stop.value.code == 2 and says in capsys.readouterr().err
    assert ((photos / "p3.png").read_bytes(), fit_file.read_bytes()) == before
    for argv, says in (([str(tmp_path / "nosuch")], "no such file or directory"),
                       ([str(photos), "--detector", "bogus"], "unknown detector choice")):
        with pytest.raises(SystemExit) as stop:
            calibrate.main(argv)
        assert stop.value.code == 2 and says in capsys.readouterr().err
    det = Scanner(ScanOptions(detector="cnn", calibration=str(fit_file))).suite.members[0]
    for f in (0.01, 0.05):
        assert learned_threshold(det.detector, f) == pytest.approx(
            det.detector.calibration(fit.raw_at_fpr(f)))
    shipped = Scanner(ScanOptions(detector="cnn")).suite.members[0].detector
    assert learned_threshold(shipped, 0.01) != pytest.approx(learned_threshold(det.detector,
                                                                               0.01))
    # the summary line says where the thresholds come from
    assert "(fitted on 12 of your images)" in Scanner(ScanOptions(
        detector="cnn", calibration=str(fit_file))).thresholds.describe()
    assert "validation photographs)" in Scanner(ScanOptions(detector="cnn")
                                                ).thresholds.describe()
    img = str(photos / "p0.png")
    ok = CliRunner().invoke(scan, [img, "--detector", "cnn", "--calibration", str(fit_file),
                                   "--format", "jsonl"])
    assert ok.exit_code in (0, 1), ok.output
    wrong = CliRunner().invoke(scan, [img, "--thorough", "--calibration", str(fit_file)])
    assert wrong.exit_code == 2 and "--calibration cnn-fit.json: a fit for --detector cnn" in \
        wrong.output and "scan with --detector cnn" in wrong.output
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"law": "gumbel", "mu": 1.0, "beta": 1.0}))
    broken = CliRunner().invoke(scan, [img, "--detector", "cnn", "--calibration", str(bad)])
    assert broken.exit_code == 2 and "no field 'sha256'" in broken.output
    assert "Traceback" not in broken.output
    classical = CliRunner().invoke(scan, [img, "--detector", "classical", "--calibration",
                                          str(fit_file)])
    assert classical.exit_code == 2 and "--calibration" in classical.output
    # the HTTP API: the fit applies to the server's --detector, other choices keep theirs
    import warnings

    from stegshield.server.app import ServerConfig, create_app
    from stegshield.server.commands import serve
    with warnings.catch_warnings():  # starlette: the httpx-based TestClient is deprecated
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient
    png = (photos / "p1.png").read_bytes()
    with TestClient(create_app(ServerConfig(detector="cnn", calibration=fit_file,
                                            workers=1))) as client:
        own = client.post("/v1/scan", files={"file": ("a.png", png, "image/png")})
        assert own.status_code == 200 and "of your images" in own.json()["thresholds"]
        other = client.post("/v1/scan?detector=cnn-thorough",
                            files={"file": ("a.png", png, "image/png")})
        assert other.status_code == 200
        assert "validation photographs" in other.json()["thresholds"]
    refused = CliRunner().invoke(serve, ["--detector", "classical", "--calibration",
                                         str(fit_file)])
    assert refused.exit_code == 2 and "--calibration" in refused.output

    # a cover corpus: its 12 validation files from 10 source photographs (two pairs)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "packages.json").write_text(json.dumps([{"package": "pk", "root": str(photos)}]))
    (corpus / "manifest.jsonl").write_text("")
    (corpus / "sources.jsonl").write_text("".join(
        json.dumps({"file": f"p{i}.png", "group": f"g{min(i, 8 + (i - 8) // 2)}",
                    "kept": True, "package": "pk",
                    "split": "val"}) + "\n" for i in range(12)))
    out = tmp_path / "corpus-fit.json"
    calibrate.main(["--corpus", str(corpus), "--splits", "val", "--photos", "--detector",
                    "cnn", "--fit", str(out)])
    capsys.readouterr()
    assert PhotoCalibration.from_json(json.loads(out.read_text())).info["photos"] == 10
    for args, why in (
            (["--detector", "srm"], "--fit calibrates one of"),
            (["--detector", "pretrained"], "--fit calibrates one of"),
            (["--detector", "cnn", "--corpus", str(corpus)], "--splits val"),
            (["--detector", "cnn", "--corpus", str(corpus), "--splits", "val"], "--photos"),
            (["--detector", "cnn", "--corpus", str(tmp_path / "none"), "--splits", "val",
              "--photos"], "not a cover corpus")):
        with pytest.raises(SystemExit) as exc:
            calibrate.main([str(photos), *args, "--fit", str(tmp_path / "x.json")])
        assert exc.value.code == 2 and not (tmp_path / "x.json").exists(), args
        assert why in capsys.readouterr().err, args
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "junk.png").write_bytes(b"not an image")
    with pytest.raises(SystemExit) as exc:
        calibrate.main([str(empty), "--detector", "cnn", "--fit", str(tmp_path / "x.json")])
    assert exc.value.code == 2
    assert "got 0 from 1 files (1 unreadable)" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:  # an output folder that does not exist
        calibrate.main([str(photos), "--detector", "cnn", "--fit",
                        str(tmp_path / "no" / "x.json")])
    assert exc.value.code == 2 and "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize(("detector", "shape"), [
    ("cnn", (1224, 968)), ("fused", (1224, 968)), ("pretrained", (1100, 560)),
    ("cnn", (1088, 1050)), ("fused", (1088, 1050))])  # edge strips of 64 and 26 px
def test_block_scanning_keeps_the_statistic_the_thresholds_were_fitted_on(
        detector: str, shape: tuple[int, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Images over BLOCK_PIXELS are scanned block by block; a tiled detector's blocks must
    combine into the whole image's largest-tile statistic (the one its photo fit describes),
    not into an average of block scores (a 4300² LSB-matching photo read FPR 0.037 instead of
    0.023)."""
    from stegshield.analysis.synthetic import lsb_match
    from stegshield.scan import suite as suite_mod

    from imagegen import natural_like

    x = lsb_match(natural_like(*shape, channels=3, seed=3), 0.2, np.random.default_rng(0))
    s = suite_mod.build_suite(detector)
    whole = s.analyse(x)
    monkeypatch.setattr(suite_mod, "BLOCK_PIXELS", 512 * 512)
    monkeypatch.setattr(suite_mod, "BLOCK_SIDE", 512)
    blocks = s.analyse(x)
    assert blocks.fprs[detector] == pytest.approx(whole.fprs[detector], rel=1e-6)
    assert blocks.stats[detector] == pytest.approx(whole.stats[detector], rel=1e-6)

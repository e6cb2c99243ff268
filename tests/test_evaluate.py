"""Detector evaluation: metrics, pairing, report files and the ``evaluate`` command."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stegshield.datasets import stego as st
from stegshield.training import evaluate as ev
from stegshield.training.commands import evaluate as evaluate_cmd

from imagegen import natural_like

N_COVERS = 10


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """10 gray 96×96 covers, LSBR at 0.4 and LSBM at 0.1, plus one unpaired stego image."""
    root = tmp_path_factory.mktemp("evalset")
    cdir = root / "covers"
    cdir.mkdir()
    for i in range(N_COVERS):
        Image.fromarray(natural_like(96, 96, seed=100 + i)).save(cdir / f"img{i:02d}.png")
    out = root / "stego"
    st.generate_stego(st.list_covers(cdir), out, ["lsbr"], st.parse_rates("0.4"),
                      progress=False)
    st.generate_stego(st.list_covers(cdir), out, ["lsbm"], st.parse_rates("0.1"),
                      progress=False)
    Image.fromarray(natural_like(96, 96, seed=7)).save(out / "lsbr" / "0.4" / "orphan.png")
    return cdir, out


def _s(score: float, raw: float | None = None, payload: float | None = None) -> ev.ImageScore:
    return ev.ImageScore(score, score if raw is None else raw, payload)


def test_set_metrics_hand_example() -> None:
    cover = [_s(0.1, payload=0.01), _s(0.4, payload=0.03)]
    stego = [_s(0.35, payload=0.30), _s(0.8, payload=0.45)]
    m = ev.set_metrics(cover, stego, [0.4, 0.4])
    assert m["pairs"] == 2 and m["errors"] == 0
    assert m["auc"] == pytest.approx(0.75)
    assert m["p_e"] == pytest.approx(0.25)
    assert m["tpr_at_0.01"] == pytest.approx(0.5)
    assert m["payload_mae"] == pytest.approx(0.075)
    assert m["payload_bias"] == pytest.approx(-0.025)
    assert m["cover_payload_mean"] == pytest.approx(0.02)
    # a failed image drops its pair; no true payload -> no MAE
    bad = ev.ImageScore(math.nan, math.nan, None, "boom")
    m = ev.set_metrics([cover[0], bad], stego, [None, None])
    assert m["pairs"] == 1 and m["errors"] == 1 and "payload_mae" not in m


def test_ranking_breaks_saturated_scores_by_raw() -> None:
    score = np.array([1.0, 1.0, 0.5, 0.2, 1.0])
    raw = np.array([40.0, 55.0, np.nan, -3.0, 40.0])
    ranks = ev.ranking_scores(score, raw)
    assert list(ranks) == [3, 4, 2, 1, 3]
    m = ev.set_metrics([_s(1.0, 40.0), _s(0.5, math.nan), _s(0.2, -3.0)],
                       [_s(1.0, 55.0), _s(1.0, 40.0), _s(1.0, 70.0)], [None] * 3)
    assert m["auc"] == pytest.approx((3 + 3 + 2.5) / 9)  # only the exact (1.0, 40) pair ties


def test_find_stego_sets_expands_a_root(dataset: tuple[Path, Path]) -> None:
    _, out = dataset
    sets = ev.find_stego_sets([out])
    assert [s.label for s in sets] == ["lsbr/0.4", "lsbm/0.1"]
    assert len(sets[0].items) == N_COVERS  # the orphan is not in the manifest
    assert all(t == pytest.approx(0.4, abs=1e-3) for _, t in sets[0].items.values())
    plain = ev.find_stego_sets([out / "lsbr" / "0.4"])[0]
    assert plain.label == "lsbr/0.4"
    bare = ev.load_stego_set(out / "lsbr" / "0.4").items
    assert len(bare) == N_COVERS


def test_evaluate_metrics_and_report_files(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    cdir, out = dataset
    # a folder without manifest: pairs by name, no true payload, orphan unpaired
    bare = tmp_path / "bare"
    bare.mkdir()
    for p in (out / "lsbr" / "0.4").glob("*.png"):
        (bare / p.name).write_bytes(p.read_bytes())
    sets = ev.find_stego_sets([out, bare])
    report = ev.evaluate(["ws", "chi_square"], st.list_covers(cdir), sets, covers_label="c")
    res = {(r["detector"], r["set"]): r for r in report.results}
    lsbr = res[("ws", "lsbr/0.4")]
    assert lsbr["pairs"] == N_COVERS and lsbr["auc"] == 1.0 and lsbr["p_e"] == 0.0
    assert lsbr["tpr_at_0.05"] == 1.0
    assert lsbr["payload_mae"] < 0.1 and abs(lsbr["true_payload_mean"] - 0.4) < 1e-3
    assert res[("ws", "lsbm/0.1")]["auc"] < 0.9  # WS is blind to LSB matching
    bare_row = next(r for r in report.results if r["set"].endswith("/bare")
                    and r["detector"] == "ws")
    assert bare_row["auc"] == 1.0 and "payload_mae" not in bare_row
    assert next(s for s in report.sets if s["label"].endswith("bare"))["unpaired"] == 1

    files = ev.write_report(report, tmp_path / "rep", title="T")
    names = {p.name for p in files}
    assert names == {"report.json", "report.md", "roc.png", "scores.csv"}
    data = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert {r["detector"] for r in data["results"]} == {"ws", "chi_square"}
    assert data["roc"]["ws"]["lsbr/0.4"]["auc"] == 1.0
    md = (tmp_path / "rep" / "report.md").read_text()
    assert md.startswith("# T") and "| lsbr/0.4 | 10 |" in md and "## chi_square" in md
    assert (tmp_path / "rep" / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    lines = (tmp_path / "rep" / "scores.csv").read_text().splitlines()
    assert len(lines) == 1 + 2 * (N_COVERS * 4)  # 2 detectors × (covers + three sets)
    with pytest.raises(FileExistsError):
        ev.write_report(report, tmp_path / "rep")


def test_cli_evaluate(dataset: tuple[Path, Path], tmp_path: Path) -> None:
    cdir, out = dataset
    runner = CliRunner()
    rep = tmp_path / "rep"
    args = ["--covers", str(cdir), "--stego", str(out / "lsbr" / "0.4"), "--out", str(rep)]
    r = runner.invoke(evaluate_cmd, ["--detector", "spa", "-d", "rs,ws", *args])
    assert r.exit_code == 0, r.output
    assert "| lsbr/0.4 | 10 | 1.000 / 0.000 /" in r.output
    assert (rep / "roc.png").exists() and (rep / "report.md").exists()
    r = runner.invoke(evaluate_cmd, ["--detector", "spa", *args])
    assert r.exit_code == 2 and "already exists" in r.output
    r = runner.invoke(evaluate_cmd, ["--detector", "spa", "--force", "-q", *args])
    assert r.exit_code == 0 and r.output == ""
    r = runner.invoke(evaluate_cmd, ["--detector", "nope", *args])
    assert r.exit_code == 2 and "unknown detector nope; available:" in r.output
    assert r.output.count("\n") == 1
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(evaluate_cmd, ["--detector", "ws", "--covers", str(cdir), "--stego",
                                     str(empty)])
    assert r.exit_code == 2 and "no stego images" in r.output
    # the covers as their own stego (AUC 0.5, exit 0 before), and a report inside a stego set
    r = runner.invoke(evaluate_cmd, ["--detector", "ws", "--covers", str(cdir), "--stego",
                                     str(cdir)])
    assert r.exit_code == 2 and "is or contains the covers folder" in r.output
    r = runner.invoke(evaluate_cmd, ["--detector", "ws", "--covers", str(cdir), "--stego",
                                     str(cdir.parent)])  # a folder above the covers too
    assert r.exit_code == 2 and "is or contains the covers folder" in r.output
    inside = out / "lsbr" / "0.4" / "rep"
    r = runner.invoke(evaluate_cmd, ["--detector", "ws", "--covers", str(cdir), "--stego",
                                     str(out / "lsbr" / "0.4"), "--out", str(inside)])
    assert r.exit_code == 2 and "inside an input folder" in r.output and not inside.exists()


def test_stego_named_like_a_cover_of_another_size_is_not_paired(tmp_path: Path) -> None:
    """Corpus tiles of 128 and 256 px share names: 128 px covers were scored against 256 px
    stego crops of the same name, silently."""
    small, big = tmp_path / "c128", tmp_path / "s256"
    small.mkdir()
    big.mkdir()
    for i in range(4):
        Image.fromarray(natural_like(64, 64, seed=i)).save(small / f"t{i}.png")
        Image.fromarray(natural_like(96, 96, seed=i)).save(big / f"t{i}.png")
    Image.fromarray(natural_like(64, 64, seed=9)).save(big / "t0.png")  # one true pair
    sets = ev.find_stego_sets([big])
    report = ev.evaluate(["ws"], sorted(small.glob("*.png")), sets, progress=False)
    info = report.sets[0]
    assert info["pairs"] == 1 and info["size_mismatch"] == 3
    with pytest.raises(ValueError, match="another tile size"):
        ev.evaluate(["ws"], sorted(small.glob("t[123].png")), sets, progress=False)


def _folders(tmp_path: Path, n: int, size: int) -> tuple[Path, Path]:
    """A folder of ``n`` covers and one of ``n`` same-named "stego" images (other content)."""
    covers, stego = tmp_path / "c", tmp_path / "s"
    covers.mkdir()
    stego.mkdir()
    for i in range(n):
        Image.fromarray(natural_like(size, size, seed=i)).save(covers / f"t{i}.png")
        Image.fromarray(natural_like(size, size, seed=i + 9)).save(stego / f"t{i}.png")
    return covers, stego


def test_cli_evaluate_fails_when_no_pair_could_be_scored(tmp_path: Path) -> None:
    """Every pair failing (unreadable stego) gave a report of dashes and exit 0, and the
    unreadable files were described as "named like a cover of another size"."""
    from stegshield.training.commands import evaluate as evaluate_cmd

    covers, stego = _folders(tmp_path, 3, 64)
    for i in range(3):
        (stego / f"t{i}.png").write_bytes(b"not a png")
    report = ev.evaluate(["ws"], sorted(covers.glob("*.png")), ev.find_stego_sets([stego]),
                         progress=False)
    assert report.sets[0]["size_mismatch"] == 0 and report.results[0]["errors"] == 3
    r = CliRunner().invoke(evaluate_cmd, ["-d", "ws", "--covers", str(covers), "--stego",
                                          str(stego), "--quiet"])
    assert r.exit_code == 2 and "no pair could be scored" in r.output, r.output


def test_images_too_small_to_judge_are_errors_not_chance(tmp_path: Path) -> None:
    """48 px covers scored 0.5 everywhere (the detectors' too-small rule) and the report
    showed AUC 0.500 with exit 0."""
    covers, stego = _folders(tmp_path, 4, 48)
    report = ev.evaluate(["ws"], sorted(covers.glob("*.png")), ev.find_stego_sets([stego]),
                         progress=False)
    assert report.results[0]["pairs"] == 0 and report.results[0]["errors"] == 4
    assert "too small to judge" in report.scores[0]["error"]


def test_images_under_a_detectors_own_minimum_are_errors(tmp_path: Path) -> None:
    """fused judges 128 px tiles: on 100 px images it answered 0.5 everywhere (AUC 0.500,
    exit 0), though 100 px passes the global too-small rule."""
    pytest.importorskip("torch")
    covers, stego = _folders(tmp_path, 3, 100)
    report = ev.evaluate(["fused"], sorted(covers.glob("*.png")), ev.find_stego_sets([stego]),
                         progress=False)
    assert report.results[0]["pairs"] == 0 and "too small for fused" in report.scores[0]["error"]


def test_unknown_detectors_are_stegshield_errors_and_model_files_are_detectors(
        tmp_path: Path) -> None:
    """get_detector("nope") raised a plain KeyError though the README promises a
    StegshieldError; a trained model file could not be evaluated at all."""
    from stegshield.analysis import get_detector
    from stegshield.errors import StegshieldError

    with pytest.raises(StegshieldError, match="unknown detector 'nope'"):
        get_detector("nope")
    with pytest.raises(KeyError):  # still a KeyError for older callers
        get_detector("nope")
    pytest.importorskip("torch")
    from stegshield.analysis.cnn.inference import WEIGHTS_DIR

    model = str(WEIGHTS_DIR / "light-gray.safetensors")
    det = get_detector(model)
    assert det.name == model and 0 <= det.detect(natural_like(128, 128)).score <= 1
    assert get_detector(Path(model)).name == model  # a Path too (AttributeError before)
    with pytest.raises(KeyError):
        get_detector(None)  # type: ignore[arg-type]


def test_a_file_that_is_not_a_detector_fails_once_with_one_line(tmp_path: Path) -> None:
    """A checkpoint or corrupt .safetensors given to evaluate -d was loaded (and failed) once
    per image, ending in "no pair could be scored" and a torch error."""
    from stegshield.training.commands import evaluate as evaluate_cmd

    covers, stego = _folders(tmp_path, 1, 64)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    r = CliRunner().invoke(evaluate_cmd, ["-d", str(bad), "--covers", str(covers), "--stego",
                                          str(stego), "--quiet"])
    assert r.exit_code == 2 and "not a trained detector" in r.output, r.output
    r = CliRunner().invoke(evaluate_cmd, ["-d", str(tmp_path / "none.safetensors"), "--covers",
                                          str(covers), "--stego", str(stego), "--quiet"])
    assert r.exit_code == 2 and "no such model file" in r.output, r.output

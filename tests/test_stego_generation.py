"""Stego dataset generation: conseal equivalence, determinism, payload checks, layout, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stegshield.datasets import stego as st
from stegshield.datasets.commands import dataset
from stegshield.stego.errors import MAX_RATE

from imagegen import natural_like


def _save(path: Path, a: np.ndarray) -> Path:
    Image.fromarray(a).save(path)
    return path


@pytest.fixture(scope="module")
def covers(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    d = tmp_path_factory.mktemp("covers")
    return [_save(d / "a_gray.png", natural_like(64, 64, seed=1)),
            _save(d / "b_gray.png", natural_like(64, 64, seed=2)),
            _save(d / "c_rgb.png", natural_like(48, 48, channels=3, seed=3))]


def _flat_cover() -> np.ndarray:
    """Flat except an 8×8 textured patch: HILL can carry at most ~0.025 bpp here."""
    a = np.full((64, 64), 128, np.uint8)
    a[:8, :8] += np.random.default_rng(0).integers(0, 20, (8, 8)).astype(np.uint8)
    return a


def test_parse_rates_and_algos() -> None:
    r = st.parse_rates("0.05, 0.4,10%")
    assert [x.label for x in r] == ["0.05", "0.4", "10pct"]
    assert r[2].bps("seqlsb") == pytest.approx(0.1)
    assert r[2].bps("stegshield") == pytest.approx(0.1 * MAX_RATE)
    assert r[2].bps("hill") == pytest.approx(0.1 * np.log2(3))
    for bad in ("0", "1.5", "x", "120%", "0.1,0.1", ""):
        with pytest.raises(ValueError):
            st.parse_rates(bad)
    assert st.parse_algos("hill,lsbr") == ["lsbr", "hill"]
    assert st.parse_algos("all") == list(st.ALGORITHMS)
    with pytest.raises(ValueError, match="unknown algorithm"):
        st.parse_algos("hill,f5")


def test_seed_depends_on_name_algo_and_rate() -> None:
    s = st.derive_seed("img", "hill", "0.4")
    assert s == st.derive_seed("img", "hill", "0.4") and 0 <= s < 2**63
    assert len({s, st.derive_seed("img2", "hill", "0.4"), st.derive_seed("img", "wow", "0.4"),
                st.derive_seed("img", "hill", "0.2")}) == 4


@pytest.mark.parametrize("algo", ["lsbr", "lsbm", "hill", "suniward", "wow"])
def test_identical_to_conseal_simulators(algo: str) -> None:
    import conseal as cl

    x = natural_like(48, 48, seed=5)
    ref = {
        "lsbr": lambda: cl.lsb.simulate(x, 0.3, modify=cl.LSB_REPLACEMENT, seed=9),
        "lsbm": lambda: cl.lsb.simulate(x, 0.3, modify=cl.LSB_MATCHING, seed=9),
        "hill": lambda: cl.hill.simulate_single_channel(x, 0.3, seed=9),
        "suniward": lambda: cl.suniward.simulate_single_channel(x, 0.3, seed=9),
        "wow": lambda: cl.wow.simulate_single_channel(x, 0.3, seed=9),
    }[algo]()
    res = st.embed_stego(x, "L", algo, 0.3, 9)
    np.testing.assert_array_equal(res.pixels, ref)
    assert not res.flagged
    assert res.payload_bps == pytest.approx(0.3, rel=0.02)
    assert res.changes == int(np.count_nonzero(res.pixels != x))
    assert abs(res.changes - res.expected_changes) < 6 * np.sqrt(res.expected_changes) + 1
    assert np.abs(res.pixels.astype(int) - x).max() <= 1


def test_hill_under_embedding_is_flagged() -> None:
    res = st.embed_stego(_flat_cover(), "L", "hill", 0.4, 1)
    assert res.flagged and res.reason.startswith("under-embedded")
    assert res.payload_bps < 0.03
    ok = st.embed_stego(natural_like(64, 64, seed=1), "L", "hill", 0.4, 1)
    assert not ok.flagged


def test_ternary_entropy() -> None:
    p = np.full(4, 1 / 3)
    assert st.ternary_entropy(p, p) == pytest.approx(4 * np.log2(3))
    assert st.ternary_entropy(np.zeros(3), np.zeros(3)) == 0.0


def test_seqlsb_changes_only_a_reading_order_prefix() -> None:
    for x, mode in ((natural_like(40, 50, seed=4), "L"),
                    (natural_like(40, 50, channels=3, seed=4), "RGB")):
        res = st.embed_stego(x, mode, "seqlsb", 0.3, 11)
        flat0, flat1 = x.reshape(-1), res.pixels.reshape(-1)  # row-major, channels interleaved
        m = round(0.3 * flat0.size)
        changed = np.flatnonzero(flat0 != flat1)
        assert changed.size > 0.4 * m and changed.max() < m
        assert np.all((flat0 ^ flat1) <= 1)  # only LSBs
        bits = np.random.default_rng(11).integers(0, 2, size=m, dtype=np.uint8)
        np.testing.assert_array_equal(flat1[:m] & 1, bits)
        assert res.payload_bps == pytest.approx(m / flat0.size)


def test_stegshield_real_stego_reveals_and_keeps_alpha() -> None:
    x = natural_like(48, 48, channels=4, seed=6)
    x[..., 3] = 200
    res = st.embed_stego(x, "RGBA", "stegshield", 0.2, 3)
    assert not res.flagged, res.reason
    assert res.payload_bps == pytest.approx(0.2, abs=0.01)
    np.testing.assert_array_equal(res.pixels[..., 3], x[..., 3])
    assert 0 < res.changes == int(np.count_nonzero(res.pixels != x))
    again = st.embed_stego(x, "RGBA", "stegshield", 0.2, 3)
    np.testing.assert_array_equal(res.pixels, again.pixels)  # fixed salt: reproducible
    assert st.embed_stego(x, "RGBA", "stegshield", 0.8, 3).flagged  # above MAX_RATE


def test_generate_is_deterministic_and_names_match(covers: list[Path], tmp_path: Path) -> None:
    algos = ["lsbr", "lsbm", "hill", "stegshield", "seqlsb"]
    rates = st.parse_rates("0.2,50%")
    a = st.generate_stego(covers, tmp_path / "a", algos, rates, progress=False)
    b = st.generate_stego(covers, tmp_path / "b", algos, rates, jobs=2, progress=False)
    assert a.flagged == 0 and set(a.sets) == {f"{g}/{r.label}" for g in algos for r in rates}
    assert b.sets == a.sets
    stems = {c.stem for c in covers}
    for key in a.sets:
        da, db = tmp_path / "a" / key, tmp_path / "b" / key
        assert {p.stem for p in da.glob("*.png")} == stems
        for p in da.glob("*.png"):
            assert p.read_bytes() == (db / p.name).read_bytes()
        rows = st.read_manifest(da / "manifest.jsonl")
        assert rows == st.read_manifest(db / "manifest.jsonl")
        assert {r["name"] for r in rows} == stems
        for r in rows:
            assert r["payload_bps"] >= 0.95 * r["target_bps"] and not r["flagged"]
            assert set(r) >= {"name", "algo", "rate", "payload_bps", "changes", "flagged"}
    # the root manifest is the union; colour covers stay colour
    assert len(st.read_manifest(tmp_path / "a" / "manifest.jsonl")) == 3 * len(a.sets)
    assert Image.open(tmp_path / "a" / "hill" / "0.2" / "c_rgb.png").mode == "RGB"
    # existing sets are skipped unless forced
    again = st.generate_stego(covers, tmp_path / "a", ["lsbr"], rates[:1], progress=False)
    assert again.skipped == ["lsbr/0.2"] and not again.sets
    # ... but a set made from other covers (another --limit, split or tile) was skipped too,
    # with exit 0, and evaluate then found pairs missing
    with pytest.raises(ValueError, match="made from other covers"):
        st.generate_stego(covers[:2], tmp_path / "a", ["lsbr"], rates[:1], progress=False)


def test_flagged_images_are_recorded_but_not_written(tmp_path: Path) -> None:
    cdir = tmp_path / "c"
    cdir.mkdir()
    covers = [_save(cdir / "flat.png", _flat_cover()),
              _save(cdir / "photo.png", natural_like(64, 64, seed=1))]
    s = st.generate_stego(covers, tmp_path / "o", ["hill"], st.parse_rates("0.4"),
                          progress=False)
    assert s.sets["hill/0.4"]["flagged"] == 1 and s.sets["hill/0.4"]["written"] == 1
    rows = {r["name"]: r for r in st.read_manifest(tmp_path / "o/hill/0.4/manifest.jsonl")}
    assert rows["flat"]["flagged"] and rows["flat"]["path"] is None
    assert "under-embedded" in rows["flat"]["reason"]
    assert not (tmp_path / "o/hill/0.4/flat.png").exists()
    st.generate_stego(covers, tmp_path / "k", ["hill"], st.parse_rates("0.4"),
                      keep_flagged=True, progress=False)
    assert (tmp_path / "k/hill/0.4/flat.png").exists()


def test_list_covers_reads_a_corpus_manifest(tmp_path: Path) -> None:
    for split, tile, name in (("test", 64, "x"), ("test", 32, "x"), ("train", 64, "y")):
        d = tmp_path / split / str(tile)
        d.mkdir(parents=True, exist_ok=True)
        _save(d / f"{name}.png", natural_like(tile, tile))
    rows = [{"path": f"{s}/{t}/{n}.png", "split": s, "tile": t}
            for s, t, n in (("test", 64, "x"), ("test", 32, "x"), ("train", 64, "y"))]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert st.list_covers(tmp_path, split="test", tile=64) == [tmp_path / "test/64/x.png"]
    assert [p.name for p in st.list_covers(tmp_path, tile=64)] == ["x.png", "y.png"]
    with pytest.raises(ValueError, match="no split 'nosplit'; the corpus has"):
        st.list_covers(tmp_path, split="nosplit")  # said "no cover images found"
    with pytest.raises(ValueError, match="no tile 100; the corpus has"):
        st.list_covers(tmp_path, tile=100)
    with pytest.raises(ValueError, match="--tile"):
        st.list_covers(tmp_path, split="test")  # two covers named x
    with pytest.raises(ValueError, match="manifest"):
        st.list_covers(tmp_path / "test" / "64", split="test")


def test_cli_stego(covers: list[Path], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "out"
    r = runner.invoke(dataset, ["stego", "--covers", str(covers[0].parent), "--out", str(out),
                                "--algo", "lsbr,seqlsb", "--rate", "0.1,50%"])
    assert r.exit_code == 0, r.output
    assert "lsbr/50pct: 3/3 written, 0 flagged" in r.output
    assert (out / "seqlsb" / "50pct" / "a_gray.png").exists()
    r = runner.invoke(dataset, ["stego", "--covers", str(covers[0].parent), "--out", str(out),
                                "--algo", "lsbr", "--rate", "0.1"])
    assert r.exit_code == 0 and "skipped" in r.output
    # JPEG covers in a plain folder were left out without a word
    Image.fromarray(natural_like(64, 64)).save(covers[0].parent / "photo.jpg")
    r = runner.invoke(dataset, ["stego", "--covers", str(covers[0].parent), "--out", str(out),
                                "--algo", "lsbr", "--rate", "0.1"])
    assert r.exit_code == 0 and "1 JPEG/WebP file(s)" in r.output and "photo.jpg" in r.output
    (covers[0].parent / "photo.jpg").unlink()
    for args, msg in ((["--algo", "f5"], "unknown algorithm"), (["--rate", "2"], "bad rate"),
                      (["--split", "test"], "manifest.jsonl")):
        r = runner.invoke(dataset, ["stego", "--covers", str(covers[0].parent), "--out",
                                    str(out), *args])
        assert r.exit_code == 2 and msg in r.output, r.output
        assert r.output.startswith("stegshield: error:") and r.output.count("\n") == 1
    r = runner.invoke(dataset, ["stego", "--covers", str(tmp_path / "nope"), "--out", str(out)])
    assert r.exit_code == 2
    # --out at or inside the covers folder (it replaced a corpus manifest); nothing written
    src = covers[0].parent
    before = sorted(p.name for p in src.rglob("*"))
    for bad in (src, src / "stego"):
        r = runner.invoke(dataset, ["stego", "--covers", str(src), "--out", str(bad),
                                    "--algo", "lsbr", "--rate", "0.1"])
        assert r.exit_code == 2 and "is the covers folder or inside it" in r.output, r.output
    assert sorted(p.name for p in src.rglob("*")) == before
    r = runner.invoke(dataset, ["covers", "--out", str(tmp_path / "c"), "--from", str(src),
                                "--tile", "0"])
    assert r.exit_code == 2 and "positive" in r.output and "Traceback" not in r.output


def test_cli_covers_passes_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from stegshield.datasets import covers as covers_mod

    seen: dict = {}

    def fake_build(out_dir, **kw):  # type: ignore[no-untyped-def]
        seen.update(kw, out_dir=out_dir)
        m = covers_mod.CoverManifest(out_dir=Path(out_dir), summary={
            "images_kept": 2, "candidates": 5, "groups_kept": 2,
            "per_split": {"train": {"tiles": {"256": 3}}, "test": {"tiles": {"256": 1}}}})
        m.tiles.extend({} for _ in range(4))
        return m

    monkeypatch.setattr(covers_mod, "build_covers", fake_build)
    runner = CliRunner()
    r = runner.invoke(dataset, ["covers", "--out", str(tmp_path / "c"), "--from", str(tmp_path),
                                "--no-debian", "--tile", "128", "--scales", "2,4",
                                "--rgb", "--max-tiles-per-image", "3"])
    assert r.exit_code == 0, r.output
    assert seen["debian"] is False and seen["tile"] == (128,) and seen["scales"] == (2, 4)
    assert seen["mode"] == "rgb" and seen["max_tiles_per_image"] == 3
    assert seen["from_dirs"] == (tmp_path,)
    assert "2 photographs kept" in r.output
    r = runner.invoke(dataset, ["covers", "--out", str(tmp_path / "c"), "--no-debian"])
    assert r.exit_code == 2 and "nothing to build from" in r.output
    r = runner.invoke(dataset, ["covers", "--out", str(tmp_path / "c")])  # Debian is opt-in
    assert r.exit_code == 2 and "--debian" in r.output
    r = runner.invoke(dataset, ["covers", "--out", str(tmp_path / "d"), "--debian"])
    assert r.exit_code == 0 and seen["debian"] is True and seen["mode"] == "gray"


def test_cli_covers_refuses_an_existing_corpus_without_force(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dataset covers` into a folder that holds a corpus rebuilt over it silently (its
    manifest replaced, tiles of other settings left behind); now it needs --force, which
    removes the old tiles the new build did not write (never files outside the folder)."""
    import json

    from stegshield.datasets import covers as covers_mod

    out = tmp_path / "c"
    (out / "train" / "256").mkdir(parents=True)
    for name in ("a.png", "b.png"):
        (out / "train" / "256" / name).write_bytes(b"tile")
    (tmp_path / "outside.png").write_bytes(b"keep me")
    rows = [{"path": "train/256/a.png"}, {"path": "train/256/b.png"}, {"path": "../outside.png"}]
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def fake_build(out_dir, **kw):  # type: ignore[no-untyped-def]
        m = covers_mod.CoverManifest(out_dir=Path(out_dir), summary={"images_kept": 1})
        m.tiles.append({"path": "train/256/a.png"})
        return m

    monkeypatch.setattr(covers_mod, "build_covers", fake_build)
    args = ["covers", "--out", str(out), "--from", str(tmp_path)]
    r = CliRunner().invoke(dataset, args)
    assert r.exit_code == 2 and "already holds a corpus" in r.output and "--force" in r.output
    assert (out / "train" / "256" / "b.png").exists()
    r = CliRunner().invoke(dataset, [*args, "--force"])
    assert r.exit_code == 0, r.output
    assert (out / "train" / "256" / "a.png").exists()
    assert not (out / "train" / "256" / "b.png").exists()
    assert (tmp_path / "outside.png").read_bytes() == b"keep me"


def test_cli_covers_that_yield_no_tile_fail(tmp_path: Path) -> None:
    """A folder whose images all fail (here: too small) built an empty corpus with exit 0."""
    from PIL import Image

    src = tmp_path / "small"
    src.mkdir()
    for i in range(3):
        Image.fromarray(np.random.default_rng(i).integers(0, 256, (96, 96), np.uint8)).save(
            src / f"s{i}.png")
    r = CliRunner().invoke(dataset, ["covers", "--out", str(tmp_path / "c"), "--from", str(src)])
    assert r.exit_code == 2 and "no tiles: none of the 3 candidate images" in r.output, r.output
    assert "too_small 3" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(dataset, ["covers", "--out", str(tmp_path / "c"), "--from",
                                     str(src), "-v"])  # -v printed only the kept files
    assert "rejected local:small:s0.png: too_small" in r.output, r.output
    # that failed build must not block the next one ("already holds a corpus (0 tiles")
    Image.fromarray(np.random.default_rng(9).integers(0, 256, (96, 96), np.uint8)).save(
        src / "s9.png")
    r = CliRunner().invoke(dataset, ["covers", "--out", str(tmp_path / "c"), "--from", str(src)])
    assert "already holds" not in r.output and "none of the 4 candidate" in r.output, r.output


def test_cli_covers_reports_fetch_failures_without_verbose(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Offline, `dataset covers --debian` printed nothing for minutes (failures showed only
    with -v)."""
    from stegshield.datasets import covers as covers_mod

    def offline(spec, cache):  # type: ignore[no-untyped-def]
        raise OSError("Temporary failure resolving 'deb.debian.org'")

    monkeypatch.setattr(covers_mod, "fetch_source", offline)
    r = CliRunner().invoke(dataset, ["covers", "--out", str(tmp_path / "c"), "--debian"])
    assert r.exit_code == 2
    assert "warning: fetch failed" in r.output and "deb.debian.org" in r.output


def test_a_set_made_at_another_tile_size_is_not_skipped(tmp_path: Path) -> None:
    """Corpus tiles of every size share their names: --tile 96 into a set made at --tile 64
    was 'skipped' with exit 0, and the set kept its 64 px images."""
    import json

    root = tmp_path / "corpus"
    rows = []
    for size in (64, 96):
        (root / "test" / str(size)).mkdir(parents=True)
        for i in range(2):
            rel = f"test/{size}/t{i}.png"
            Image.fromarray(natural_like(size, size, seed=i)).save(root / rel)
            rows.append({"path": rel, "split": "test", "tile": size})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    rate = st.parse_rates("0.4")
    st.generate_stego(st.list_covers(root, tile=64), tmp_path / "s", ["lsbm"], rate,
                      progress=False)
    again = st.generate_stego(st.list_covers(root, tile=64), tmp_path / "s", ["lsbm"], rate,
                              progress=False)
    assert again.skipped == ["lsbm/0.4"]
    with pytest.raises(ValueError, match="made from other covers"):
        st.generate_stego(st.list_covers(root, tile=96), tmp_path / "s", ["lsbm"], rate,
                          progress=False)
    # the same names and sizes in colour (a --rgb corpus of the same photos)
    rgb = tmp_path / "rgb"
    rgb.mkdir()
    for i in range(2):
        Image.fromarray(natural_like(64, 64, 3, seed=i)).save(rgb / f"t{i}.png")
    with pytest.raises(ValueError, match="made from other covers"):
        st.generate_stego(st.list_covers(rgb), tmp_path / "s", ["lsbm"], rate, progress=False)


def test_cli_covers_warns_about_an_empty_split(tmp_path: Path) -> None:
    """A corpus with no validation tiles was built without a word; train found out later."""
    import shutil

    src = tmp_path / "one"
    src.mkdir()
    sample = sorted((Path(__file__).parent.parent / "samples").glob("*.png"))[0]
    shutil.copy(sample, src / sample.name)
    r = CliRunner().invoke(dataset, ["covers", "--out", str(tmp_path / "c"), "--from", str(src),
                                     "--tile", "64"])
    assert r.exit_code == 0 and "training needs train and val tiles" in r.output, r.output
    r = CliRunner().invoke(dataset, ["covers", "--out", str(tmp_path / "e"), "--from", str(src),
                                     "--tile", "64", "--fractions", "0.5,0.5,0"])
    assert "test split" not in r.output, r.output  # an intended empty test split is fine
    r = CliRunner().invoke(dataset, ["covers", "--out", str(tmp_path / "d"), "--from", str(src),
                                     "--fractions", "0.5,0.5"])
    assert r.exit_code == 2 and not (tmp_path / "d").exists()  # refused before creating OUT

"""Scanning on a Dask cluster (a light LocalCluster: threads, one worker)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

pytest.importorskip("dask.distributed")

from dask.distributed import Client, LocalCluster

from stegshield.analysis.synthetic import lsb_replace, synthetic_cover
from stegshield.scan import ScanOptions, scan_paths
from stegshield.scan.commands import scan
from stegshield.scan.distributed import scan_distributed


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=None, silence_logs=logging.ERROR) as c:
        yield c


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("dask")
    rng = np.random.default_rng(0)
    for i in range(10):
        cover = synthetic_cover(rng, (96, 96), channels=3)
        img = lsb_replace(cover, 0.6, rng) if i % 4 == 0 else cover
        Image.fromarray(img).save(d / f"img{i}.png")
    (d / "bad.png").write_bytes(b"nope")
    return d


def test_distributed_matches_local(cluster: LocalCluster, folder: Path) -> None:
    paths = sorted(folder.glob("*.png"))
    opts = ScanOptions(detector="classical")
    local = {r.path: r for r in scan_paths(paths, opts)}
    with Client(cluster) as client:
        remote = {r.path: r for r in scan_distributed(paths, opts, client=client, batch=3)}
    assert remote.keys() == local.keys()
    for k, r in local.items():
        assert (remote[k].verdict, remote[k].score) == (r.verdict, r.score)
    assert sum(r.verdict == "alert" for r in remote.values()) == 3
    assert remote[str(folder / "bad.png")].verdict == "error"


def test_cli_scheduler_option(cluster: LocalCluster, folder: Path) -> None:
    res = CliRunner().invoke(scan, ["--scheduler", cluster.scheduler_address, "--detector",
                                    "classical", "--format", "jsonl", str(folder)])
    rows = [json.loads(x) for x in res.stdout.splitlines()]
    assert res.exit_code == 1, res.stderr
    assert len(rows) == 11 and sum(r["verdict"] == "alert" for r in rows) == 3
    res = CliRunner().invoke(scan, ["--scheduler", "tcp://x:1", "--cluster", "local",
                                    str(folder)])
    assert res.exit_code == 2 and "not both" in res.stderr


def test_workers_get_absolute_paths_and_results_keep_the_given_ones(
        cluster: LocalCluster, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Relative paths were sent as given, so workers started in another folder (a real
    cluster) failed on every file; the table must still show the names the user typed."""
    from stegshield.scan import distributed

    real = distributed.scan_batch

    def checking(paths: list[str], options: ScanOptions) -> list:  # runs on the worker
        import os

        assert all(os.path.isabs(p) for p in paths), paths
        return real(paths, options)

    monkeypatch.setattr(distributed, "scan_batch", checking)
    monkeypatch.chdir(folder)
    with Client(cluster) as client:
        got = list(scan_distributed(["img0.png", "img1.png", "./img0.png"],
                                    ScanOptions(detector="classical"), client=client))
    assert sorted(r.path for r in got) == ["./img0.png", "img0.png", "img1.png"]
    assert all(r.verdict != "error" for r in got), [r.error for r in got]


def test_unreachable_scheduler_is_a_one_line_error(folder: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad or unreachable --scheduler ended in a traceback and exit 1 ("alert found")."""
    from stegshield.scan import distributed

    monkeypatch.setattr(distributed, "CONNECT_TIMEOUT", "1s")
    for address in ("notanaddress", "tcp://127.0.0.1:9"):
        res = CliRunner().invoke(scan, ["--scheduler", address, "--detector", "classical",
                                        str(folder / "img0.png")])
        assert res.exit_code == 2, (address, res.output)
        assert "cannot reach the Dask scheduler" in res.stderr
        assert "Traceback" not in res.output

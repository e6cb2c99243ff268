"""Command-line behaviour users rely on: exit codes, messages, password sources, no clobbering."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from stegshield import __version__
from stegshield.cli import main

from imagegen import natural_like

PW = "s3cret pass"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def cover(tmp_path: Path, sample_paths: list[Path]) -> Path:
    dst = tmp_path / "cover.png"
    shutil.copy(sample_paths[0], dst)
    return dst


def test_console_script_version_and_help() -> None:
    exe = Path(sys.executable).parent / "stegshield"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert __version__ in out.stdout
    helptext = subprocess.run([str(exe), "--help"], capture_output=True, text=True).stdout
    for cmd in ("hide", "reveal", "capacity"):
        assert cmd in helptext


def test_message_round_trip_with_password_option(runner: CliRunner, cover: Path,
                                                 tmp_path: Path) -> None:
    out = tmp_path / "stego.png"
    r = runner.invoke(main, ["hide", str(cover), "-o", str(out), "-m", "meet at 6 ⚑",
                             "--password", PW])
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["reveal", str(out), "--password", PW])
    assert r.exit_code == 0 and r.stdout.strip() == "meet at 6 ⚑"


def test_password_from_environment(runner: CliRunner, cover: Path, tmp_path: Path) -> None:
    out = tmp_path / "stego.png"
    env = {"STEGSHIELD_PASSWORD": PW}
    assert runner.invoke(main, ["hide", str(cover), "-o", str(out), "-m", "env"],
                         env=env).exit_code == 0
    r = runner.invoke(main, ["reveal", str(out)], env=env)
    assert r.exit_code == 0 and r.stdout.strip() == "env"
    # --password takes precedence over the environment
    r = runner.invoke(main, ["reveal", str(out), "--password", "other"], env=env)
    assert r.exit_code == 1


def test_password_prompt_is_used_when_interactive(cover: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import stegshield.cli as cli

    asked: list[bool] = []

    def fake_prompt(text: str, hide_input: bool, confirmation_prompt: bool, err: bool) -> str:
        asked.append(hide_input)
        return PW

    monkeypatch.setattr(cli.click, "prompt", fake_prompt)
    monkeypatch.setattr(cli.sys.stdin, "isatty", lambda: True, raising=False)
    monkeypatch.delenv("STEGSHIELD_PASSWORD", raising=False)
    assert cli.get_password(None, confirm=True) == PW.encode()
    assert asked == [True]  # never echoed


def test_file_and_stdin_payloads(runner: CliRunner, cover: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.bin"
    data = np.random.default_rng(0).bytes(700)
    secret.write_bytes(data)
    out = tmp_path / "s.png"
    assert runner.invoke(main, ["hide", str(cover), "-o", str(out), "-f", str(secret), "-p",
                                PW]).exit_code == 0
    dest = tmp_path / "got.bin"
    r = runner.invoke(main, ["reveal", str(out), "-o", str(dest), "-p", PW])
    assert r.exit_code == 0 and dest.read_bytes() == data
    out2 = tmp_path / "s2.png"
    r = runner.invoke(main, ["hide", str(cover), "-o", str(out2), "-p", PW], input=b"piped\x00")
    assert r.exit_code == 0, r.output
    r = runner.invoke(main, ["reveal", str(out2), "-p", PW])
    assert r.exit_code == 0 and r.stdout_bytes == b"piped\x00"


def test_wrong_password_exit_1_and_no_output(runner: CliRunner, cover: Path,
                                             tmp_path: Path) -> None:
    out = tmp_path / "s.png"
    runner.invoke(main, ["hide", str(cover), "-o", str(out), "-m", "x", "-p", PW])
    dest = tmp_path / "never.txt"
    r = runner.invoke(main, ["reveal", str(out), "-o", str(dest), "-p", "wrong"])
    assert r.exit_code == 1
    assert "no hidden data" in r.stderr and r.stderr.count("\n") == 1
    assert not dest.exists()
    r = runner.invoke(main, ["reveal", str(cover), "-p", PW])  # never hidden anything
    assert r.exit_code == 1


def test_tampered_stego_reports_integrity_failure(runner: CliRunner, cover: Path,
                                                  tmp_path: Path) -> None:
    out = tmp_path / "s.png"
    runner.invoke(main, ["hide", str(cover), "-o", str(out), "-m", "y" * 2000, "-p", PW,
                         "--no-compress"])
    px = np.asarray(Image.open(out)).copy()
    px ^= 1  # flip every LSB
    bad = tmp_path / "bad.png"
    Image.fromarray(px).save(bad)
    r = runner.invoke(main, ["reveal", str(bad), "-p", PW])
    assert r.exit_code == 1 and r.stdout == ""


@pytest.mark.parametrize("content", [b"", b"garbage", b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_bad_input_exit_2_one_line(runner: CliRunner, tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(content)
    for args in (["hide", str(bad), "-o", str(tmp_path / "o.png"), "-m", "x", "-p", PW],
                 ["reveal", str(bad), "-p", PW], ["capacity", str(bad)]):
        r = runner.invoke(main, args)
        assert r.exit_code == 2, (args, r.output)
        assert r.stderr.startswith("stegshield: error:") and r.stderr.count("\n") == 1
    assert not (tmp_path / "o.png").exists()


def test_refuses_overwrite_lossy_and_too_large(runner: CliRunner, cover: Path,
                                               tmp_path: Path) -> None:
    before = cover.read_bytes()
    r = runner.invoke(main, ["hide", str(cover), "-o", str(cover), "-m", "x", "-p", PW,
                             "--force"])
    assert r.exit_code == 2 and cover.read_bytes() == before
    existing = tmp_path / "exists.png"
    existing.write_bytes(b"keep")
    r = runner.invoke(main, ["hide", str(cover), "-o", str(existing), "-m", "x", "-p", PW])
    assert r.exit_code == 2 and "--force" in r.stderr and existing.read_bytes() == b"keep"
    r = runner.invoke(main, ["hide", str(cover), "-o", str(existing), "-m", "x", "-p", PW,
                             "--force"])
    assert r.exit_code == 0
    r = runner.invoke(main, ["hide", str(cover), "-o", str(tmp_path / "o.jpg"), "-m", "x",
                             "-p", PW])
    assert r.exit_code == 2 and "lossy" in r.stderr
    huge = tmp_path / "huge.bin"
    huge.write_bytes(np.random.default_rng(0).bytes(200_000))
    r = runner.invoke(main, ["hide", str(cover), "-o", str(tmp_path / "h.png"), "-f", str(huge),
                             "-p", PW])
    assert r.exit_code == 2 and "payload too large" in r.stderr and "bytes" in r.stderr
    assert not (tmp_path / "h.png").exists() and not (tmp_path / "o.jpg").exists()


def test_outputs_never_replace_their_inputs_even_with_force(runner: CliRunner, cover: Path,
                                                            tmp_path: Path) -> None:
    """``reveal -o STEGO`` and ``hide -f F -o F`` used to destroy their input with --force."""
    stego = tmp_path / "stego.png"
    assert runner.invoke(main, ["hide", str(cover), "-o", str(stego), "-m", "keep me",
                                "-p", PW]).exit_code == 0
    before = stego.read_bytes()
    link = tmp_path / "link.png"
    link.symlink_to(stego)
    for out in (stego, link):
        r = runner.invoke(main, ["reveal", str(stego), "-o", str(out), "-p", PW, "--force"])
        assert r.exit_code == 2 and "refusing to overwrite the stego image" in r.stderr
    assert stego.read_bytes() == before
    got = tmp_path / "got.txt"  # -q: nothing on success
    r = runner.invoke(main, ["reveal", str(stego), "-o", str(got), "-p", PW, "-q"])
    assert r.exit_code == 0 and r.stderr == "" and got.read_bytes() == b"keep me"
    payload = tmp_path / "payload.png"
    payload.write_bytes(b"the only copy")
    r = runner.invoke(main, ["hide", str(cover), "-f", str(payload), "-o", str(payload),
                             "-p", PW, "--force"])
    assert r.exit_code == 2 and "refusing to overwrite the file to hide" in r.stderr
    assert payload.read_bytes() == b"the only copy"


def test_text_that_is_not_utf8_is_kept_as_given(runner: CliRunner, cover: Path,
                                                 tmp_path: Path) -> None:
    """A Latin-1 message or password (Python keeps the bytes as lone surrogates) used to
    crash with a traceback; the bytes are now used as given, the same every time."""
    out, got = tmp_path / "s.png", tmp_path / "m.bin"
    env = {"STEGSHIELD_PASSWORD": "caf\udce9"}
    r = runner.invoke(main, ["hide", str(cover), "-o", str(out), "-m", "d\udce9j\udce0"],
                      env=env)
    assert r.exit_code == 0, r.output
    assert runner.invoke(main, ["reveal", str(out), "-o", str(got)], env=env).exit_code == 0
    assert got.read_bytes() == b"d\xe9j\xe0"
    r = runner.invoke(main, ["reveal", str(out), "-p", "caf\u00e9"])  # é as UTF-8: another key
    assert r.exit_code == 1
    r = runner.invoke(main, ["hide", str(cover), "-o", str(tmp_path / "t.png"), "-m", "x",
                             "-p", "\ud800"])  # not even bytes: one line, exit 2
    assert r.exit_code == 2 and r.stderr.strip() == \
        "stegshield: error: the password is not valid text"


def test_reveal_prints_the_hidden_text_bytes_and_dash_is_stdout(runner: CliRunner, cover: Path,
                                                                 tmp_path: Path) -> None:
    """A Latin-1 message came back on stdout with each non-UTF-8 byte replaced by U+FFFD,
    and `-o -` wrote a file named '-'; the bytes hidden are the bytes printed."""
    out = tmp_path / "s.png"
    env = {"STEGSHIELD_PASSWORD": PW}
    assert runner.invoke(main, ["hide", str(cover), "-o", str(out), "-m", "caf\udce9 \udca3"],
                         env=env).exit_code == 0
    for extra in ([], ["-o", "-"]):
        r = runner.invoke(main, ["reveal", str(out), *extra], env=env)
        assert r.exit_code == 0 and r.stdout_bytes == b"caf\xe9 \xa3\n", r.output
    assert not Path("-").exists()


def test_empty_stdin_is_not_hidden(runner: CliRunner, cover: Path, tmp_path: Path) -> None:
    """A script whose pipe gave nothing got an empty stego image and exit 0."""
    r = runner.invoke(main, ["hide", str(cover), "-o", str(tmp_path / "s.png"), "-p", PW],
                      input=b"")
    assert r.exit_code == 2 and "stdin was empty" in r.output
    assert not (tmp_path / "s.png").exists()


def test_hide_names_the_metadata_it_does_not_carry(runner: CliRunner, tmp_path: Path) -> None:
    """EXIF (an orientation: the stego image displays rotated), ICC profiles and text chunks
    were dropped without a word."""
    from PIL import PngImagePlugin

    src = tmp_path / "meta.png"
    exif = Image.Exif()
    exif[0x0112] = 6
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "hello")
    Image.fromarray(natural_like(64, 64, 3)).save(src, exif=exif, pnginfo=info)
    r = runner.invoke(main, ["hide", str(src), "-o", str(tmp_path / "s.png"), "-m", "x",
                             "-p", PW])
    assert r.exit_code == 0, r.output
    assert "does not carry" in r.stderr and "orientation 6" in r.stderr
    assert "text chunks" in r.stderr
    plain = tmp_path / "plain.png"
    Image.fromarray(natural_like(64, 64, 3)).save(plain)
    r = runner.invoke(main, ["hide", str(plain), "-o", str(tmp_path / "t.png"), "-m", "x",
                             "-p", PW])
    assert r.exit_code == 0 and "does not carry" not in r.stderr


def test_refusals_come_before_warnings(runner: CliRunner, tmp_path: Path) -> None:
    """Warnings about the cover ("does not carry the cover's EXIF", a high rate) were
    printed before "already exists" or ".jpg is lossy", for an image never written."""
    src = tmp_path / "meta.png"
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(natural_like(64, 64, 3)).save(src, exif=exif)
    (tmp_path / "taken.png").write_bytes(b"keep")
    for out in ("taken.png", "x.jpg", "meta.png"):
        r = runner.invoke(main, ["hide", str(src), "-o", str(tmp_path / out), "-m", "x",
                                 "-p", PW, "--rate", "0.4"])
        assert r.exit_code == 2, (out, r.output)
        assert r.stderr.count("\n") == 1 and "warning" not in r.stderr, r.stderr
    assert (tmp_path / "taken.png").read_bytes() == b"keep"


def test_pixel_limit(runner: CliRunner, cover: Path, tmp_path: Path) -> None:
    r = runner.invoke(main, ["capacity", str(cover), "--max-pixels", "1000"])
    assert r.exit_code == 2 and "--max-pixels" in r.stderr


def test_capacity_and_rate_warning(runner: CliRunner, cover: Path, tmp_path: Path) -> None:
    r = runner.invoke(main, ["capacity", str(cover), "--json"])
    assert r.exit_code == 0
    import json

    info = json.loads(r.stdout)
    assert 0 < info["default_bytes"] < info["max_bytes"]
    r = runner.invoke(main, ["hide", str(cover), "-o", str(tmp_path / "r.png"), "-m", "x",
                             "-p", PW, "--rate", "0.4"])
    assert r.exit_code == 0 and "easier" in r.stderr
    r = runner.invoke(main, ["hide", str(cover), "-o", str(tmp_path / "r2.png"), "-m", "x",
                             "-p", PW, "--rate", "0.9"])
    assert r.exit_code == 2


def test_binary_payload_to_terminal_is_refused(cover: Path, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    secret = tmp_path / "k.bin"
    secret.write_bytes(b"\x00\x01binary")
    out = tmp_path / "s.png"
    runner.invoke(main, ["hide", str(cover), "-o", str(out), "-f", str(secret), "-p", PW])
    import stegshield.cli as cli

    monkeypatch.setattr(cli, "stdout_is_terminal", lambda: True)
    r = runner.invoke(main, ["reveal", str(out), "-p", PW])
    assert r.exit_code == 2 and "k.bin" in r.stderr and "-o" in r.stderr
    # a stored name is the hider's: escape sequences in it are shown, not sent to the terminal
    from stegshield.crypto.container import Payload
    from stegshield.crypto.kdf import DEFAULT_KDF
    from stegshield.stego import api

    api.hide(cover, tmp_path / "e.png", Payload(b"\x00", name="x\x1b]0;PWNED\x07.bin"),
             PW.encode(), kdf=DEFAULT_KDF)
    r = runner.invoke(main, ["reveal", str(tmp_path / "e.png"), "-p", PW])
    assert r.exit_code == 2 and "\x1b" not in r.stderr and "\\x1b" in r.stderr


def test_jpeg_cover_warns_and_writes_png(runner: CliRunner, tmp_path: Path) -> None:
    jpg = tmp_path / "c.jpg"
    Image.fromarray(natural_like(128, 128, 3)).save(jpg, quality=92)
    out = tmp_path / "s.png"
    r = runner.invoke(main, ["hide", str(jpg), "-o", str(out), "-m", "jpeg", "-p", PW])
    assert r.exit_code == 0 and "JPEG" in r.stderr
    assert runner.invoke(main, ["reveal", str(out), "-p", PW]).stdout.strip() == "jpeg"
    webp = tmp_path / "c.webp"  # a lossy WebP cover warns the same way; a lossless one does not
    Image.fromarray(natural_like(128, 128, 3)).save(webp, quality=92)
    r = runner.invoke(main, ["hide", str(webp), "-o", str(tmp_path / "w.png"), "-m", "w",
                             "-p", PW])
    assert r.exit_code == 0 and "lossy WebP" in r.stderr
    Image.fromarray(natural_like(128, 128, 3)).save(webp, lossless=True)
    r = runner.invoke(main, ["hide", str(webp), "-o", str(tmp_path / "w2.png"), "-m", "w",
                             "-p", PW])
    assert r.exit_code == 0 and "compressed" not in r.stderr


def test_cli_cost_choices_match_the_cost_registry() -> None:
    from stegshield.cli import COST_NAMES
    from stegshield.stego.costs import COSTS

    assert set(COST_NAMES) == set(COSTS)


def test_a_closed_output_pipe_is_an_error_not_found(tmp_path: Path) -> None:
    """`stegshield scan -r DIR | head -1` exited 1, the code for "hidden data found"."""
    import subprocess
    import sys

    from PIL import Image

    for i in range(60):
        Image.fromarray(natural_like(64, 64, seed=i)).save(tmp_path / f"{i}.png")
    proc = subprocess.Popen([sys.executable, "-m", "stegshield.cli", "scan", "-r", str(tmp_path),
                             "--format", "csv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith(b"path,verdict")
    proc.stdout.close()  # as `head -1` does
    err = proc.stderr.read()
    assert proc.wait(60) == 2 and b"Traceback" not in err, err


def test_ctrl_c_exits_130_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C in `dataset stego` printed "Aborted!" and exited 1, the code for "found"."""
    from stegshield.datasets import stego as stego_mod

    def interrupted(*a: object, **k: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(stego_mod, "generate_stego", interrupted)
    covers = tmp_path / "c"
    covers.mkdir()
    Image.fromarray(natural_like(64, 64)).save(covers / "a.png")
    r = CliRunner().invoke(main, ["dataset", "stego", "--covers", str(covers), "--out",
                                  str(tmp_path / "s"), "--algo", "lsbm", "--rate", "0.4"])
    assert r.exit_code == 130 and "interrupted" in r.output, r.output


def test_ctrl_c_at_the_password_prompt_exits_130(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """click turns Ctrl-C at a prompt into Abort: exit 1, which for reveal means "nothing
    found for this password"."""
    import click

    from stegshield import cli_support
    from stegshield.imaging import save_image

    save_image(tmp_path / "c.png", natural_like(64, 64), "L")
    monkeypatch.delenv("STEGSHIELD_PASSWORD", raising=False)
    monkeypatch.setattr(cli_support, "stdin_is_terminal", lambda: True)

    def abort(*a: object, **k: object) -> str:
        raise click.exceptions.Abort()

    monkeypatch.setattr(cli_support.click, "prompt", abort)
    r = CliRunner().invoke(main, ["reveal", str(tmp_path / "c.png")])
    assert r.exit_code == 130 and "interrupted" in r.output, r.output


def test_hide_warns_only_about_a_stego_image_it_writes(tmp_path: Path) -> None:
    """A payload too large for a JPEG cover printed the JPEG and EXIF warnings about an
    output never written; the error did not say that --rate 0.5 would fit."""
    cover = tmp_path / "c.jpg"
    Image.fromarray(natural_like(96, 96, 3)).save(cover, quality=95)
    big = tmp_path / "big.bin"
    big.write_bytes(np.random.default_rng(0).bytes(900))  # fits only above the default rate
    r = CliRunner().invoke(main, ["hide", str(cover), "-o", str(tmp_path / "s.png"), "--file",
                                  str(big), "--password", PW])
    assert r.exit_code == 2 and "warning" not in r.output, r.output
    assert "it fits at rate 0.5" in r.output
    r = CliRunner().invoke(main, ["hide", str(cover), "-o", str(tmp_path / "s.png"), "-m", "hi",
                                  "--password", PW])
    assert r.exit_code == 0 and "JPEG-compressed" in r.output

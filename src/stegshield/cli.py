"""Command-line interface (thin: parsing, messages and exit codes only).

Exit codes follow scanner conventions: 0 success / clean, 1 nothing found or integrity failure
(or, for scans, something found), 2 error (bad input, usage, I/O).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import __version__
from .cli_support import (
    EXIT_ERROR,
    EXIT_FOUND,
    FiniteFloatRange,
    fail,
    get_password,
    password_option,
    printable,
    stdout_is_terminal,
    text_bytes,
    warn,
)
from .cli_support import handle_errors as _handle_errors
from .crypto.container import Payload
from .imaging import (
    DEFAULT_MAX_PIXELS,
    ImageError,
    atomic_write,
    check_not_input,
    output_format,
    probe_image,
)
from .stego.errors import (
    COST_NAMES,
    DEFAULT_RATE,
    MAX_RATE,
    IntegrityError,
    NoHiddenDataError,
    StegoError,
)

handle_errors = _handle_errors([((NoHiddenDataError, IntegrityError), EXIT_FOUND),
                                ((StegoError, ImageError), EXIT_ERROR)])


max_pixels_option = click.option(
    "--max-pixels", type=click.IntRange(min=1), default=DEFAULT_MAX_PIXELS, show_default=True,
    help="Refuse images with more pixels than this (decompression-bomb guard).")


class _Main(click.Group):
    """The command group; a closed output pipe (``scan ... | head``) exits 2, an error, and
    Ctrl-C (also Ctrl-C or Ctrl-D at a password prompt) exits 130 (128 + SIGINT), as
    ``train`` and ``scan`` do on their own.

    Click exits 1 on both, which for ``scan`` and ``reveal`` means "found"."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, click.exceptions.Abort):  # Abort: Ctrl-C/D at a prompt
            click.echo("\nstegshield: interrupted", err=True)
            raise click.exceptions.Exit(130) from None
        except BrokenPipeError:
            import os

            # nothing more reaches the reader; keep the interpreter's final flush quiet
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
            raise click.exceptions.Exit(EXIT_ERROR) from None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="stegshield")
def main() -> None:
    """stegshield: hide sealed data in images, and find data hidden in them.

    \b
    Hide a message:     stegshield hide photo.png -o stego.png --message "meet at 6"
    Get it back:        stegshield reveal stego.png
    How much fits:      stegshield capacity photo.png
    """
    from PIL import Image

    # --max-pixels is checked before decoding and may exceed Pillow's own bomb guard (178 MP);
    # the library leaves that guard to its host application, the command line owns its process
    Image.MAX_IMAGE_PIXELS = None


@main.command()
@click.argument("cover", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Stego image to write (.png, .bmp, .tiff, .webp lossless, .pgm/.ppm).")
@click.option("--file", "-f", "payload_file", type=click.Path(dir_okay=False, path_type=Path),
              help="File to hide.")
@click.option("--message", "-m", help="Text message to hide.")
@password_option
@click.option("--rate", type=FiniteFloatRange(min=0, min_open=True, max=MAX_RATE),
              default=DEFAULT_RATE, show_default=True,
              help=f"Payload limit in bits per carrier sample (max {MAX_RATE}). Higher rates are "
              "easier to detect.")
@click.option("--cost", type=click.Choice(COST_NAMES), default="hill", show_default=True,
              help="Content-adaptive cost function deciding where changes go.")
@click.option("--no-compress", is_flag=True, help="Do not compress the payload before sealing.")
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--quiet", "-q", is_flag=True,
              help="Print nothing on success (warnings still go to stderr).")
@max_pixels_option
@handle_errors
def hide(cover: Path, output: Path, payload_file: Path | None, message: str | None,
         password: str | None, rate: float, cost: str, no_compress: bool, force: bool,
         quiet: bool, max_pixels: int) -> None:
    """Hide a file, a message or stdin in COVER, sealed with a password.

    The payload is encrypted and authenticated (Argon2id + ChaCha20-Poly1305), then embedded
    with ±1 changes placed by a content-adaptive cost and syndrome-trellis codes.
    """
    if payload_file is not None and message is not None:
        fail("give either --file or --message, not both")
    check_not_input(output, [("cover image", cover), ("file to hide", payload_file)])
    if output.exists() and not force:  # refusals come before any warning
        fail(f"{output}: already exists (use --force to replace it)")
    stdin_busy = False
    if payload_file is not None:
        payload = Payload(payload_file.read_bytes(), is_text=False, name=payload_file.name)
    elif message is not None:
        payload = Payload(text_bytes(message, "the message"), is_text=True)
    elif not sys.stdin.isatty():
        payload, stdin_busy = Payload(sys.stdin.buffer.read(), is_text=False), True
        if not payload.data:  # a script that forgot its input, not an intended empty payload
            fail("nothing to hide: stdin was empty (hide an empty file with --file)")
    else:
        fail("nothing to hide: give --file, --message, or pipe data on stdin")
    cover_info = probe_image(cover, max_pixels)
    output_format(output, cover_info.mode)  # e.g. .jpg or a gray WebP: refused, exit 2
    pw = get_password(password, confirm=True, stdin_busy=stdin_busy)
    from .runtime import tune_malloc
    from .stego import api

    tune_malloc()
    report = api.hide(cover, output, payload, pw, rate=rate, cost=cost, force=force,
                      max_pixels=max_pixels, compress=not no_compress)
    for note in report.notes:  # about the stego image just written, never one refused
        warn(note)
    if not quiet:
        click.echo(
            f"hid {report.payload_bytes:,} bytes in {output} ({report.embedded_bytes:,} sealed "
            f"bytes, rate {report.rate:.4g} bits/sample, {report.changes:,} of "
            f"{report.carrier_samples:,} samples changed by ±1, cost {report.cost})", err=True)


@main.command()
@click.argument("stego", type=click.Path(dir_okay=False, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the payload here (default, or '-': stdout).")
@password_option
@click.option("--force", is_flag=True, help="Replace OUTPUT if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing on success but the payload.")
@max_pixels_option
@handle_errors
def reveal(stego: Path, output: Path | None, password: str | None, force: bool, quiet: bool,
           max_pixels: int) -> None:
    """Recover the payload hidden in STEGO. Exit 1 if nothing is found for the password."""
    if output is not None and str(output) == "-":
        output = None  # stdout, as the help says (a file named '-' is ./-)
    if output is not None:
        check_not_input(output, [("stego image", stego)])
    if output is not None and output.exists() and not force:
        fail(f"{output}: already exists (use --force to replace it)")
    probe_image(stego, max_pixels)  # bad input -> exit 2 before asking for a password
    pw = get_password(password, confirm=False)
    from .runtime import tune_malloc
    from .stego import api

    tune_malloc()
    payload = api.reveal(stego, pw, max_pixels=max_pixels)
    if output is not None:
        atomic_write(output, payload.data, force=force)
        if not quiet:
            click.echo(f"revealed {len(payload.data):,} bytes to {output}", err=True)
    elif payload.is_text:  # the bytes as hidden (a non-UTF-8 message is not "repaired")
        sys.stdout.buffer.write(payload.data + b"\n")
        sys.stdout.buffer.flush()
    elif stdout_is_terminal():
        # the stored name comes from whoever hid it: never raw escapes on the terminal
        name = f" ({printable(payload.name)})" if payload.name else ""
        fail(f"the hidden payload is a binary file{name}: write it with -o FILE")
    else:
        sys.stdout.buffer.write(payload.data)
        sys.stdout.buffer.flush()


@main.command()
@click.argument("cover", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@max_pixels_option
@handle_errors
def capacity(cover: Path, as_json: bool, max_pixels: int) -> None:
    """Bytes that fit in COVER at the default and at the maximum rate."""
    from .stego import api

    cap = api.capacity(cover, max_pixels)
    if as_json:
        click.echo(json.dumps(cap.__dict__))
        return
    click.echo(f"{cover}: {cap.width}x{cap.height} {cap.mode}, {cap.carrier_samples:,} carrier "
               "samples")
    click.echo(f"  default rate {cap.default_rate:g} bits/sample: {cap.default_bytes:,} bytes")
    click.echo(f"  maximum rate {cap.max_rate:g} bits/sample: {cap.max_bytes:,} bytes "
               "(easier to detect)")
    click.echo("  (before compression; a file name is stored too and uses its length)")


def _register_subsystems() -> None:
    """Attach the commands of the other subsystems (each imports its heavy parts lazily)."""
    from .cipher.commands import cipher_audit, decrypt, encrypt
    from .datasets.commands import dataset
    from .scan.commands import scan, serve, watch
    from .training.commands import evaluate
    from .training.train_commands import models, train

    for command in (encrypt, decrypt, cipher_audit, dataset, evaluate, train, models, scan, watch,
                    serve):
        main.add_command(command)


_register_subsystems()


if __name__ == "__main__":  # pragma: no cover
    main()

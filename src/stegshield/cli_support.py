"""What every command shares: exit codes, one-line errors, error mapping, password input.

Kept apart from :mod:`stegshield.cli` so that each subsystem's commands can use it without
importing the main group (which imports them).
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable, Sequence
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
PASSWORD_ENV = "STEGSHIELD_PASSWORD"
F = TypeVar("F", bound=Callable[..., Any])
ErrorMap = Sequence[tuple[type[BaseException] | tuple[type[BaseException], ...], int]]


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    """Print a one-line error and exit with ``code``."""
    first = str(message).splitlines()[0] if str(message) else "error"
    click.echo(f"stegshield: error: {first}", err=True)
    sys.exit(code)


def warn(message: str) -> None:
    """Print a one-line warning."""
    click.echo(f"stegshield: warning: {message}", err=True)


def handle_errors(mapping: ErrorMap) -> Callable[[F], F]:
    """Decorator: exceptions in ``mapping`` (checked in order) become a one-line error and
    that exit code; ``OSError`` and ``MemoryError`` always become exit 2."""

    def decorate(fn: F) -> F:
        @wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except BrokenPipeError:
                raise  # the reader left: the command group exits 2 without a message
            except Exception as exc:
                for types, code in mapping:
                    if isinstance(exc, types):
                        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
                        fail(str(msg), code)
                if isinstance(exc, OSError):
                    fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
                if isinstance(exc, MemoryError):
                    fail("out of memory (lower --max-pixels or use a smaller image)")
                raise

        return wrapper  # type: ignore[return-value]

    return decorate


class FiniteFloatRange(click.FloatRange):
    """``click.FloatRange`` that also refuses nan and ±inf (nan passes every range test:
    ``--group-balance nan`` trained, then the same command could not resume)."""

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if rv is not None and not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return rv


def printable(text: str) -> str:
    """``text`` for a terminal, control characters escaped (``\\x1b``): a name that came
    from a file or a hidden payload cannot move the cursor, retitle or clear the screen."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def stdout_is_terminal() -> bool:
    """Whether stdout is a terminal (binary payloads are never dumped onto one)."""
    return sys.stdout.isatty()


def get_password(option: str | None, confirm: bool, stdin_busy: bool = False,
                 alternatives: str = "--password") -> bytes:
    """--password, then $STEGSHIELD_PASSWORD, then an interactive prompt (never echoed)."""
    password = option if option is not None else os.environ.get(PASSWORD_ENV)
    if password is None:
        if stdin_busy or not stdin_is_terminal():
            fail(f"no password: give {alternatives}, set {PASSWORD_ENV}, or run in a terminal")
        password = click.prompt("Password", hide_input=True, confirmation_prompt=confirm,
                                err=True)
    if not password:
        fail("the password must not be empty")
    return text_bytes(password, "the password")


def text_bytes(text: str, what: str) -> bytes:
    """``text`` as UTF-8 bytes.  Bytes that were not UTF-8 in the command line or the
    environment (Python keeps them as lone surrogates) come back exactly as they were given,
    so a Latin-1 terminal's password works and always gives the same key."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        fail(f"{what} is not valid text")


password_option = click.option(
    "--password", "-p", metavar="P", default=None,
    help=f"Password (else ${PASSWORD_ENV}, else a prompt). Visible to other users in the "
    "process list: prefer the environment variable or the prompt.")

"""The base of every error stegshield raises on purpose, for library callers.

``except StegshieldError`` catches what the tool refuses or detects (bad images, wrong
passwords, altered data, unknown detectors, unreachable clusters), each with a one-line
message; the specific classes stay where they are (``imaging.ImageError``,
``stego.errors.StegoError``, ``cipher.errors.CipherError``, ``scan.suite.SuiteError``, ...).
Plain ``TypeError``/``ValueError`` still mean a wrong argument.
"""

from __future__ import annotations

__all__ = ["StegshieldError"]


class StegshieldError(Exception):
    """A refusal or a finding of stegshield, with a one-line message for the user."""

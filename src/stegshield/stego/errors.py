"""Hide/reveal errors, rate limits and cost names (no heavy imports: the CLI loads this first)."""

from __future__ import annotations

from ..errors import StegshieldError

#: Default payload limit, in embedded bits per carrier sample (a colour pixel has 3 samples).
DEFAULT_RATE = 0.2
#: Hard maximum rate; beyond it ±1 changes become dense and easy to detect.
MAX_RATE = 0.5
#: Cost functions offered by ``hide --cost`` (modules in :mod:`stegshield.stego.costs`).
COST_NAMES = ("hill", "suniward", "wow")


class StegoError(StegshieldError):
    """Base class for hide/reveal failures with a one-line message for the user."""


class PayloadTooLargeError(StegoError):
    """The sealed payload does not fit at the allowed rate."""

    def __init__(self, needed: int, available: int, rate: float) -> None:
        self.needed, self.available, self.rate = needed, available, rate
        super().__init__(
            f"payload too large: needs {needed:,} bytes of capacity but this image holds "
            f"{available:,} bytes at rate {rate:g} bits/sample"
        )


class ImageTooSmallError(StegoError):
    """The image cannot even hold the fixed header."""


class NoHiddenDataError(StegoError):
    """Nothing hidden under this password (or the header area was altered)."""


class IntegrityError(StegoError):
    """A header was found, but the hidden body fails authentication: the image was altered."""

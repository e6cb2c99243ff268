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

    def __init__(self, needed: int, available: int, rate: float,
                 at_max_rate: int | None = None) -> None:
        self.needed, self.available, self.rate = needed, available, rate
        hint = ""
        if at_max_rate is not None and rate < MAX_RATE:
            hint = (f"; it fits at rate {MAX_RATE:g} ({at_max_rate:,} bytes), which is easier "
                    "to detect" if needed <= at_max_rate else
                    f"; even at the maximum rate {MAX_RATE:g} it holds {at_max_rate:,}: use a "
                    "larger image")
        super().__init__(
            f"payload too large: needs {needed:,} byte{'s' * (needed != 1)} of capacity but "
            f"this image holds {available:,} byte{'s' * (available != 1)} at rate {rate:g} "
            f"bits/sample{hint}"
        )


class ImageTooSmallError(StegoError):
    """The image cannot even hold the fixed header."""


class NoHiddenDataError(StegoError):
    """Nothing hidden under this password (or the header area was altered)."""


class IntegrityError(StegoError):
    """A header was found, but the hidden body fails authentication: the image was altered."""

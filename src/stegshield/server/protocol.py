"""uvicorn's h11 HTTP protocol with a deadline for a request's line and headers.

uvicorn times out idle keep-alive connections but not a client that opens a connection and
sends its headers a byte at a time (slowloris): each such connection holds a file descriptor
for ever, and a few hundred of them leave none for real clients. Here a connection is closed
when it has not delivered a complete request line and headers within ``header_timeout``
seconds of opening or of its previous response, or when it is still sending a body
``header_timeout`` seconds after the response to it went out (nothing reads that body).
"""

from __future__ import annotations

import asyncio
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["timed_h11"]


class _TimedH11(H11Protocol):
    header_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timer: asyncio.TimerHandle | None = None

    def _arm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_deadline)

    def _header_deadline(self) -> None:
        self._header_timer = None
        if self.transport.is_closing():
            return
        their, ours = self.conn.their_state, self.conn.our_state
        # IDLE: no complete request since the timer was armed (one received moves the client
        # out of IDLE until its response completes, which re-arms the timer).  SEND_BODY
        # after our response is complete (a 404, 401, 408 or 413, or a route that never
        # reads its body): nobody will read the rest, and it may trickle for ever.
        if their is h11.IDLE or (their is h11.SEND_BODY and ours in (h11.DONE, h11.MUST_CLOSE)):
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # the end of a body read after our response starts a new cycle: time its headers
        if (self._header_timer is None and self.conn.their_state is h11.IDLE
                and not self.transport.is_closing()):
            self._arm()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        super().connection_lost(exc)


def timed_h11(header_timeout: float) -> type[H11Protocol]:
    """An h11 protocol class for ``uvicorn.run(http=...)`` closing connections whose request
    line and headers take longer than ``header_timeout`` seconds."""
    return type("TimedH11", (_TimedH11,), {"header_timeout": float(header_timeout)})

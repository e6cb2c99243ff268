"""stegshield.server: the HTTP API and web page (``stegshield serve``).

:func:`create_app` builds the FastAPI application; fastapi is imported only from here.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ServerConfig", "create_app"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import app

        return getattr(app, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

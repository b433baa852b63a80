"""The shopper-facing widget (``/widget.js``) and a demo product page using it (``/``).

Files are read from ``app/static/`` on first request (no I/O at import time) and
kept in memory; responses carry an ETag and ``Cache-Control`` (caching.py).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from litestar import Response, get

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
WIDGET_MAX_AGE = 300
PAGE_MAX_AGE = 60
_NOSNIFF = {"X-Content-Type-Options": "nosniff"}


@cache
def static_file(name: str) -> bytes:
    return (STATIC_DIR / name).read_bytes()


@get(
    "/widget.js",
    summary="The <store-availability> web component",
    description="A dependency-free custom element; see docs/widget.md.",
    tags=["widget"],
    sync_to_thread=False,
    opt={"http_cache": WIDGET_MAX_AGE},
    media_type="text/javascript; charset=utf-8",
)
def widget_js() -> Response[bytes]:
    return Response(
        static_file("widget.js"), media_type="text/javascript; charset=utf-8", headers=_NOSNIFF
    )


@get(
    "/",
    summary="Demo product page with the widget",
    tags=["widget"],
    sync_to_thread=False,
    opt={"http_cache": PAGE_MAX_AGE},
    media_type="text/html; charset=utf-8",
)
def demo_page() -> Response[bytes]:
    return Response(
        static_file("index.html"), media_type="text/html; charset=utf-8", headers=_NOSNIFF
    )

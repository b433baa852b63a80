"""HTTP caching for the public reads: ``ETag``, ``Cache-Control`` and 304s.

A route opts in with ``opt={"http_cache": True}`` (max-age from
``settings.http_cache_max_age``) or ``opt={"http_cache": <seconds>}``. The
middleware hashes the encoded 200 body: a request whose ``If-None-Match`` names
that tag gets ``304 Not Modified`` with no body.

List answers carry ``generated_at`` (the time of the request), which changes on
every request even when nothing else did; a tag over those bytes would never
match. So for a body with a top-level ``generated_at`` the tag is computed
without it and is *weak* (``W/"…"``: same badges, not byte-identical); any
other body gets a *strong* tag over its exact bytes.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

_GENERATED_AT = re.compile(rb'"generated_at":"[^"]*",?')
_DROP_ON_304 = {b"content-length", b"content-type"}


def entity_tag(body: bytes) -> str:
    """The ETag for a response body: weak when ``generated_at`` was left out of the hash."""
    stable, n = _GENERATED_AT.subn(b"", body, count=1)
    digest = hashlib.blake2b(stable, digest_size=16).hexdigest()
    return f'W/"{digest}"' if n else f'"{digest}"'


def _opaque(tag: str) -> str:
    return tag[2:] if tag.startswith("W/") else tag


def matches(if_none_match: str, tag: str) -> bool:
    """``If-None-Match`` uses the weak comparison (RFC 9110 §13.1.2)."""
    if if_none_match.strip() == "*":
        return True
    want = _opaque(tag)
    return any(_opaque(t.strip()) == want for t in if_none_match.split(","))


def _max_age(scope: Scope) -> int | None:
    handler = scope.get("route_handler")
    opt: Any = getattr(handler, "opt", None) or {}
    choice = opt.get("http_cache")
    if choice is None or choice is False:
        return None
    if choice is True:
        return int(scope["litestar_app"].state.settings.http_cache_max_age)
    return int(choice)


def http_cache_middleware(app: ASGIApp) -> ASGIApp:
    """ASGI middleware adding ETag/Cache-Control and answering conditional GETs."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope.get("method") not in ("GET", "HEAD"):
            await app(scope, receive, send)
            return
        max_age = _max_age(scope)
        if max_age is None:
            await app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            await _finish(scope, send, start, b"".join(chunks), max_age)

        await app(scope, receive, capture)

    return middleware


async def _finish(
    scope: Scope, send: Send, start: dict[str, Any], body: bytes, max_age: int
) -> None:
    if start.get("status") != 200:
        await send(start)  # type: ignore[arg-type]  # the captured response start
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return
    tag = entity_tag(body)
    headers = [
        (k, v) for k, v in start.get("headers", []) if k.lower() not in (b"etag", b"cache-control")
    ]
    headers += [
        (b"etag", tag.encode()),
        (b"cache-control", f"public, max-age={max_age}".encode()),
    ]
    if_none_match = next(
        (v.decode("latin-1") for k, v in scope["headers"] if k == b"if-none-match"), None
    )
    if if_none_match is not None and matches(if_none_match, tag):
        headers = [(k, v) for k, v in headers if k.lower() not in _DROP_ON_304]
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        return
    await send({**start, "headers": headers})  # type: ignore[arg-type]
    await send({"type": "http.response.body", "body": body, "more_body": False})

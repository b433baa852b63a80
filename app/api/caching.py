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

The hot badge reads (``opt={"http_cache": True, "etag_in_handler": True}``) keep
their tag with their cached answer and answer through :func:`conditional_json`
themselves, the same headers and 304s without the middleware re-reading the body.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from typing import Any

from litestar import Response
from litestar.enums import ScopeType
from litestar.response.base import ASGIResponse
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
    if opt.get("etag_in_handler"):
        return None  # the handler answers conditional requests itself
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


class _Ready(ASGIResponse):
    """An ASGI response whose status, headers and body are final."""

    __slots__ = ("raw_headers",)

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        # Nothing to encode or default: Litestar's fields other than these stay unset.
        self.status_code = status
        self.raw_headers = headers
        self.body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        await send({"type": "http.response.body", "body": self.body, "more_body": False})


class EncodedResponse(Response[Any]):
    """A handler's answer already encoded, headers included: Litestar sends it as it is
    (the declared return type still documents the body in OpenAPI)."""

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        # Response.__init__ is skipped on purpose: there is no content to encode.
        self.ready = _Ready(status, headers, body)

    def to_asgi_response(self, app: Any, request: Any, **kwargs: Any) -> ASGIResponse:
        return self.ready


_JSON = (b"content-type", b"application/json")


def if_none_match(headers: Iterable[tuple[bytes, bytes]]) -> str | None:
    for k, v in headers:
        if k == b"if-none-match":
            return v.decode("latin-1")
    return None


def conditional_json(
    request_headers: Iterable[tuple[bytes, bytes]], body: bytes, tag: str, max_age: int
) -> EncodedResponse:
    """A 200 JSON ``body`` with ``tag`` and ``Cache-Control: public, max-age``, or the
    304 (no body, no content headers) when ``If-None-Match`` names the tag: what the
    middleware answers for other cacheable routes."""
    cache = [(b"etag", tag.encode()), (b"cache-control", b"public, max-age=%d" % max_age)]
    asked = if_none_match(request_headers)
    if asked is not None and matches(asked, tag):
        return EncodedResponse(304, cache, b"")
    return EncodedResponse(200, [_JSON, (b"content-length", b"%d" % len(body)), *cache], body)


def plain_json(body: bytes) -> EncodedResponse:
    """A 200 JSON ``body`` that is not cacheable (POST answers)."""
    return EncodedResponse(200, [_JSON, (b"content-length", b"%d" % len(body))], body)

"""Rate limiting per client IP: N requests a minute, a burst of up to N.

A generic cell rate algorithm (one timestamp per client, O(1) per request, no
lock: the event loop is single-threaded). Over the limit: ``429`` with
``Retry-After`` (whole seconds) and the usual JSON error body (``ErrorBody``). Limits are per
process; behind a proxy, run uvicorn with ``--proxy-headers`` and
``--forwarded-allow-ips`` so the client address is the shopper's, not the proxy's.

Litestar's own ``RateLimitConfig`` was not used: it sends no ``Retry-After`` and
re-encodes a growing list of timestamps under a global lock on every request.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection

import msgspec
from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

EXEMPT_PATHS: frozenset[str] = frozenset({"/health", "/ready", "/metrics"})
_PRUNE_ABOVE = 10_000


class RateLimiter:
    """``per_minute`` requests a minute per key, with a burst of ``per_minute``."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError("per_minute must be at least 1")
        self.per_minute = per_minute
        self.interval = 60.0 / per_minute
        self.tolerance = self.interval * (per_minute - 1)
        self._clock = clock
        self._tat: dict[str, float] = {}  # theoretical arrival time per key

    def hit(self, key: str) -> float:
        """Count one request; 0.0 when allowed, else the seconds to wait."""
        now = self._clock()
        tat = max(self._tat.get(key, now), now)
        wait = tat - self.tolerance - now
        if wait > 0:
            return wait
        self._tat[key] = tat + self.interval
        if len(self._tat) > _PRUNE_ABOVE:
            self._tat = {k: t for k, t in self._tat.items() if t > now}
        return 0.0


def client_key(scope: Scope) -> str:
    client = scope.get("client")
    return client[0] if client else "unknown"


def rate_limit_middleware_factory(
    per_minute: int, exempt: Collection[str] = EXEMPT_PATHS
) -> Callable[[ASGIApp], ASGIApp]:
    """Litestar middleware (app level) limiting every HTTP path except ``exempt``."""
    limiter = RateLimiter(per_minute)

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or scope["path"] in exempt:
                await app(scope, receive, send)
                return
            wait = limiter.hit(client_key(scope))
            if not wait:
                await app(scope, receive, send)
                return
            retry_after = max(1, math.ceil(wait))
            body = msgspec.json.encode(
                {
                    "status": 429,
                    "error": f"too many requests: the limit is {per_minute} a minute per "
                    f"client; retry in {retry_after} s",
                }
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 429,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"retry-after", str(retry_after).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body, "more_body": False})

        return middleware

    return factory

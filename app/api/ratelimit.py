"""Rate limiting per client IP: N requests a minute, a burst of up to N.

A generic cell rate algorithm (one timestamp per client, O(1) per request, no
lock: the event loop is single-threaded). Over the limit: ``429`` with
``Retry-After`` (whole seconds) and the usual JSON error body (``ErrorBody``). Limits are per
process; behind a proxy, run uvicorn with ``--proxy-headers`` and
``--forwarded-allow-ips`` so the client address is the shopper's, not the proxy's.

A request carrying a live API key is limited per key instead of per IP: an ``app``
key at ``settings.app_rate_limit_per_minute`` (partner apps read the public API at
volume from few addresses), any other key at the per-client limit. A token that is
no live key is limited by its IP like an anonymous request.

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

from app.api.auth import Principal, authenticator_of, bearer_token

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


def _authorization(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return value.decode("latin-1")
    return ""


async def key_principal(scope: Scope) -> Principal | None:
    """The live key (or admin token) the request carries, if any; errors count as none."""
    token = bearer_token(_authorization(scope))
    if token is None:
        return None
    state = scope["app"].state
    try:
        return await authenticator_of(state).resolve(state.pool, token)
    except Exception:  # the guard will answer; limiting falls back to the IP
        return None


def rate_limit_middleware_factory(
    per_minute: int,
    exempt: Collection[str] = EXEMPT_PATHS,
    *,
    app_per_minute: int | None = None,
) -> Callable[[ASGIApp], ASGIApp]:
    """Litestar middleware (app level) limiting every HTTP path except ``exempt``.

    ``app_per_minute``: the limit of an ``app`` key (default: the app's
    ``settings.app_rate_limit_per_minute``).
    """
    limiter = RateLimiter(per_minute)
    app_limiters: dict[int, RateLimiter] = {}

    def app_limiter(scope: Scope) -> tuple[RateLimiter, int]:
        n = app_per_minute or int(scope["app"].state.settings.app_rate_limit_per_minute)
        if n not in app_limiters:
            app_limiters[n] = RateLimiter(n)
        return app_limiters[n], n

    def factory(app: ASGIApp) -> ASGIApp:
        async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != ScopeType.HTTP or scope["path"] in exempt:
                await app(scope, receive, send)
                return
            principal = await key_principal(scope)
            if principal is None:
                wait, limit, per = limiter.hit(client_key(scope)), per_minute, "client"
            elif principal.role == "app":
                the_limiter, limit = app_limiter(scope)
                wait, per = the_limiter.hit(f"key:{principal.key_id}"), "app key"
            else:
                key = f"key:{principal.key_id or 'admin_token'}"
                wait, limit, per = limiter.hit(key), per_minute, "key"
            if not wait:
                await app(scope, receive, send)
                return
            retry_after = max(1, math.ceil(wait))
            body = msgspec.json.encode(
                {
                    "status": 429,
                    "error": f"too many requests: the limit is {limit} a minute per "
                    f"{per}; retry in {retry_after} s",
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

"""Request latency histogram for ``GET /metrics``: an app-level ASGI middleware.

One histogram per app (``RequestMetrics.registry``), labelled by method, the route's
path template (``/v1/stores/{store_id}``, never the raw path, so store ids and
skus do not become label values) and the status class (``2xx``…``5xx``). Time is
measured from the request's arrival at the route to the last body byte sent, or to
the exception (counted as ``5xx``, as the error handler will answer).
"""

from __future__ import annotations

import time
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import DefineMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from prometheus_client import CollectorRegistry, Histogram

# From 1 ms to 10 s: a badge read is a few ms, a big CSV upload or a pull-now seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class RequestMetrics:
    """The registry and histogram an app's latency middleware records into."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "availability_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status class.",
            ["method", "route", "status"],
            buckets=BUCKETS,
            registry=self.registry,
        )

    @property
    def middleware(self) -> DefineMiddleware:
        return DefineMiddleware(_latency_middleware, metrics=self)


def _latency_middleware(app: ASGIApp, metrics: RequestMetrics) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await app(scope, receive, send)
            return
        started = time.perf_counter()
        status: list[int] = [500]

        async def timed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await app(scope, receive, timed_send)
        finally:
            route: Any = scope.get("path_template") or "unmatched"
            metrics.latency.labels(
                scope.get("method", "GET"), str(route), f"{status[0] // 100}xx"
            ).observe(time.perf_counter() - started)

    return middleware

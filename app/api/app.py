"""The Litestar app factory. No settings or I/O at import time.

One lifespan opens the pool (and migrates), loads reference data and the feeds
file, then starts the scheduler; it closes them in reverse.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import structlog
from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components

from app.api.auth import SECURITY_SCHEMES
from app.api.availability import batch_availability
from app.api.caching import http_cache_middleware
from app.api.cors import cors_config
from app.api.errors import exception_handlers
from app.api.latency import RequestMetrics
from app.api.ratelimit import rate_limit_middleware_factory
from app.api.read_model import ReadModel
from app.api.routes import route_handlers
from app.api.widget import demo_page, widget_js
from app.clock import Clock, utc_now
from app.db.migrate import migrate
from app.db.pool import create_pool
from app.domain.policy import Policy
from app.policy_file import load_policy
from app.settings import Settings

log = structlog.get_logger(__name__)


def create_app(
    settings: Settings,
    *,
    dsn: str | None = None,
    pool: asyncpg.Pool | None = None,
    clock: Clock = utc_now,
    policy: Policy | None = None,
) -> Litestar:
    """Build the service. Pass ``pool`` (tests) or ``dsn``; the app owns only what it opens."""
    if pool is None and dsn is None:
        raise ValueError("create_app needs a dsn or a pool")
    the_policy = policy if policy is not None else load_policy(settings.policy_file)

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        from app.reference_data import load_reference_files
        from reconcilers.scheduler import start_reconcilers

        own_pool = pool is None
        the_pool = pool if pool is not None else await create_pool(dsn or "", settings)
        try:
            async with the_pool.acquire() as conn:
                await migrate(conn)
            await load_reference_files(the_pool, settings)
            app.state.pool = the_pool
            reads = ReadModel(the_pool, max_age=settings.badge_cache_max_age.total_seconds())
            await reads.start()
            app.state.read_model = reads
            try:
                reconcilers = await start_reconcilers(the_pool, settings, the_policy, clock)
                app.state.reconcilers = reconcilers  # the admin API's "pull now", /ready
                try:
                    log.info("service.started", feeds=reconcilers.feed_names)
                    yield
                finally:
                    await reconcilers.shutdown()
            finally:
                await reads.stop()
        finally:
            if own_pool:
                await the_pool.close()
            log.info("service.stopped")

    def provide_pool(state: State) -> asyncpg.Pool:
        pool_: asyncpg.Pool = state.pool
        return pool_

    def provide_read_model(state: State) -> ReadModel:
        reads: ReadModel = state.read_model
        return reads

    dependencies: dict[str, Any] = {
        "pool": Provide(provide_pool, sync_to_thread=False),
        "reads": Provide(provide_read_model, sync_to_thread=False),
        "settings": Provide(lambda: settings, sync_to_thread=False, use_cache=True),
        "policy": Provide(lambda: the_policy, sync_to_thread=False, use_cache=True),
        "clock": Provide(lambda: clock, sync_to_thread=False, use_cache=True),
    }
    request_metrics = RequestMetrics()  # GET /metrics: request latency histogram
    middleware: list[Any] = [request_metrics.middleware]
    if settings.rate_limit_per_minute:
        middleware.append(rate_limit_middleware_factory(settings.rate_limit_per_minute))
    middleware.append(http_cache_middleware)
    return Litestar(
        route_handlers=[*route_handlers(), batch_availability, widget_js, demo_page],
        middleware=middleware,
        cors_config=cors_config(settings),
        logging_config=None,  # structlog (app.logs) owns logging
        dependencies=dependencies,
        lifespan=[lifespan],
        exception_handlers=exception_handlers(),
        openapi_config=OpenAPIConfig(
            title="store-availability",
            version="1",
            description="Badges that promise only what the shelf can keep.",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
            components=Components(security_schemes=dict(SECURITY_SCHEMES)),
        ),
        state=State(
            {
                "settings": settings,
                "request_metrics": request_metrics,
                "policy": the_policy,  # the badge reads take these from state, not DI
                "clock": clock,
            }
        ),
        request_max_body_size=settings.max_request_body_bytes,  # 413 above it
    )

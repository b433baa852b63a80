"""Liveness and readiness.

``/health`` answers while the process runs. ``/ready`` answers 503 when the database
is unreachable, migrations are pending, or (with ``ready_max_feed_age`` set) a
configured feed's last success is older than that bound, so a load balancer stops
sending traffic and an alert fires. A feed that has never succeeded counts from the
time it was first configured (its ``feed`` row's ``created_at``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg
import msgspec
from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from app.clock import Clock
from app.db import metrics as metrics_db
from app.db.migrate import pending
from app.settings import Settings


class Health(msgspec.Struct, frozen=True):
    status: str


class StaleFeed(msgspec.Struct, frozen=True, kw_only=True):
    """A configured feed whose last success is older than ``ready_max_feed_age``."""

    name: str
    kind: str
    last_success_at: datetime | None
    age_seconds: float
    limit_seconds: float


class Readiness(msgspec.Struct, frozen=True, kw_only=True):
    status: str  # "ready", "unavailable", "migrating", "stale_feeds"
    database: str
    pending_migrations: list[int]
    stale_feeds: list[StaleFeed] = []


@get("/health", summary="Process is up", tags=["operations"], sync_to_thread=False)
def health() -> Health:
    return Health(status="ok")


@get(
    "/ready",
    summary="Database reachable, migrations applied, feeds fresh",
    description=(
        "503 when the database is unreachable, a migration is pending, or a configured "
        "feed has not succeeded within `ready_max_feed_age` (when set)."
    ),
    tags=["operations"],
)
async def ready(
    request: Request[Any, Any, Any],
    pool: NamedDependency[asyncpg.Pool],
    settings: NamedDependency[Settings],
    clock: NamedDependency[Clock],
) -> Response[Readiness]:
    try:
        async with pool.acquire(timeout=5) as conn:
            todo = await pending(conn)
            feeds = await metrics_db.feed_health(conn) if not todo else []
    except (
        OSError,
        TimeoutError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,
    ) as exc:
        return Response(
            Readiness(
                status="unavailable",
                database=f"unreachable: {type(exc).__name__}",
                pending_migrations=[],
            ),
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
        )
    if todo:
        return Response(
            Readiness(status="migrating", database="ok", pending_migrations=todo),
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
        )
    stale: list[StaleFeed] = []
    limit = settings.ready_max_feed_age
    reconcilers = getattr(request.app.state, "reconcilers", None)
    if limit is not None and reconcilers is not None:
        configured = set(reconcilers.feed_names)
        now = clock()
        for f in feeds:
            age = (now - (f.last_success_at or f.created_at)).total_seconds()
            if f.name in configured and age > limit.total_seconds():
                stale.append(
                    StaleFeed(
                        name=f.name,
                        kind=f.kind,
                        last_success_at=f.last_success_at,
                        age_seconds=round(age, 3),
                        limit_seconds=limit.total_seconds(),
                    )
                )
    return Response(
        Readiness(
            status="stale_feeds" if stale else "ready",
            database="ok",
            pending_migrations=[],
            stale_feeds=stale,
        ),
        status_code=HTTP_503_SERVICE_UNAVAILABLE if stale else HTTP_200_OK,
    )

"""Liveness and readiness."""

from __future__ import annotations

import asyncpg
import msgspec
from litestar import Response, get
from litestar.di import NamedDependency
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from app.db.migrate import pending


class Health(msgspec.Struct, frozen=True):
    status: str


class Readiness(msgspec.Struct, frozen=True):
    status: str
    database: str
    pending_migrations: list[int]


@get("/health", summary="Process is up", tags=["operations"], sync_to_thread=False)
def health() -> Health:
    return Health(status="ok")


@get("/ready", summary="Database reachable and migrations applied", tags=["operations"])
async def ready(pool: NamedDependency[asyncpg.Pool]) -> Response[Readiness]:
    try:
        async with pool.acquire(timeout=5) as conn:
            todo = await pending(conn)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return Response(
            Readiness(
                status="unavailable",
                database=f"unreachable: {type(exc).__name__}",
                pending_migrations=[],
            ),
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
        )
    ok = not todo
    return Response(
        Readiness(status="ready" if ok else "migrating", database="ok", pending_migrations=todo),
        status_code=HTTP_200_OK if ok else HTTP_503_SERVICE_UNAVAILABLE,
    )

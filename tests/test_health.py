"""/health, /ready and /schema on a real database."""

from __future__ import annotations

from collections.abc import Callable

import asyncpg
from litestar import Litestar

from tests.conftest import serve_in_loop


async def test_health_ready_and_openapi(make_app: Callable[..., Litestar]) -> None:
    async with serve_in_loop(make_app()) as client:
        r = await client.get("/health")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        r = await client.get("/ready")
        assert r.status_code == 200
        assert r.json() == {"status": "ready", "database": "ok", "pending_migrations": []}
        r = await client.get("/schema/openapi.json")
        assert r.status_code == 200
        assert "/ready" in r.json()["paths"]


async def test_ready_reports_pending_migrations(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool
) -> None:
    async with serve_in_loop(make_app()) as client:
        async with pool.acquire() as conn:
            await conn.execute("DELETE FROM schema_migration WHERE version = 1")
        r = await client.get("/ready")
        assert r.status_code == 503
        assert r.json()["pending_migrations"] == [1]

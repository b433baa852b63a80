"""asyncpg pool creation: one place that sets codecs and sizes."""

from __future__ import annotations

import asyncpg

from app.settings import Settings


async def create_pool(dsn: str, settings: Settings) -> asyncpg.Pool:
    """Open a pool; the caller owns it (lifespan closes it)."""
    pool = await asyncpg.create_pool(
        dsn,
        min_size=settings.pool_min_size,
        max_size=settings.pool_max_size,
        command_timeout=60,
        server_settings={"application_name": "store-availability", "timezone": "UTC"},
    )
    assert pool is not None
    return pool

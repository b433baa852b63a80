"""/health, /ready and /schema on a real database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from litestar import Litestar

from app.settings import Settings
from tests.conftest import serve_in_loop, with_feeds_file
from tests.feedserver import FeedServer, json_reply


async def test_health_ready_and_openapi(make_app: Callable[..., Litestar]) -> None:
    async with serve_in_loop(make_app()) as client:
        r = await client.get("/health")
        assert r.status_code == 200 and r.json() == {"status": "ok"}
        r = await client.get("/ready")
        assert r.status_code == 200
        assert r.json() == {
            "status": "ready",
            "database": "ok",
            "pending_migrations": [],
            "stale_feeds": [],
        }
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


async def test_ready_fails_while_a_configured_feed_is_staler_than_the_bound(
    make_app: Callable[..., Litestar],
    pool: asyncpg.Pool,
    settings: Settings,
    tmp_path: Path,
    feed_server: FeedServer,
) -> None:
    now = [datetime(2026, 11, 23, 12, 0, tzinfo=UTC)]
    bounded = with_feeds_file(
        settings,
        tmp_path,
        {"name": "pos-main", "kind": "pos", "url": feed_server.url("/events")},
        ready_max_feed_age=timedelta(minutes=10),
    )
    feed_server.always("/events", json_reply({"events": [], "has_more": False}))
    app = make_app(settings=bounded, clock=lambda: now[0])
    async with serve_in_loop(app) as client:
        async with pool.acquire() as conn:  # configured 11 minutes ago, never pulled
            await conn.execute("UPDATE feed SET created_at = $1", now[0] - timedelta(minutes=11))
            # a feed no longer in the feeds file never makes the service unready
            await conn.execute(
                "INSERT INTO feed (name, kind, url, created_at) VALUES ('gone', 'pos', 'x', $1)",
                now[0] - timedelta(days=9),
            )
        r = await client.get("/ready")
        assert r.status_code == 503, r.text
        assert r.json()["status"] == "stale_feeds"
        assert r.json()["stale_feeds"] == [
            {"name": "pos-main", "kind": "pos", "last_success_at": None,
             "age_seconds": 660.0, "limit_seconds": 600.0}
        ]  # fmt: skip

        assert (await app.state.reconcilers.run_now("pos-main")).outcome == "unchanged"
        r = await client.get("/ready")
        assert r.status_code == 200 and r.json()["status"] == "ready", r.text

        now[0] += timedelta(minutes=10, seconds=1)  # no success since
        r = await client.get("/ready")
        assert r.status_code == 503
        assert [f["name"] for f in r.json()["stale_feeds"]] == ["pos-main"]
        assert r.json()["stale_feeds"][0]["age_seconds"] == 601.0

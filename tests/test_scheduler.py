"""The scheduler: feeds from the feeds file, interval runs, one puller per feed, clean shutdown."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar import Litestar
from structlog.testing import capture_logs

from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.retention import EVERY, FIRST_AFTER, JOB_ID
from reconcilers.scheduler import Reconcilers, UnknownFeed, start_reconcilers
from tests.conftest import serve_in_loop, wait_for, with_feeds_file
from tests.feedserver import FeedServer, Reply, json_reply

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def clock() -> datetime:
    return NOW


def page(*ids: str, next_cursor: str = "n1") -> Reply:
    events = [
        {"event_id": i, "type": "sale", "store_id": "S1", "sku": "SKU-A", "qty": 1,
         "occurred_at": "2026-11-23T10:00:00Z"}
        for i in ids
    ]  # fmt: skip
    return json_reply({"events": events, "next_cursor": next_cursor, "has_more": False})


def with_feeds(settings: Settings, tmp_path: Path, server: FeedServer, *, interval: str = "1h",
               timeout: str = "5s", scheduler: bool = True) -> Settings:  # fmt: skip
    feed = {"name": "pos-main", "kind": "pos", "url": server.url("/events"),
            "interval": interval, "timeout": timeout}  # fmt: skip
    return with_feeds_file(settings, tmp_path, feed, scheduler=scheduler)


async def start(pool: asyncpg.Pool, settings: Settings) -> Reconcilers:
    return await start_reconcilers(pool, settings, Policy(), clock)


async def feed_row(pool: asyncpg.Pool) -> dict[str, Any]:
    async with pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM feed WHERE name = 'pos-main'")
    assert row is not None
    return dict(row)


async def test_start_records_feeds_and_runs_on_demand(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.always("/events", page("E1"))
    recs = await start(pool, with_feeds(settings, tmp_path, feed_server, scheduler=False))
    try:
        assert recs.feed_names == ["pos-main"]
        row = await feed_row(pool)
        assert (row["kind"], row["url"], row["cursor"]) == ("pos", feed_server.url("/events"), None)
        assert feed_server.requests == []  # scheduler off: nothing runs by itself
        outcome = await recs.run_now("pos-main")
        assert (outcome.outcome, outcome.events_new) == ("applied", 1)
        with pytest.raises(UnknownFeed, match="no feed named 'nope'; configured: pos-main"):
            await recs.run_now("nope")
    finally:
        await recs.shutdown()
    assert recs.client.is_closed


async def test_a_changed_url_forgets_the_cursor(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.always("/events", page("E1", next_cursor="far"))
    recs = await start(pool, with_feeds(settings, tmp_path, feed_server, scheduler=False))
    await recs.run_now("pos-main")
    await recs.shutdown()
    assert (await feed_row(pool))["cursor"] == "far"
    recs = await start(
        pool, with_feeds(settings, tmp_path, feed_server, scheduler=False)
    )  # same URL
    await recs.shutdown()
    assert (await feed_row(pool))["cursor"] == "far"
    with FeedServer() as elsewhere:
        recs = await start(pool, with_feeds(settings, tmp_path, elsewhere, scheduler=False))
        await recs.shutdown()
    row = await feed_row(pool)
    assert row["cursor"] is None and row["url"] == elsewhere.url("/events")


async def test_the_scheduler_pulls_on_its_interval_and_stops_on_shutdown(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.always("/events", page("E1"))
    recs = await start(pool, with_feeds(settings, tmp_path, feed_server, interval="200ms"))
    try:
        await wait_for(lambda: len(feed_server.requests) >= 3)
    finally:
        await recs.shutdown()
    seen = len(feed_server.requests)
    # the first run was right away, later ones followed the cursor it saved
    assert feed_server.requests[0].param("cursor") is None
    assert all(r.param("cursor") == "n1" for r in feed_server.requests[1:])
    row = await feed_row(pool)
    assert row["last_success_at"] == NOW and row["consecutive_failures"] == 0
    await asyncio.sleep(0.5)
    assert len(feed_server.requests) == seen  # nothing runs after shutdown


async def test_shutdown_cancels_a_run_in_flight_and_records_nothing_half_way(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.always("/events", Reply(body=page("E1").body, stall_after=4, stall_for=30))
    s = with_feeds(settings, tmp_path, feed_server, timeout="20s")
    recs = await start(pool, s)
    await wait_for(lambda: len(feed_server.requests) == 1)
    with capture_logs() as logs:
        started = time.monotonic()
        await recs.shutdown()
        assert time.monotonic() - started < 2
    assert [e["outcome"] for e in logs if e["event"] == "feed.pulled"] == ["cancelled"]
    row = await feed_row(pool)
    assert row["last_attempt_at"] == NOW
    assert (
        row["last_success_at"],
        row["last_error"],
        row["consecutive_failures"],
        row["cursor"],
    ) == (None, None, 0, None)
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM pos_event") == 0
    # the feed lock went with the cancelled run: a new process pulls at once
    feed_server.always("/events", page("E1"))
    recs = await start(pool, msgspec.structs.replace(s, scheduler=False))
    try:
        assert (await recs.run_now("pos-main")).outcome == "applied"
    finally:
        await recs.shutdown()


async def test_two_processes_on_one_database_pull_a_feed_once(
    db_dsn: str, settings: Settings, tmp_path: Path, feed_server: FeedServer
) -> None:
    """Two service instances (own pools, own schedulers) start together: one pulls, one skips."""
    feed_server.always("/events", Reply(body=page("E1", "E2").body, delay=0.5))
    s = with_feeds(settings, tmp_path, feed_server)
    pools = [await asyncpg.create_pool(db_dsn, min_size=1, max_size=3) for _ in range(2)]
    try:
        with capture_logs() as logs:
            recs = [await start(p, s) for p in pools]
            await wait_for(lambda: len([e for e in logs if e["event"] == "feed.pulled"]) == 2)
            for r in recs:
                await r.shutdown()
        outcomes = sorted(e["outcome"] for e in logs if e["event"] == "feed.pulled")
        assert outcomes == ["applied", "skipped"]
        assert len(feed_server.requests) == 1
        async with pools[0].acquire() as conn:
            assert await conn.fetchval("SELECT count(*) FROM pos_event") == 2
    finally:
        for p in pools:
            await p.close()


async def test_two_reconcilers_racing_run_now(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.always("/events", Reply(body=page("E1").body, delay=0.4))
    s = with_feeds(settings, tmp_path, feed_server, scheduler=False)
    one, two = await start(pool, s), await start(pool, s)
    try:
        results = await asyncio.gather(one.run_now("pos-main"), two.run_now("pos-main"))
    finally:
        await one.shutdown()
        await two.shutdown()
    assert sorted(r.outcome for r in results) == ["applied", "skipped"]
    assert len(feed_server.requests) == 1


async def test_the_app_lifespan_starts_and_stops_the_scheduler(
    make_app: Callable[..., Litestar],
    settings: Settings,
    tmp_path: Path,
    feed_server: FeedServer,
    pool: asyncpg.Pool,
) -> None:
    feed_server.always("/events", page("E1"))
    app = make_app(settings=with_feeds(settings, tmp_path, feed_server), clock=clock)
    async with serve_in_loop(app) as client:
        assert (await client.get("/health")).status_code == 200
        await wait_for(lambda: len(feed_server.requests) >= 1)
        # The run's success is recorded a moment after its events: wait for it, or the
        # shutdown below may cancel the run in between (by design) on a busy machine.
        await wait_for_async(lambda: _last_success(pool), NOW)
    assert (await feed_row(pool))["last_success_at"] == NOW
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM pos_event") == 1


async def _last_success(pool: asyncpg.Pool) -> Any:
    return (await feed_row(pool))["last_success_at"]


async def wait_for_async(read: Callable[[], Any], expected: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while (value := await read()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r}, wanted {expected!r}")
        await asyncio.sleep(0.02)


async def test_the_retention_job_is_scheduled_hourly_unless_both_retentions_are_off(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path, feed_server: FeedServer
) -> None:
    on = with_feeds(settings, tmp_path, feed_server)
    recs = await start(pool, on)
    try:
        assert recs.scheduler is not None
        job = recs.scheduler.get_job(JOB_ID)
        assert job is not None and job.trigger.interval == EVERY
        # Not in the start-up's rush: its first run comes FIRST_AFTER later.
        assert job.next_run_time > datetime.now(UTC) + FIRST_AFTER / 2
    finally:
        await recs.shutdown()
    off = msgspec.structs.replace(on, event_retention=timedelta(0),
                                  quarantine_retention=timedelta(0))  # fmt: skip
    recs = await start(pool, off)
    try:
        assert recs.scheduler is not None and recs.scheduler.get_job(JOB_ID) is None
    finally:
        await recs.shutdown()

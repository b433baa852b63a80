"""The badge refresh: stored badges follow the clock with no new data (ageing past
max_data_age, a quiet store's feed resuming, future-dated inputs coming due),
one process at a time, on the scheduler's interval. The clock is injected."""

from __future__ import annotations

import asyncio
from collections.abc import MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
from structlog.testing import capture_logs

from app.db.events import insert_events
from app.db.feedback import Observation, store_feedback
from app.db.feeds import upsert_feeds
from app.db.positions import recompute_pairs
from app.domain.model import Sale
from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.feeds_config import FeedConfig
from reconcilers.jobs import REFRESH_LOCK, run_refresh
from reconcilers.scheduler import start_reconcilers
from tests.conftest import wait_for

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
POLICY = Policy(safety_buffer=2, low_stock_below=3, max_data_age=timedelta(hours=6))
FEED = FeedConfig(name="pos-test", kind="pos", url="http://127.0.0.1:1/events")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def stock(pool: asyncpg.Pool, store_id: str, sku: str, units: int, as_of: datetime) -> None:
    """A warehouse row and the store's freshness, as the warehouse puller leaves them."""
    await pool.execute(
        """INSERT INTO warehouse_stock (location_id, sku, on_hand, reserved, in_transit, as_of, snapshot_id)
           VALUES ($1, $2, $3, 0, 0, $4, 1)""",
        store_id, sku, units, as_of,
    )  # fmt: skip
    await pool.execute(
        """INSERT INTO store_freshness (store_id, snapshot_as_of) VALUES ($1, $2)
           ON CONFLICT (store_id) DO UPDATE SET snapshot_as_of = EXCLUDED.snapshot_as_of""",
        store_id, as_of,
    )  # fmt: skip


async def compute(pool: asyncpg.Pool, pairs: list[tuple[str, str]], now: datetime) -> None:
    async with pool.acquire() as conn:
        await recompute_pairs(conn, pairs, policy=POLICY, now=now)


async def badge(pool: asyncpg.Pool, store_id: str, sku: str) -> dict[str, Any]:
    row = await pool.fetchrow(
        "SELECT book, badge_state, reasons, computed_at FROM book_position "
        "WHERE store_id = $1 AND sku = $2",
        store_id,
        sku,
    )
    assert row is not None
    return {**dict(row), "reasons": list(row["reasons"])}


async def refresh(pool: asyncpg.Pool, settings: Settings, now: datetime) -> dict[str, Any]:
    outcome = await run_refresh(pool, settings=settings, policy=POLICY, clock=lambda: now)
    return msgspec.structs.asdict(outcome)


async def test_a_promise_is_withdrawn_when_its_data_ages_past_the_limit(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await stock(pool, "S1", "SKU-A", 10, T0)
    await stock(pool, "S2", "SKU-A", 10, T0 + timedelta(hours=3))
    await compute(pool, [("S1", "SKU-A"), ("S2", "SKU-A")], T0 + timedelta(hours=3))
    assert (await badge(pool, "S1", "SKU-A"))["badge_state"] == "in_stock"
    s2_before = await badge(pool, "S2", "SKU-A")

    later = T0 + timedelta(hours=6, minutes=1)
    with capture_logs() as logs:
        outcome = await refresh(pool, settings, later)
    s1 = await badge(pool, "S1", "SKU-A")
    assert (s1["badge_state"], s1["reasons"], s1["computed_at"]) == (
        "unknown",
        ["stale_data"],
        later,
    )
    assert s1["book"] == 10  # the record is kept; only the promise goes
    assert await badge(pool, "S2", "SKU-A") == s2_before  # 3h old: not touched
    expected = {"outcome": "refreshed", "candidates": 1, "aging": 1, "fresh_again": 0, "due": 0,
                "recomputed": 1, "promises_before": 1, "promises_after": 0, "detail": None}  # fmt: skip
    assert outcome == expected
    events = [e for e in logs if e["event"] == "badges.refreshed"]
    assert len(events) == 1
    assert {k: events[0][k] for k in expected} == expected
    assert events[0]["log_level"] == "info"

    # nothing left to do: an unknown badge on stale data is not recomputed again
    again = await refresh(pool, settings, later + timedelta(minutes=1))
    assert (again["candidates"], again["recomputed"]) == (0, 0)
    assert (await badge(pool, "S1", "SKU-A"))["computed_at"] == later


async def test_unavailable_badges_age_too_and_no_data_ones_are_left_alone(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await stock(pool, "S1", "SKU-A", 1, T0)  # within the safety buffer: unavailable
    await compute(pool, [("S1", "SKU-A"), ("S1", "SKU-NONE")], T0)
    assert (await badge(pool, "S1", "SKU-A"))["badge_state"] == "unavailable"
    no_data = await badge(pool, "S1", "SKU-NONE")
    assert no_data["reasons"] == ["no_data"]
    outcome = await refresh(pool, settings, T0 + timedelta(hours=7))
    assert (outcome["aging"], outcome["promises_before"]) == (1, 0)
    aged = await badge(pool, "S1", "SKU-A")
    assert (aged["badge_state"], aged["reasons"]) == ("unknown", ["stale_data"])
    assert await badge(pool, "S1", "SKU-NONE") == no_data


async def test_badges_close_to_the_limit_are_refreshed_within_one_interval(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """Data older than max_data_age minus one refresh interval is recomputed now (still
    fresh: still a promise); younger data is not."""
    s = msgspec.structs.replace(settings, refresh_interval=timedelta(minutes=5))
    now = T0 + timedelta(hours=6)
    await stock(pool, "S1", "SKU-A", 10, T0 + timedelta(minutes=3))  # 5h57m old
    await stock(pool, "S2", "SKU-A", 10, T0 + timedelta(minutes=6))  # 5h54m old
    await compute(pool, [("S1", "SKU-A"), ("S2", "SKU-A")], T0 + timedelta(hours=1))
    outcome = await refresh(pool, s, now)
    assert (outcome["aging"], outcome["promises_before"], outcome["promises_after"]) == (1, 1, 1)
    assert (await badge(pool, "S1", "SKU-A"))["computed_at"] == now
    assert (await badge(pool, "S2", "SKU-A"))["computed_at"] == T0 + timedelta(hours=1)


async def test_a_stale_badge_comes_back_when_the_stores_feed_resumes(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """The POS feed of S1 went quiet and came back with a sale of another sku: the
    pullers recompute only that sku; the refresh brings SKU-A's promise back."""
    await stock(pool, "S1", "SKU-A", 10, T0)
    await stock(pool, "S1", "SKU-B", 10, T0)
    await compute(pool, [("S1", "SKU-A"), ("S1", "SKU-B")], T0)
    await refresh(pool, settings, T0 + timedelta(hours=7))
    assert (await badge(pool, "S1", "SKU-A"))["badge_state"] == "unknown"

    back = T0 + timedelta(hours=8)
    async with pool.acquire() as conn, conn.transaction():
        await upsert_feeds(conn, [FEED])
        sale = Sale(event_id="E1", store_id="S1", sku="SKU-B", qty=1, occurred_at=back)
        await insert_events(conn, FEED.name, [sale], received_at=back)
        await recompute_pairs(conn, [("S1", "SKU-B")], policy=POLICY, now=back)
    assert (await badge(pool, "S1", "SKU-B"))["badge_state"] == "in_stock"
    assert (await badge(pool, "S1", "SKU-A"))["badge_state"] == "unknown"  # untouched so far

    outcome = await refresh(pool, settings, back + timedelta(seconds=30))
    assert (outcome["fresh_again"], outcome["promises_before"], outcome["promises_after"]) == (
        1,
        0,
        1,
    )
    restored = await badge(pool, "S1", "SKU-A")
    assert (restored["badge_state"], restored["reasons"]) == ("in_stock", ["margin_ok"])


async def test_future_dated_inputs_apply_when_their_time_comes(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """A POS sale and a shelf count dated ahead of the clock are stored at once but
    move the book only from their time; the refresh applies them then."""
    now = T0 + timedelta(hours=1)
    await stock(pool, "S1", "SKU-A", 10, T0)
    await stock(pool, "S1", "SKU-B", 10, T0)
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [FEED])
        async with conn.transaction():
            sale = Sale(
                event_id="E1",
                store_id="S1",
                sku="SKU-A",
                qty=4,
                occurred_at=now + timedelta(minutes=10),
            )
            await insert_events(conn, FEED.name, [sale], received_at=now)
            await recompute_pairs(conn, [("S1", "SKU-A")], policy=POLICY, now=now)
        count = Observation(
            observed_at=now + timedelta(minutes=3),
            store_id="S1",
            sku="SKU-B",
            kind="shelf_count",
            qty=1,
        )
        await store_feedback(conn, [count], policy=POLICY, now=now)
    assert (await badge(pool, "S1", "SKU-A"))["book"] == 10
    assert (await badge(pool, "S1", "SKU-B"))["book"] == 10

    early = await refresh(pool, settings, now + timedelta(minutes=2))
    assert early["due"] == 0
    assert (await badge(pool, "S1", "SKU-B"))["book"] == 10

    mid = await refresh(pool, settings, now + timedelta(minutes=4))
    assert (mid["due"], mid["recomputed"]) == (1, 1)
    b = await badge(pool, "S1", "SKU-B")
    assert (b["book"], b["badge_state"]) == (1, "unavailable")
    assert (await badge(pool, "S1", "SKU-A"))["book"] == 10

    late = await refresh(pool, settings, now + timedelta(minutes=11))
    assert (late["due"], late["recomputed"]) == (1, 1)
    assert (await badge(pool, "S1", "SKU-A"))["book"] == 6

    done = await refresh(pool, settings, now + timedelta(minutes=12))
    assert done["candidates"] == 0


async def test_only_one_process_refreshes_at_a_time(pool: asyncpg.Pool, settings: Settings) -> None:
    await stock(pool, "S1", "SKU-A", 10, T0)
    await compute(pool, [("S1", "SKU-A")], T0)
    async with pool.acquire() as other:
        assert await other.fetchval("SELECT pg_try_advisory_lock($1, $2)", *REFRESH_LOCK)
        skipped = await refresh(pool, settings, T0 + timedelta(hours=7))
        await other.execute("SELECT pg_advisory_unlock($1, $2)", *REFRESH_LOCK)
    assert (skipped["outcome"], skipped["recomputed"]) == ("skipped", 0)
    assert (await badge(pool, "S1", "SKU-A"))["badge_state"] == "in_stock"
    done = await refresh(pool, settings, T0 + timedelta(hours=7))
    assert (done["outcome"], done["recomputed"]) == ("refreshed", 1)


async def test_a_database_failure_is_logged_not_raised(settings: Settings, db_dsn: str) -> None:
    closed = await asyncpg.create_pool(db_dsn, min_size=0, max_size=1)
    assert closed is not None
    await closed.close()
    with capture_logs() as logs:
        outcome = await refresh(closed, settings, T0)
    assert outcome["outcome"] == "failed"
    assert outcome["detail"].startswith("database unavailable: InterfaceError")
    assert [(e["event"], e["log_level"]) for e in logs] == [("badges.refreshed", "warning")]


async def test_the_scheduler_refreshes_on_its_interval_without_feeds(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    await stock(pool, "S1", "SKU-A", 10, T0)
    await compute(pool, [("S1", "SKU-A")], T0)
    clock = Clock(T0 + timedelta(hours=1))
    s = msgspec.structs.replace(settings, scheduler=True, refresh_interval=timedelta(seconds=0.2))
    with capture_logs() as logs:

        def runs() -> list[MutableMapping[str, Any]]:
            return [e for e in logs if e["event"] == "badges.refreshed"]

        recs = await start_reconcilers(pool, s, POLICY, clock)
        try:
            await wait_for(lambda: len(runs()) >= 1)  # the first run is at once
            assert runs()[0]["candidates"] == 0
            clock.now = T0 + timedelta(hours=7)  # no data arrives; time passes
            await wait_for(lambda: any(e["recomputed"] == 1 for e in runs()))
        finally:
            await recs.shutdown()
        seen = len(runs())
        await asyncio.sleep(0.5)
        assert len(runs()) == seen  # nothing runs after shutdown
    assert (await badge(pool, "S1", "SKU-A"))["badge_state"] == "unknown"
    assert all(e["outcome"] == "refreshed" for e in runs())

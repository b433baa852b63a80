"""The API's in-process read model on real PostgreSQL: invalidation by NOTIFY after a
reconciler writes, the max-age bound, and the listener's reconnect."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from datetime import timedelta

import asyncpg
import pytest
from litestar import Litestar

from app.api.read_model import CHANNEL, PAIR_GENS_PRUNE, ReadModel
from app.db.availability import notify_badges_changed
from app.db.positions import recompute_pairs
from app.domain.model import SnapshotRow
from tests.conftest import serve_in_loop
from tests.test_api_availability import (
    LAT,
    LON,
    NOW,
    POLICY,
    add_one_badge,
    add_position,
    add_product,
    add_store,
)
from tests.test_positions import put_freshness, put_location, put_snapshot_row


async def wait_until(condition: Callable[[], bool]) -> None:
    """Until ``condition()`` holds (a safety limit, not a speed assertion)."""
    async with asyncio.timeout(20):
        while not condition():  # noqa: ASYNC110  (counters bumped by asyncpg callbacks)
            await asyncio.sleep(0.01)


async def wait_for_notification(app: Litestar, seen: int) -> None:
    reads: ReadModel = app.state.read_model
    await wait_until(lambda: reads.notifications > seen)


async def _seed(pool: asyncpg.Pool) -> None:
    await add_product(pool, "SKU-1")
    await add_one_badge(pool)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _book(reads: ReadModel) -> int | None:
    row = (await reads.badges(["SKU-1"], ["S001"]))["SKU-1"].rows["S001"]
    assert row.stored is not None
    return row.stored.badge.book


async def test_reconciler_write_invalidates_the_cached_badge_by_notify(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool, db_dsn: str
) -> None:
    await _seed(pool)
    # Warehouse inputs a reconciler will turn into a new position: 4 on hand at S001.
    as_of = NOW - timedelta(minutes=1)
    await put_location(pool, "S001", as_of)
    await put_snapshot_row(pool, SnapshotRow("S001", "SKU-1", 4, 0, 0, as_of))
    await put_freshness(pool, "S001", as_of)
    app = make_app(clock=lambda: NOW, policy=POLICY)
    params = {"lat": LAT, "lon": LON}
    async with serve_in_loop(app) as client:
        reads: ReadModel = app.state.read_model
        first = await client.get("/v1/availability/SKU-1", params=params)
        assert first.json()["stores"][0]["book"] == 10
        loads = reads.db_loads
        cached = await client.get("/v1/availability/SKU-1", params=params)
        assert cached.json()["stores"][0]["book"] == 10
        assert reads.db_loads == loads  # served from memory
        seen = reads.notifications
        # The reconciler, on its own connection, recomputes and commits.
        writer = await asyncpg.connect(db_dsn)
        try:
            assert await recompute_pairs(writer, [("S001", "SKU-1")], policy=POLICY, now=NOW) == 1
        finally:
            await writer.close()
        await wait_for_notification(app, seen)
        # The notification named the pair: the model reloads it by itself, in one query.
        await wait_until(lambda: reads.refreshed_rows == 1)
        after = await client.get("/v1/availability/SKU-1", params=params)
        assert after.json()["stores"][0]["book"] == 4
        assert reads.db_loads == loads


async def test_recompute_notifies_the_changed_pairs_on_commit_only(
    pool: asyncpg.Pool, db_dsn: str
) -> None:
    await _seed(pool)
    got: list[str] = []
    listener = await asyncpg.connect(db_dsn)
    try:
        await listener.add_listener(CHANNEL, lambda _c, _p, _ch, payload: got.append(payload))
        async with pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            await recompute_pairs(conn, [("S001", "SKU-1")], policy=POLICY, now=NOW)
            await tx.rollback()
            await recompute_pairs(
                conn, [("S002", "SKU-1"), ("S001", "SKU-1")], policy=POLICY, now=NOW
            )
        await wait_until(lambda: len(got) >= 1)
        await listener.execute("SELECT 1")  # anything else queued has arrived by now
    finally:
        await listener.close()
    assert got == ["S001/SKU-1,S002/SKU-1"]  # the rolled-back recompute said nothing


async def test_entries_older_than_the_bound_are_never_served(pool: asyncpg.Pool) -> None:
    await _seed(pool)
    clock = FakeMonotonic()
    # The listener confirms once, at LISTEN, then (as if hung) never again.
    reads = ReadModel(pool, max_age=5.0, monotonic=clock, confirm_every=3600.0)
    await reads.start()
    try:
        assert reads.listening
        assert await _book(reads) == 10
        # A change whose notification never comes: only the bound protects.
        await pool.execute("UPDATE book_position SET book = 7")
        clock.now += 5.0
        assert await _book(reads) == 10  # exactly at the bound: still allowed
        assert reads.db_loads == 1
        clock.now += 0.001
        assert await _book(reads) == 7  # past it: reloaded
        assert reads.db_loads == 2
        # The stores (and their freshness) obey the same bound.
        stores = await reads.stores()
        await pool.execute("UPDATE store SET name = 'Renamed'")
        clock.now += 5.001
        assert (await reads.stores()) is not stores
        assert (await reads.stores()).by_id["S001"].name == "Renamed"
    finally:
        await reads.stop()


async def test_a_confirmed_listener_keeps_entries_current_past_the_bound(
    pool: asyncpg.Pool,
) -> None:
    await _seed(pool)
    clock = FakeMonotonic()
    reads = ReadModel(pool, max_age=5.0, monotonic=clock, confirm_every=0.05)
    await reads.start()
    try:
        assert await _book(reads) == 10
        clock.now += 60.0  # long past the bound since the load...
        seen = reads.confirmations
        await wait_until(lambda: reads.confirmations > seen)  # ...but confirmed since
        assert await _book(reads) == 10
        assert reads.db_loads == 1
    finally:
        await reads.stop()


async def test_nothing_is_cached_without_a_listener(pool: asyncpg.Pool) -> None:
    await _seed(pool)
    reads = ReadModel(pool, max_age=60.0)  # never started: no notifications would arrive
    assert await _book(reads) == 10
    await pool.execute("UPDATE book_position SET book = 6")
    assert await _book(reads) == 6
    assert reads.db_loads == 2


async def test_store_notification_drops_only_that_store(pool: asyncpg.Pool) -> None:
    await _seed(pool)
    await add_store(pool, "S002")
    await add_position(pool, "S002", "SKU-1", book=20)
    reads = ReadModel(pool, max_age=60.0)
    await reads.start()
    try:
        await reads.badges(["SKU-1"], ["S001", "S002"])
        await pool.execute("UPDATE book_position SET book = book + 1")
        reads.invalidate(["S002"])
        only_s001 = (await reads.badges(["SKU-1"], ["S001"]))["SKU-1"].rows["S001"]
        assert only_s001.stored is not None and only_s001.stored.badge.book == 10
        assert reads.db_loads == 1
        both = (await reads.badges(["SKU-1"], ["S001", "S002"]))["SKU-1"].rows
        assert [r.stored.badge.book for r in both.values() if r.stored] == [11, 21]
        assert reads.db_loads == 2
    finally:
        await reads.stop()


async def test_listener_reconnects_and_starts_from_an_empty_cache(
    pool: asyncpg.Pool, db_dsn: str
) -> None:
    await _seed(pool)
    reads = ReadModel(pool, max_age=60.0)
    await reads.start()
    try:
        assert reads.listening and reads.reconnects == 1
        assert await _book(reads) == 10
        await pool.execute("UPDATE book_position SET book = 3")  # no notification
        assert await _book(reads) == 10  # cached: within the bound
        old_pid = reads.listener_pid
        killer = await asyncpg.connect(db_dsn)
        try:
            assert await killer.fetchval("SELECT pg_terminate_backend($1)", old_pid)
        finally:
            await killer.close()
        await wait_until(lambda: reads.reconnects == 2 and reads.listening)
        assert reads.listener_pid != old_pid
        # What was cached before the gap is gone: the next read goes to the database.
        loads = reads.db_loads
        assert await _book(reads) == 3
        assert reads.db_loads == loads + 1
        # And the new connection receives notifications.
        seen = reads.notifications
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE book_position SET book = 2")
            await conn.execute("SELECT pg_notify($1, 'S001')", CHANNEL)
        await wait_until(lambda: reads.notifications > seen)
        assert await _book(reads) == 2
    finally:
        await reads.stop()
    assert not reads.listening


@pytest.mark.parametrize("payload", ["", "S001,S999"])
async def test_a_notification_for_the_store_or_for_all_invalidates(
    pool: asyncpg.Pool, payload: str
) -> None:
    await _seed(pool)
    reads = ReadModel(pool, max_age=60.0)
    await reads.start()
    try:
        assert await _book(reads) == 10
        seen = reads.notifications
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE book_position SET book = 5")
            await conn.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
        await wait_until(lambda: reads.notifications > seen)
        assert await _book(reads) == 5
    finally:
        await reads.stop()


async def test_kept_answers_survive_notifications_about_other_stores_only(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool
) -> None:
    """A nearby answer rests on its stores: a notification naming another store keeps
    it (revalidated, no reload), one naming its store, one for everything, or a change
    to its store's freshness drops it."""
    await _seed(pool)
    await add_store(pool, "S900", lat=LAT + 5, lon=LON)  # far away: never in the answer
    app = make_app(clock=lambda: NOW, policy=POLICY)
    params = {"lat": LAT, "lon": LON}
    async with serve_in_loop(app) as client:
        reads: ReadModel = app.state.read_model

        async def notify(ids: list[str] | None, sql: str | None = None) -> None:
            seen = reads.notifications
            async with pool.acquire() as conn, conn.transaction():
                if sql:
                    await conn.execute(sql)
                await notify_badges_changed(conn, ids)
            await wait_for_notification(app, seen)
            await reads.stores()  # superseded: starts the reload in the background
            await reads.settled()

        async def book() -> int:
            r = await client.get("/v1/availability/SKU-1", params=params)
            value: int = r.json()["stores"][0]["book"]
            return value

        assert await book() == 10
        loads, kept = reads.db_loads, reads.revalidations
        await notify(["S900"], "UPDATE book_position SET book = 8")  # the wrong store named
        assert await book() == 10  # (as the notification said: S001 did not change)
        assert (reads.db_loads, reads.revalidations) == (loads, kept + 1)
        await notify(["S001"])
        assert await book() == 8
        assert (reads.db_loads, reads.revalidations) == (loads + 1, kept + 1)
        await notify(None, "UPDATE book_position SET book = 7")
        assert await book() == 7
        # Fresher data at S001 though the payload names S900: the answer's store changed,
        # so the answer is made again (from the cached row, which nothing invalidated).
        await notify(
            ["S900"],
            "UPDATE store_freshness SET last_pos_event_at = last_pos_event_at + interval '1 s'",
        )
        assert await book() == 7
        assert (reads.db_loads, reads.revalidations) == (loads + 2, kept + 1)


async def test_reads_after_a_notification_do_not_wait_for_the_stores_reload(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool
) -> None:
    """Right after a notification the stores as loaded before it answer (their freshness
    can only be older: the gate only stricter) while they reload in the background;
    once the reload lands, answers resting on a changed store are made again."""
    await _seed(pool)
    await add_product(pool, "SKU-2")  # known, no position at S001: no_data, as_of the store's
    app = make_app(clock=lambda: NOW, policy=POLICY)
    params = {"lat": LAT, "lon": LON}
    async with serve_in_loop(app) as client:
        reads: ReadModel = app.state.read_model
        first = (await client.get("/v1/availability/SKU-2", params=params)).json()
        assert first["stores"][0]["as_of"] == "2026-11-23T11:55:00Z"
        before = await reads.stores()
        seen = reads.notifications
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE store_freshness SET last_pos_event_at = $1", NOW)
            await notify_badges_changed(conn, ["S900"])
        await wait_for_notification(app, seen)
        async with asyncio.timeout(20), reads._stores_lock:  # hold the reload back
            assert await reads.stores() is before
            held = (await client.get("/v1/availability/SKU-2", params=params)).json()
            assert held["stores"] == first["stores"]
        await reads.settled()
        assert await reads.stores() is not before
        after = (await client.get("/v1/availability/SKU-2", params=params)).json()
        assert after["stores"][0]["as_of"] == "2026-11-23T12:00:00Z"


async def test_a_pair_notification_drops_that_sku_only(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool
) -> None:
    """``store/sku`` items drop those pairs' rows and the answers resting on them (the
    model reloads the pairs it holds in the background); the other skus' answers at the
    same store are revalidated, not made again."""
    await _seed(pool)
    await add_product(pool, "SKU-2")
    await add_position(pool, "S001", "SKU-2", book=5)
    app = make_app(clock=lambda: NOW, policy=POLICY)
    params = {"lat": LAT, "lon": LON}
    async with serve_in_loop(app) as client:
        reads: ReadModel = app.state.read_model

        async def book(sku: str) -> int:
            r = await client.get(f"/v1/availability/{sku}", params=params)
            value: int = r.json()["stores"][0]["book"]
            return value

        assert (await book("SKU-1"), await book("SKU-2")) == (10, 5)
        loads, kept = reads.db_loads, reads.revalidations
        seen = reads.notifications
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE book_position SET book = book - 1")
            await notify_badges_changed(conn, pairs=[("S001", "SKU-2")])
        await wait_for_notification(app, seen)
        await wait_until(lambda: reads.refreshed_rows == 1)
        assert (await book("SKU-1"), await book("SKU-2")) == (10, 4)
        assert (reads.db_loads, reads.revalidations) == (loads, kept + 1)


async def test_notification_payloads_fall_back_to_stores_then_everything(
    pool: asyncpg.Pool, db_dsn: str
) -> None:
    got: list[str] = []
    listener = await asyncpg.connect(db_dsn)
    try:
        await listener.add_listener(CHANNEL, lambda _c, _p, _ch, payload: got.append(payload))
        many = [(f"S{i % 3}", f"SKU-{i:05d}") for i in range(1000)]  # ~11 kB as pairs
        async with pool.acquire() as conn:
            await notify_badges_changed(conn, pairs=[("S1", "A"), ("S1", "A"), ("S0", "B")])
            await notify_badges_changed(conn, pairs=many)
            await notify_badges_changed(conn, [f"STORE-{i:060d}" for i in range(200)])
            await notify_badges_changed(conn, pairs=[])  # nothing changed: nothing sent
            await notify_badges_changed(conn, ["S9"])
        await wait_until(lambda: len(got) >= 4)
        await listener.execute("SELECT 1")
    finally:
        await listener.close()
    assert got == ["S0/B,S1/A", "S0,S1,S2", "", "S9"]


async def test_what_the_model_keeps_is_not_tracked_by_the_garbage_collector(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool
) -> None:
    """Rows, stored badges, badges and kept answers hold no reference cycles and are many:
    untracked, so the collector's full passes stay short as the cache turns over."""
    await _seed(pool)
    app = make_app(clock=lambda: NOW, policy=POLICY)
    async with serve_in_loop(app) as client:
        r = await client.get("/v1/availability/SKU-1", params={"lat": LAT, "lon": LON, "qty": 2})
        assert r.status_code == 200
        reads: ReadModel = app.state.read_model
        entry = reads._skus["SKU-1"]
        row = entry.rows["S001"]
        assert row.stored is not None and row.views
        (answer,) = reads._answers.values()
        kept = [entry, entry.rows, row, row.views, *row.views, row.stored, row.stored.badge]
        kept += [answer, answer.parts[1], answer.parts[1].window, *answer.infos]
        assert [type(o).__name__ for o in kept if gc.is_tracked(o)] == []


async def test_a_named_pair_is_never_served_from_memory_again(pool: asyncpg.Pool) -> None:
    """Until its reload lands, a pair a notification named is read from the database;
    the other pairs of the sku stay in memory."""
    await _seed(pool)
    await add_store(pool, "S002")
    await add_position(pool, "S002", "SKU-1", book=3)
    reads = ReadModel(pool, max_age=60.0)
    await reads.start()
    try:
        both = await reads.badges(["SKU-1"], ["S001", "S002"])
        assert reads.db_loads == 1
        await pool.execute("UPDATE book_position SET book = book + 1")
        reads.invalidate([], [("S002", "SKU-1")])  # as a notification would (no reload)
        again = await reads.badges(["SKU-1"], ["S001"])
        assert again["SKU-1"].rows["S001"] is both["SKU-1"].rows["S001"]  # not named
        assert reads.db_loads == 1
        named = (await reads.badges(["SKU-1"], ["S002"]))["SKU-1"].rows["S002"]
        assert reads.db_loads == 2
        assert named.stored is not None and named.stored.badge.book == 4
    finally:
        await reads.stop()


async def test_pair_generations_stay_bounded_and_named_rows_go_at_once(
    pool: asyncpg.Pool,
) -> None:
    """Rows a pair notification names leave the cache at once, so the model keeps the
    notifications' generations only while a load that began before them is in flight."""
    await _seed(pool)
    reads = ReadModel(pool, max_age=60.0)
    await reads.start()
    try:
        row = (await reads.badges(["SKU-1"], ["S001"]))["SKU-1"].rows["S001"]
        many = [(f"S{i:05d}", f"SKU-{i:05d}") for i in range(PAIR_GENS_PRUNE + 5)]
        assert reads.invalidate([], many) == []  # none of them held
        assert len(reads._pair_gen) == 0  # no load in flight: none needed
        assert (await reads.badges(["SKU-1"], ["S001"]))["SKU-1"].rows["S001"] is row
        assert reads.db_loads == 1
        assert reads.invalidate([], [("S001", "SKU-1")]) == [("S001", "SKU-1")]
        assert "S001" not in reads._skus["SKU-1"].rows
        await reads.badges(["SKU-1"], ["S001"])
        assert reads.db_loads == 2
    finally:
        await reads.stop()

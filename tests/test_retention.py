"""Retention deletes old POS events and quarantined snapshots, and no answer changes.

The property: over generated months of events (late ones, counts, shelf counts, a
snapshot or none), the books of every pair (now and ten days later) and the store's
reconciliation report read the same after a prune as before it; the events it deleted
are all old. Plain cases pin down which events go, the batching, the quarantine and
the job's lock.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from app.clock import Clock
from app.db import retention
from app.db.events import insert_events
from app.db.positions import _BOOK_OF_PAIRS_PLAIN, recompute_pairs
from app.db.reports import review_rows
from app.domain.model import Adjustment, Count, PosEvent, Receipt, Return, Sale, SnapshotRow
from app.domain.policy import Policy
from app.domain.reconciliation import ReviewRules
from app.settings import Settings, SettingsError, load_settings
from reconcilers.jobs import METRICS
from reconcilers.retention import RETENTION_LOCK, run_retention
from tests.test_positions import FEED, put_inputs

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SKUS = ("SKU-A", "SKU-B", "SKU-C")
POLICY = Policy()
# Rules that flag (nearly) every item, so the report shows every pair's facts.
EVERY_ITEM = ReviewRules(disagreement_units=0, fast_seller_week_units=0)
_stores = itertools.count()
KINDS: dict[str, type[Sale | Return | Receipt | Adjustment]] = {
    "sale": Sale, "return": Return, "receipt": Receipt, "adjustment": Adjustment,
}  # fmt: skip


def day(d: float) -> datetime:
    return NOW + timedelta(days=d)


def event(store: str, i: int, kind: str, sku: str, at: datetime, qty: int = 1) -> PosEvent:
    common: dict[str, Any] = {"event_id": f"{store}-E{i:04d}", "store_id": store, "sku": sku,
                              "occurred_at": at}  # fmt: skip
    if kind == "count":
        return Count(on_hand=qty, **common)
    return KINDS[kind](qty=qty, **common)


async def store_events(conn: Any, received: list[tuple[datetime, PosEvent]]) -> None:
    """The events, each stored at its receipt time (one page per time)."""
    by_time: dict[datetime, list[PosEvent]] = {}
    for at, e in received:
        by_time.setdefault(at, []).append(e)
    for at in sorted(by_time):
        async with conn.transaction():
            await insert_events(conn, FEED.name, by_time[at], received_at=at)


async def shelf_count(conn: Any, store: str, sku: str, at: datetime, qty: int) -> None:
    await observed(conn, store, sku, "shelf_count", at, qty)


async def observed(conn: Any, store: str, sku: str, kind: str, at: datetime, qty: int) -> None:
    """One feedback row, received when observed."""
    await conn.execute(
        """INSERT INTO feedback (store_id, sku, kind, observed_at, qty, received_at)
           VALUES ($1, $2, $3, $4, $5, $4) ON CONFLICT DO NOTHING""",
        store, sku, kind, at, qty,
    )  # fmt: skip


async def feedback_rows(conn: Any, store: str) -> set[tuple[Any, ...]]:
    rows = await conn.fetch(
        "SELECT sku, kind, observed_at, qty, received_at FROM feedback WHERE store_id = $1", store
    )
    return {tuple(r) for r in rows}


async def books(conn: Any, store: str, at: datetime) -> list[tuple[Any, ...]]:
    args = ([store] * len(SKUS), at, False, False, list(SKUS))
    return sorted(tuple(r) for r in await conn.fetch(_BOOK_OF_PAIRS_PLAIN, *args))


async def report(conn: Any, store: str, at: datetime) -> list[tuple[Any, ...]]:
    async with conn.transaction():
        return [tuple(r) async for r in review_rows(conn, store, now=at, rules=EVERY_ITEM)]


async def answers(conn: Any, store: str) -> list[Any]:
    """Everything the deleted events could have changed: books now and later, reports."""
    return [await books(conn, store, NOW), await books(conn, store, day(10)),
            await report(conn, store, NOW), await report(conn, store, day(10))]  # fmt: skip


async def event_ids(conn: Any, store: str) -> set[str]:
    rows = await conn.fetch("SELECT event_id FROM pos_event WHERE store_id = $1", store)
    return {r["event_id"] for r in rows}


# -- the property --------------------------------------------------------------------------
@st.composite
def histories(draw: st.DrawFn) -> list[tuple[str, str, float, float, int]]:
    """(kind, sku, occurred day, days until received, qty): ~200 days up to a day ahead."""
    out = []
    for _ in range(draw(st.integers(0, 40))):
        kind = draw(st.sampled_from(["sale", "sale", "sale", "receipt", "return", "adjustment",
                                     "count"]))  # fmt: skip
        occurred = draw(st.integers(-200, 1)) + draw(st.sampled_from([0.0, 0.25, 0.5]))
        delay = draw(st.sampled_from([0.0, 0.0, 0.1, 2.0, 60.0, 150.0]))
        if kind == "count":
            qty = draw(st.integers(0, 30))
        elif kind == "adjustment":
            qty = draw(st.integers(-5, 5).filter(bool))
        else:
            qty = draw(st.integers(1, 6))
        out.append((kind, draw(st.sampled_from(SKUS)), occurred, delay, qty))
    return out


@hsettings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    history=histories(),
    snapshot_day=st.none() | st.integers(-200, 0),
    shelf_counts=st.lists(
        st.tuples(st.sampled_from(SKUS), st.integers(-200, 0), st.integers(0, 20)), max_size=3
    ),
    picks=st.lists(
        st.tuples(
            st.sampled_from(SKUS),
            st.sampled_from(["pick_found", "pick_short"]),
            st.integers(-200, 0),
            st.integers(0, 2),
        ),
        max_size=6,
    ),
    keep_days=st.sampled_from([28, 45, 90]),
    batch=st.sampled_from([3, 1000]),
)
def test_a_prune_changes_no_book_and_no_report(
    db_dsn: str,
    history: list[tuple[str, str, float, float, int]],
    snapshot_day: int | None,
    shelf_counts: list[tuple[str, int, int]],
    picks: list[tuple[str, str, int, int]],
    keep_days: int,
    batch: int,
) -> None:
    store = f"R{next(_stores)}"
    received = [
        (min(NOW, day(occurred + delay)), event(store, i, kind, sku, day(occurred), qty))
        for i, (kind, sku, occurred, delay, qty) in enumerate(history)
    ]
    snapshot = (
        {}
        if snapshot_day is None
        else {sku: SnapshotRow(store, sku, 10, 1, 0, day(snapshot_day)) for sku in SKUS[:2]}
    )
    keep = timedelta(days=keep_days)

    async def run() -> None:
        conn = await asyncpg.connect(db_dsn, server_settings={"timezone": "UTC"})
        try:
            await put_inputs(conn, store, snapshot,
                             None if snapshot_day is None else day(snapshot_day))  # fmt: skip
            await store_events(conn, received)
            for sku, d, qty in shelf_counts:
                await shelf_count(conn, store, sku, day(d), qty)
            for sku, kind, d, qty in picks:
                await observed(conn, store, sku, kind, day(d), qty + (kind == "pick_found"))
            await recompute_pairs(conn, [(store, s) for s in SKUS], policy=POLICY, now=NOW)
            before, ids = await answers(conn, store), await event_ids(conn, store)
            rows = await feedback_rows(conn, store)
            pruned = retention.Pruned()
            await retention.prune_events(conn, now=NOW, keep=keep, batch=batch, into=pruned)
            await retention.prune_feedback(conn, now=NOW, keep=keep, batch=batch, into=pruned)
            after, kept = await answers(conn, store), await event_ids(conn, store)
            assert after == before
            gone = ids - kept
            assert pruned.events_deleted >= len(gone)  # (earlier examples' stores share the db)
            for at, e in received:
                if e.event_id in gone:
                    assert at < NOW - keep and e.occurred_at < NOW - keep, e
            for _, kind, at, _, got in rows - await feedback_rows(conn, store):
                assert at < NOW - keep and got < NOW - keep, (kind, at)
        finally:
            await conn.close()

    asyncio.run(run())


# -- plain cases ---------------------------------------------------------------------------
async def test_old_events_before_the_base_go_and_what_answers_read_stays(
    pool: asyncpg.Pool,
) -> None:
    store = "RPLAIN"
    a, b, c = SKUS
    snap = {sku: SnapshotRow(store, sku, 40, 0, 0, day(-60)) for sku in SKUS}
    events = [
        (day(-120), event(store, 1, "sale", a, day(-120))),  # before the base, newer sales: goes
        (day(-115), event(store, 2, "receipt", a, day(-115), 6)),  # goes
        (day(-110), event(store, 3, "sale", a, day(-110))),  # goes
        (day(-50), event(store, 7, "sale", a, day(-50))),  # after the base: stays
        (day(-1), event(store, 8, "sale", a, day(-91))),  # old, but received late: stays
        (day(-30), event(store, 9, "sale", a, day(-30))),  # within the period: stays
        (day(-105), event(store, 4, "sale", b, day(-105))),  # older than b's newest sale: goes
        (day(-100), event(store, 5, "sale", b, day(-100))),  # b's newest sale: stays
        (day(-99), event(store, 6, "receipt", b, day(-99), 3)),  # b's newest event: stays
        (day(-140), event(store, 12, "count", c, day(-140), 7)),  # an older count: goes
        (day(-130), event(store, 10, "count", c, day(-130), 12)),  # c's latest count: stays
        (day(-125), event(store, 11, "sale", c, day(-125))),  # the count view reads it: stays
        (day(-20), event(store, 13, "sale", c, day(-20))),
    ]
    async with pool.acquire() as conn:
        await put_inputs(conn, store, snap, day(-60))
        await store_events(conn, events)
        await recompute_pairs(conn, [(store, s) for s in SKUS], policy=POLICY, now=NOW)
        before = await answers(conn, store)
        pruned = retention.Pruned()
        await retention.prune_events(conn, now=NOW, keep=timedelta(days=90), into=pruned)
        left = {f"{store}-E{i:04d}" for i in (5, 6, 7, 8, 9, 10, 11, 13)}
        assert await event_ids(conn, store) == left
        assert (pruned.events_deleted, pruned.events_scanned) == (5, 9)  # E0008: received late
        assert await answers(conn, store) == before
        # A later count of c: the count view starts there, the old count and sale go.
        await store_events(conn, [(day(-100), event(store, 14, "count", c, day(-100), 30))])
        await recompute_pairs(conn, [(store, c)], policy=POLICY, now=NOW)
        again = retention.Pruned()
        await retention.prune_events(conn, now=NOW, keep=timedelta(days=90), into=again)
        assert again.events_deleted == 2
        now_left = left - {f"{store}-E0010", f"{store}-E0011"} | {f"{store}-E0014"}
        assert await event_ids(conn, store) == now_left


async def test_events_of_pairs_without_a_base_or_a_position_stay(pool: asyncpg.Pool) -> None:
    store = "RNOBASE"
    events = [
        (day(-200 + i), event(store, i, "sale", SKUS[i % 2], day(-200 + i))) for i in range(6)
    ]
    async with pool.acquire() as conn:
        await put_inputs(conn, store, {}, None)
        await store_events(conn, events)
        # SKU-A has a position but no base (no snapshot, no count); SKU-B has none at all.
        await recompute_pairs(conn, [(store, SKUS[0])], policy=POLICY, now=NOW)
        pruned = retention.Pruned()
        await retention.prune_events(conn, now=NOW, keep=timedelta(days=28), into=pruned)
        assert (pruned.events_scanned, pruned.events_deleted) == (6, 0)
        assert len(await event_ids(conn, store)) == 6


async def test_retention_shorter_than_the_reports_28_days_is_refused(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(ValueError, match="at least 28 days"):
            await retention.prune_events(conn, now=NOW, keep=timedelta(days=27),
                                         into=retention.Pruned())  # fmt: skip
    with pytest.raises(SettingsError, match=r"event_retention must be 0 .* at least 28 days"):
        load_settings({"AVAILABILITY_EVENT_RETENTION": "7d"})
    with pytest.raises(SettingsError, match="quarantine_retention must not be negative"):
        load_settings({}, quarantine_retention=timedelta(days=-1))
    assert load_settings({"AVAILABILITY_EVENT_RETENTION": "0"}).event_retention == timedelta(0)


async def quarantine(conn: Any, received_at: datetime, status: str = "quarantined") -> int:
    snapshot_id: int = await conn.fetchval(
        """INSERT INTO warehouse_snapshot (feed, status, reason, row_count, received_at)
           VALUES ($1, $2, 'test', 1, $3) RETURNING snapshot_id""",
        FEED.name, status, received_at,
    )  # fmt: skip
    await conn.execute(
        """INSERT INTO warehouse_snapshot_row
               (snapshot_id, location_id, sku, on_hand, reserved, in_transit, as_of)
           VALUES ($1, 'S1', 'SKU-A', 1, 0, 0, $2)""",
        snapshot_id, received_at,
    )  # fmt: skip
    return snapshot_id


async def test_the_job_deletes_old_quarantines_and_events_once_under_its_lock(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    store = "RJOB"
    clock: Clock = lambda: NOW  # noqa: E731
    async with pool.acquire() as conn:
        await put_inputs(conn, store, {SKUS[0]: SnapshotRow(store, SKUS[0], 9, 0, 0, day(-40))},
                         day(-40))  # fmt: skip
        await store_events(conn, [(day(-d), event(store, d, "sale", SKUS[0], day(-d)))
                                  for d in (100, 99, 98, 1)])  # fmt: skip
        await recompute_pairs(conn, [(store, SKUS[0])], policy=POLICY, now=NOW)
        old = await quarantine(conn, day(-31))
        young = await quarantine(conn, day(-29))
        applied = await quarantine(conn, day(-300), status="applied")
    configured = msgspec.structs.replace(settings, event_retention=timedelta(days=90),
                                         quarantine_retention=timedelta(days=30))  # fmt: skip

    def counted(name: str, **labels: str) -> float:
        return METRICS.get_sample_value(name, labels) or 0.0

    runs = {
        o: counted("availability_retention_runs_total", outcome=o) for o in ("pruned", "skipped")
    }
    deleted = counted("availability_retention_deleted_rows_total", table="pos_event")
    async with pool.acquire() as holder:  # another process is pruning: this one skips
        await holder.execute("SELECT pg_advisory_lock($1, $2)", *RETENTION_LOCK)
        assert await run_retention(pool, configured, clock) is None
        await holder.execute("SELECT pg_advisory_unlock($1, $2)", *RETENTION_LOCK)
    pruned = await run_retention(pool, configured, clock, batch=2)
    assert pruned == retention.Pruned(events_scanned=3, events_deleted=3, batches=2,
                                      quarantined_deleted=1)  # fmt: skip
    left = {
        r["snapshot_id"] for r in await pool.fetch("SELECT snapshot_id FROM warehouse_snapshot")
    }
    assert old not in left and {young, applied} <= left
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM warehouse_snapshot_row WHERE snapshot_id = $1", old
        )
        == 0
    )
    assert await event_ids(pool, store) == {f"{store}-E0001"}  # the newest sale stays
    # GET /metrics's counters: one skipped run, one that pruned three events.
    assert counted("availability_retention_runs_total", outcome="skipped") == runs["skipped"] + 1
    assert counted("availability_retention_runs_total", outcome="pruned") == runs["pruned"] + 1
    assert counted("availability_retention_deleted_rows_total", table="pos_event") == deleted + 3
    off = msgspec.structs.replace(settings, event_retention=timedelta(0),
                                  quarantine_retention=timedelta(0))  # fmt: skip
    assert await run_retention(pool, off, clock) is None


async def test_old_picks_and_replaced_shelf_counts_go(pool: asyncpg.Pool) -> None:
    store = "RFEED"
    a, b, c = SKUS
    async with pool.acquire() as conn:
        await put_inputs(conn, store, {}, None)
        for kind, sku, d, qty in [
            ("pick_found", a, -120, 1),  # old: goes
            ("pick_short", a, -100, 0),  # old: goes
            ("pick_short", a, -20, 0),  # within the period: stays
            ("shelf_count", a, -150, 3),  # a newer shelf count: goes
            ("shelf_count", a, -110, 5),  # a's latest count, old as it is: stays
            ("shelf_count", b, -130, 4),  # a newer POS count of b: goes
            ("shelf_count", c, -5, 9),  # young: stays
        ]:
            await observed(conn, store, sku, kind, day(d), qty)
        await store_events(conn, [(day(-100), event(store, 1, "count", b, day(-100), 6))])
        await recompute_pairs(conn, [(store, s) for s in SKUS], policy=POLICY, now=NOW)
        before = await answers(conn, store)
        pruned = retention.Pruned()
        await retention.prune_feedback(conn, now=NOW, keep=timedelta(days=90), batch=2,
                                       into=pruned)  # fmt: skip
        left = {(r[0], r[1], r[2]) for r in await feedback_rows(conn, store)}
        assert left == {(a, "pick_short", day(-20)), (a, "shelf_count", day(-110)),
                        (c, "shelf_count", day(-5))}  # fmt: skip
        assert (pruned.feedback_scanned, pruned.feedback_deleted) == (5, 4)
        assert await answers(conn, store) == before

"""The confidence engine in the live service, against real PostgreSQL and real HTTP feeds:
stored badges carry the engine's assessment, a quiet store loses confidence on the
refresh, and a warm restart reproduces the running engine."""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest

import app.db.engine_state as engine_state
from app.db.engine_state import LiveEngine, load_calibration
from app.db.events import insert_events
from app.db.feeds import upsert_feeds
from app.domain.engine import Engine
from app.domain.live import Assessor, frozen_calibration
from app.domain.model import BookPosition, PosEvent, Sale
from app.domain.policy import Policy
from app.domain.reassess import decode_record, reassess
from app.settings import Settings
from reconcilers.feeds_config import FeedConfig
from reconcilers.outcome import PullOutcome
from reconcilers.pos import store_page
from reconcilers.scheduler import Reconcilers, start_reconcilers
from tests.conftest import with_feeds_file
from tests.feedserver import FeedServer, json_reply, text_reply

T0 = datetime(2026, 11, 23, 0, 0, tzinfo=UTC)
POLICY = Policy()
STORES = ("S1", "S2")
SKUS = ("A", "B", "C", "D", "E")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def snapshot(as_of: datetime) -> str:
    stamp = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
    lines = ["location_id,sku,on_hand,reserved,in_transit,as_of"]
    lines += [f"{s},{k},{82 + 2 * i},1,0,{stamp}" for s in STORES for i, k in enumerate(SKUS)]
    return "\n".join(lines) + "\n"


def sales(
    start: datetime, end: datetime, stores: tuple[str, ...], tag: str
) -> list[dict[str, Any]]:
    """A sale every 5 minutes per store, round-robin over the skus."""
    out, at, n = [], start, 0
    while at < end:
        for s in stores:
            out.append({"event_id": f"{tag}-{s}-{n}", "type": "sale", "store_id": s,
                        "sku": SKUS[n % len(SKUS)], "qty": 1,
                        "occurred_at": at.strftime("%Y-%m-%dT%H:%M:%SZ")})  # fmt: skip
        at += timedelta(minutes=5)
        n += 1
    return out


def with_feeds(settings: Settings, tmp_path: Path, server: FeedServer) -> Settings:
    return with_feeds_file(
        settings,
        tmp_path,
        {"name": "pos-main", "kind": "pos", "url": server.url("/events")},
        {"name": "wh", "kind": "warehouse", "url": server.url("/stock.csv")},
        scheduler=False,
    )


async def rows(pool: asyncpg.Pool, store: str | None = None) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT * FROM book_position WHERE $1::text IS NULL OR store_id = $1 ORDER BY 1, 2", store
    )


def position(r: asyncpg.Record) -> BookPosition:
    return BookPosition(store_id=r["store_id"], sku=r["sku"], book=r["book"],
                        base_source=r["base_source"], base_at=r["base_at"],
                        snapshot_as_of=r["snapshot_as_of"], last_event_at=r["last_event_at"],
                        in_transit=r["in_transit"])  # fmt: skip


async def trade(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path, server: FeedServer, clock: Clock,
    hours: int = 30,
) -> Reconcilers:  # fmt: skip
    """A snapshot, then one POS page every two hours of trade at both stores."""
    pages = []
    for k in range(0, hours, 2):
        events = sales(T0 + timedelta(hours=k), T0 + timedelta(hours=k + 2), STORES, f"p{k}")
        pages.append(json_reply({"events": events, "next_cursor": f"c{k}", "has_more": False}))
    server.sequence("/events", *pages)
    server.always("/stock.csv", text_reply(snapshot(T0)))
    clock.now = T0 + timedelta(minutes=5)
    recs = await start_reconcilers(pool, with_feeds(settings, tmp_path, server), POLICY, clock)
    assert (await recs.run_now("wh")).outcome == "applied"
    for k in range(0, hours, 2):
        clock.now = T0 + timedelta(hours=k + 2, minutes=1)
        assert (await recs.run_now("pos-main")).outcome == "applied"
    return recs


async def test_stored_badges_carry_the_engines_assessment(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path, feed_server: FeedServer
) -> None:
    clock = Clock(T0)
    recs = await trade(pool, settings, tmp_path, feed_server, clock)
    try:
        stored = await rows(pool)
        assert len(stored) == len(STORES) * len(SKUS)
        for r in stored:
            assert r["confidence"] is not None and r["evidence"] is not None
            record = decode_record(r["evidence"])
            assert record.calibration_id is not None  # the cold-start map: no labels yet
            async with pool.acquire() as conn:
                calibration = await load_calibration(conn, record.calibration_id)
            again = reassess(record, wanted=1, horizon=POLICY.arrival_horizon, policy=POLICY,
                             calibration=calibration)  # fmt: skip
            assert r["confidence"] == again.confidence
            assert r["safety_buffer"] == (
                POLICY.safety_buffer + again.held_for_sales + again.held_for_uncertainty
            )
            assert set(again.reasons) <= set(r["reasons"])
            if r["badge_state"] in ("in_stock", "low_stock"):
                assert r["book"] - r["safety_buffer"] >= 1
                assert r["confidence"] >= POLICY.confidence_threshold
        # The stored assessment is the running engine's at the time it was computed.
        assert recs.live is not None
        last = max(r["computed_at"] for r in stored)
        for r in stored:
            if r["computed_at"] == last:
                assessment = recs.live.engine.assess(position(r), 1, last)
                assert r["confidence"] == assessment.confidence
    finally:
        await recs.shutdown()


async def test_a_quiet_store_loses_confidence_on_every_item_after_a_refresh(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path, feed_server: FeedServer
) -> None:
    clock = Clock(T0)
    recs = await trade(pool, settings, tmp_path, feed_server, clock)
    try:
        before = {(r["store_id"], r["sku"]): r["confidence"] for r in await rows(pool, "S1")}
        clock.now += timedelta(hours=3)  # S1's tills say nothing for three trade hours
        outcome = await recs.refresh_now()
        assert outcome.recomputed >= len(SKUS)
        after = await rows(pool, "S1")
        assert len(after) == len(SKUS)
        for r in after:
            assert r["computed_at"] == clock.now
            assert r["confidence"] < before[(r["store_id"], r["sku"])]
            assert "pos_quiet" in r["reasons"]
    finally:
        await recs.shutdown()


async def test_a_warm_restart_reproduces_the_running_engine(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path, feed_server: FeedServer
) -> None:
    clock = Clock(T0)
    gc.unfreeze()
    recs = await trade(pool, settings, tmp_path, feed_server, clock)
    try:
        assert gc.get_freeze_count() > 0  # the snapshot's catch-up froze the heap
        gc.unfreeze()
        feedback = {"feedback": [
            {"observed_at": "2026-11-24T05:30:00Z", "store_id": "S1", "sku": "A",
             "kind": "shelf_count", "qty": 7},
            {"observed_at": "2026-11-24T05:40:00Z", "store_id": "S2", "sku": "B",
             "kind": "pick_short", "qty": 0},
        ]}  # fmt: skip
        from app.db.engine_state import binding
        from app.db.feedback import Observation, store_feedback

        clock.now = T0 + timedelta(hours=30, minutes=2)
        items = [msgspec.convert(f, Observation) for f in feedback["feedback"]]
        with binding(recs.live):
            async with pool.acquire() as conn:
                await store_feedback(conn, items, policy=POLICY, now=clock.now)
        running = recs.live
        assert running is not None
        warm = LiveEngine(POLICY)
        await warm.warm_start(pool, clock.now)
        now = clock.now + timedelta(minutes=30)
        one = Assessor(running.engine, now, frozen_calibration(running.engine, 1))
        two = Assessor(warm.engine, now, frozen_calibration(warm.engine, 1))
        stored = await rows(pool)
        for r in stored:
            pos = position(r)
            assert one.assess(pos) == two.assess(pos)
        assert warm.observed["events"] == running.observed["events"] > 0
        assert warm.observed["feedback"] == running.observed["feedback"] == 2
        counted = next(r for r in stored if (r["store_id"], r["sku"]) == ("S1", "A"))
        assert counted["base_source"] == "count" and counted["evidence"] is not None
    finally:
        await recs.shutdown()


async def stock_one_pair(pool: asyncpg.Pool) -> None:
    """S1/A: 9 units on the warehouse record at T0, the store's data fresh as of T0."""
    await pool.execute("INSERT INTO warehouse_stock VALUES ('S1', 'A', 9, 0, 0, $1, 1)", T0)
    await pool.execute(
        "INSERT INTO store_freshness (store_id, snapshot_as_of) VALUES ('S1', $1)", T0
    )


async def test_without_an_engine_the_badge_is_book_only(pool: asyncpg.Pool) -> None:
    """Callers with no engine bound keep the book-only badge (and no evidence)."""
    from app.db.positions import recompute_pairs

    await stock_one_pair(pool)
    async with pool.acquire() as conn:
        await recompute_pairs(conn, [("S1", "A")], policy=POLICY, now=T0)
    (r,) = await rows(pool)
    assert (r["confidence"], r["evidence"], r["badge_state"]) == (None, None, "in_stock")


async def test_records_never_name_a_map_that_a_rolled_back_recompute_saved(
    pool: asyncpg.Pool,
) -> None:
    """The calibration map is stored in the recompute's transaction; when that rolls
    back, the next recompute stores it again, so every record names a stored map."""
    from app.db.positions import recompute_pairs

    await stock_one_pair(pool)
    live = LiveEngine(POLICY)
    await live.warm_start(pool, T0)
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="after the recompute"):
            async with conn.transaction():
                await recompute_pairs(conn, [("S1", "A")], policy=POLICY, now=T0, engine=live)
                raise RuntimeError("the pull fails after the recompute")
        assert await conn.fetchval("SELECT count(*) FROM engine_calibration") == 0
        await recompute_pairs(conn, [("S1", "A")], policy=POLICY, now=T0, engine=live)
    (r,) = await rows(pool)
    named = decode_record(r["evidence"]).calibration_id
    assert named is not None
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM engine_calibration WHERE calibration_id = $1", named
        )
        == 1
    )


def sale(event_id: str, qty: int, minute: int, store: str = "S1") -> Sale:
    return Sale(event_id=event_id, store_id=store, sku="A", qty=qty,
                occurred_at=T0 + timedelta(minutes=minute))  # fmt: skip


async def store_pages(
    pool: asyncpg.Pool, live: LiveEngine, feed: str, events: list[Sale], now: datetime
) -> None:
    """Store ``events`` as a POS pull does (``store_page``), with ``live`` bound."""
    with engine_state.binding(live):
        await store_page(pool, feed, events, cursor=None, policy=POLICY, clock=lambda: now,
                         outcome=PullOutcome(outcome="applied"))  # fmt: skip


async def counting_read_backs(pool: asyncpg.Pool, monkeypatch: Any) -> list[str]:
    """Feeds pos-a and pos-b, and the list of events the engine reads back from now on."""
    read_back: list[str] = []
    real_event = engine_state._event

    def counted(r: asyncpg.Record) -> Any:
        read_back.append(f"{r['feed']}:{r['event_id']}")
        return real_event(r)

    monkeypatch.setattr(engine_state, "_event", counted)
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [FeedConfig(name=n, kind="pos", url="http://127.0.0.1:1/e")
                                  for n in ("pos-a", "pos-b")])  # fmt: skip
    return read_back


async def test_a_stored_page_reaches_the_engine_from_the_page_exactly_once(
    pool: asyncpg.Pool, monkeypatch: Any
) -> None:
    """The engine takes a POS store's new events as decoded (none read back): a
    redelivery and an event_id given twice in one store (the first is kept) are
    left out, as in the database; another feed's events stored at the very same
    instant make it read them all back, in the database's order."""
    read_back = await counting_read_backs(pool, monkeypatch)
    live = LiveEngine(POLICY)
    await live.warm_start(pool, T0)

    async def store(feed: str, events: list[Sale], now: datetime) -> None:
        await store_pages(pool, live, feed, events, now)

    now = T0 + timedelta(hours=1)
    await store("pos-a", [sale("e1", 1, 1), sale("e2", 2, 2), sale("e1", 5, 3)], now)
    assert read_back == [] and live.observed["events"] == 2
    assert live.engine.ledger.knows("pos-a:e1") and live.engine.ledger.knows("pos-a:e2")
    qty = await pool.fetchval("SELECT qty FROM pos_event WHERE feed = 'pos-a' AND event_id = 'e1'")
    assert qty == 1

    later = now + timedelta(minutes=1)  # a redelivery, and a new event sent with an offset
    plus2 = sale("e3", 1, 4, store="S2")
    plus2 = msgspec.structs.replace(
        plus2, occurred_at=plus2.occurred_at.astimezone(timezone(timedelta(hours=2)))
    )
    await store("pos-a", [sale("e2", 2, 2), plus2], later)
    assert read_back == [] and live.observed["events"] == 3
    last = live.engine.pairs[("S2", "A")].last_sale
    assert last is not None and last.occurred_at.tzinfo is UTC  # as read back
    assert last.occurred_at == plus2.occurred_at and last.event_id == "pos-a:e3"

    same = later + timedelta(minutes=1)  # another feed's page at the very same instant
    async with pool.acquire() as conn, conn.transaction():
        await insert_events(conn, "pos-b", [sale("x1", 1, 5)], received_at=same)
    await store("pos-a", [sale("e4", 1, 6)], same)
    assert sorted(read_back) == ["pos-a:e4", "pos-b:x1"] and live.observed["events"] == 5
    warm = LiveEngine(POLICY)  # a warm start reads every event back
    await warm.warm_start(pool, T0)
    assert warm.observed["events"] == live.observed["events"]
    assert warm.events_mark == live.events_mark and warm._at_mark == live._at_mark


async def test_a_runs_first_look_reads_only_events_it_has_not_read(
    pool: asyncpg.Pool, monkeypatch: Any
) -> None:
    """A run's first catch-up looks 5 minutes behind its mark for late commits; what an
    earlier look read (or took in from its own pull) is left out in SQL, never what a
    transaction committed after that look, even with an earlier time of receipt, nor
    what a look's own transaction stored after it without handing it over."""
    from app.db.positions import recompute_pairs

    read_back = await counting_read_backs(pool, monkeypatch)
    live = LiveEngine(POLICY)
    await live.warm_start(pool, T0)
    now = T0 + timedelta(hours=1)
    await store_pages(pool, live, "pos-a", [sale("e1", 1, 1), sale("e2", 1, 2)], now)
    await live.catch_up(pool)  # its events were taken from the page: none read back
    assert read_back == [] and live.observed["events"] == 2

    other = now + timedelta(minutes=1)  # another process's page, read once
    async with pool.acquire() as conn, conn.transaction():
        await insert_events(conn, "pos-b", [sale("x1", 1, 3)], received_at=other)
    await live.catch_up(pool)
    await live.catch_up(pool)
    assert read_back == ["pos-b:x1"]

    async with pool.acquire() as late:  # received before the mark, committed after a look
        tx = late.transaction()
        await tx.start()
        await insert_events(late, "pos-b", [sale("x2", 1, 4)], received_at=now)
        await live.catch_up(pool)
        assert read_back == ["pos-b:x1"] and not live.engine.ledger.knows("pos-b:x2")
        await tx.commit()
    await live.catch_up(pool)
    assert read_back == ["pos-b:x1", "pos-b:x2"] and live.engine.ledger.knows("pos-b:x2")

    async with pool.acquire() as conn, conn.transaction():  # committed late again, then a
        await insert_events(conn, "pos-b", [sale("y1", 1, 4)], received_at=now)
    page = other + timedelta(seconds=30)  # pull's look that reads only from its mark on
    await store_pages(pool, live, "pos-a", [sale("e3", 1, 5)], page)
    assert not live.engine.ledger.knows("pos-b:y1")
    await live.catch_up(pool)  # the pull's look saw y1's transaction complete, not read it
    assert read_back[2:] == ["pos-b:y1"] and live.engine.ledger.knows("pos-b:y1")

    async with pool.acquire() as conn, conn.transaction():  # no Fresh: its own look, then more
        mine = other + timedelta(minutes=1)
        await insert_events(conn, "pos-b", [sale("x3", 1, 5)], received_at=mine)
        with engine_state.binding(live):
            await recompute_pairs(conn, [("S1", "A")], policy=POLICY, now=mine)
        await insert_events(conn, "pos-b", [sale("x4", 1, 6)], received_at=mine)
    assert read_back[3:] == ["pos-b:x3"]
    await live.catch_up(pool)
    assert live.engine.ledger.knows("pos-b:x4") and read_back.count("pos-b:x4") == 1
    assert live.observed["events"] == 8
    before = list(read_back)
    await live.catch_up(pool)
    assert read_back == before


async def test_ids_and_feedback_keys_go_once_no_catch_up_can_read_them_again(
    pool: asyncpg.Pool, monkeypatch: Any
) -> None:
    """A process runs for months: what it keeps to tell a re-read from a new event or
    feedback goes 10 minutes after receipt (a catch-up reads 5 minutes back), and
    nothing is taken in twice."""
    from app.db.feedback import Observation, store_feedback

    read_back = await counting_read_backs(pool, monkeypatch)
    live = LiveEngine(POLICY)
    await live.warm_start(pool, T0)

    async def observed(at: datetime, qty: int) -> None:
        seen = Observation(observed_at=at, store_id="S1", sku="A", kind="pick_found", qty=qty)
        async with pool.acquire() as conn:
            await store_feedback(conn, [seen], policy=POLICY, now=at)

    first = T0 + timedelta(hours=1)
    await store_pages(pool, live, "pos-a", [sale("e1", 1, 55)], first)
    await observed(first, 1)
    await live.catch_up(pool)
    assert live.engine.ledger.knows("pos-a:e1") and len(live._feedback_seen) == 1
    later = first + timedelta(minutes=20)
    await store_pages(pool, live, "pos-a", [sale("e2", 1, 75)], later)
    await observed(later, 2)
    await live.catch_up(pool)
    await live.catch_up(pool)
    assert not live.engine.ledger.knows("pos-a:e1") and live.engine.ledger.knows("pos-a:e2")
    assert [k[4] for k in live._feedback_seen] == [2]
    assert live.observed["events"] == 2 and live.observed["feedback"] == 2 and read_back == []


@pytest.mark.parametrize("caught_up_by", ["a run", "a recompute"])
async def test_raw_events_older_than_the_window_go_and_every_answer_stays(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path, feed_server: FeedServer,
    caught_up_by: str,
) -> None:  # fmt: skip
    """Two engines follow the same 30 hours of trade and a later snapshot; the one
    with a 12-hour window lets go of the raw events older than that and before the
    snapshot, in a run's first catch-up or (a process without the scheduler) in a
    recompute's, and assesses every stored position as the other does."""
    from app.db.positions import recompute_pairs

    clock = Clock(T0)
    short, full = LiveEngine(POLICY, window=timedelta(hours=12)), LiveEngine(POLICY)
    for live in (short, full):
        await live.warm_start(pool, T0)
    recs = await trade(pool, settings, tmp_path, feed_server, clock)
    try:
        feed_server.always("/stock.csv", text_reply(snapshot(T0 + timedelta(hours=29))))
        clock.now = T0 + timedelta(hours=30, minutes=5)
        assert (await recs.run_now("wh")).outcome == "applied"
        await full.catch_up(pool)
        if caught_up_by == "a run":
            await short.catch_up(pool)
        else:
            with engine_state.binding(short):
                async with pool.acquire() as conn:
                    await recompute_pairs(conn, [("S1", "A")], policy=POLICY, now=clock.now)
        held = [sum(len(pb.events) for pb in e.engine.ledger.pairs.values())
                for e in (short, full)]  # fmt: skip
        assert full.observed["events"] == held[1] == 720 and held[0] < 300
        now = clock.now + timedelta(minutes=30)
        one = Assessor(short.engine, now, frozen_calibration(short.engine, 1))
        two = Assessor(full.engine, now, frozen_calibration(full.engine, 1))
        for r in await rows(pool):
            assert one.assess(position(r)) == two.assess(position(r))
    finally:
        await recs.shutdown()


async def test_the_callers_next_statement_runs_while_the_engine_takes_in_what_it_read(
    pool: asyncpg.Pool, monkeypatch: Any
) -> None:
    """``alongside`` starts before the catch-up's events are taken in (after them when
    a snapshot must be read on the connection as it goes), ends before the assessor
    is given, and is cancelled with the catch-up when taking in fails."""
    import asyncio

    await counting_read_backs(pool, monkeypatch)
    live = LiveEngine(POLICY)
    await live.warm_start(pool, T0)
    now = T0 + timedelta(hours=1)
    async with pool.acquire() as conn, conn.transaction():
        await insert_events(conn, "pos-b", [sale(f"x{i}", 1, i) for i in range(40)],
                            received_at=now)  # fmt: skip
    at_start: list[int] = []
    async with pool.acquire() as conn, conn.transaction():

        async def alongside() -> None:
            at_start.append(live.observed["events"])
            await conn.fetchval("SELECT pg_sleep(0.05)")

        async with live.assessor(conn, now, alongside=alongside):
            assert at_start == [0] and live.observed["events"] == 40
            assert await conn.fetchval("SELECT 1") == 1  # the connection is free again

    async with pool.acquire() as conn, conn.transaction():
        await insert_events(conn, "pos-b", [sale("y1", 1, 50)], received_at=now)

    class Failing(Engine):
        def observe_event(self, e: PosEvent) -> bool:
            raise RuntimeError("engine fault")

    monkeypatch.setattr(live, "engine", Failing(POLICY, live.engine.categories))
    started = asyncio.get_running_loop().time()
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="engine fault"):
            async with conn.transaction():

                async def slow() -> None:
                    await conn.fetchval("SELECT pg_sleep(5)")

                async with live.assessor(conn, now, alongside=slow):
                    pass
        assert await conn.fetchval("SELECT 2") == 2  # cancelled, rolled back, usable
    assert asyncio.get_running_loop().time() - started < 4


async def test_with_a_snapshot_to_read_the_next_statement_waits_for_the_catch_up(
    pool: asyncpg.Pool, settings: Settings, tmp_path: Path, feed_server: FeedServer
) -> None:
    clock = Clock(T0)
    live = LiveEngine(POLICY)
    await live.warm_start(pool, T0)
    recs = await trade(pool, settings, tmp_path, feed_server, clock, hours=4)
    try:
        marks: list[int] = []
        async with pool.acquire() as conn, conn.transaction():

            async def alongside() -> None:
                marks.append(live.snapshot_mark)
                await conn.fetchval("SELECT 1")

            async with live.assessor(conn, clock.now, alongside=alongside):
                pass
        assert marks == [live.snapshot_mark] and live.snapshot_mark > 0
        assert live.observed["events"] == 2 * 4 * 12
    finally:
        await recs.shutdown()


def test_overlapping_recomputes_pause_the_collector_until_the_last_ends() -> None:
    from app.collector import collector_paused

    assert gc.isenabled()
    one, two = collector_paused(), collector_paused()
    one.__enter__()
    assert not gc.isenabled()
    two.__enter__()
    one.__exit__(None, None, None)  # the other task's recompute is still running
    assert not gc.isenabled()
    two.__exit__(None, None, None)
    assert gc.isenabled()
    gc.disable()  # off before: stays off
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), collector_paused():
        raise RuntimeError("a failed recompute")
    assert gc.isenabled()

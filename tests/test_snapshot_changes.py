"""A snapshot writes only what changed, and recomputes only the pairs it can change.

``apply_staged`` leaves rows equal to the stored ones as they are (a row stores its
as_of only when it is not its location's) and ``recompute_stores(snapshot_id=...)``
computes only the pairs ``pairs_of_snapshot`` names. After every snapshot of a random
sequence (rows changed, added and dropped, locations left out, as_of moving, POS
events and counts in between), the stock in force must be the files' and every
stored position what a full recompute of all pairs gives.
"""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from app.db import snapshots
from app.db.events import insert_events
from app.db.positions import Q, _book_of, recompute_pairs, recompute_stores
from app.domain.engine import Engine
from app.domain.live import Assessor, frozen_calibration
from app.domain.model import Count, Sale
from app.domain.policy import Policy
from app.settings import Settings
from tests.conftest import stock_in_force

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
STORES = ["S1", "S2", "S3"]
SKUS = [f"K{i}" for i in range(12)]
POLICY = Policy()
FULL_BOOK = _book_of(Q.pairs_of_stores)


Stock = dict[tuple[str, str], tuple[int, int, int, datetime]]


def _csv(rows: Stock) -> bytes:
    out = io.StringIO()
    for (loc, sku), (on_hand, reserved, in_transit, as_of) in sorted(rows.items()):
        out.write(f"{loc},{sku},{on_hand},{reserved},{in_transit},{as_of.isoformat()}\n")
    return out.getvalue().encode()


def _location_rows(
    rng: random.Random, in_force: Stock, loc: str, skus: list[str], as_of: datetime
) -> Stock:
    """A random next snapshot of ``loc``: some rows dropped (or never listed), most kept
    with unchanged counts, the rest new counts."""
    rows: Stock = {}
    for sku in skus:
        old = in_force.get((loc, sku))
        if rng.random() < 0.15:
            continue  # dropped (or never listed)
        if old is not None and rng.random() < 0.7:
            # unchanged counts; as_of usually the location's, sometimes its own
            at = as_of if rng.random() < 0.8 else as_of - timedelta(minutes=1)
            rows[(loc, sku)] = (*old[:3], at)
        else:
            rows[(loc, sku)] = (rng.randint(0, 9), rng.randint(0, 2),
                                rng.randint(0, 3), as_of)  # fmt: skip
    return rows


def _replace_named(in_force: Stock, named: list[str], rows: Stock) -> None:
    """The stock in force after a snapshot of ``rows`` that names the locations ``named``."""
    for key in [k for k in in_force if k[0] in named]:
        del in_force[key]
    in_force |= rows


def _between(
    rng: random.Random, round_: int, now: datetime, skus: list[str], *, most: int
) -> list[Count | Sale]:
    """Up to ``most`` POS sales and counts (three in ten) in the 20 minutes before ``now``."""
    events: list[Count | Sale] = []
    for i in range(rng.randint(0, most)):
        store, sku = rng.choice(STORES), rng.choice(skus)
        at = now - timedelta(minutes=rng.randint(1, 20))
        if rng.random() < 0.3:
            events.append(Count(event_id=f"C{round_}-{i}", store_id=store, sku=sku,
                                on_hand=rng.randint(0, 9), occurred_at=at))  # fmt: skip
        else:
            events.append(Sale(event_id=f"E{round_}-{i}", store_id=store, sku=sku, qty=1,
                               occurred_at=at))  # fmt: skip
    return events


async def _apply(
    conn: asyncpg.Connection, body: bytes, now: datetime, *, with_changes: bool = False
) -> int:
    async with conn.transaction():
        await snapshots.create_staging(conn)
        await snapshots.copy_into_staging(conn, io.BytesIO(body))  # type: ignore[arg-type]
        assert (await snapshots.staged_problems(conn, limit=5)).total == 0
        snapshot_id = await snapshots.insert_snapshot(
            conn, feed="wh", etag=None, status="applied", reason=None, row_count=None,
            locations=None, received_at=now,
        )  # fmt: skip
        if not with_changes:  # the candidates searched for (pairs_of_snapshot)
            named = await snapshots.apply_staged(conn, snapshot_id)
            return await recompute_stores(
                conn, named, policy=POLICY, now=now, snapshot_id=snapshot_id
            )
        # the candidates from what the apply changed (pairs_of_changes), as a pull does
        applied = await snapshots.apply_staged_changes(conn, snapshot_id)
        return await recompute_stores(conn, applied.named, policy=POLICY, now=now,
                                      snapshot_id=snapshot_id, changes=applied.changes)  # fmt: skip


@pytest.mark.parametrize("with_changes", [False, True])
@pytest.mark.parametrize("seed", range(6))
async def test_snapshots_write_and_recompute_only_changes(
    pool: asyncpg.Pool, seed: int, with_changes: bool
) -> None:
    rng = random.Random(seed)
    in_force: Stock = {}
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO feed (name, kind, url) VALUES ('wh', 'warehouse', 'x'), ('pos', 'pos', 'y')"
        )
        now = T0
        for round_ in range(8):
            now += timedelta(minutes=30)
            named = rng.sample(STORES, rng.randint(1, len(STORES)))
            rows: Stock = {}
            for loc in named:
                as_of = now - timedelta(minutes=rng.choice([5, 25, 45]))  # events may be later
                rows |= _location_rows(rng, in_force, loc, SKUS, as_of)
            await _apply(conn, _csv(rows), now, with_changes=with_changes)
            _replace_named(in_force, named, rows)
            stock = await stock_in_force(conn)
            assert {(r[0], r[1]): tuple(r[2:]) for r in stock} == in_force, round_
            await _assert_positions_are_full_recompute(conn, now, round_)
            # POS events and counts between snapshots, before and after the next as_of
            events = _between(rng, round_, now, SKUS, most=6)
            if events:  # stored with their positions, as the POS puller does
                async with conn.transaction():
                    new = await insert_events(conn, "pos", events, received_at=now)
                    await recompute_pairs(conn, {(e.store_id, e.sku) for e in new},
                                          policy=POLICY, now=now)  # fmt: skip


async def _assert_positions_are_full_recompute(
    conn: asyncpg.Connection, now: datetime, round_: int
) -> None:
    """Every pair's stored book, base source and units in transit are those a full
    recompute of all pairs gives (what ``only_changed`` compares), and no pair is missing."""
    full = await conn.fetch(FULL_BOOK, STORES, now, False, False)
    stored = {
        (r["store_id"], r["sku"]): r
        for r in await conn.fetch("SELECT * FROM book_position WHERE store_id = ANY($1)", STORES)
    }
    for r in full:
        key = (r["store_id"], r["sku"])
        if r["book"] is None and key not in stored:
            continue  # no base and never stored: nothing to show either way
        assert key in stored, (round_, key)
        s = stored[key]
        assert (s["book"], s["base_source"], s["in_transit"]) == (
            r["book"], r["base_source"], r["in_transit"],
        ), (round_, key)  # fmt: skip


GOOD = "S1,K1,3,0,1,2026-11-23T06:00:00Z"
BAD_ROWS = [
    "S 1,K1,3,0,1,2026-11-23T06:00:00Z",
    f"{'S' * 65},K1,3,0,1,2026-11-23T06:00:00Z",
    ",K1,3,0,1,2026-11-23T06:00:00Z",
    "S1,K/1,3,0,1,2026-11-23T06:00:00Z",
    f"S1,{'K' * 65},3,0,1,2026-11-23T06:00:00Z",
    "S1,,3,0,1,2026-11-23T06:00:00Z",
    "S1,K1,-3,0,1,2026-11-23T06:00:00Z",
    "S1,K1,,0,1,2026-11-23T06:00:00Z",
    "S1,K1,3,x,1,2026-11-23T06:00:00Z",
    "S1,K1,3,0,99999999999,2026-11-23T06:00:00Z",
    "S1,K1,3,0,,2026-11-23T06:00:00Z",
    "S1,K1,3,0,1,2026-11-23 06:00:00Z",
    "S1,K1,3,0,1,2026-13-23T06:00:00Z",
    "S1,K1,3,0,1,",
    GOOD,  # a duplicate of the first row
]


@pytest.mark.parametrize("bad", [None, *BAD_ROWS])
async def test_the_quick_check_is_clean_exactly_when_there_are_no_problems(
    pool: asyncpg.Pool, bad: str | None
) -> None:
    """``staged_clean`` decides the no-problem case alone; it must never call a file
    with a problem clean (a file it calls unclean is judged in detail anyway)."""
    lines = [GOOD, "S1,K2,0,0,0,2026-11-23T05:00:00+01:00", "S2,K1,7,2,0,2026-11-23T06:00:00Z"]
    if bad is not None:
        lines.insert(2, bad)
    async with pool.acquire() as conn, conn.transaction():
        await snapshots.create_staging(conn)
        body = ("\n".join(lines) + "\n").encode()
        await snapshots.copy_into_staging(conn, io.BytesIO(body))  # type: ignore[arg-type]
        clean = await conn.fetchval(snapshots.Q.staged_clean)
        detailed = await conn.fetch(snapshots.Q.staged_problems, 5)
    assert clean is (bad is None)
    assert bool(detailed) is (bad is not None)


def _engine_state(live: Any, now: datetime) -> dict[str, Any]:
    """Everything a snapshot moves in an engine, comparable across engines."""
    engine = live.engine
    ledger = engine.ledger
    rows = {
        (loc, sku): held.row(loc, sku) for loc, held in ledger.rows_at.items() for sku in held.index
    }
    assessor = Assessor(engine, now, frozen_calibration(engine, 1))
    positions: dict[tuple[str, str], Any] = {}
    for store in STORES:
        for sku in [*SKUS, "K-new"]:
            pos = ledger.position(store, sku, now)
            positions[(store, sku)] = pos if pos is None else (pos, assessor.assess(pos))
    return {
        "rows": rows,
        "location_as_of": dict(ledger.location_as_of),
        "first_seen": engine.loss.first_seen,
        "earliest": engine.sales._earliest,
        "opened": engine.sales.opened,
        "group_items": engine.sales.group_items,
        "positions": positions,
    }


@pytest.mark.parametrize("seed", range(8))
async def test_an_engine_fed_changes_equals_one_fed_whole_snapshots(
    pool: asyncpg.Pool, settings: Settings, seed: int
) -> None:
    """The live engine takes a snapshot its transaction applied as what changed per
    location (``SnapshotChanges``): after every snapshot of a random sequence (rows
    changed, added, dropped and listed again, as_of moving on, staying or going back,
    rows with an as_of of their own, locations with fewer rows than a store's opening
    needs, POS events and counts between) it holds what an engine that reads every
    snapshot whole holds, and assesses every pair alike."""
    from app.db.engine_state import LiveEngine, binding
    from app.db.feeds import upsert_feeds
    from reconcilers.feeds_config import FeedConfig
    from reconcilers.warehouse import apply_snapshot_stream

    rng = random.Random(seed)
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [FeedConfig(name="wh", kind="warehouse", url="http://x/s"),
                                  FeedConfig(name="pos", kind="pos", url="http://x/p")])  # fmt: skip
    taken = 0

    class Counted(Engine):  # (the engine may be compiled: no method to patch on it)
        def observe_changes(self, *args: Any) -> bool:
            nonlocal taken
            took = super().observe_changes(*args)
            taken += took
            return took

    fed_changes, fed_whole = LiveEngine(POLICY), LiveEngine(POLICY)
    fed_changes.engine = Counted(POLICY, fed_changes.categories)
    await fed_changes.warm_start(pool, T0)
    await fed_whole.warm_start(pool, T0)
    in_force: Stock = {}
    skus = [*SKUS, "K-new"]
    now = T0
    for round_ in range(10):
        now += timedelta(minutes=30)
        named = rng.sample(STORES, rng.randint(1, len(STORES)))
        rows: Stock = {}
        for loc in named:
            # as_of mostly moves on; sometimes stays or goes back (the engine keeps its newer)
            as_of = now - timedelta(minutes=rng.choice([5, 25, 45, 45, 200]))
            few = rng.random() < 0.3  # fewer rows than a store's opening needs
            rows |= _location_rows(rng, in_force, loc, skus[:3] if few else skus, as_of)
        if not rows:
            continue
        body = b"location_id,sku,on_hand,reserved,in_transit,as_of\n" + _csv(rows)

        async def chunks(data: bytes = body) -> Any:
            yield data

        feed = FeedConfig(name="wh", kind="warehouse", url="http://x/s", max_drop=1.0)
        with binding(fed_changes):
            outcome = await apply_snapshot_stream(
                pool, feed, chunks(), f'"{round_}"', settings=settings, policy=POLICY,
                clock=lambda at=now: at,
            )  # fmt: skip
        assert outcome.outcome == "applied", outcome.detail
        _replace_named(in_force, named, rows)
        events = _between(rng, round_, now, skus, most=4)
        if events:
            with binding(fed_changes):
                async with pool.acquire() as conn, conn.transaction():
                    new = await insert_events(conn, "pos", events, received_at=now)
                    await recompute_pairs(conn, {(e.store_id, e.sku) for e in new},
                                          policy=POLICY, now=now)  # fmt: skip
        await fed_whole.catch_up(pool)
        later = now + timedelta(minutes=10)
        assert _engine_state(fed_changes, later) == _engine_state(fed_whole, later), round_
    assert taken > 0  # the changes were taken in, not only whole locations


async def test_a_snapshot_that_changes_no_row_still_recomputes_unknown_and_unassessed_badges(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """pairs_of_changes' other branch: a badge gone unknown (the store's data aged) and
    badges stored without an engine's assessment are recomputed by the next snapshot
    even when it lists every row as it was (no row written, none removed)."""
    from app.db.engine_state import LiveEngine, binding
    from app.db.feeds import upsert_feeds
    from reconcilers.feeds_config import FeedConfig
    from reconcilers.warehouse import apply_snapshot_stream

    feed = FeedConfig(name="wh", kind="warehouse", url="http://x/s")
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [feed])
    stock = {("S1", sku): (5, 0, 1, T0) for sku in SKUS} | {
        ("S2", sku): (0, 0, 0, T0) for sku in SKUS
    }

    async def pull(as_of: datetime, now: datetime, live: LiveEngine | None) -> None:
        rows = {key: (*value[:3], as_of) for key, value in stock.items()}

        async def chunks() -> Any:
            yield b"location_id,sku,on_hand,reserved,in_transit,as_of\n" + _csv(rows)

        with binding(live):
            outcome = await apply_snapshot_stream(
                pool, feed, chunks(), f'"{as_of}"', settings=settings, policy=POLICY,
                clock=lambda: now,
            )  # fmt: skip
        assert outcome.outcome == "applied", outcome.detail

    await pull(T0, T0 + timedelta(minutes=5), None)  # no engine: no assessment stored
    later = T0 + timedelta(days=1)
    async with pool.acquire() as conn:  # the refresh: every badge ages to unknown
        await recompute_pairs(conn, list(stock), policy=POLICY, now=later)
        states = {r[0] for r in await conn.fetch("SELECT DISTINCT badge_state FROM book_position")}
    assert states == {"unknown"}
    await pull(later, later + timedelta(minutes=5), None)  # same rows, as_of moved on
    stored = await pool.fetch("SELECT badge_state, evidence FROM book_position")
    assert len(stored) == len(stock) and all(r["badge_state"] != "unknown" for r in stored)
    assert all(r["evidence"] is None for r in stored)
    live = LiveEngine(POLICY)
    await live.warm_start(pool, later)
    await pull(later + timedelta(hours=1), later + timedelta(hours=1, minutes=5), live)
    stored = await pool.fetch("SELECT badge_state, evidence FROM book_position")
    assert all(r["evidence"] is not None for r in stored)  # assessed by the engine now
    written = await pool.fetchval(
        "SELECT count(*) FROM warehouse_stock WHERE snapshot_id > 1 OR as_of IS NOT NULL"
    )
    assert written == 0  # no row was written after the first snapshot
    # With the engine: badges aged to unknown keep an assessment (the partial index
    # book_position_unassessed holds them by its generated flag) and are recomputed too.
    days_later = later + timedelta(days=2)
    async with pool.acquire() as conn:
        with binding(live):
            await recompute_pairs(conn, list(stock), policy=POLICY, now=days_later)
    flagged = await pool.fetch("SELECT badge_state, unassessed FROM book_position")
    assert {(r["badge_state"], r["unassessed"]) for r in flagged} == {("unknown", True)}
    await pull(days_later, days_later + timedelta(minutes=5), live)
    flagged = await pool.fetch("SELECT badge_state, evidence, unassessed FROM book_position")
    assert all(r["badge_state"] != "unknown" and r["evidence"] is not None for r in flagged)
    assert not any(r["unassessed"] for r in flagged)

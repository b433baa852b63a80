"""The set-wise SQL book position equals the domain reference; badges are stored with it."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import msgspec
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from app.db.events import insert_events
from app.db.feeds import upsert_feeds
from app.db.positions import (
    _BOOK_OF_PAIRS,
    _BOOK_OF_PAIRS_PLAIN,
    Q,
    _book_of,
    recompute_pairs,
    recompute_stores,
)
from app.domain.book import book_position
from app.domain.model import (
    Adjustment,
    BookPosition,
    Count,
    PosEvent,
    Receipt,
    Return,
    Sale,
    SnapshotRow,
)
from app.domain.policy import BufferRule, Policy
from reconcilers.feeds_config import FeedConfig

T0 = datetime(2026, 11, 23, tzinfo=UTC)
# A whole-store recompute's book query, unkept: every pair of the stores $1.
_BOOK_OF_STORES_PLAIN = _book_of(Q.pairs_of_stores, compared=False)
FEED = FeedConfig(name="pos-test", kind="pos", url="http://127.0.0.1:1/events")
SKUS = ("SKU-A", "SKU-B", "SKU-C")
POLICY = Policy()
_store_numbers = itertools.count()


def at(minute: int) -> datetime:
    return T0 + timedelta(minutes=minute)


# -- helpers writing inputs the way the warehouse puller leaves them ----------------------
async def put_snapshot_row(conn: Any, row: SnapshotRow) -> None:
    await conn.execute(
        """INSERT INTO warehouse_stock (location_id, sku, on_hand, reserved, in_transit, as_of, snapshot_id)
           VALUES ($1, $2, $3, $4, $5, $6, 1)""",
        row.location_id, row.sku, row.on_hand, row.reserved, row.in_transit, row.as_of,
    )  # fmt: skip


async def put_location(conn: Any, location_id: str, as_of: datetime) -> None:
    await conn.execute(
        "INSERT INTO warehouse_location (location_id, as_of, snapshot_id) VALUES ($1, $2, 1)",
        location_id, as_of,
    )  # fmt: skip


async def put_freshness(conn: Any, store_id: str, snapshot_as_of: datetime) -> None:
    await conn.execute(
        """INSERT INTO store_freshness (store_id, snapshot_as_of) VALUES ($1, $2)
           ON CONFLICT (store_id) DO UPDATE SET snapshot_as_of = EXCLUDED.snapshot_as_of""",
        store_id, snapshot_as_of,
    )  # fmt: skip


async def position_row(conn: Any, store_id: str, sku: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM book_position WHERE store_id = $1 AND sku = $2", store_id, sku
    )
    return row


# -- the property -----------------------------------------------------------------------
# A coarse grid, so ties (count vs count, count vs snapshot, event at base time) happen.
minutes = st.integers(min_value=0, max_value=30)


@st.composite
def event_specs(draw: st.DrawFn) -> tuple[str, str, int, int]:
    kind = draw(st.sampled_from(["sale", "return", "receipt", "adjustment", "count"]))
    sku = draw(st.sampled_from(SKUS))
    if kind == "adjustment":
        qty = draw(st.integers(-20, 20).filter(lambda q: q != 0))
    elif kind == "count":
        qty = draw(st.integers(0, 40))
    else:
        qty = draw(st.integers(1, 10))
    return kind, sku, qty, draw(minutes)


def make_event(store_id: str, index: int, spec: tuple[str, str, int, int]) -> PosEvent:
    kind, sku, qty, minute = spec
    common: dict[str, Any] = {
        "event_id": f"{store_id}-E{index}", "store_id": store_id, "sku": sku, "occurred_at": at(minute),
    }  # fmt: skip
    if kind == "count":
        return Count(on_hand=qty, **common)
    movement: dict[str, type[Sale | Return | Receipt | Adjustment]] = {
        "sale": Sale, "return": Return, "receipt": Receipt, "adjustment": Adjustment,
    }  # fmt: skip
    return movement[kind](qty=qty, **common)


snapshot_rows = st.dictionaries(
    st.sampled_from(SKUS),
    st.tuples(st.integers(0, 50), st.integers(0, 5), st.integers(0, 9), minutes),
    max_size=len(SKUS),
)


def snapshot_of(
    store_id: str, rows: dict[str, tuple[int, int, int, int]]
) -> dict[str, SnapshotRow]:
    """Drawn ``snapshot_rows`` as the store's rows by sku (reserved at most on_hand)."""
    return {
        sku: SnapshotRow(store_id, sku, on_hand, min(reserved, on_hand), in_transit, at(minute))
        for sku, (on_hand, reserved, in_transit, minute) in rows.items()
    }


async def put_inputs(
    conn: Any, store_id: str, snapshot: dict[str, SnapshotRow], location_as_of: datetime | None
) -> None:
    """The feed, the store's snapshot rows and (if any) its location, as a pull leaves them."""
    await upsert_feeds(conn, [FEED])
    for row in snapshot.values():
        await put_snapshot_row(conn, row)
    if location_as_of is not None:
        await put_location(conn, store_id, location_as_of)


def assert_is_reference(
    row: asyncpg.Record | None,
    store_id: str,
    sku: str,
    *,
    snapshot: dict[str, SnapshotRow],
    location_as_of: datetime | None,
    events: list[PosEvent],
    now: datetime,
) -> BookPosition | None:
    """The stored position ``row`` is the reference's for the pair (``book_position`` of its
    snapshot row and events); returns the reference position."""
    expected = book_position(
        store_id, sku,
        snapshot_row=snapshot.get(sku),
        location_as_of=location_as_of,
        events=[e for e in events if e.sku == sku],
        at=now,
    )  # fmt: skip
    assert row is not None
    if expected is None:
        assert (row["book"], row["base_source"], row["base_at"]) == (None, None, None)
    else:
        got = (row["book"], row["base_source"], row["base_at"], row["last_event_at"],
               row["snapshot_as_of"], row["in_transit"])  # fmt: skip
        want = (expected.book, expected.base_source, expected.base_at, expected.last_event_at,
                expected.snapshot_as_of, expected.in_transit)  # fmt: skip
        assert got == want, f"{store_id}/{sku} at {now}"
    return expected


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    specs=st.lists(event_specs(), max_size=25),
    redelivered=st.lists(st.integers(0, 24), max_size=8),
    batches=st.integers(1, 4),
    rows=snapshot_rows,
    location_minute=st.none() | minutes,
    now_minute=st.integers(0, 35),
    rnd=st.randoms(use_true_random=False),
)
def test_sql_book_position_equals_reference(
    db_dsn: str,
    specs: list[tuple[str, str, int, int]],
    redelivered: list[int],
    batches: int,
    rows: dict[str, tuple[int, int, int, int]],
    location_minute: int | None,
    now_minute: int,
    rnd: Any,
) -> None:
    """Shuffled, redelivered, late and future events; optional snapshot rows and location."""
    store_id = f"S{next(_store_numbers)}"
    events = [make_event(store_id, i, spec) for i, spec in enumerate(specs)]
    deliveries = events + [events[i] for i in redelivered if i < len(events)]
    rnd.shuffle(deliveries)
    snapshot = snapshot_of(store_id, rows)
    location_as_of = None if location_minute is None else at(location_minute)
    now = at(now_minute)

    async def run() -> list[tuple[str, asyncpg.Record | None]]:
        conn = await asyncpg.connect(db_dsn, server_settings={"timezone": "UTC"})
        try:
            await put_inputs(conn, store_id, snapshot, location_as_of)
            size = max(1, -(-len(deliveries) // batches))
            for start in range(0, len(deliveries), size):  # pages, as a feed delivers them
                async with conn.transaction():
                    await insert_events(
                        conn, FEED.name, deliveries[start : start + size], received_at=now
                    )
            # The named pairs' two queries (with and without the stored positions) agree.
            args = ([store_id] * len(SKUS), now, False, False, list(SKUS))
            plain = sorted(tuple(r)[:-1] for r in await conn.fetch(_BOOK_OF_PAIRS_PLAIN, *args))
            compared = sorted(tuple(r)[:-1] for r in await conn.fetch(_BOOK_OF_PAIRS, *args))
            assert plain == compared and len(plain) == len(SKUS)
            # A whole store's query (set-wise movements, store filters) agrees too.
            scoped = sorted(tuple(r)[:-1] for r in await conn.fetch(
                _BOOK_OF_STORES_PLAIN, [store_id], now, False, False))  # fmt: skip
            assert {r[1] for r in scoped} == {e.sku for e in events} | set(snapshot)
            assert scoped == [r for r in plain if r[1] in {s[1] for s in scoped}]
            written = await recompute_pairs(
                conn, [(store_id, s) for s in SKUS], policy=POLICY, now=now
            )
            assert written == len(SKUS)
            return [(sku, await position_row(conn, store_id, sku)) for sku in SKUS]
        finally:
            await conn.close()

    for sku, row in asyncio.run(run()):
        expected = assert_is_reference(
            row, store_id, sku,
            snapshot=snapshot, location_as_of=location_as_of, events=events, now=now,
        )  # fmt: skip
        if expected is None:
            assert row is not None
            assert row["badge_state"] == "unknown" and row["reasons"] == ["no_data"]


# -- plain cases --------------------------------------------------------------------------
async def test_badge_columns_in_stock_with_buffer(pool: asyncpg.Pool) -> None:
    now = at(120)
    async with pool.acquire() as conn:
        await put_snapshot_row(conn, SnapshotRow("S1", "SKU-A", 11, 1, 4, at(60)))
        await put_location(conn, "S1", at(60))
        await put_freshness(conn, "S1", at(60))
        assert (
            await recompute_pairs(conn, [("S1", "SKU-A")], policy=Policy(safety_buffer=2), now=now)
            == 1
        )
        row = await position_row(conn, "S1", "SKU-A")
    assert row is not None
    assert row["book"] == 10 and row["base_source"] == "snapshot" and row["in_transit"] == 4
    assert row["badge_state"] == "in_stock"
    assert row["safety_buffer"] == 2
    assert row["reasons"] == ["margin_ok"]
    assert row["badge_as_of"] == at(60)
    assert row["computed_at"] == now
    assert row["confidence"] is None


async def test_badge_columns_low_stock_unavailable_and_category_buffer(pool: asyncpg.Pool) -> None:
    policy = Policy(
        safety_buffer=2, low_stock_below=3, buffers=(BufferRule(units=5, category="fragile"),)
    )
    now = at(100)
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO product (sku, category) VALUES ('SKU-F', 'fragile')")
        await put_location(conn, "S1", at(50))
        await put_freshness(conn, "S1", at(50))
        for sku, on_hand in (("SKU-A", 4), ("SKU-B", 2), ("SKU-F", 6)):
            await put_snapshot_row(conn, SnapshotRow("S1", sku, on_hand, 0, 0, at(50)))
        pairs = [("S1", s) for s in ("SKU-A", "SKU-B", "SKU-F", "SKU-Z")]
        assert await recompute_pairs(conn, pairs, policy=policy, now=now) == 4
        got = {
            r["sku"]: (r["book"], r["badge_state"], r["safety_buffer"], list(r["reasons"]))
            for r in await conn.fetch("SELECT * FROM book_position WHERE store_id = 'S1'")
        }
    assert got == {
        "SKU-A": (4, "low_stock", 2, ["few_left"]),
        "SKU-B": (2, "unavailable", 2, ["within_safety_buffer"]),
        "SKU-F": (6, "low_stock", 5, ["few_left"]),
        # named location, sku not listed: 0 units, nothing to promise
        "SKU-Z": (0, "unavailable", 2, ["out_of_stock"]),
    }


async def test_stale_store_gets_unknown(pool: asyncpg.Pool) -> None:
    policy = Policy(max_data_age=timedelta(hours=6))
    async with pool.acquire() as conn:
        await put_snapshot_row(conn, SnapshotRow("S1", "SKU-A", 30, 0, 0, at(0)))
        await put_freshness(conn, "S1", at(0))
        await recompute_pairs(conn, [("S1", "SKU-A")], policy=policy, now=at(7 * 60))
        row = await position_row(conn, "S1", "SKU-A")
    assert row is not None
    assert row["book"] == 30
    assert row["badge_state"] == "unknown"
    assert row["reasons"] == ["stale_data"]


async def test_no_base_stores_unknown_and_recount_replaces_it(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [FEED])
        sale = Sale(event_id="E1", store_id="S1", sku="SKU-A", qty=1, occurred_at=at(10))
        await insert_events(conn, FEED.name, [sale], received_at=at(11))
        await recompute_pairs(conn, [("S1", "SKU-A")], policy=POLICY, now=at(11))
        row = await position_row(conn, "S1", "SKU-A")
        assert row is not None
        assert (
            row["book"] is None
            and row["badge_state"] == "unknown"
            and row["reasons"] == ["no_data"]
        )
        assert row["last_event_at"] == at(10)

        count = Count(event_id="E2", store_id="S1", sku="SKU-A", on_hand=9, occurred_at=at(20))
        await insert_events(conn, FEED.name, [count], received_at=at(21))
        await recompute_pairs(conn, [("S1", "SKU-A")], policy=POLICY, now=at(21))
        row = await position_row(conn, "S1", "SKU-A")
    assert row is not None
    assert (row["book"], row["base_source"], row["base_at"]) == (9, "count", at(20))
    assert row["badge_state"] == "in_stock"
    assert row["reasons"] == ["margin_ok", "recently_counted"]


async def test_recompute_stores_covers_rows_events_and_existing_positions(
    pool: asyncpg.Pool,
) -> None:
    now = at(100)
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [FEED])
        await put_snapshot_row(conn, SnapshotRow("S1", "SKU-A", 5, 0, 0, at(50)))
        await put_snapshot_row(conn, SnapshotRow("S2", "SKU-A", 7, 0, 0, at(50)))
        await insert_events(
            conn, FEED.name,
            [Receipt(event_id="R1", store_id="S1", sku="SKU-B", qty=3, occurred_at=at(60))],
            received_at=now,
        )  # fmt: skip
        await conn.execute(
            """INSERT INTO book_position (store_id, sku, book, badge_state, safety_buffer, computed_at)
               VALUES ('S1', 'SKU-OLD', 4, 'in_stock', 2, $1)""",
            at(0),
        )
        assert await recompute_stores(conn, ["S1"], policy=POLICY, now=now) == 3
        rows = {
            r["sku"]: r
            for r in await conn.fetch("SELECT * FROM book_position WHERE store_id = 'S1'")
        }
        other = await position_row(conn, "S2", "SKU-A")
    assert set(rows) == {"SKU-A", "SKU-B", "SKU-OLD"}
    assert rows["SKU-A"]["book"] == 5
    # no warehouse row, no location named, no count: no base for the receipt alone
    assert rows["SKU-B"]["book"] is None and rows["SKU-B"]["last_event_at"] == at(60)
    # the stale position of a pair that lost its inputs is recomputed, not left promising
    assert rows["SKU-OLD"]["book"] is None and rows["SKU-OLD"]["badge_state"] == "unknown"
    assert rows["SKU-OLD"]["computed_at"] == now
    assert other is None  # S2 was not asked for


async def test_recompute_is_set_based_for_many_pairs(pool: asyncpg.Pool) -> None:
    """Thousands of pairs in a handful of statements, all written, sums right."""
    now = at(200)
    n_stores, n_skus = 20, 250
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [FEED])
        await conn.execute(
            """INSERT INTO warehouse_stock (location_id, sku, on_hand, reserved, in_transit, as_of, snapshot_id)
               SELECT 'S' || s, 'K' || k, 10, 1, 0, $1, 1
               FROM generate_series(1, $2) s, generate_series(1, $3) k""",
            at(0), n_stores, n_skus,
        )  # fmt: skip
        sales = [
            Sale(event_id=f"E{s}-{k}", store_id=f"S{s}", sku=f"K{k}", qty=2, occurred_at=at(100))
            for s in range(1, n_stores + 1) for k in range(1, n_skus + 1, 5)
        ]  # fmt: skip
        await insert_events(conn, FEED.name, sales, received_at=now)
        pairs = [(f"S{s}", f"K{k}") for s in range(1, n_stores + 1) for k in range(1, n_skus + 1)]
        assert await recompute_pairs(conn, pairs, policy=POLICY, now=now) == n_stores * n_skus
        total = await conn.fetchval("SELECT sum(book) FROM book_position")
    assert total == n_stores * n_skus * 9 - len(sales) * 2


async def test_events_are_stored_as_given(pool: asyncpg.Pool) -> None:
    """insert_events stores every type's fields and the exact instant (microseconds;
    an offset with seconds, which JSON cannot write, travels as UTC); of an event_id
    given twice the first is kept, a redelivery changes nothing; the new ones come
    back in the engine's order (occurred_at, then event_id)."""
    odd = timezone(timedelta(hours=5, minutes=30, seconds=15))
    tick = timedelta(microseconds=7)
    events: list[PosEvent] = [
        Sale(event_id="s", store_id="S1", sku="SKU-A", qty=3, occurred_at=(at(3) + tick).astimezone(odd)),
        Return(event_id="r", store_id="S1", sku="SKU-B", qty=2, occurred_at=at(2)),
        Receipt(event_id="p", store_id="S2", sku="SKU-A", qty=5,
                occurred_at=at(2).astimezone(timezone(timedelta(hours=-3)))),
        Adjustment(event_id="a", store_id="S2", sku="SKU-B", qty=-4, occurred_at=at(1) + tick),
        Count(event_id="c", store_id="S1", sku="SKU-A", on_hand=0, occurred_at=at(4)),
        Sale(event_id="s", store_id="S1", sku="SKU-A", qty=9, occurred_at=at(5)),
    ]  # fmt: skip
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [FEED])
        new = await insert_events(conn, FEED.name, events, received_at=at(10))
        again = await insert_events(conn, FEED.name, events[:2], received_at=at(11))
        rows = await conn.fetch(
            "SELECT event_id, type, store_id, sku, qty, on_hand, occurred_at, received_at"
            " FROM pos_event ORDER BY event_id"
        )
    assert [e.event_id for e in new] == ["a", "p", "r", "s", "c"] and again == []
    assert new[3] is events[0]
    expected = sorted(
        (e.event_id, type(e).__struct_config__.tag, e.store_id, e.sku,
         None if isinstance(e, Count) else e.qty, e.on_hand if isinstance(e, Count) else None,
         e.occurred_at, at(10))
        for e in events[:5]
    )  # fmt: skip
    assert [tuple(r) for r in rows] == expected


def test_reasons_round_trip_as_text_array() -> None:
    """Reason codes are joined with commas on the way in; none may contain one."""
    from app.domain.reasons import Reason

    assert all("," not in r.value for r in Reason)
    assert msgspec.json.decode(b'"no_data"', type=Reason) is Reason.NO_DATA


@pytest.mark.parametrize("now_minute, expected", [(5, 10), (15, 9), (25, 8)])
async def test_events_apply_up_to_now_only(
    pool: asyncpg.Pool, now_minute: int, expected: int
) -> None:
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [FEED])
        await put_snapshot_row(conn, SnapshotRow("S1", "SKU-A", 10, 0, 0, at(0)))
        await insert_events(
            conn, FEED.name,
            [Sale(event_id="A", store_id="S1", sku="SKU-A", qty=1, occurred_at=at(10)),
             Sale(event_id="B", store_id="S1", sku="SKU-A", qty=1, occurred_at=at(20))],
            received_at=at(30),
        )  # fmt: skip
        await recompute_pairs(conn, [("S1", "SKU-A")], policy=POLICY, now=at(now_minute))
        row = await position_row(conn, "S1", "SKU-A")
    assert row is not None and row["book"] == expected


async def test_a_movement_at_the_base_time_is_in_the_base_for_named_pairs_and_stores(
    pool: asyncpg.Pool,
) -> None:
    """The contract's "strictly after the base": a sale at the snapshot's as_of (or the
    count's instant) is already in the base, whichever query reads the movements."""
    store, base_at = f"S{next(_store_numbers)}", at(5)
    snapshot = {"SKU-A": SnapshotRow(store, "SKU-A", 10, 0, 0, base_at)}
    events: list[PosEvent] = [
        Sale(event_id=f"{store}-1", store_id=store, sku="SKU-A", occurred_at=base_at, qty=2),
        Sale(event_id=f"{store}-2", store_id=store, sku="SKU-A", occurred_at=at(6), qty=1),
        Count(event_id=f"{store}-3", store_id=store, sku="SKU-B", occurred_at=at(7), on_hand=4),
        Sale(event_id=f"{store}-4", store_id=store, sku="SKU-B", occurred_at=at(7), qty=3),
    ]
    async with pool.acquire() as conn:
        await put_inputs(conn, store, snapshot, None)
        async with conn.transaction():
            await insert_events(conn, FEED.name, events, received_at=at(8))
        args = ([store, store], at(9), False, False, ["SKU-A", "SKU-B"])
        named = {r["sku"]: r["book"] for r in await conn.fetch(_BOOK_OF_PAIRS_PLAIN, *args)}
        whole = {r["sku"]: r["book"]
                 for r in await conn.fetch(_BOOK_OF_STORES_PLAIN, [store], at(9), False, False)}  # fmt: skip
    assert named == whole == {"SKU-A": 9, "SKU-B": 4}

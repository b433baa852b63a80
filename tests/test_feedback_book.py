"""The SQL book position still equals the reference (``app.domain.book``) when shelf
counts arrive as feedback: the reference sees each shelf count as a Count event.

Tie-breaks (docs/feedback.md): at one instant a shelf count beats a POS count and
the smaller of two shelf counts wins. The reference breaks ties by the larger
event_id, so shelf counts are given event_ids that sort above every POS event_id,
and above each other in reverse order of qty.
"""

from __future__ import annotations

import asyncio
import itertools

import asyncpg
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from app.db.events import insert_events
from app.db.feedback import Observation, store_feedback
from app.db.positions import recompute_pairs
from app.domain.model import Count, PosEvent
from tests.test_positions import (
    FEED,
    POLICY,
    SKUS,
    assert_is_reference,
    at,
    event_specs,
    make_event,
    minutes,
    position_row,
    put_inputs,
    snapshot_of,
    snapshot_rows,
)

_store_numbers = itertools.count()
MAX_SHELF_QTY = 40

shelf_specs = st.tuples(st.sampled_from(SKUS), st.integers(0, MAX_SHELF_QTY), minutes)
pick_specs = st.tuples(
    st.sampled_from(SKUS), st.sampled_from(["pick_found", "pick_short"]), st.integers(1, 9), minutes
)


def as_count(store_id: str, sku: str, qty: int, minute: int) -> Count:
    """A shelf count as the reference's Count; its event_id encodes the tie-break."""
    return Count(
        event_id=f"zz-shelf-{MAX_SHELF_QTY - qty:03d}",  # 'z' > 'S': above POS ids
        store_id=store_id,
        sku=sku,
        on_hand=qty,
        occurred_at=at(minute),
    )


def test_the_tie_break_encoding_sorts_as_documented() -> None:
    pos = make_event("S999", 12, ("count", "SKU-A", 5, 0))
    low, high = as_count("S999", "SKU-A", 2, 0), as_count("S999", "SKU-A", 9, 0)
    assert max([pos, low, high], key=lambda c: (c.occurred_at, c.event_id)) is low


@hsettings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    specs=st.lists(event_specs(), max_size=20),
    shelf=st.lists(shelf_specs, max_size=8),
    picks=st.lists(pick_specs, max_size=4),
    posted_first=st.booleans(),
    rows=snapshot_rows,
    location_minute=st.none() | minutes,
    now_minute=st.integers(0, 35),
)
def test_sql_book_with_shelf_counts_equals_reference(
    db_dsn: str,
    specs: list[tuple[str, str, int, int]],
    shelf: list[tuple[str, int, int]],
    picks: list[tuple[str, str, int, int]],
    posted_first: bool,
    rows: dict[str, tuple[int, int, int, int]],
    location_minute: int | None,
    now_minute: int,
) -> None:
    """POS events, shelf counts (some repeated, some in the future) and picks, in
    either order of arrival; picks never move the book."""
    store_id = f"F{next(_store_numbers)}"
    events: list[PosEvent] = [make_event(store_id, i, spec) for i, spec in enumerate(specs)]
    snapshot = snapshot_of(store_id, rows)
    location_as_of = None if location_minute is None else at(location_minute)
    now = at(now_minute)
    observations = [
        Observation(observed_at=at(m), store_id=store_id, sku=sku, kind="shelf_count", qty=q)
        for sku, q, m in shelf
    ] + [
        Observation(observed_at=at(m), store_id=store_id, sku=sku, kind=kind, qty=q)  # type: ignore[arg-type]
        for sku, kind, q, m in picks
    ]

    async def run() -> list[tuple[str, asyncpg.Record | None]]:
        conn = await asyncpg.connect(db_dsn, server_settings={"timezone": "UTC"})
        try:
            await put_inputs(conn, store_id, snapshot, location_as_of)

            async def post() -> None:
                await store_feedback(conn, observations, policy=POLICY, now=now)

            if posted_first:
                await post()
            async with conn.transaction():
                await insert_events(conn, FEED.name, events, received_at=now)
            if not posted_first:
                await post()
            await recompute_pairs(conn, [(store_id, s) for s in SKUS], policy=POLICY, now=now)
            return [(sku, await position_row(conn, store_id, sku)) for sku in SKUS]
        finally:
            await conn.close()

    shelf_counts = {as_count(store_id, sku, q, m) for sku, q, m in shelf}
    for sku, row in asyncio.run(run()):
        assert_is_reference(
            row, store_id, sku,
            snapshot=snapshot, location_as_of=location_as_of, events=[*events, *shelf_counts],
            now=now,
        )  # fmt: skip


async def test_a_shelf_count_alone_gives_a_base(pool: asyncpg.Pool) -> None:
    """No warehouse row, no POS count: a shelf count is the base (the contract's count)."""
    now = at(30)
    async with pool.acquire() as conn:
        stored = await store_feedback(
            conn,
            [
                Observation(
                    observed_at=at(10), store_id="S1", sku="SKU-A", kind="shelf_count", qty=6
                )
            ],
            policy=POLICY,
            now=now,
        )
        row = await position_row(conn, "S1", "SKU-A")
    assert (stored.stored, stored.positions) == (1, 1)
    assert row is not None
    assert (row["book"], row["base_source"], row["base_at"], row["last_event_at"]) == (
        6,
        "count",
        at(10),
        at(10),
    )

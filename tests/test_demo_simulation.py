"""The demo simulation and its feeds, without HTTP: seeded, never negative, consistent."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.demo.catalog import STORES, demo_products
from app.demo.feed import BadCursor, FeedSimulator
from app.demo.simulation import Pair, Simulation
from app.domain.book import book_position
from app.domain.model import Count, PosEvent, Receipt, Sale, SnapshotRow, delta

START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def replay_book(
    initial: Mapping[Pair, int], events: Iterable[PosEvent], *, until: datetime | None = None
) -> dict[Pair, int]:
    """The record after ``events`` (up to ``until``): counts replace, movements add."""
    book = dict(initial)
    for e in events:
        if until is not None and e.occurred_at > until:
            continue
        pair = (e.store_id, e.sku)
        book[pair] = e.on_hand if isinstance(e, Count) else book[pair] + delta(e)
    return book


def run(seed: int, minutes: int = 30, *, products: int = 300) -> Simulation:
    sim = Simulation(STORES, demo_products(seed, products), seed=seed, start=START)
    for m in range(1, minutes + 1):
        sim.advance(START + timedelta(minutes=m))
    return sim


def test_same_seed_same_story_other_seed_other_story() -> None:
    a, b, c = run(7), run(7), run(8)
    assert len(a.events) > 500
    assert a.events == b.events
    assert a.snapshot() == b.snapshot()
    assert a.events != c.events


def test_events_are_unique_ordered_and_within_the_ticks() -> None:
    sim = Simulation(STORES, demo_products(3), seed=3, start=START)
    seen: set[str] = set()
    before = sim.now
    for m in range(1, 21):
        now = START + timedelta(minutes=m, microseconds=999)
        new = sim.advance(now)
        assert all(before < e.occurred_at <= now for e in new)
        assert [e.occurred_at for e in new] == sorted(e.occurred_at for e in new)
        assert all(e.occurred_at.microsecond == 0 for e in new)
        seen.update(e.event_id for e in new)
        before = sim.now
    assert len(seen) == len(sim.events)
    kinds = {type(e).__name__ for e in sim.events}
    assert kinds == {"Sale", "Return", "Receipt", "Adjustment", "Count"}
    assert (
        sum(isinstance(e, Sale) for e in sim.events) > len(sim.events) / 2
    )  # most events are sales


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), steps=st.lists(st.integers(1, 400), min_size=1, max_size=25))
def test_nothing_is_sold_below_zero(seed: int, steps: list[int]) -> None:
    """Shelf and record never go negative; a sale never takes more than the record holds."""
    sim = Simulation(STORES[:2], demo_products(seed, 15), seed=seed, start=START)
    book = dict(sim.initial_book)
    now = START
    for seconds in steps:
        now += timedelta(seconds=seconds)
        for e in sim.advance(now):
            pair = (e.store_id, e.sku)
            if isinstance(e, Sale):
                assert book[pair] >= e.qty, f"{e} sold from a record of {book[pair]}"
            book[pair] = e.on_hand if isinstance(e, Count) else book[pair] + delta(e)
            assert book[pair] >= 0
        for pair in book:
            assert 0 <= sim.shelf(pair) <= sim.book(pair) == book[pair]


def test_a_sold_out_item_waits_for_its_receipt() -> None:
    products = demo_products(5, 10)
    empty = {(s.store_id, p.sku): 0 for s in STORES for p in products}
    sim = Simulation(STORES, products, seed=5, start=START, stock=empty)
    assert all(sim.in_transit(pair) > 0 for pair in empty)  # everything is reordered at once
    sim.advance(START + timedelta(hours=1))
    received: set[Pair] = set()
    for e in sim.events:
        pair = (e.store_id, e.sku)
        if isinstance(e, Receipt):
            received.add(pair)
        elif isinstance(e, Sale):
            assert pair in received, f"{e} before any stock arrived"
    assert any(isinstance(e, Sale) for e in sim.events)


def test_snapshot_is_the_record_and_agrees_with_the_reference_book() -> None:
    """on_hand − reserved is the replayed record; unlisted pairs hold nothing; and the
    contract's reference ``book_position`` agrees (counts cover their own second)."""
    sim = run(11, minutes=45, products=40)
    rows = {(r.location_id, r.sku): r for r in sim.snapshot()}
    replayed = replay_book(sim.initial_book, sim.events)
    by_pair: dict[Pair, list[PosEvent]] = defaultdict(list)
    for e in sim.events:
        by_pair[(e.store_id, e.sku)].append(e)
    assert any(r.reserved for r in rows.values())
    for pair, expected in replayed.items():
        row = rows.get(pair)
        assert (row.on_hand - row.reserved if row else 0) == expected, pair
        assert (row.in_transit if row else 0) == sim.in_transit(pair)
        opening = SnapshotRow(
            location_id=pair[0],
            sku=pair[1],
            on_hand=sim.initial_book[pair],
            reserved=0,
            in_transit=0,
            as_of=START,
        )
        reference = book_position(
            pair[0],
            pair[1],
            snapshot_row=opening,
            location_as_of=START,
            events=by_pair[pair],
            at=sim.now,
        )
        assert reference is not None and reference.book == expected, pair


def test_feed_pages_by_cursor_and_snapshots_on_schedule() -> None:
    feed = FeedSimulator.create(
        seed=2, start=START, page_size=100, snapshot_every=timedelta(minutes=2)
    )
    first_etag = feed.snapshot.etag
    feed.tick(START + timedelta(minutes=7, seconds=30))
    assert feed.snapshot.as_of == START + timedelta(minutes=6)
    assert feed.snapshot.etag != first_etag
    lines = feed.snapshot.body.decode().splitlines()
    assert lines[0] == "location_id,sku,on_hand,reserved,in_transit,as_of"
    assert all(line.endswith(",2026-11-23T08:06:00Z") for line in lines[1:])

    ids: list[str] = []
    cursor: str | None = None
    while True:
        page = feed.page(cursor)
        assert len(page.events) <= 100
        ids.extend(e.event_id for e in page.events)
        cursor = page.next_cursor
        if not page.has_more:
            break
    assert ids == [e.event_id for e in feed.simulation.events]
    assert feed.page(cursor).events == []  # resuming at the end: nothing new yet
    feed.tick(START + timedelta(minutes=9))
    assert [e.event_id for e in feed.page(cursor).events] == [
        e.event_id for e in feed.simulation.events[len(ids) :]
    ]
    other_run = f"zzz.{len(ids)}"
    assert (
        feed.page(other_run).events[0].event_id == ids[0]
    )  # a restarted simulator reads from the start
    for bad in ("nonsense", f"{feed.run_tag}.x", f"{feed.run_tag}.{10**6}"):
        with pytest.raises(BadCursor):
            feed.page(bad)


def test_if_none_match_comparison() -> None:
    snap = FeedSimulator.create(seed=1, start=START).snapshot
    assert snap.matches(snap.etag)
    assert snap.matches(f'"other", W/{snap.etag}')
    assert snap.matches("*")
    assert not snap.matches('"other"')
    assert not snap.matches(None)

"""The incremental ledger equals the contract's reference book position."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.book import book_position
from app.domain.ledger import Ledger
from app.domain.model import Adjustment, Count, PosEvent, Receipt, Return, Sale, SnapshotRow

T0 = datetime(2026, 11, 1, tzinfo=UTC)
STORES = ("S1", "S2")
SKUS = ("A", "B", "C")


@st.composite
def events(draw: st.DrawFn, n: int) -> PosEvent:
    kind = draw(st.sampled_from(["sale", "return", "receipt", "adjustment", "count"]))
    common: dict[str, Any] = {
        "event_id": f"E{n}",
        "store_id": draw(st.sampled_from(STORES)),
        "sku": draw(st.sampled_from(SKUS)),
        # Coarse times make ties with snapshot as_of and between events likely.
        "occurred_at": T0 + timedelta(hours=draw(st.integers(0, 48))),
    }
    if kind == "sale":
        return Sale(qty=draw(st.integers(1, 4)), **common)
    if kind == "return":
        return Return(qty=draw(st.integers(1, 4)), **common)
    if kind == "receipt":
        return Receipt(qty=draw(st.integers(1, 12)), **common)
    if kind == "adjustment":
        return Adjustment(qty=draw(st.sampled_from([-3, -1, 1, 2])), **common)
    return Count(on_hand=draw(st.integers(0, 20)), **common)


@st.composite
def snapshots(draw: st.DrawFn) -> tuple[datetime, list[SnapshotRow]]:
    as_of = T0 + timedelta(hours=draw(st.integers(0, 48)))
    locations = draw(st.lists(st.sampled_from(STORES), min_size=1, max_size=2, unique=True))
    rows = [
        SnapshotRow(
            location_id=loc,
            sku=sku,
            on_hand=draw(st.integers(0, 30)),
            reserved=draw(st.integers(0, 3)),
            in_transit=draw(st.integers(0, 5)),
            as_of=as_of,
        )
        for loc in locations
        for sku in draw(st.lists(st.sampled_from(SKUS), max_size=3, unique=True))
    ]
    if not rows:  # a snapshot naming a location lists at least one row for it
        rows = [SnapshotRow(location_id=locations[0], sku="A", on_hand=1, reserved=0,
                            in_transit=0, as_of=as_of)]  # fmt: skip
    return as_of, rows


@st.composite
def streams(draw: st.DrawFn) -> list[tuple[str, Any]]:
    """Events (some redelivered, any order) interleaved with snapshots and questions."""
    evs = [draw(events(i)) for i in range(draw(st.integers(0, 40)))]
    redelivered = draw(st.lists(st.sampled_from(evs), max_size=5)) if evs else []
    items: list[tuple[str, Any]] = [("event", e) for e in [*evs, *redelivered]]
    items += [("snapshot", draw(snapshots())) for _ in range(draw(st.integers(0, 3)))]
    items += [("ask", draw(st.integers(0, 60))) for _ in range(draw(st.integers(1, 8)))]
    return draw(st.permutations(items))


@settings(max_examples=300, deadline=None)
@given(streams())
def test_ledger_equals_the_reference_book(stream: list[tuple[str, Any]]) -> None:
    ledger = Ledger()
    seen: dict[str, PosEvent] = {}
    rows: dict[tuple[str, str], SnapshotRow] = {}
    loc_as_of: dict[str, datetime] = {}
    for kind, item in stream:
        if kind == "event":
            assert isinstance(item, (Sale, Return, Receipt, Adjustment, Count))
            new = ledger.add_event(item)
            assert new == (item.event_id not in seen)
            seen.setdefault(item.event_id, item)
        elif kind == "snapshot":
            as_of: datetime = item[0]
            snap_rows: list[SnapshotRow] = item[1]
            ledger.apply_snapshot(as_of, snap_rows)
            for loc in {r.location_id for r in snap_rows}:
                if loc in loc_as_of and loc_as_of[loc] >= as_of:
                    continue
                for key in [k for k in rows if k[0] == loc]:
                    del rows[key]
                rows.update({(r.location_id, r.sku): r for r in snap_rows if r.location_id == loc})
                loc_as_of[loc] = as_of
        else:
            at = T0 + timedelta(hours=item)
            for store in STORES:
                for sku in SKUS:
                    want = book_position(
                        store,
                        sku,
                        snapshot_row=rows.get((store, sku)),
                        location_as_of=loc_as_of.get(store),
                        events=[e for e in seen.values() if (e.store_id, e.sku) == (store, sku)],
                        at=at,
                    )
                    got = ledger.position(store, sku, at)
                    assert got == want, (store, sku, at)
                    # and again: the cached running sum must not drift
                    assert ledger.position(store, sku, at) == want

"""The contract's book position, on worked examples."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.domain.book import book_position
from app.domain.model import Adjustment, Count, PosEvent, Receipt, Return, Sale, SnapshotRow

T = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)


def h(hours: float) -> datetime:
    return T + timedelta(hours=hours)


def ev(kind: type, i: int, hours: float, **kw: int) -> PosEvent:
    event: PosEvent = kind(event_id=f"E{i}", store_id="S1", sku="A", occurred_at=h(hours), **kw)
    return event


ROW = SnapshotRow(location_id="S1", sku="A", on_hand=12, reserved=1, in_transit=6, as_of=T)


def test_snapshot_then_movements() -> None:
    events = [
        ev(Sale, 1, 1, qty=2),
        ev(Return, 2, 2, qty=1),
        ev(Receipt, 3, 3, qty=4),
        ev(Adjustment, 4, 4, qty=-3),
        ev(Sale, 5, -1, qty=5),  # before as_of: already in the snapshot
        ev(Sale, 6, 9, qty=1),  # after `at`
    ]
    pos = book_position("S1", "A", snapshot_row=ROW, location_as_of=T, events=events, at=h(5))
    assert pos is not None
    assert pos.book == 11 - 2 + 1 + 4 - 3
    assert (pos.base_source, pos.base_at, pos.in_transit) == ("snapshot", T, 6)
    assert pos.last_event_at == h(4)


def test_later_count_replaces_the_base() -> None:
    events = [
        ev(Sale, 1, 1, qty=2),
        ev(Count, 2, 2, on_hand=3),
        ev(Sale, 3, 3, qty=1),
        ev(Count, 4, -2, on_hand=50),
    ]
    pos = book_position("S1", "A", snapshot_row=ROW, location_as_of=T, events=events, at=h(5))
    assert pos is not None
    assert (pos.book, pos.base_source, pos.base_at) == (2, "count", h(2))


def test_named_location_without_the_sku_has_zero_then_receipts() -> None:
    pos = book_position(
        "S1", "A", snapshot_row=None, location_as_of=T, events=[ev(Receipt, 1, 1, qty=3)], at=h(2)
    )
    assert pos is not None and pos.book == 3 and pos.snapshot_as_of == T


def test_no_snapshot_and_no_count_has_no_position() -> None:
    assert (
        book_position(
            "S1",
            "A",
            snapshot_row=None,
            location_as_of=None,
            events=[ev(Sale, 1, 1, qty=1)],
            at=h(2),
        )
        is None
    )


def test_order_of_arrival_does_not_matter() -> None:
    events = [
        ev(Sale, 1, 1, qty=2),
        ev(Count, 2, 2, on_hand=7),
        ev(Receipt, 3, 3, qty=4),
        ev(Sale, 4, 0.5, qty=1),
    ]
    a = book_position("S1", "A", snapshot_row=ROW, location_as_of=T, events=events, at=h(5))
    b = book_position(
        "S1", "A", snapshot_row=ROW, location_as_of=T, events=list(reversed(events)), at=h(5)
    )
    assert a == b and a is not None and a.book == 11

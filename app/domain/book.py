"""Book position, exactly as the contract defines it.

This is the reference computation. The live reconciler computes the same thing
set-wise in SQL (``app/db/sql/positions.sql``); a property test holds the two equal.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from app.domain.model import BookPosition, Count, PosEvent, SnapshotRow, delta


def book_position(
    store_id: str,
    sku: str,
    *,
    snapshot_row: SnapshotRow | None,
    location_as_of: datetime | None,
    events: Iterable[PosEvent],
    at: datetime,
) -> BookPosition | None:
    """Book position of (store_id, sku) at ``at``; ``None`` when nothing gives a base.

    ``snapshot_row`` is the latest warehouse row for the pair; ``location_as_of`` the
    ``as_of`` of the latest snapshot naming the location (a named location that does
    not list the sku has 0 units then). A POS count later than the snapshot base
    replaces it; movements strictly after the base's time and up to ``at`` apply.
    """
    relevant = [e for e in events if e.occurred_at <= at]
    base_qty: int | None = None
    base_at: datetime | None = None
    in_transit = 0
    snapshot_as_of: datetime | None = None
    if snapshot_row is not None:
        base_qty = snapshot_row.on_hand - snapshot_row.reserved
        base_at = snapshot_row.as_of
        in_transit = snapshot_row.in_transit
        snapshot_as_of = snapshot_row.as_of
    elif location_as_of is not None:
        base_qty, base_at, snapshot_as_of = 0, location_as_of, location_as_of
    source: str = "snapshot"

    counts = [e for e in relevant if isinstance(e, Count)]
    if counts:
        latest = max(counts, key=lambda c: (c.occurred_at, c.event_id))
        if base_at is None or latest.occurred_at > base_at:
            base_qty, base_at, source = latest.on_hand, latest.occurred_at, "count"

    if base_qty is None or base_at is None:
        return None
    book = base_qty
    for e in relevant:
        if not isinstance(e, Count) and e.occurred_at > base_at:
            book += delta(e)
    last_event_at = max((e.occurred_at for e in relevant), default=None)
    return BookPosition(
        store_id=store_id,
        sku=sku,
        book=book,
        base_source="count" if source == "count" else "snapshot",
        base_at=base_at,
        snapshot_as_of=snapshot_as_of,
        last_event_at=last_event_at,
        in_transit=in_transit,
    )

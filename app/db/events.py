"""POS event store: idempotent, set-based inserts of decoded feed pages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from app.db import Connection
from app.db.queries import Queries
from app.domain.model import Count, PosEvent

Q = Queries("events.sql")


async def insert_events(
    conn: Connection, feed: str, events: Sequence[PosEvent], *, received_at: datetime
) -> list[PosEvent]:
    """Store the events not yet stored for ``feed`` and advance their stores' freshness.

    Returns the new ones (redeliveries are left out; of an event_id given twice, the
    first), in the order the live engine takes events in (``occurred_at``, then
    ``event_id`` as the database orders them). Run inside the page's transaction.
    """
    first: dict[str, PosEvent] = {}
    for e in events:
        first.setdefault(e.event_id, e)
    if not first:
        return []
    unique = first.values()
    qty: list[int | None] = []
    on_hand: list[int | None] = []
    for e in unique:
        if isinstance(e, Count):
            qty.append(None)
            on_hand.append(e.on_hand)
        else:
            qty.append(e.qty)
            on_hand.append(None)
    new: list[str] = await conn.fetchval(
        Q.insert_events,
        feed,
        list(first),
        [_type(e) for e in unique],
        [e.store_id for e in unique],
        [e.sku for e in unique],
        qty,
        on_hand,
        [e.occurred_at for e in unique],
        received_at,
    )
    return [first[event_id] for event_id in new]


def _type(event: PosEvent) -> str:
    tag = type(event).__struct_config__.tag
    assert isinstance(tag, str)
    return tag

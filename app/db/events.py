"""POS event store: idempotent, set-based inserts of decoded feed pages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from app.db import Connection
from app.db.queries import Queries
from app.domain.model import Count, PosEvent

Q = Queries("events.sql")


class NewEvent(msgspec.Struct, frozen=True):
    """An event that was not stored before this insert."""

    store_id: str
    sku: str
    occurred_at: datetime


async def insert_events(
    conn: Connection, feed: str, events: Sequence[PosEvent], *, received_at: datetime
) -> list[NewEvent]:
    """Store the events not yet stored for ``feed`` and advance their stores' freshness.

    Returns the new ones (redeliveries are left out). Run inside the page's transaction.
    """
    if not events:
        return []
    rows = await conn.fetch(
        Q.insert_events,
        feed,
        [e.event_id for e in events],
        [_type(e) for e in events],
        [e.store_id for e in events],
        [e.sku for e in events],
        [None if isinstance(e, Count) else e.qty for e in events],
        [e.on_hand if isinstance(e, Count) else None for e in events],
        [e.occurred_at for e in events],
        received_at,
    )
    return [NewEvent(r["store_id"], r["sku"], r["occurred_at"]) for r in rows]


def _type(event: PosEvent) -> str:
    tag = type(event).__struct_config__.tag
    assert isinstance(tag, str)
    return tag

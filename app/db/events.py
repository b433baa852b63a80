"""POS event store: idempotent, set-based inserts of decoded feed pages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import msgspec
from msgspec.structs import replace

from app.db import Connection
from app.db.queries import Queries
from app.domain.model import PosEvent

Q = Queries("events.sql")
_ENCODE = msgspec.json.Encoder().encode


async def insert_events(
    conn: Connection, feed: str, events: Sequence[PosEvent], *, received_at: datetime
) -> list[PosEvent]:
    """Store the events not yet stored for ``feed`` and advance their stores' freshness.

    Returns the new ones (redeliveries are left out; of an event_id given twice, the
    first), in the order the live engine takes events in (``occurred_at``, then
    ``event_id`` as the database orders them). Run inside the page's transaction.

    The events travel as one JSON document (msgspec writes it in C): as eight arrays
    the driver checked every one of their 80,000 elements for a 10,000-event pull.
    """
    first: dict[str, PosEvent] = {}
    for e in events:
        first.setdefault(e.event_id, e)
    if not first:
        return []
    new: list[str] = await conn.fetchval(
        Q.insert_events, feed, _ENCODE([_in_utc(e) for e in first.values()]).decode(), received_at
    )
    return [first[event_id] for event_id in new]


def _in_utc(event: PosEvent) -> PosEvent:
    """``event`` with its time in UTC: JSON carries an offset in whole minutes only."""
    at = event.occurred_at
    return event if at.tzinfo is UTC else replace(event, occurred_at=at.astimezone(UTC))

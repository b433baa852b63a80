"""Retention: delete the POS events and quarantined snapshots no answer reads any more.

Without it ``pos_event`` grows for as long as the service runs, and every book query
reads a pair's whole history (``positions.sql`` sums the movements after the base and
takes the newest event): a fast seller's year of sales per recompute. An event goes
once it is older than the retention period *and* before everything that still reads
it (its pair's base, the snapshot in force, the latest count; its pair's newest event
and newest sale stay): ``retention.sql`` has the rule. A book, a badge and a
reconciliation report at any later time are then what they would have been
(``tests/test_retention.py`` holds them equal). Batches of ``BATCH`` events, each in
its own short transaction, walk the events by receipt, so a first run over months of
history never holds a long transaction or locks a store.

An event redelivered after its deletion is stored again; it is older than its pair's
base, so no book moves (the engine's window, 14 days, is far shorter than the period).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgspec

from app.db import Connection
from app.db.queries import Queries
from app.settings import MIN_EVENT_RETENTION

Q = Queries("retention.sql")
BATCH = 10_000
_START = (datetime(1, 1, 1, tzinfo=UTC), "", "")


class Pruned(msgspec.Struct, kw_only=True):
    """What one retention run read and deleted."""

    events_scanned: int = 0
    events_deleted: int = 0
    batches: int = 0
    quarantined_deleted: int = 0


async def prune_events(
    conn: Connection, *, now: datetime, keep: timedelta, batch: int = BATCH, into: Pruned
) -> None:
    """Delete the events received and occurred more than ``keep`` before ``now`` that no
    answer at ``now`` or later reads; one transaction per batch (``into`` counts)."""
    if keep < MIN_EVENT_RETENTION:
        raise ValueError(f"event retention must be at least {MIN_EVENT_RETENTION.days} days")
    cutoff = now - keep
    cursor = _START
    while True:
        async with conn.transaction():
            row = await conn.fetchrow(Q.prune_events, cutoff, now, *cursor, batch)
        if row is None:
            return
        into.batches += 1
        into.events_scanned += row["scanned"]
        into.events_deleted += row["deleted"]
        if row["scanned"] < batch:
            return
        cursor = (row["received_at"], row["feed"], row["event_id"])


async def prune_quarantined(conn: Connection, *, now: datetime, keep: timedelta) -> int:
    """Delete quarantined snapshots (and their rows) received more than ``keep`` ago."""
    deleted: int = await conn.fetchval(Q.prune_quarantined, now - keep)
    return deleted

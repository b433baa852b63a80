"""Retention: delete the POS events, feedback and quarantined snapshots no answer reads.

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
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
# Keyset cursors before every row: (received_at, feed, event_id) and (received_at,
# store_id, sku, kind, observed_at, qty).
_EVENTS_START: tuple[object, ...] = (_EPOCH, "", "")
_FEEDBACK_START: tuple[object, ...] = (_EPOCH, "", "", "", _EPOCH, 0)


class Pruned(msgspec.Struct, kw_only=True):
    """What one retention run read and deleted."""

    events_scanned: int = 0
    events_deleted: int = 0
    feedback_scanned: int = 0
    feedback_deleted: int = 0
    batches: int = 0
    quarantined_deleted: int = 0


async def prune_events(
    conn: Connection, *, now: datetime, keep: timedelta, batch: int = BATCH, into: Pruned
) -> None:
    """Delete the events received and occurred more than ``keep`` before ``now`` that no
    answer at ``now`` or later reads; one transaction per batch (``into`` counts)."""
    scanned, deleted, batches = await _walk(
        conn, Q.prune_events, now=now, keep=keep, batch=batch, start=_EVENTS_START,
        keys=("received_at", "feed", "event_id"),
    )  # fmt: skip
    into.events_scanned += scanned
    into.events_deleted += deleted
    into.batches += batches


async def prune_feedback(
    conn: Connection, *, now: datetime, keep: timedelta, batch: int = BATCH, into: Pruned
) -> None:
    """``prune_events`` for feedback: old pick outcomes, and old shelf counts a newer
    count replaced (``retention.sql``)."""
    scanned, deleted, batches = await _walk(
        conn, Q.prune_feedback, now=now, keep=keep, batch=batch, start=_FEEDBACK_START,
        keys=("received_at", "store_id", "sku", "kind", "observed_at", "qty"),
    )  # fmt: skip
    into.feedback_scanned += scanned
    into.feedback_deleted += deleted
    into.batches += batches


async def _walk(
    conn: Connection,
    query: str,
    *,
    now: datetime,
    keep: timedelta,
    batch: int,
    start: tuple[object, ...],
    keys: tuple[str, ...],
) -> tuple[int, int, int]:
    """Run a batch ``query`` from ``start`` until a batch reads fewer than ``batch`` rows,
    each its own transaction, the cursor taken from the batch's ``keys``; (scanned,
    deleted, batches)."""
    if keep < MIN_EVENT_RETENTION:
        raise ValueError(f"event retention must be at least {MIN_EVENT_RETENTION.days} days")
    cutoff, cursor = now - keep, start
    scanned = deleted = batches = 0
    while True:
        async with conn.transaction():
            row = await conn.fetchrow(query, cutoff, now, *cursor, batch)
        if row is None:
            return scanned, deleted, batches
        batches += 1
        scanned += row["scanned"]
        deleted += row["deleted"]
        if row["scanned"] < batch:
            return scanned, deleted, batches
        cursor = tuple(row[k] for k in keys)


async def prune_quarantined(conn: Connection, *, now: datetime, keep: timedelta) -> int:
    """Delete quarantined snapshots (and their rows) received more than ``keep`` ago."""
    deleted: int = await conn.fetchval(Q.prune_quarantined, now - keep)
    return deleted

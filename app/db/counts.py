"""Counts from a store manager's spreadsheet, applied whole in one transaction.

Each count is stored as a ``shelf_count`` feedback, which acts as a count in the book
position (contract "Feedback"; tie-breaks in docs/feedback.md), so a count is
idempotent by its natural key (store, sku, counted_at, counted_qty): uploading the
same file again stores nothing and changes nothing. The note and the uploading key go
to ``manager_count``. The pairs with a new count are recomputed in the same
transaction, and the answer compares each affected book and badge before and after.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from app.db import Connection
from app.db.feedback import Observation, store_feedback
from app.db.queries import Queries
from app.domain.policy import Policy

Q = Queries("counts.sql")
LOCK = Queries("positions.sql").lock_stores


class ManagerCount(msgspec.Struct, frozen=True, kw_only=True):
    """One validated row of an upload."""

    sku: str
    counted_qty: int
    counted_at: datetime
    note: str | None = None


class CountChange(msgspec.Struct, frozen=True, kw_only=True):
    """One book position the upload changed."""

    sku: str
    book_before: int | None
    book_after: int | None
    change: int
    badge_before: str | None
    badge_after: str | None


class Applied(msgspec.Struct, frozen=True, kw_only=True):
    """What an upload did."""

    stored: int
    duplicates: int
    positions_recomputed: int
    changes: list[CountChange]


async def apply_counts(
    conn: Connection,
    store_id: str,
    counts: Sequence[ManagerCount],
    *,
    key_id: str | None,
    policy: Policy,
    now: datetime,
) -> Applied:
    """Store the counts, recompute what they touch, and say what changed, atomically."""
    skus = sorted({c.sku for c in counts})
    async with conn.transaction():
        await conn.fetchval(LOCK, [store_id])  # no other recompute between before and after
        before = {r["sku"]: (r["book"], r["badge_state"]) for r in await conn.fetch(
            Q.positions_of, store_id, skus)}  # fmt: skip
        observations = [
            Observation(
                observed_at=c.counted_at,
                store_id=store_id,
                sku=c.sku,
                kind="shelf_count",
                qty=c.counted_qty,
            )
            for c in counts
        ]
        stored = await store_feedback(conn, observations, policy=policy, now=now)
        ordered = sorted(counts, key=lambda c: (c.sku, c.counted_at, c.counted_qty))
        await conn.fetch(
            Q.insert_manager_counts,
            store_id,
            [c.sku for c in ordered],
            [c.counted_at for c in ordered],
            [c.counted_qty for c in ordered],
            [c.note for c in ordered],
            key_id,
            now,
        )
        after = {r["sku"]: (r["book"], r["badge_state"]) for r in await conn.fetch(
            Q.positions_of, store_id, skus)}  # fmt: skip
    changes: list[CountChange] = []
    for sku in skus:
        old = before.get(sku, (None, None))
        new = after.get(sku, (None, None))
        if old != new:
            changes.append(
                CountChange(
                    sku=sku,
                    book_before=old[0],
                    book_after=new[0],
                    change=(new[0] or 0) - (old[0] or 0),
                    badge_before=old[1],
                    badge_after=new[1],
                )
            )
    return Applied(
        stored=stored.stored,
        duplicates=stored.duplicates,
        positions_recomputed=stored.positions,
        changes=changes,
    )

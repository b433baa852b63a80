"""Feedback store: what staff and orders observed on the shelf (contract "Feedback").

A batch is stored in one transaction: the new observations are inserted (an
observation already stored is a duplicate and changes nothing) and the book
positions of the pairs that got a new ``shelf_count`` are recomputed, since a shelf
count acts as a count. Pick outcomes (``pick_found``, ``pick_short``) do not move
the book; they are kept for the confidence engine (view ``pick_outcome``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import msgspec

from app.db import Connection
from app.db.positions import recompute_pairs
from app.db.queries import Queries
from app.domain.policy import Policy

Q = Queries("feedback.sql")

FeedbackKind = Literal["shelf_count", "pick_found", "pick_short"]
FEEDBACK_KINDS: tuple[str, ...] = ("shelf_count", "pick_found", "pick_short")


class Observation(msgspec.Struct, frozen=True, kw_only=True):
    """One validated feedback item.

    ``qty``: shelf_count, the units counted; pick_found, the units the pick wanted
    (and found); pick_short, the units it found (0: none), fewer than it wanted.
    """

    observed_at: datetime
    store_id: str
    sku: str
    kind: FeedbackKind
    qty: int

    def key(self) -> tuple[str, str, str, datetime, int]:
        """The natural key feedback is stored idempotently by."""
        return (self.store_id, self.sku, self.kind, self.observed_at, self.qty)


class Stored(msgspec.Struct, frozen=True, kw_only=True):
    """What storing a batch did."""

    stored: int
    duplicates: int
    positions: int
    stored_by_kind: dict[str, int]


async def store_feedback(
    conn: Connection, items: Sequence[Observation], *, policy: Policy, now: datetime
) -> Stored:
    """Store the batch and recompute the pairs a new shelf count touches, atomically."""
    # A stable insert order: two batches sharing observations never wait on each
    # other's rows in opposite orders.
    ordered = sorted(items, key=Observation.key)
    async with conn.transaction():
        rows = await conn.fetch(
            Q.insert_feedback,
            [o.store_id for o in ordered],
            [o.sku for o in ordered],
            [o.kind for o in ordered],
            [o.observed_at for o in ordered],
            [o.qty for o in ordered],
            now,
        )
        counted = {(r["store_id"], r["sku"]) for r in rows if r["kind"] == "shelf_count"}
        positions = await recompute_pairs(conn, counted, policy=policy, now=now)
    by_kind = dict.fromkeys(FEEDBACK_KINDS, 0)
    for row in rows:
        by_kind[row["kind"]] += 1
    return Stored(
        stored=len(rows),
        duplicates=len(items) - len(rows),
        positions=positions,
        stored_by_kind=by_kind,
    )

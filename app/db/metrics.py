"""Aggregate reads for ``GET /metrics`` (SQL in ``sql/metrics.sql``)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from app.db import Connection
from app.db.queries import Queries
from app.domain.badge import PROMISES

Q = Queries("metrics.sql")


class FeedHealth(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    kind: str
    last_success_at: datetime | None
    last_attempt_at: datetime | None
    last_error_at: datetime | None
    consecutive_failures: int
    last_rows: int | None
    created_at: datetime


class PickCounts(msgspec.Struct, frozen=True, kw_only=True):
    """Pick outcomes by kind: observed since the window's start, and all stored (the
    retention period's)."""

    recent: dict[str, int]
    total: dict[str, int]


async def feed_health(conn: Connection) -> list[FeedHealth]:
    return [FeedHealth(**dict(r)) for r in await conn.fetch(Q.feed_health)]


class BadgeCounts(msgspec.Struct, frozen=True, kw_only=True):
    """Stored badges by state, and those that promise nothing by reason (a badge counts
    once per reason it carries)."""

    by_state: dict[str, int]
    suppressed: dict[str, int]


async def badge_counts(conn: Connection) -> BadgeCounts:
    by_state: dict[str, int] = {}
    suppressed: dict[str, int] = {}
    for r in await conn.fetch(Q.badge_counts):
        n = int(r["n"])
        by_state[r["state"]] = by_state.get(r["state"], 0) + n
        if r["state"] not in PROMISES:
            for reason in r["reasons"]:
                suppressed[reason] = suppressed.get(reason, 0) + n
    return BadgeCounts(by_state=by_state, suppressed=suppressed)


async def pick_outcomes(conn: Connection, *, since: datetime) -> PickCounts:
    rows = await conn.fetch(Q.pick_outcomes, since)
    return PickCounts(
        recent={r["kind"]: int(r["recent"]) for r in rows},
        total={r["kind"]: int(r["total"]) for r in rows},
    )

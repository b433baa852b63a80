"""Aggregate reads for ``GET /metrics`` (SQL in ``sql/metrics.sql``)."""

from __future__ import annotations

from datetime import datetime

import msgspec

from app.db import Connection
from app.db.queries import Queries

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
    """Pick outcomes by kind: observed since the window's start, and all time."""

    recent: dict[str, int]
    total: dict[str, int]


async def feed_health(conn: Connection) -> list[FeedHealth]:
    return [FeedHealth(**dict(r)) for r in await conn.fetch(Q.feed_health)]


async def badges_by_state(conn: Connection) -> dict[str, int]:
    return {r["state"]: int(r["n"]) for r in await conn.fetch(Q.badges_by_state)}


async def suppressed_by_reason(conn: Connection) -> dict[str, int]:
    return {r["reason"]: int(r["n"]) for r in await conn.fetch(Q.suppressed_by_reason)}


async def pick_outcomes(conn: Connection, *, since: datetime) -> PickCounts:
    rows = await conn.fetch(Q.pick_outcomes, since)
    return PickCounts(
        recent={r["kind"]: int(r["recent"]) for r in rows},
        total={r["kind"]: int(r["total"]) for r in rows},
    )

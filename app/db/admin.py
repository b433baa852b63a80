"""Admin reads and the snapshot release's SQL (``sql/admin.sql``).

A release runs in the caller's transaction, after the caller took the feed's pull
lock and created the staging table (``reconcilers.warehouse.release_snapshot``).
"""

from __future__ import annotations

from datetime import datetime

import msgspec

from app.db import Connection
from app.db.queries import Queries

Q = Queries("admin.sql")


class SnapshotInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One ``warehouse_snapshot`` row and how many of its rows were kept."""

    snapshot_id: int
    feed: str
    etag: str | None
    status: str
    reason: str | None
    row_count: int | None
    locations: int | None
    received_at: datetime
    rows_kept: int


class NewerInForce(msgspec.Struct, frozen=True, kw_only=True):
    location_id: str
    in_force_as_of: datetime
    snapshot_as_of: datetime


async def list_snapshots(
    conn: Connection, *, status: str | None, feed: str | None, limit: int
) -> list[SnapshotInfo]:
    rows = await conn.fetch(Q.list_snapshots, status, feed, limit)
    return [SnapshotInfo(**dict(r)) for r in rows]


async def snapshot_for_update(conn: Connection, snapshot_id: int) -> SnapshotInfo | None:
    row = await conn.fetchrow(Q.snapshot_for_update, snapshot_id)
    return None if row is None else SnapshotInfo(**dict(row))


async def applied_since(conn: Connection, feed: str, snapshot_id: int) -> int | None:
    value = await conn.fetchval(Q.applied_since, feed, snapshot_id)
    return None if value is None else int(value)


async def kept_locations(conn: Connection, snapshot_id: int) -> list[str]:
    """The locations a quarantined snapshot's kept rows name."""
    return [r[0] for r in await conn.fetch(Q.kept_locations, snapshot_id)]


async def newer_in_force(conn: Connection, snapshot_id: int) -> list[NewerInForce]:
    return [NewerInForce(**dict(r)) for r in await conn.fetch(Q.newer_in_force, snapshot_id)]


async def stage_kept_rows(conn: Connection, snapshot_id: int) -> None:
    await conn.execute(Q.stage_kept_rows, snapshot_id)


async def mark_released(conn: Connection, snapshot_id: int, *, at: datetime) -> None:
    await conn.execute(Q.mark_released, snapshot_id, at)

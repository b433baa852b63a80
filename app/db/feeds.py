"""Feed state repository: resume points (cursor, ETag) and health per feed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import msgspec

from app.db import Connection
from app.db.queries import Queries
from reconcilers.feeds_config import FeedConfig

Q = Queries("feeds.sql")


class FeedState(msgspec.Struct, frozen=True, kw_only=True):
    """One ``feed`` row."""

    name: str
    kind: str
    url: str
    cursor: str | None
    etag: str | None
    last_attempt_at: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    last_rows: int | None
    last_duration_ms: float | None


async def upsert_feeds(conn: Connection, feeds: Sequence[FeedConfig]) -> None:
    """Make the table match the feeds file (feeds no longer configured are kept)."""
    if not feeds:
        return
    await conn.execute(
        Q.upsert_feeds, [f.name for f in feeds], [f.kind for f in feeds], [f.url for f in feeds]
    )


async def get_feed(conn: Connection, name: str) -> FeedState | None:
    row = await conn.fetchrow(Q.get_feed, name)
    return None if row is None else FeedState(**dict(row))


async def list_feeds(conn: Connection) -> list[FeedState]:
    return [FeedState(**dict(r)) for r in await conn.fetch(Q.list_feeds)]


async def save_cursor(conn: Connection, name: str, cursor: str | None) -> None:
    """Resume point of a POS feed; call in the transaction that stores its page."""
    await conn.execute(Q.save_cursor, name, cursor)


async def save_etag(conn: Connection, name: str, etag: str | None) -> None:
    """ETag of the last snapshot applied (sent as If-None-Match next time)."""
    await conn.execute(Q.save_etag, name, etag)


async def record_attempt(conn: Connection, name: str, *, at: datetime) -> None:
    await conn.execute(Q.record_attempt, name, at)


async def record_success(
    conn: Connection, name: str, *, at: datetime, rows: int, duration_ms: float
) -> None:
    await conn.execute(Q.record_success, name, at, rows, duration_ms)


async def record_failure(
    conn: Connection, name: str, *, at: datetime, error: str, duration_ms: float
) -> None:
    """Note the error and count it; touches nothing but the health columns."""
    await conn.execute(Q.record_failure, name, error, at, duration_ms)

"""Export repository: book positions streamed by a server-side cursor (never all in memory)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from app.db import Connection
from app.db.queries import Queries
from reconcilers.adapters.google_local import Position

Q = Queries("exports.sql")
BATCH = 2000


async def positions(conn: Connection) -> AsyncIterator[Position]:
    """Every book position, ordered by store and sku. Needs an open transaction."""
    async for row in conn.cursor(Q.google_local_positions, prefetch=BATCH):
        yield Position(
            store_id=row["store_id"],
            sku=row["sku"],
            badge_state=row["badge_state"],
            book=row["book"],
            safety_buffer=row["safety_buffer"],
        )

"""The reconciliation report of one store, read set-wise and streamed.

``review_rows`` yields the report's rows through a server-side cursor, highest
priority first, so a store with 100,000 items to look at never sits in memory: the
database sorts, the cursor hands over ``PREFETCH`` rows at a time. The caller holds
the transaction (a cursor needs one; repeatable read makes the rows one snapshot).
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import asyncpg

from app.db import Connection
from app.db.queries import Queries
from app.domain.reconciliation import (
    ACTIONS,
    COLUMNS,
    DEFAULT_RULES,
    ReviewReason,
    ReviewRules,
    row_cells,
)

Q = Queries("reports.sql")
PREFETCH = 1_000


def _args(store_id: str, now: datetime, rules: ReviewRules) -> tuple[Any, ...]:
    return (
        store_id,
        now,
        rules.disagreement_units,
        rules.silence_expected_sales,
        rules.short_pick_lookback,
        rules.fast_seller_week_units,
        rules.max_count_age,
        rules.horizon_days,
        rules.weight_phantom,
        rules.weight_disagree,
        rules.weight_old_count,
        rules.weight_held_back,
    )


async def review_rows(
    conn: Connection, store_id: str, *, now: datetime, rules: ReviewRules = DEFAULT_RULES
) -> AsyncIterator[asyncpg.Record]:
    """Every item of the store that needs a look; call inside a transaction."""
    async for row in conn.cursor(Q.review_rows, *_args(store_id, now, rules), prefetch=PREFETCH):
        yield row


_SUMMARY = Q.review_summary.replace("/* review_rows */", Q.review_rows.rstrip().rstrip(";"))


async def review_summary(
    conn: Connection, store_id: str, *, now: datetime, rules: ReviewRules = DEFAULT_RULES
) -> tuple[int, dict[str, tuple[int, float]], dict[str, int]]:
    """The store's positions, items and total priority per action, items per reason."""
    rows = await conn.fetch(_SUMMARY, *_args(store_id, now, rules))
    by_action = dict.fromkeys(ACTIONS, (0, 0.0))
    by_reason = dict.fromkeys((r.value for r in ReviewReason), 0)
    positions = 0
    for row in rows:
        if row["kind"] == "action":
            by_action[row["key"]] = (row["items"], round(row["priority"], 2))
        elif row["kind"] == "reason":
            by_reason[row["key"]] = row["items"]
        else:
            positions = row["items"]
    return positions, by_action, by_reason


# Excel opens a CSV as UTF-8 only when it starts with a byte order mark.
BOM = "\ufeff"
_FLUSH_ROWS = 500


async def report_csv(
    conn: Connection, store_id: str, *, now: datetime, rules: ReviewRules = DEFAULT_RULES
) -> AsyncIterator[bytes]:
    """The report as UTF-8 CSV chunks (a BOM, the header, then about 500 rows a chunk).

    Call inside a transaction; memory stays bounded by the chunk and the cursor's prefetch.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    buffer.write(BOM)
    writer.writerow(COLUMNS)
    pending = 0
    async for row in review_rows(conn, store_id, now=now, rules=rules):
        writer.writerow(row_cells(row, rules=rules))
        pending += 1
        if pending >= _FLUSH_ROWS:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue().encode()


async def store_known(conn: Connection, store_id: str) -> bool:
    """Whether the store is in the store list or has any book position."""
    known: bool = await conn.fetchval(Q.store_known, store_id)
    return known

"""Warehouse snapshot repository: stage, validate, quarantine or apply.

The caller owns the transaction: it creates the staging table, COPYs the streamed
file into it, and then either records a quarantine or applies the staged rows, all
on one connection, so a snapshot is applied whole or not at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Iterable
from datetime import datetime
from itertools import repeat
from typing import Literal

import asyncpg
import msgspec

from app.db import Connection
from app.db.engine_state import LocationChanges, SnapshotChanges
from app.db.queries import Queries
from app.domain.model import SnapshotRow

Q = Queries("snapshots.sql")

STAGING_TABLE = "warehouse_staging"
TYPED_TABLE = "warehouse_typed"
STAGING_COLUMNS = ("location_id", "sku", "on_hand", "reserved", "in_transit", "as_of")
# Fewer differences than this are written without ANALYZE of snapshot_change (~22 ms
# at 20k rows): unanalyzed, write_changes probes the stock by key for each difference
# (what the statistics choose there too); for many, a hash join may beat the probes.
ANALYZE_CHANGES_FROM = 50_000


class Problem(msgspec.Struct, frozen=True):
    """One thing wrong with a staged row, at its line in the file."""

    line: int
    problem: str


class Problems(msgspec.Struct, frozen=True):
    """The first few problems in file order, and how many there are in all."""

    first: list[Problem]
    total: int


class LatestSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    snapshot_id: int
    status: str
    etag: str | None
    reason: str | None


async def begin_pull(conn: Connection, feed: str) -> None:
    """Serialize pulls of one feed and give this transaction room to hash big files."""
    await conn.execute(Q.lock_feed, feed)
    await conn.execute(Q.tune_transaction)


async def hold_locations(conn: Connection, locations: Iterable[str]) -> None:
    """Serialize, until commit, the judging and swapping of snapshots naming any of
    ``locations``: two feeds may name one, and each pull holds only its own feed's lock."""
    await conn.fetchval(Q.lock_locations, list(locations))


async def create_staging(conn: Connection) -> None:
    """A text staging table that drops itself when the transaction ends."""
    await conn.execute(Q.create_staging)


async def copy_into_staging(conn: Connection, source: AsyncIterable[bytes]) -> None:
    """COPY CSV data rows (header already consumed) from ``source`` into staging.

    A malformed row raises asyncpg's DataError (its ``context`` names the COPY line);
    an exception raised by ``source`` aborts the COPY and propagates unchanged.
    """
    await conn.copy_to_table(STAGING_TABLE, source=source, columns=STAGING_COLUMNS, format="csv")
    await conn.execute(Q.analyze_staging)


class TypedStaging(msgspec.Struct, frozen=True):
    """The fast path's staging table of one pull and its statements that name it.

    An unlogged table (parallel workers may scan it, not a temporary one's) named
    after the connection's backend, so concurrent pulls of different feeds never
    contend for a name; it exists only inside the pull's transaction.
    """

    table: str
    as_ofs: str  # typed_as_ofs
    changes: str  # typed_changes
    drop: str  # drop_typed_staging


def _naming(table: str) -> Callable[[str], str]:
    """A typed statement on ``table``: a table's name cannot be a query parameter."""

    def named(sql: str) -> str:
        assert TYPED_TABLE in sql, "a typed statement names the typed staging"
        return sql.replace(TYPED_TABLE, table)

    return named


async def create_typed_staging(conn: Connection) -> TypedStaging:
    """The typed staging table of the fast path (counts parsed, as_of text)."""
    table = f"{TYPED_TABLE}_{conn.get_server_pid()}"
    named = _naming(table)
    await conn.execute(named(Q.create_typed_staging))
    return TypedStaging(
        table, named(Q.typed_as_ofs), named(Q.typed_changes), named(Q.drop_typed_staging)
    )


async def copy_into_typed(
    conn: Connection, staging: TypedStaging, source: AsyncIterable[bytes]
) -> None:
    """COPY CSV data rows into the typed staging table; a row that does not parse
    raises asyncpg's DataError (the caller then takes the text path)."""
    await conn.copy_to_table(staging.table, source=source, columns=STAGING_COLUMNS, format="csv")


async def typed_summary(conn: Connection, staging: TypedStaging) -> dict[str, int] | None:
    """The typed rows per location when their counts, locations and as_of values pass
    ``staged_problems``' rules; ``None`` when they may not."""
    await conn.execute(Q.judge_in_parallel)
    await conn.execute(staging.as_ofs)
    if not await conn.fetchval(Q.typed_clean):
        return None
    return {r["location_id"]: int(r["n"]) for r in await conn.fetch(Q.typed_rows_by_location)}


async def typed_differences(conn: Connection, staging: TypedStaging) -> bool:
    """Compare the typed rows with the stock in force at the locations they name
    (``snapshot_change``), then drop the staging; False when a sku or a duplicate
    would fail ``staged_problems`` (nothing is written either way)."""
    await conn.execute(Q.stage_typed_locations)
    shape = await conn.fetchrow(Q.typed_shape)
    assert shape is not None
    await conn.execute(staging.changes, shape["one_as_of"], shape["every_location"])
    await conn.execute(Q.judged)
    await conn.execute(staging.drop)
    verdict = await conn.fetchrow(Q.changes_clean, shape["every_location"])
    assert verdict is not None
    if not verdict["clean"]:
        return False
    if verdict["changes"] >= ANALYZE_CHANGES_FROM:
        await conn.execute(Q.analyze_changes)
    return True


async def apply_typed_changes(conn: Connection, snapshot_id: int) -> Applied:
    """``apply_staged_changes`` for rows judged by ``typed_summary`` and
    ``typed_differences``: writes the differences found there."""
    await conn.execute(Q.write_changes, snapshot_id)
    rows = await conn.fetch(Q.apply_locations, snapshot_id)
    changes = SnapshotChanges(snapshot_id, {})
    for r in await conn.fetch(Q.changes_by_location):
        changes.locations[r["location_id"]] = _location_changes(r, r["removed"] or [])
    return Applied([r["store_id"] for r in rows], changes)


def _location_changes(r: asyncpg.Record, removed: list[str]) -> LocationChanges:
    """One location's changes from a row of ``staged_changes`` or ``changes_by_location``
    (its as_of, previous snapshot and the rows written, column-wise)."""
    here: str = r["location_id"]
    names = r["skus"] or []
    written = list(map(SnapshotRow, repeat(here, len(names)), names, r["on_hands"] or [],
                       r["reserveds"] or [], r["in_transits"] or [], r["as_ofs"] or []))  # fmt: skip
    return LocationChanges(r["as_of"], r["previous_snapshot"], written, removed)


async def staged_problems(conn: Connection, *, limit: int) -> Problems:
    """The staged rows' problems; one quick pass first (``staged_clean``) when there are none."""
    if await conn.fetchval(Q.staged_clean):
        return Problems(first=[], total=0)
    rows = await conn.fetch(Q.staged_problems, limit)
    return Problems(
        first=[Problem(r["line"], r["problem"]) for r in rows],
        total=rows[0]["total"] if rows else 0,
    )


async def staged_summary(conn: Connection) -> dict[str, int]:
    """The staged rows per location."""
    return {r["location_id"]: int(r["n"]) for r in await conn.fetch(Q.staged_rows_by_location)}


async def rows_in_force(conn: Connection, locations: Iterable[str]) -> dict[str, int]:
    """The rows each of ``locations`` has in force (those without any are left out)."""
    rows = await conn.fetch(Q.rows_in_force, list(locations))
    return {r["location_id"]: int(r["n"]) for r in rows}


async def latest_snapshot(conn: Connection, feed: str) -> LatestSnapshot | None:
    row = await conn.fetchrow(Q.latest_snapshot, feed)
    return None if row is None else LatestSnapshot(**dict(row))


async def insert_snapshot(
    conn: Connection,
    *,
    feed: str,
    etag: str | None,
    status: Literal["applied", "quarantined"],
    reason: str | None,
    row_count: int | None,
    locations: int | None,
    received_at: datetime,
) -> int:
    snapshot_id = await conn.fetchval(
        Q.insert_snapshot, feed, etag, status, reason, row_count, locations, received_at
    )
    return int(snapshot_id)


async def keep_staged_rows(conn: Connection, snapshot_id: int) -> None:
    """Store the staged rows, typed, under a quarantined snapshot (they must be valid)."""
    await conn.execute(Q.keep_staged_rows, snapshot_id)


class Applied(msgspec.Struct, frozen=True):
    """The locations a snapshot replaced, and what it changed at those that held stock."""

    named: list[str]
    changes: SnapshotChanges


async def apply_staged(conn: Connection, snapshot_id: int) -> list[str]:
    """Replace the stock of every location the staged file names; return those locations.

    Only what differs is written: rows the file no longer lists are deleted, changed
    and new rows written (under ``snapshot_id``), equal rows left as they are. Also
    records each location's ``as_of`` (the latest among its rows; a row stores its
    own only when it differs) and raises the store's snapshot freshness. Staged rows
    must have passed ``staged_problems``.
    """
    return (await apply_staged_changes(conn, snapshot_id)).named


async def apply_staged_changes(conn: Connection, snapshot_id: int) -> Applied:
    """``apply_staged``, also returning what changed at the locations that held stock
    (for the live engine: ``recompute_stores(changes=...)``)."""
    await conn.execute(Q.stage_locations)
    changes = SnapshotChanges(snapshot_id, {})
    if await conn.fetchval(Q.stock_at_staged_locations):
        removed: dict[str, list[str]] = {}
        for r in await conn.fetch(Q.remove_unlisted_rows):
            removed.setdefault(r["location_id"], []).append(r["sku"])
        await conn.execute(Q.merge_staged_rows, snapshot_id)
        for r in await conn.fetch(Q.staged_changes, snapshot_id):
            here: str = r["location_id"]
            changes.locations[here] = _location_changes(r, removed.get(here, []))
    else:  # a first load of these locations: every row is new
        await conn.execute(Q.insert_staged_rows, snapshot_id)
    rows = await conn.fetch(Q.apply_locations, snapshot_id)
    return Applied([r["store_id"] for r in rows], changes)

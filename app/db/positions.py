"""Recompute book positions and their badges for a set of (store, sku) pairs.

The book is computed set-wise in SQL (``sql/positions.sql``), the badge in Python by
the domain's ``badge_for``, and the batch is written back in one upsert. When a live
engine is bound (``app.db.engine_state``), it catches up on the stored inputs first
and every badge carries its assessment (confidence, held-back units, reasons) and
the evidence record ``reassess`` answers other quantities and pickup times from. Callers
(the POS and warehouse pullers, the feedback endpoint) run this in the transaction
that stored the new inputs, so positions never lag the data they were computed from.
A count is a POS ``count`` event or a ``shelf_count`` feedback, whichever is latest.

``pairs_to_refresh`` finds the stored badges that time alone can change (data
ageing past the policy's limit, future-dated inputs coming due, and with the engine
the pairs of stores whose tills went quiet); the badge refresh
job (``reconcilers/jobs.py``) recomputes them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Literal

import asyncpg
import msgspec
import structlog

from app.db import Connection
from app.db.availability import notify_badges_changed
from app.db.engine_state import LiveEngine, bound_engine
from app.db.queries import Queries
from app.domain.badge import badge_for
from app.domain.live import Assessor
from app.domain.model import BookPosition
from app.domain.policy import Policy

Q = Queries("positions.sql")
log = structlog.get_logger(__name__)

# Pairs per round trip: bounds memory and statement size for very large recomputes.
BATCH = 20_000
# How far back the refresh looks for future-dated inputs that came due (bounds the scan).
DUE_LOOKBACK = timedelta(days=1)
PROMISE_STATES = ("in_stock", "low_stock")

RefreshReason = Literal["aging", "fresh_again", "due"]


class RefreshCandidates(msgspec.Struct, frozen=True, kw_only=True):
    """Pairs whose stored badge time alone can change, and what they show now."""

    pairs: list[tuple[str, str]]
    by_reason: dict[str, int]
    promises: int


async def recompute_pairs(
    conn: Connection,
    pairs: Iterable[tuple[str, str]],
    *,
    policy: Policy,
    now: datetime,
    engine: LiveEngine | None = None,
    only_changed: bool = False,
) -> int:
    """Recompute and store the position and badge of each pair; return how many were written.

    ``engine`` (default: the one bound to the task, if any) assesses every badge.
    ``only_changed`` (a snapshot's recompute): a pair whose book, base source and
    units in transit come out as stored, with a badge that is not ``unknown`` and was
    assessed as this one would be, is left as stored: its badge was computed from the
    very same inputs, like any pair no feed touched (the store's freshness, which
    the read path gates on, moved with the snapshot).
    """
    unique = sorted(set(pairs))
    if not unique:
        return 0
    live = engine if engine is not None else bound_engine()
    written = 0
    timing = {"inputs_ms": 0.0, "assess_ms": 0.0, "write_ms": 0.0, "skipped": 0}
    started = time.perf_counter()
    async with conn.transaction():
        await conn.fetchval(Q.lock_stores, sorted({store for store, _ in unique}))
        async with contextlib.AsyncExitStack() as stack:
            assessor = None
            if live is not None:
                assessor = await stack.enter_async_context(live.assessor(conn, now))
            caught_up = time.perf_counter()
            for start in range(0, len(unique), BATCH):
                written += await _recompute_batch(
                    conn, unique[start : start + BATCH], policy=policy, now=now,
                    assessor=assessor, only_changed=only_changed, timing=timing,
                )  # fmt: skip
        # API processes drop their cached badges for these pairs when this commits.
        await notify_badges_changed(conn, pairs=unique)
    if len(unique) >= 1000:
        log.info("positions.recomputed", pairs=len(unique), written=written, engine=live is not None,
                 catch_up_ms=round((caught_up - started) * 1000, 1),
                 **{k: round(v, 1) for k, v in timing.items()})  # fmt: skip
    return written


async def recompute_stores(
    conn: Connection, store_ids: Iterable[str], *, policy: Policy, now: datetime
) -> int:
    """Recompute the pairs the stores have warehouse rows, POS events or positions for
    (those a snapshot left as they were are skipped, see ``only_changed``)."""
    stores = sorted(set(store_ids))
    if not stores:
        return 0
    rows = await conn.fetch(Q.pairs_of_stores, stores)
    return await recompute_pairs(
        conn, [(r["store_id"], r["sku"]) for r in rows], policy=policy, now=now, only_changed=True
    )


async def _recompute_batch(
    conn: Connection,
    pairs: list[tuple[str, str]],
    *,
    policy: Policy,
    now: datetime,
    assessor: Assessor | None = None,
    only_changed: bool = False,
    timing: dict[str, float] | None = None,
) -> int:
    t0 = time.perf_counter()
    rows = await conn.fetch(Q.book_inputs, [p[0] for p in pairs], [p[1] for p in pairs], now)
    t1 = time.perf_counter()
    columns: tuple[list[object], ...] = tuple([] for _ in range(14))
    assessed = assessor is not None
    skipped = 0
    for row in rows:
        if (
            only_changed
            and row["stored_book"] == row["book"]
            and row["stored_source"] == row["base_source"]
            and row["stored_in_transit"] == row["in_transit"]
            and row["stored_state"] not in (None, "unknown")
            and row["stored_assessed"] == assessed
        ):
            skipped += 1
            continue
        position = _position(row)
        evidence: bytes | None = None
        assessment = None
        if assessor is not None and position is not None:
            evidence, assessment = assessor.assess(position)
        badge = badge_for(
            position,
            policy=policy,
            category=row["category"],
            store_newest_at=row["store_newest_at"],
            now=now,
            assessment=assessment,
        )
        values = (
            row["store_id"], row["sku"], row["book"], row["base_source"], row["base_at"],
            row["snapshot_as_of"], row["last_event_at"], row["in_transit"], badge.state,
            badge.safety_buffer, badge.confidence, ",".join(r.value for r in badge.reasons),
            badge.as_of, evidence,
        )  # fmt: skip
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    t2 = time.perf_counter()
    if columns[0]:
        await conn.execute(Q.upsert_positions, *columns, now)
    if timing is not None:
        timing["inputs_ms"] += (t1 - t0) * 1000
        timing["assess_ms"] += (t2 - t1) * 1000
        timing["write_ms"] += (time.perf_counter() - t2) * 1000
        timing["skipped"] += skipped
    return len(rows) - skipped


def _position(row: asyncpg.Record) -> BookPosition | None:
    """The domain's view of one computed row; ``None`` when nothing gives a base."""
    if row["book"] is None:
        return None
    return BookPosition(
        store_id=row["store_id"],
        sku=row["sku"],
        book=row["book"],
        base_source=row["base_source"],
        base_at=row["base_at"],
        snapshot_as_of=row["snapshot_as_of"],
        last_event_at=row["last_event_at"],
        in_transit=row["in_transit"],
    )


async def pairs_to_refresh(
    conn: Connection,
    *,
    now: datetime,
    max_data_age: timedelta,
    lookahead: timedelta,
    due_lookback: timedelta = DUE_LOOKBACK,
) -> RefreshCandidates:
    """The pairs to recompute at ``now`` so stored badges follow the clock (see the SQL).

    With a live engine bound, also every pair of a store whose tills went quiet
    (``quiet``): its unreported sales grow with time, so its confidence falls.
    """
    rows = await conn.fetch(Q.pairs_to_refresh, now, max_data_age, lookahead, due_lookback)
    by_reason: dict[str, int] = {"aging": 0, "fresh_again": 0, "due": 0, "quiet": 0}
    picked: dict[tuple[str, str], str | None] = {}
    for row in rows:
        by_reason[row["why"]] += 1
        picked[(row["store_id"], row["sku"])] = row["badge_state"]
    live = bound_engine()
    quiet = [] if live is None else live.quiet_stores(now)
    if quiet:
        for row in await conn.fetch(Q.pairs_of_quiet_stores, quiet):
            key = (row["store_id"], row["sku"])
            if key not in picked:
                by_reason["quiet"] += 1
                picked[key] = row["badge_state"]
    return RefreshCandidates(
        pairs=list(picked),
        by_reason=by_reason,
        promises=sum(1 for state in picked.values() if state in PROMISE_STATES),
    )


async def count_promises(conn: Connection, pairs: list[tuple[str, str]]) -> int:
    """How many of ``pairs`` show a promise in their stored badge."""
    if not pairs:
        return 0
    count: int = await conn.fetchval(Q.promises_among, [p[0] for p in pairs], [p[1] for p in pairs])
    return count

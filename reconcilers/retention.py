"""The hourly retention job: old POS events and quarantined snapshots deleted.

``app/db/retention.py`` decides what goes; this runs it on the scheduler, one process
at a time (an advisory lock beside the refresh's and the export's), with one log line
per run. A failure is logged, never raised into the scheduler: the next hour retries,
and a run stopped half-way has committed whole batches only.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.clock import Clock
from app.db import retention
from app.settings import Settings

log = structlog.get_logger(__name__)

RETENTION_LOCK = (0x0BAD6E, 6)  # beside the refresh's (…, 1) and the export's (…, 5)
JOB_ID = "!retention"
EVERY = timedelta(hours=1)
FIRST_AFTER = timedelta(minutes=5)  # not in the start-up's rush of first pulls


async def run_retention(
    pool: asyncpg.Pool, settings: Settings, clock: Clock, *, batch: int = retention.BATCH
) -> retention.Pruned | None:
    """One run under the lock; what it deleted (None: skipped, off, or failed)."""
    keep_events, keep_quarantined = settings.event_retention, settings.quarantine_retention
    if not keep_events and not keep_quarantined:
        return None
    started = time.monotonic()
    pruned = retention.Pruned()
    outcome, detail = "pruned", ""
    try:
        async with pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *RETENTION_LOCK):
                outcome, detail = "skipped", "another process is pruning"
            else:
                try:
                    now = clock()
                    if keep_quarantined:
                        pruned.quarantined_deleted = await retention.prune_quarantined(
                            conn, now=now, keep=keep_quarantined
                        )
                    if keep_events:
                        await retention.prune_events(
                            conn, now=now, keep=keep_events, batch=batch, into=pruned
                        )
                finally:
                    with contextlib.suppress(Exception):
                        await conn.execute("SELECT pg_advisory_unlock($1, $2)", *RETENTION_LOCK)
    except asyncio.CancelledError:
        log.info("retention.pruned", outcome="cancelled", **_fields(pruned))
        raise
    except Exception as exc:  # the database: logged, the next hour retries
        outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
    log_at = log.warning if outcome == "failed" else log.info
    log_at(
        "retention.pruned",
        outcome=outcome,
        detail=detail,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
        **_fields(pruned),
    )
    return pruned if outcome == "pruned" else None


def _fields(pruned: retention.Pruned) -> dict[str, int]:
    return {f: getattr(pruned, f) for f in pruned.__struct_fields__}


def schedule_retention(
    scheduler: AsyncIOScheduler, pool: asyncpg.Pool, settings: Settings, clock: Clock
) -> None:
    """Add the hourly job unless both retentions are 0 (keep everything)."""
    if not settings.event_retention and not settings.quarantine_retention:
        return
    scheduler.add_job(
        run_retention,
        "interval",
        args=[pool, settings, clock],
        id=JOB_ID,
        name="retention",
        seconds=EVERY.total_seconds(),
        next_run_time=datetime.now(UTC) + FIRST_AFTER,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
    )

"""The hourly retention job: old POS events, feedback and quarantined snapshots deleted.

``app/db/retention.py`` decides what goes; this runs it on the scheduler, one process
at a time (an advisory lock beside the refresh's and the export's), with one log line
per run. A failure is logged, never raised into the scheduler: the next hour retries,
and a run stopped half-way has committed whole batches only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import Counter

from app.clock import Clock
from app.db import Connection, retention
from app.settings import Settings
from reconcilers.jobs import METRICS
from reconcilers.locked_run import run_locked

# Per-process counters beside the feeds' (GET /metrics), so an alert sees a job that fails.
RUNS = Counter(
    "availability_retention_runs",
    "Retention runs by outcome (pruned, skipped, failed) in this process.",
    ["outcome"],
    registry=METRICS,
)
DELETED = Counter(
    "availability_retention_deleted_rows",
    "Rows the retention job deleted in this process, by table.",
    ["table"],
    registry=METRICS,
)
RETENTION_LOCK = (0x0BAD6E, 6)  # beside the refresh's (…, 1) and the export's (…, 5)
JOB_ID = "!retention"
EVERY = timedelta(hours=1)
FIRST_AFTER = timedelta(minutes=5)  # not in the start-up's rush of first pulls


def prunes(settings: Settings) -> bool:
    """False when both retentions are 0: everything is kept, no job runs."""
    return bool(settings.event_retention or settings.quarantine_retention)


async def run_retention(
    pool: asyncpg.Pool, settings: Settings, clock: Clock, *, batch: int = retention.BATCH
) -> retention.Pruned | None:
    """One run under the lock; what it deleted (None: skipped, off, or failed)."""
    if not prunes(settings):
        return None
    keep_events, keep_quarantined = settings.event_retention, settings.quarantine_retention
    pruned = retention.Pruned()

    async def prune(conn: Connection) -> dict[str, Any]:
        now = clock()
        if keep_quarantined:
            pruned.quarantined_deleted = await retention.prune_quarantined(
                conn, now=now, keep=keep_quarantined
            )
        if keep_events:
            await retention.prune_events(conn, now=now, keep=keep_events, batch=batch, into=pruned)
            await retention.prune_feedback(
                conn, now=now, keep=keep_events, batch=batch, into=pruned
            )
        return msgspec.structs.asdict(pruned)

    outcome, _ = await run_locked(pool, RETENTION_LOCK, "retention.pruned", prune,
                                  done="pruned", busy="another process is pruning")  # fmt: skip
    RUNS.labels(outcome).inc()
    # (a failed run committed its whole batches: those count too)
    for table, n in (("pos_event", pruned.events_deleted), ("feedback", pruned.feedback_deleted),
                     ("warehouse_snapshot", pruned.quarantined_deleted)):  # fmt: skip
        DELETED.labels(table).inc(n)
    return pruned if outcome == "pruned" else None


def schedule_retention(
    scheduler: AsyncIOScheduler, pool: asyncpg.Pool, settings: Settings, clock: Clock
) -> None:
    """Add the hourly job unless both retentions are 0 (keep everything)."""
    if not prunes(settings):
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

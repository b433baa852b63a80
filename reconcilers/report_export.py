"""The nightly reconciliation export: every store's report written into a folder.

When ``settings.report_export_dir`` is set, a daily job (at ``report_export_time``,
UTC) writes ``<dir>/<YYYY-MM-DD>/reconciliation-<store>-<YYYY-MM-DD>.csv`` for each
store with book positions, and ``summary-<YYYY-MM-DD>.csv`` (items and priority per
store and suggested action). Each file is written to a temporary name and renamed, so
a reader never sees half a report. One process at a time (an advisory lock); a failure
is logged, never raised into the scheduler.
"""

from __future__ import annotations

import csv
import io
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.clock import Clock
from app.db import Connection
from app.db import reports as reports_db
from app.db.stream_file import stream_to
from app.domain.reconciliation import ACTIONS, cell, iso
from app.settings import Settings
from reconcilers.locked_run import run_locked

EXPORT_LOCK = (0x0BAD6E, 5)  # beside the badge refresh's (0x0BAD6E, 1)
JOB_ID = "!report-export"


async def write_report(conn: Connection, store_id: str, path: Path, *, now: datetime) -> int:
    """Write one store's report to ``path`` atomically; the bytes written."""
    size, _ = await stream_to(conn, reports_db.report_csv(conn, store_id, now=now), path)
    return size


async def export_reports(pool: asyncpg.Pool, folder: Path, *, now: datetime) -> dict[str, Any]:
    """Write every store's report and the summary for ``now``'s date; what was written."""
    day = iso(now)[:10]
    target = folder / day
    target.mkdir(parents=True, exist_ok=True)
    summary = io.StringIO()
    writer = csv.writer(summary, lineterminator="\r\n")
    writer.writerow(["store_id", "suggested_action", "items", "priority"])
    written = 0
    async with pool.acquire() as conn:
        stores = [r["store_id"] for r in await conn.fetch(reports_db.Q.stores_with_positions)]
        for store_id in stores:
            await write_report(conn, store_id, target / f"reconciliation-{store_id}-{day}.csv",
                               now=now)  # fmt: skip
            written += 1
            _, by_action, _ = await reports_db.review_summary(conn, store_id, now=now)
            for action in ACTIONS:
                items, priority = by_action[action]
                writer.writerow([cell(store_id), action, items, priority])
    path = target / f"summary-{day}.csv"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(reports_db.BOM + summary.getvalue(), encoding="utf-8")
    os.replace(tmp, path)
    return {"stores": written, "folder": str(target)}


async def run_report_export(pool: asyncpg.Pool, settings: Settings, clock: Clock) -> str:
    """The scheduled run: under the lock, never raising; returns the outcome."""
    folder = settings.report_export_dir
    if folder is None:
        return "off"

    async def export(_: Connection) -> dict[str, Any]:
        return await export_reports(pool, folder, now=clock())

    outcome, _ = await run_locked(pool, EXPORT_LOCK, "report.exported", export,
                                  done="exported", busy="another process is exporting")  # fmt: skip
    return outcome


def schedule_report_export(
    scheduler: AsyncIOScheduler, pool: asyncpg.Pool, settings: Settings, clock: Clock
) -> None:
    """Add the nightly job when a folder is configured (the scheduler's hook)."""
    if settings.report_export_dir is None:
        return
    hour, minute = (int(part) for part in settings.report_export_time.split(":"))
    scheduler.add_job(
        run_report_export,
        "cron",
        args=[pool, settings, clock],
        id=JOB_ID,
        name="nightly reconciliation reports",
        hour=hour,
        minute=minute,
        timezone=UTC,
        coalesce=True,
        max_instances=1,
        misfire_grace_time=3600,
    )

"""One process at a time: a scheduled job's run under a session advisory lock.

The nightly report export and the hourly retention run alike: take the lock or skip
(another process is at it), do the work, release the lock, and log one line with the
outcome, its detail and the duration. A failure is logged, never raised into the
scheduler (the next run retries); cancellation (shutdown) is logged and re-raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import structlog

from app.db import Connection

log = structlog.get_logger(__name__)


async def run_locked(
    pool: asyncpg.Pool,
    lock: tuple[int, int],
    event: str,
    work: Callable[[Connection], Awaitable[dict[str, Any]]],
    *,
    done: str,
    busy: str,
) -> tuple[str, dict[str, Any]]:
    """``work`` (given the lock's connection) under ``lock``; its outcome (``done``,
    ``skipped`` or ``failed``) and what it returned, logged as ``event``."""
    started = time.monotonic()
    outcome, detail, result = done, "", {}
    try:
        async with pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *lock):
                outcome, detail = "skipped", busy
            else:
                try:
                    result = await work(conn)
                finally:
                    with contextlib.suppress(Exception):
                        await conn.execute("SELECT pg_advisory_unlock($1, $2)", *lock)
    except asyncio.CancelledError:
        log.info(event, outcome="cancelled")
        raise
    except Exception as exc:  # the database or the disk: logged, the next run retries
        outcome, detail = "failed", f"{type(exc).__name__}: {exc}"
    log_at = log.warning if outcome == "failed" else log.info
    log_at(
        event,
        outcome=outcome,
        detail=detail,
        duration_ms=round((time.monotonic() - started) * 1000, 1),
        **result,
    )
    return outcome, result

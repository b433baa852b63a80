"""Start the reconcilers inside the running loop; stop them on shutdown.

One APScheduler interval job per feed (first run at once, coalesced, one instance
at a time), one shared HTTP client. Every run goes through ``run_feed``, whose
advisory lock keeps two processes from pulling the same feed at once.

One more job, every ``settings.refresh_interval``, refreshes the stored badges
that time alone can change (``run_refresh``; its advisory lock lets one process
run it at a time). It runs even with no feeds configured: feedback still arrives
and time still passes.

The process's confidence engine (``LiveEngine``) belongs to the ``Reconcilers``: it
is warm-started from the database at start-up, catches up at the start of every run,
and is bound to the run's task so every recompute of that run assesses with it (the
feedback endpoint binds it too). See ``app/db/engine_state.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import asyncpg
import httpx
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.clock import Clock
from app.db.engine_state import LiveEngine, binding
from app.db.feeds import upsert_feeds
from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.feeds_config import FeedConfig, load_feeds
from reconcilers.jobs import RefreshOutcome, run_feed, run_refresh
from reconcilers.outcome import PullOutcome
from reconcilers.retention import schedule_retention

log = structlog.get_logger(__name__)

# The refresh job's id, beside the feed names (which are identifiers, so never contain '!').
REFRESH_JOB_ID = "!refresh-badges"
# An idle pooled connection to a feed is reused for this long at most. Servers often
# close idle connections after 5 s (uvicorn, Node, Apache); httpx keeps them 5 s too,
# so a pull that came ~5 s after the last one could be sent on a connection the
# server was closing and fail with a ReadError (then retried). Pages of one pull
# follow each other at once and still share a connection.
FEED_KEEPALIVE_S = 2.0
T = TypeVar("T")


class UnknownFeed(LookupError):
    """No feed of that name is configured."""


@dataclass
class Reconcilers:
    """The running feed jobs: scheduled runs, on-demand runs, orderly shutdown."""

    pool: asyncpg.Pool
    settings: Settings
    policy: Policy
    clock: Clock
    feeds: dict[str, FeedConfig]
    client: httpx.AsyncClient
    live: LiveEngine | None = None
    scheduler: AsyncIOScheduler | None = None
    _runs: set[asyncio.Task[Any]] = field(default_factory=set)
    _closing: bool = False

    @property
    def feed_names(self) -> list[str]:
        return list(self.feeds)

    async def run_now(self, name: str) -> PullOutcome:
        """Pull one feed now (the admin "pull now"); skipped if it is already running."""
        feed = self.feeds.get(name)
        if feed is None:
            raise UnknownFeed(
                f"no feed named {name!r}; configured: {', '.join(self.feeds) or 'none'}"
            )
        if self._closing:
            raise RuntimeError("the reconcilers are shutting down")
        run = run_feed(
            self.pool,
            feed,
            self.client,
            settings=self.settings,
            policy=self.policy,
            clock=self.clock,
        )
        task = self._start(run, name=f"feed:{name}")
        return await task

    def _start(self, run: Coroutine[Any, Any, T], *, name: str) -> asyncio.Task[T]:
        """A run as a task with the engine bound (caught up first), tracked for shutdown."""
        live = self.live

        async def with_engine() -> T:
            if live is not None:
                try:
                    await live.catch_up(self.pool)
                except asyncio.CancelledError:
                    run.close()
                    raise
                except Exception:  # the run's recomputes catch up again in their transaction
                    log.warning("engine.catch_up_failed", run=name, exc_info=True)
            return await run

        with binding(live):  # the task copies this context
            task = asyncio.create_task(with_engine(), name=name)
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        return task

    async def refresh_now(self) -> RefreshOutcome:
        """Refresh the badges time alone can change, now (skipped if another process is)."""
        if self._closing:
            raise RuntimeError("the reconcilers are shutting down")
        run = run_refresh(self.pool, settings=self.settings, policy=self.policy, clock=self.clock)
        task = self._start(run, name="badges:refresh")
        return await task

    async def _scheduled_refresh(self) -> None:
        """The scheduler's refresh job; shutdown may cancel it without an error log."""
        if self._closing:
            return
        try:
            await self.refresh_now()
        except asyncio.CancelledError:
            if not self._closing:
                raise

    async def _scheduled(self, name: str) -> None:
        """The scheduler's job: a run that shutdown may cancel without an error log."""
        if self._closing:
            return
        try:
            await self.run_now(name)
        except asyncio.CancelledError:
            if not self._closing:
                raise

    async def shutdown(self) -> None:
        """Stop scheduling, cancel runs in flight and wait for them, close the client."""
        self._closing = True
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        runs = list(self._runs)
        for task in runs:
            task.cancel()
        if runs:
            await asyncio.gather(*runs, return_exceptions=True)
        await self.client.aclose()
        log.info("reconcilers.stopped", feeds=self.feed_names, cancelled=len(runs))


async def start_reconcilers(
    pool: asyncpg.Pool, settings: Settings, policy: Policy, clock: Clock
) -> Reconcilers:
    """Load the feeds file, record the feeds, and schedule them when the scheduler is on."""
    feeds = load_feeds(settings.feeds_file)
    async with pool.acquire() as conn:
        await upsert_feeds(conn, feeds)
    live = LiveEngine(policy)
    await live.warm_start(pool, clock())
    reconcilers = Reconcilers(
        pool=pool,
        settings=settings,
        policy=policy,
        clock=clock,
        feeds={f.name: f for f in feeds},
        live=live,
        client=httpx.AsyncClient(
            follow_redirects=False,
            headers={"User-Agent": "store-availability"},
            limits=httpx.Limits(
                max_connections=100, max_keepalive_connections=20, keepalive_expiry=FEED_KEEPALIVE_S
            ),  # httpx's defaults but the expiry
        ),
    )
    if settings.scheduler:
        scheduler = AsyncIOScheduler(event_loop=asyncio.get_running_loop(), timezone=UTC)
        scheduler.add_job(
            reconcilers._scheduled_refresh,
            "interval",
            id=REFRESH_JOB_ID,
            name="refresh badges",
            seconds=settings.refresh_interval.total_seconds(),
            next_run_time=datetime.now(UTC),
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
        )
        for feed in feeds:
            scheduler.add_job(
                reconcilers._scheduled,
                "interval",
                args=[feed.name],
                id=feed.name,
                name=f"pull {feed.name}",
                seconds=feed.interval.total_seconds(),
                next_run_time=datetime.now(UTC),
                coalesce=True,
                max_instances=1,
                misfire_grace_time=None,
            )
        from reconcilers.report_export import schedule_report_export  # nightly reports

        schedule_report_export(scheduler, pool, settings, clock)
        schedule_retention(scheduler, pool, settings, clock)
        scheduler.start()
        reconcilers.scheduler = scheduler
    log.info(
        "reconcilers.started",
        feeds=[f"{f.name} ({f.kind}, every {f.interval.total_seconds():g}s)" for f in feeds],
        scheduled=settings.scheduler,
        refresh_every_s=settings.refresh_interval.total_seconds(),
    )
    return reconcilers

"""Start the reconcilers inside the running loop; stop them on shutdown.

One APScheduler interval job per feed (first run at once, coalesced, one instance
at a time), one shared HTTP client. Every run goes through ``run_feed``, whose
advisory lock keeps two processes from pulling the same feed at once.

One more job, every ``settings.refresh_interval``, refreshes the stored badges
that time alone can change (``run_refresh``; its advisory lock lets one process
run it at a time). It runs even with no feeds configured: feedback still arrives
and time still passes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import structlog
from apscheduler.schedulers.asyncio import AsyncIOScheduler

from app.clock import Clock
from app.db.feeds import upsert_feeds
from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.feeds_config import FeedConfig, load_feeds
from reconcilers.jobs import RefreshOutcome, run_feed, run_refresh
from reconcilers.outcome import PullOutcome

log = structlog.get_logger(__name__)

# The refresh job's id, beside the feed names (which are identifiers, so never contain '!').
REFRESH_JOB_ID = "!refresh-badges"


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
        task = asyncio.create_task(run, name=f"feed:{name}")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        return await task

    async def refresh_now(self) -> RefreshOutcome:
        """Refresh the badges time alone can change, now (skipped if another process is)."""
        if self._closing:
            raise RuntimeError("the reconcilers are shutting down")
        run = run_refresh(self.pool, settings=self.settings, policy=self.policy, clock=self.clock)
        task = asyncio.create_task(run, name="badges:refresh")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
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
    reconcilers = Reconcilers(
        pool=pool,
        settings=settings,
        policy=policy,
        clock=clock,
        feeds={f.name: f for f in feeds},
        client=httpx.AsyncClient(
            follow_redirects=False, headers={"User-Agent": "store-availability"}
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
        scheduler.start()
        reconcilers.scheduler = scheduler
    log.info(
        "reconcilers.started",
        feeds=[f"{f.name} ({f.kind}, every {f.interval.total_seconds():g}s)" for f in feeds],
        scheduled=settings.scheduler,
        refresh_every_s=settings.refresh_interval.total_seconds(),
    )
    return reconcilers

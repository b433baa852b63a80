"""Run one feed pull: lock, dispatch by kind, record the feed's health, log one line.

The lock is a PostgreSQL session advisory lock per feed, held on a dedicated
connection for the whole run, so with several service processes on one database
each feed is pulled by one of them at a time; the others skip.

``run_refresh`` is the badge refresh: it recomputes the stored badges that time
alone can change (data ageing past the policy's limit, a quiet store's feed
resuming, future-dated inputs coming due), under one advisory lock for all
processes, and logs one ``badges.refreshed`` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time

import asyncpg
import httpx
import msgspec
import structlog
from prometheus_client import CollectorRegistry, Counter

from app.clock import Clock
from app.db import feeds as feed_state
from app.db import positions
from app.domain.policy import Policy
from app.settings import Settings, SettingsError
from reconcilers.feeds_config import FeedConfig
from reconcilers.outcome import FeedDataError, PullOutcome

log = structlog.get_logger(__name__)

FEED_LOCK_CLASS = 0x0FEED  # first key of the two-key advisory lock; the second is the feed's
REFRESH_LOCK = (0x0BAD6E, 1)  # the badge refresh's two-key advisory lock
# What a lost or restarting database raises: asyncpg's InternalClientError is what a
# pooled connection whose server went away can raise ("another operation is in progress").
DB_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


# Per-process counters for GET /metrics (they start at 0 with the process, as
# Prometheus counters do); the feed table holds the durable health columns.
METRICS = CollectorRegistry(auto_describe=True)
PULLS = Counter(
    "availability_feed_pulls",
    "Feed runs by outcome (applied, unchanged, quarantined, failed, skipped, cancelled).",
    ["feed", "kind", "outcome"],
    registry=METRICS,
)
FAILURES = Counter(
    "availability_feed_failures",
    "Feed runs that failed or were quarantined.",
    ["feed", "kind"],
    registry=METRICS,
)
ROWS = Counter(
    "availability_feed_rows",
    "POS events (new and redelivered) or warehouse rows read by runs.",
    ["feed", "kind"],
    registry=METRICS,
)
EVENTS_NEW = Counter(
    "availability_feed_events_new",
    "POS events stored for the first time.",
    ["feed", "kind"],
    registry=METRICS,
)


def _count(feed: FeedConfig, outcome: PullOutcome, *, error: str | None) -> None:
    PULLS.labels(feed.name, feed.kind, outcome.outcome).inc()
    if error or outcome.outcome in ("failed", "quarantined"):
        FAILURES.labels(feed.name, feed.kind).inc()
    ROWS.labels(feed.name, feed.kind).inc(outcome.rows)
    EVENTS_NEW.labels(feed.name, feed.kind).inc(outcome.events_new)


def feed_lock_key(name: str) -> int:
    """Stable signed 32-bit key for a feed name (the same in every process)."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big", signed=True)


async def run_feed(
    pool: asyncpg.Pool,
    feed: FeedConfig,
    client: httpx.AsyncClient,
    *,
    settings: Settings,
    policy: Policy,
    clock: Clock,
) -> PullOutcome:
    """Pull ``feed`` once unless another session holds its lock. Never raises for feed
    trouble (the outcome and the feed row say what happened); re-raises cancellation."""
    started = time.perf_counter()
    key = feed_lock_key(feed.name)
    try:
        lock_conn = await pool.acquire()
    except DB_ERRORS as exc:
        return _database_failed(feed, started, exc, "database unavailable")
    try:
        if not await lock_conn.fetchval(
            "SELECT pg_try_advisory_lock($1, $2)", FEED_LOCK_CLASS, key
        ):
            outcome = PullOutcome(outcome="skipped", detail="another process is pulling this feed")
            _log(feed, outcome, started)
            return outcome
        try:
            return await _locked_run(
                pool, feed, client, settings=settings, policy=policy, clock=clock, started=started
            )
        finally:
            with contextlib.suppress(*DB_ERRORS):
                await lock_conn.execute("SELECT pg_advisory_unlock($1, $2)", FEED_LOCK_CLASS, key)
    except DB_ERRORS as exc:
        return _database_failed(feed, started, exc, "database unavailable (feed lock)")
    finally:
        # Releasing resets the connection, which also drops session locks: even a
        # cancelled unlock cannot leave the feed locked.
        with contextlib.suppress(*DB_ERRORS):
            await pool.release(lock_conn)


def _database_failed(feed: FeedConfig, started: float, exc: Exception, what: str) -> PullOutcome:
    """The failed outcome of a run the database stopped around its feed lock, logged
    and returned: a run never raises for database trouble."""
    error = f"feed {feed.name}: {what}: {type(exc).__name__}: {exc}"
    outcome = PullOutcome(outcome="failed", detail=error)
    _log(feed, outcome, started, error=error)
    return outcome


async def _locked_run(
    pool: asyncpg.Pool,
    feed: FeedConfig,
    client: httpx.AsyncClient,
    *,
    settings: Settings,
    policy: Policy,
    clock: Clock,
    started: float,
) -> PullOutcome:
    progress = PullOutcome(outcome="applied")
    error: str | None = None
    try:
        async with pool.acquire() as conn:
            await feed_state.record_attempt(conn, feed.name, at=clock())
        outcome = await _dispatch(
            pool, feed, client, settings=settings, policy=policy, clock=clock, progress=progress
        )
    except asyncio.CancelledError:
        progress.outcome, progress.detail = "cancelled", "cancelled before the run ended"
        _log(feed, progress, started)
        raise
    except FeedDataError as exc:
        error = str(exc)
    except httpx.HTTPStatusError as exc:
        error = (
            f"feed {feed.name}: HTTP {exc.response.status_code} from {_redacted(exc.request.url)}"
            f" (after up to {settings.retry_attempts} attempts)"
        )
    except httpx.HTTPError as exc:
        error = (
            f"feed {feed.name}: {type(exc).__name__} talking to {_redacted(exc.request.url)}: "
            f"{exc or 'no detail'} (after up to {settings.retry_attempts} attempts)"
        )
    except SettingsError as exc:
        error = str(exc)
    except (
        Exception
    ) as exc:  # a bug or the database: recorded and logged, never raised to the scheduler
        error = f"feed {feed.name}: unexpected {type(exc).__name__}: {exc}"
        log.exception("feed.crashed", feed=feed.name, kind=feed.kind)
    if error is not None:
        outcome = progress
        outcome.outcome, outcome.detail = "failed", error
    elif outcome.outcome in ("failed", "quarantined"):
        error = outcome.detail or f"feed {feed.name}: {outcome.outcome}"
    duration_ms = (time.perf_counter() - started) * 1000
    try:
        async with pool.acquire() as conn:
            if error is None:
                await feed_state.record_success(
                    conn, feed.name, at=clock(), rows=outcome.rows, duration_ms=duration_ms
                )
            else:
                await feed_state.record_failure(
                    conn, feed.name, at=clock(), error=error, duration_ms=duration_ms
                )
    except DB_ERRORS as exc:
        log.error("feed.state_not_recorded", feed=feed.name, error=f"{type(exc).__name__}: {exc}")
    _log(feed, outcome, started, error=error)
    return outcome


async def _dispatch(
    pool: asyncpg.Pool,
    feed: FeedConfig,
    client: httpx.AsyncClient,
    *,
    settings: Settings,
    policy: Policy,
    clock: Clock,
    progress: PullOutcome,
) -> PullOutcome:
    """Pull ``feed`` with the puller its ``format`` names (a vendor adapter,
    docs/adapters.md), or for a contract feed the one of its ``kind``; one dispatch for
    both, so every feed is routed in one place."""
    if feed.format == "square":
        from reconcilers.adapters.square_pull import pull_square

        return await pull_square(
            pool, feed, client, settings=settings, policy=policy, clock=clock, progress=progress
        )
    if feed.format == "shopify":
        from reconcilers.adapters.shopify_pull import pull_shopify

        return await pull_shopify(pool, feed, client, settings=settings, policy=policy, clock=clock)
    if feed.format == "csv_mapping":
        from reconcilers.adapters.csv_mapping import pull_csv_mapping

        return await pull_csv_mapping(
            pool, feed, client, settings=settings, policy=policy, clock=clock
        )
    if feed.format != "contract":
        raise ValueError(f"feed {feed.name}: no adapter for format {feed.format!r}")
    if feed.kind == "pos":
        from reconcilers.pos import pull_pos

        return await pull_pos(
            pool, feed, client, settings=settings, policy=policy, clock=clock, progress=progress
        )
    from reconcilers.warehouse import pull_warehouse  # lands separately; imported when used

    return await pull_warehouse(pool, feed, client, settings=settings, policy=policy, clock=clock)


def _redacted(url: httpx.URL) -> str:
    """The URL without credentials or query (cursors and tokens stay out of logs)."""
    return str(url.copy_with(query=None, userinfo=b""))


def _log(
    feed: FeedConfig, outcome: PullOutcome, started: float, *, error: str | None = None
) -> None:
    _count(feed, outcome, error=error)
    level = "warning" if error or outcome.outcome in ("failed", "quarantined") else "info"
    getattr(log, level)(
        "feed.pulled",
        feed=feed.name,
        kind=feed.kind,
        outcome=outcome.outcome,
        pages=outcome.pages,
        events_new=outcome.events_new,
        events_duplicate=outcome.events_duplicate,
        rows=outcome.rows,
        positions=outcome.positions,
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
        detail=outcome.detail,
        error=error,
    )


# -- badge refresh --------------------------------------------------------------------


class RefreshOutcome(msgspec.Struct, kw_only=True):
    """What one badge refresh did (the ``badges.refreshed`` line)."""

    outcome: str  # "refreshed", "skipped", "failed", "cancelled"
    candidates: int = 0
    aging: int = 0
    fresh_again: int = 0
    due: int = 0
    recomputed: int = 0
    promises_before: int = 0
    promises_after: int = 0
    detail: str | None = None


async def run_refresh(
    pool: asyncpg.Pool, *, settings: Settings, policy: Policy, clock: Clock
) -> RefreshOutcome:
    """Recompute the badges time alone can change, unless another process is doing it.

    Never raises for database trouble (the outcome says what happened); re-raises
    cancellation. Pairs are recomputed in batches, each in its own transaction, so
    a large refresh never holds many stores' locks against the pullers for long.
    """
    started = time.perf_counter()
    outcome = RefreshOutcome(outcome="refreshed")
    try:
        lock_conn = await pool.acquire()
    except DB_ERRORS as exc:
        outcome.outcome, outcome.detail = (
            "failed",
            f"database unavailable: {type(exc).__name__}: {exc}",
        )
        _log_refresh(outcome, started)
        return outcome
    try:
        if not await lock_conn.fetchval("SELECT pg_try_advisory_lock($1, $2)", *REFRESH_LOCK):
            outcome.outcome, outcome.detail = "skipped", "another process is refreshing badges"
        else:
            try:
                await _refresh(pool, settings=settings, policy=policy, clock=clock, outcome=outcome)
            finally:
                with contextlib.suppress(*DB_ERRORS):
                    await lock_conn.execute("SELECT pg_advisory_unlock($1, $2)", *REFRESH_LOCK)
    except asyncio.CancelledError:
        outcome.outcome, outcome.detail = "cancelled", "cancelled before the run ended"
        _log_refresh(outcome, started)
        raise
    except Exception as exc:  # a bug or the database: logged, never raised to the scheduler
        outcome.outcome, outcome.detail = "failed", f"unexpected {type(exc).__name__}: {exc}"
        log.exception("badges.refresh_crashed")
    finally:
        await pool.release(lock_conn)  # a reset connection drops the session lock too
    _log_refresh(outcome, started)
    return outcome


async def _refresh(
    pool: asyncpg.Pool,
    *,
    settings: Settings,
    policy: Policy,
    clock: Clock,
    outcome: RefreshOutcome,
) -> None:
    now = clock()
    async with pool.acquire() as conn:
        found = await positions.pairs_to_refresh(
            conn, now=now, max_data_age=policy.max_data_age, lookahead=settings.refresh_interval
        )
    outcome.candidates = len(found.pairs)
    outcome.aging = found.by_reason["aging"]
    outcome.fresh_again = found.by_reason["fresh_again"]
    outcome.due = found.by_reason["due"]
    outcome.promises_before = found.promises
    for start in range(0, len(found.pairs), positions.BATCH):
        batch = found.pairs[start : start + positions.BATCH]
        async with pool.acquire() as conn:
            outcome.recomputed += await positions.recompute_pairs(
                conn, batch, policy=policy, now=clock()
            )
            outcome.promises_after += await positions.count_promises(conn, batch)


def _log_refresh(outcome: RefreshOutcome, started: float) -> None:
    level = "warning" if outcome.outcome == "failed" else "info"
    getattr(log, level)(
        "badges.refreshed",
        **msgspec.structs.asdict(outcome),
        duration_ms=round((time.perf_counter() - started) * 1000, 1),
    )

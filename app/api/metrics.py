"""``GET /metrics`` in the Prometheus text format (0.0.4).

Three sources, one answer:

* per-scrape gauges read from the database (cheap aggregates, ``app/db/sql/metrics.sql``):
  per feed its last success time, lag, consecutive failures and last rows; stored
  badges by state; non-promises by reason; pick outcomes (kept and broken promises)
  and the false-promise rate over the last ``FALSE_PROMISE_WINDOW``;
* the reconcilers' per-process counters (``reconcilers.jobs.METRICS``): runs by
  outcome, failures, rows and new events per feed;
* the app's request latency histogram (``app.api.latency``).

No store id, sku or secret is ever a label value; feed names are the only identifiers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import asyncpg
from litestar import Request, Response, get
from litestar.di import NamedDependency
from prometheus_client import CollectorRegistry, Gauge, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from app.api.latency import RequestMetrics
from app.clock import Clock
from app.db import metrics as metrics_db

FALSE_PROMISE_WINDOW = timedelta(hours=24)


def _timestamp(at: datetime | None) -> float:
    return at.timestamp() if at is not None else 0.0


async def database_gauges(pool: asyncpg.Pool, *, now: datetime) -> CollectorRegistry:
    """A fresh registry holding this scrape's gauges, read in one connection."""
    async with pool.acquire() as conn:
        feeds = await metrics_db.feed_health(conn)
        counted = await metrics_db.badge_counts(conn)
        badges, suppressed = counted.by_state, counted.suppressed
        picks = await metrics_db.pick_outcomes(conn, since=now - FALSE_PROMISE_WINDOW)
    registry = CollectorRegistry(auto_describe=True)
    labels = ["feed", "kind"]
    last_success = Gauge(
        "availability_feed_last_success_timestamp_seconds",
        "Unix time of the feed's last successful run (0: never).",
        labels,
        registry=registry,
    )
    lag = Gauge(
        "availability_feed_lag_seconds",
        "Seconds since the feed's last successful run (since it was first configured, if never).",
        labels,
        registry=registry,
    )
    failing = Gauge(
        "availability_feed_consecutive_failures",
        "Failed runs since the feed's last success.",
        labels,
        registry=registry,
    )
    rows = Gauge(
        "availability_feed_last_rows",
        "POS events or warehouse rows the feed's last successful run read.",
        labels,
        registry=registry,
    )
    for f in feeds:
        since = f.last_success_at or f.created_at
        last_success.labels(f.name, f.kind).set(_timestamp(f.last_success_at))
        lag.labels(f.name, f.kind).set(max((now - since).total_seconds(), 0.0))
        failing.labels(f.name, f.kind).set(f.consecutive_failures)
        rows.labels(f.name, f.kind).set(f.last_rows or 0)
    by_state = Gauge(
        "availability_badges",
        "Stored badges (store, sku) by state.",
        ["state"],
        registry=registry,
    )
    for state in ("in_stock", "low_stock", "unavailable", "unknown"):
        by_state.labels(state).set(badges.get(state, 0))
    by_reason = Gauge(
        "availability_promises_suppressed",
        "Stored badges that promise nothing, by reason code (a badge counts once per reason).",
        ["reason"],
        registry=registry,
    )
    for reason, n in sorted(suppressed.items()):
        by_reason.labels(reason).set(n)
    outcomes = Gauge(
        "availability_promise_outcomes",
        "Pick outcomes reported as feedback: kept (pick_found) and broken (pick_short) "
        "promises; window=all or the recent window.",
        ["outcome", "window"],
        registry=registry,
    )
    window = f"{int(FALSE_PROMISE_WINDOW.total_seconds() // 3600)}h"
    kept_recent, broken_recent = (
        picks.recent.get("pick_found", 0),
        picks.recent.get("pick_short", 0),
    )
    for name, counts in (("all", picks.total), (window, picks.recent)):
        outcomes.labels("kept", name).set(counts.get("pick_found", 0))
        outcomes.labels("broken", name).set(counts.get("pick_short", 0))
    rate = Gauge(
        "availability_false_promise_rate",
        f"Broken / (kept + broken) pick outcomes observed in the last {window} "
        "(NaN when there were none).",
        registry=registry,
    )
    judged = kept_recent + broken_recent
    rate.set(broken_recent / judged if judged else float("nan"))
    return registry


@get(
    "/metrics",
    summary="Prometheus metrics",
    description=(
        "Feed health (last success, lag, failures, rows), badges by state, suppressed "
        "promises by reason, kept and broken promises with the live false-promise rate, "
        "request latency. Text format 0.0.4."
    ),
    tags=["operations"],
    media_type=CONTENT_TYPE_PLAIN_0_0_4,
    include_in_schema=True,
)
async def metrics(
    request: Request[Any, Any, Any],
    pool: NamedDependency[asyncpg.Pool],
    clock: NamedDependency[Clock],
) -> Response[bytes]:
    from reconcilers.jobs import METRICS as FEED_COUNTERS

    gauges = await database_gauges(pool, now=clock())
    parts = [generate_latest(gauges), generate_latest(FEED_COUNTERS)]
    request_metrics: RequestMetrics | None = getattr(request.app.state, "request_metrics", None)
    if request_metrics is not None:
        parts.append(generate_latest(request_metrics.registry))
    return Response(
        b"".join(parts),
        media_type=CONTENT_TYPE_PLAIN_0_0_4,
        headers={"Cache-Control": "no-store"},
    )

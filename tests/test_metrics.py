"""GET /metrics: Prometheus text with feed health, badges, suppressed promises,
kept/broken promises and request latency, from a real database and real pulls."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from litestar import Litestar
from prometheus_client.parser import text_string_to_metric_families

from app.settings import Settings
from tests.conftest import serve_in_loop, with_feeds_file
from tests.feedserver import FeedServer, Reply, json_reply

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample by (name, sorted labels); the parser fails on malformed text."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_reports_feeds_badges_promises_and_latency(
    make_app: Callable[..., Litestar],
    settings: Settings,
    pool: asyncpg.Pool,
    tmp_path: Path,
    feed_server: FeedServer,
) -> None:
    feeds = with_feeds_file(
        settings,
        tmp_path,
        {"name": "pos-main", "kind": "pos", "url": feed_server.url("/events")},
        {"name": "wh", "kind": "warehouse", "url": feed_server.url("/s.csv")},
    )
    ev = {"event_id": "E1", "type": "sale", "store_id": "S1", "sku": "SKU-A", "qty": 1,
          "occurred_at": "2026-11-23T11:00:00Z"}  # fmt: skip
    feed_server.always("/events", json_reply({"events": [ev, ev], "has_more": False}))
    feed_server.always("/s.csv", Reply(status=503))
    app = make_app(settings=feeds, clock=lambda: NOW)
    async with serve_in_loop(app) as client:
        async with pool.acquire() as conn:
            await conn.execute("UPDATE feed SET created_at = $1", NOW - timedelta(hours=1))
            await conn.execute(
                """INSERT INTO book_position (store_id, sku, badge_state, safety_buffer, reasons,
                                              computed_at)
                   VALUES ('S9', 'K1', 'in_stock', 2, '{x}', $1),
                          ('S9', 'K2', 'in_stock', 2, '{}', $1),
                          ('S9', 'K3', 'low_stock', 2, '{}', $1),
                          ('S9', 'K4', 'unavailable', 2, '{below_buffer}', $1),
                          ('S9', 'K5', 'unknown', 2, '{stale_data,no_base}', $1)""",
                NOW,
            )
            for kind, minutes, n in (("pick_found", 30, 3), ("pick_short", 60, 1),
                                     ("pick_short", 60 * 48, 1), ("shelf_count", 5, 1)):  # fmt: skip
                for i in range(n):
                    await conn.execute(
                        "INSERT INTO feedback VALUES ('S9', $1, $2, $3, 1, $3)",
                        f"K{i}", kind, NOW - timedelta(minutes=minutes),
                    )  # fmt: skip
        before = parse((await client.get("/metrics")).text)
        await app.state.reconcilers.run_now("pos-main")
        await app.state.reconcilers.run_now("wh")
        assert (await client.get("/v1/stores/S9")).status_code == 404
        r = await client.get("/metrics")
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert r.headers["cache-control"] == "no-store"
        after = parse(r.text)
        # the retention job's counters are exposed (no run yet in this app: no samples)
        assert "# TYPE availability_retention_runs_total counter" in r.text
        assert "# TYPE availability_retention_deleted_rows_total counter" in r.text

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # feeds: durable gauges from the feed table ...
    assert value(after, "availability_feed_last_success_timestamp_seconds", feed="pos-main",
                 kind="pos") == NOW.timestamp()  # fmt: skip
    assert value(after, "availability_feed_lag_seconds", feed="pos-main", kind="pos") == 0
    assert value(after, "availability_feed_lag_seconds", feed="wh", kind="warehouse") == 3600
    assert value(after, "availability_feed_last_success_timestamp_seconds", feed="wh",
                 kind="warehouse") == 0  # fmt: skip
    assert value(after, "availability_feed_consecutive_failures", feed="wh", kind="warehouse") == 1
    assert value(after, "availability_feed_last_rows", feed="pos-main", kind="pos") == 2
    # ... and this process's counters
    assert (
        delta("availability_feed_pulls_total", feed="pos-main", kind="pos", outcome="applied") == 1
    )
    assert (
        delta("availability_feed_pulls_total", feed="wh", kind="warehouse", outcome="failed") == 1
    )
    assert delta("availability_feed_failures_total", feed="wh", kind="warehouse") == 1
    assert delta("availability_feed_failures_total", feed="pos-main", kind="pos") == 0
    assert delta("availability_feed_rows_total", feed="pos-main", kind="pos") == 2
    assert delta("availability_feed_events_new_total", feed="pos-main", kind="pos") == 1
    # badges: S9's five plus S1/SKU-A from the pull (no base: unknown)
    assert {s: value(after, "availability_badges", state=s)
            for s in ("in_stock", "low_stock", "unavailable", "unknown")} == {
        "in_stock": 2, "low_stock": 1, "unavailable": 1, "unknown": 2}  # fmt: skip
    suppressed = {
        dict(labels)["reason"]: v
        for (name, labels), v in after.items()
        if name == "availability_promises_suppressed"
    }
    assert suppressed["below_buffer"] == 1 and suppressed["stale_data"] == 1
    assert "x" not in suppressed  # reasons of promises are not suppressions
    # kept and broken promises: all time, and the last 24 h with the live rate
    assert value(after, "availability_promise_outcomes", outcome="kept", window="all") == 3
    assert value(after, "availability_promise_outcomes", outcome="broken", window="all") == 2
    assert value(after, "availability_promise_outcomes", outcome="broken", window="24h") == 1
    assert value(after, "availability_false_promise_rate") == 0.25
    # latency: the requests above, by route template and status class
    assert delta("availability_http_request_duration_seconds_count", method="GET",
                 route="/v1/stores/{store_id}", status="4xx") == 1  # fmt: skip
    assert value(after, "availability_http_request_duration_seconds_count", method="GET",
                 route="/metrics", status="2xx") == 1  # fmt: skip
    assert not any("S9" in str(labels) for _, labels in after)  # no store ids as labels


async def test_false_promise_rate_is_nan_without_picks(
    make_app: Callable[..., Litestar],
) -> None:
    async with serve_in_loop(make_app()) as client:
        samples = parse((await client.get("/metrics")).text)
    rate = value(samples, "availability_false_promise_rate")
    assert rate != rate  # NaN: no picks, no rate
    assert value(samples, "availability_badges", state="unknown") == 0

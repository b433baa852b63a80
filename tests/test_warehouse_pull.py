"""The warehouse snapshot puller against real PostgreSQL and a real HTTP server.

Every quarantine test checks the reason text and that what was in force before
(stock, locations, freshness, positions, the feed's ETag) is exactly as it was.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import structlog

from app.db import snapshots
from app.db.feeds import upsert_feeds
from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.feeds_config import FeedConfig
from reconcilers.outcome import PullOutcome
from reconcilers.warehouse import (
    EXPECTED_HEADER,
    SnapshotBody,
    SnapshotRejected,
    header_problem,
    pull_warehouse,
)
from tests.conftest import stock_in_force
from tests.feedserver import FeedServer, Reply, text_reply

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
T6 = "2026-11-23T06:00:00Z"
T5 = "2026-11-23T05:00:00Z"
PATH = "/warehouse.csv"


def csv(*rows: str, header: str = EXPECTED_HEADER) -> str:
    return "".join(f"{line}\n" for line in (header, *rows))


def rows_for(location: str, count: int, as_of: str = T6) -> list[str]:
    return [f"{location},SKU-{i:04d},{i % 7 + 1},0,0,{as_of}" for i in range(count)]


def serve_rows(server: FeedServer, *rows: str, **reply: Any) -> None:
    """Serve a snapshot of ``rows`` at PATH, every time (``reply``: ``text_reply``'s options)."""
    server.always(PATH, text_reply(csv(*rows), **reply))


def make_feed(server: FeedServer, **kwargs: Any) -> FeedConfig:
    return FeedConfig(name="wh-main", kind="warehouse", url=server.url(PATH), **kwargs)


@pytest.fixture
async def feed(pool: asyncpg.Pool, feed_server: FeedServer) -> FeedConfig:
    config = make_feed(feed_server)
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [config])
    return config


async def pull_once(
    pool: asyncpg.Pool,
    feed: FeedConfig,
    client: httpx.AsyncClient,
    settings: Settings,
) -> PullOutcome:
    return await pull_warehouse(
        pool, feed, client, settings=settings, policy=Policy(), clock=lambda: NOW
    )


Pull = Callable[..., Awaitable[PullOutcome]]
InForce = dict[str, list[tuple[Any, ...]]]


@pytest.fixture
def pull(
    pool: asyncpg.Pool, feed: FeedConfig, client: httpx.AsyncClient, settings: Settings
) -> Pull:
    """``await pull()`` pulls the test's feed once at NOW (``pull(other)``: with other settings)."""

    async def once(with_settings: Settings = settings) -> PullOutcome:
        return await pull_once(pool, feed, client, with_settings)

    return once


async def stock(pool: asyncpg.Pool) -> list[tuple[Any, ...]]:
    """The stock in force, each row with the snapshot that last wrote its location."""
    return await stock_in_force(pool, then="wl.snapshot_id")


async def snapshot_rows(pool: asyncpg.Pool) -> list[tuple[Any, ...]]:
    rows = await pool.fetch(
        "SELECT snapshot_id, status, reason, row_count, locations, etag"
        " FROM warehouse_snapshot ORDER BY snapshot_id"
    )
    return [tuple(r) for r in rows]


async def in_force(pool: asyncpg.Pool) -> InForce:
    """Everything a snapshot may change, to compare before and after."""
    queries = {
        "stock": "SELECT * FROM warehouse_stock ORDER BY location_id, sku",
        "location": "SELECT * FROM warehouse_location ORDER BY location_id",
        "freshness": "SELECT * FROM store_freshness ORDER BY store_id",
        "positions": "SELECT * FROM book_position ORDER BY store_id, sku",
        "feed": "SELECT name, etag FROM feed ORDER BY name",
    }
    return {name: [tuple(r) for r in await pool.fetch(sql)] for name, sql in queries.items()}


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


# -- applying ------------------------------------------------------------------------


async def test_good_snapshot_is_applied(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    serve_rows(
        feed_server,
        f"S001,SKU-1,12,1,6,{T5}",
        f"S001,SKU-2,3,0,0,{T6}",
        "S002,SKU-1,7,2,0,2026-11-23T08:30:00+02:00",
        headers={"ETag": '"v1"'},
    )

    outcome = await pull()

    assert (outcome.outcome, outcome.rows) == ("applied", 3)
    [(snapshot_id, *snapshot)] = await snapshot_rows(pool)
    assert snapshot == ["applied", None, 3, 2, '"v1"']
    assert await stock(pool) == [
        ("S001", "SKU-1", 12, 1, 6, ts(T5), snapshot_id),
        ("S001", "SKU-2", 3, 0, 0, ts(T6), snapshot_id),
        ("S002", "SKU-1", 7, 2, 0, ts("2026-11-23T06:30:00Z"), snapshot_id),
    ]
    locations = await pool.fetch("SELECT * FROM warehouse_location ORDER BY 1")
    assert [tuple(r) for r in locations] == [
        ("S001", ts(T6), snapshot_id, 2),
        ("S002", ts("2026-11-23T06:30:00Z"), snapshot_id, 1),
    ]
    freshness = await pool.fetch("SELECT store_id, snapshot_as_of FROM store_freshness ORDER BY 1")
    assert [tuple(r) for r in freshness] == [
        ("S001", ts(T6)),
        ("S002", ts("2026-11-23T06:30:00Z")),
    ]
    assert await pool.fetchval("SELECT etag FROM feed WHERE name = 'wh-main'") == '"v1"'
    assert await pool.fetchval("SELECT count(*) FROM warehouse_snapshot_row") == 0


async def test_crlf_and_bom_are_tolerated(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    body = "\ufeff" + csv(f"S001,SKU-1,4,0,0,{T6}", f"S001,SKU-2,5,1,0,{T6}").replace("\n", "\r\n")
    feed_server.always(PATH, text_reply(body))

    outcome = await pull()

    assert outcome.outcome == "applied", outcome.detail
    assert [(r[1], r[2], r[3]) for r in await stock(pool)] == [("SKU-1", 4, 0), ("SKU-2", 5, 1)]


async def test_rfc3339_variants_are_accepted(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    serve_rows(
        feed_server,
        "S001,SKU-1,1,0,0,2026-11-23t06:00:00z",
        "S001,SKU-2,1,0,0,2026-11-23T06:00:00.250Z",
        "S001,SKU-3,1,0,0,2026-11-22T21:00:00-09:00",
    )

    outcome = await pull()

    assert outcome.outcome == "applied", outcome.detail
    assert [r[5] for r in await stock(pool)] == [
        ts(T6),
        ts("2026-11-23T06:00:00.250Z"),
        ts(T6),
    ]


async def test_partial_snapshot_replaces_named_locations_only(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    feed_server.sequence(
        PATH,
        text_reply(
            csv(
                f"S001,SKU-A,5,0,0,{T5}",
                f"S001,SKU-B,6,0,0,{T5}",
                f"S002,SKU-A,7,0,0,{T5}",
            )
        ),
        text_reply(csv(f"S001,SKU-A,4,1,0,{T6}", f"S001,SKU-C,9,0,2,{T6}")),
    )
    await pull()
    second = await pull()

    assert second.outcome == "applied", second.detail
    (first_id, *_), (second_id, *_) = await snapshot_rows(pool)
    assert await stock(pool) == [
        ("S001", "SKU-A", 4, 1, 0, ts(T6), second_id),
        ("S001", "SKU-C", 9, 0, 2, ts(T6), second_id),  # SKU-B is gone: not listed
        ("S002", "SKU-A", 7, 0, 0, ts(T5), first_id),  # S002 not named: kept
    ]
    locations = await pool.fetch(
        "SELECT location_id, as_of, snapshot_id FROM warehouse_location ORDER BY 1"
    )
    assert [tuple(r) for r in locations] == [
        ("S001", ts(T6), second_id),
        ("S002", ts(T5), first_id),
    ]


async def test_freshness_never_moves_back(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    async with pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO store_freshness (store_id, snapshot_as_of) VALUES ('S001', $1)",
            ts("2026-11-23T06:30:00Z"),
        )
    serve_rows(feed_server, f"S001,SKU-1,4,0,0,{T6}", f"S002,SKU-1,4,0,0,{T6}")

    await pull()

    freshness = await pool.fetch("SELECT store_id, snapshot_as_of FROM store_freshness ORDER BY 1")
    assert [tuple(r) for r in freshness] == [
        ("S001", ts("2026-11-23T06:30:00Z")),
        ("S002", ts(T6)),
    ]


async def test_etag_sent_and_304_changes_nothing(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    body = csv(f"S001,SKU-1,4,0,0,{T6}")
    feed_server.route(
        PATH,
        lambda req: (
            Reply(status=304, headers={"ETag": '"v1"'})
            if req.headers.get("if-none-match") == '"v1"'
            else text_reply(body, headers={"ETag": '"v1"'})
        ),
    )
    await pull()
    before = await in_force(pool)
    snapshots_before = await snapshot_rows(pool)

    outcome = await pull()

    assert outcome.outcome == "unchanged"
    first, second = feed_server.requests_to(PATH)
    assert "if-none-match" not in first.headers
    assert second.headers["if-none-match"] == '"v1"'
    assert await in_force(pool) == before
    assert await snapshot_rows(pool) == snapshots_before


async def test_gzip_body_is_applied(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    rows = rows_for("S001", 2000)
    feed_server.always(
        PATH,
        Reply(
            body=gzip.compress(csv(*rows).encode()),
            headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
            chunked=True,
            chunk_size=4096,
        ),
    )

    outcome = await pull()

    assert (outcome.outcome, outcome.rows) == ("applied", 2000)
    assert await pool.fetchval("SELECT sum(on_hand) FROM warehouse_stock") == sum(
        i % 7 + 1 for i in range(2000)
    )


async def test_503_then_200_is_retried(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    feed_server.sequence(PATH, Reply(status=503), text_reply(csv(f"S001,SKU-1,4,0,0,{T6}")))

    outcome = await pull()

    assert outcome.outcome == "applied"
    assert len(feed_server.requests_to(PATH)) == 2
    assert len(await stock(pool)) == 1


async def test_connection_cut_mid_body_is_retried_not_quarantined(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    full = text_reply(csv(*rows_for("S001", 50)))
    feed_server.sequence(PATH, Reply(body=full.body, headers=full.headers, cut_after=300), full)

    outcome = await pull()

    assert (outcome.outcome, outcome.rows) == ("applied", 50)
    assert len(feed_server.requests_to(PATH)) == 2
    assert [s[1] for s in await snapshot_rows(pool)] == ["applied"]


async def test_persistent_cut_raises_and_stores_nothing(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull, settings: Settings
) -> None:
    full = text_reply(csv(*rows_for("S001", 50)))
    feed_server.always(PATH, Reply(body=full.body, headers=full.headers, cut_after=300))

    with pytest.raises(httpx.RemoteProtocolError):
        await pull()

    assert len(feed_server.requests_to(PATH)) == settings.retry_attempts
    assert await snapshot_rows(pool) == []
    assert await stock(pool) == []


async def test_404_is_raised_without_retry(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    with pytest.raises(httpx.HTTPStatusError) as info:
        await pull()

    assert info.value.response.status_code == 404
    assert len(feed_server.requests_to(PATH)) == 1
    assert await snapshot_rows(pool) == []


# -- quarantine ----------------------------------------------------------------------


@pytest.fixture
async def previous(pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull) -> InForce:
    """A good snapshot in force (ETag "v1"); returns what is stored."""
    serve_rows(
        feed_server,
        f"S001,SKU-1,5,0,0,{T5}",
        f"S001,SKU-2,6,1,0,{T5}",
        f"S002,SKU-1,2,0,3,{T5}",
        headers={"ETag": '"v1"'},
    )
    outcome = await pull()
    assert outcome.outcome == "applied"
    return await in_force(pool)


async def quarantined(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull, body: str | Reply, before: InForce
) -> str:
    """Serve ``body``, pull, check it was quarantined with nothing changed; the reason."""
    reply = body if isinstance(body, Reply) else text_reply(body, headers={"ETag": '"v2"'})
    feed_server.always(PATH, reply)
    outcome = await pull()
    assert outcome.outcome == "quarantined"
    assert await in_force(pool) == before
    latest = (await snapshot_rows(pool))[-1]
    assert latest[1] == "quarantined"
    assert latest[2] == outcome.detail
    assert outcome.detail is not None
    return outcome.detail


Quarantine = Callable[[str | Reply], Awaitable[str]]


@pytest.fixture
def quarantine(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull, previous: InForce
) -> Quarantine:
    """``await quarantine(body)``: ``quarantined`` against the ``previous`` snapshot."""

    async def serve(body: str | Reply) -> str:
        return await quarantined(pool, feed_server, pull, body, previous)

    return serve


async def test_truncated_snapshot_is_quarantined(
    pool: asyncpg.Pool, quarantine: Quarantine
) -> None:
    body = csv(f"S001,SKU-1,5,0,0,{T6}", f"S001,SKU-2,6,1,0,{T6}", f"S002,SKU-1,2,0,3,{T6}")
    cut = body[: body.index("S002") + len("S002,SKU-1,2")]

    reason = await quarantine(cut)

    assert reason == (
        'line 4: missing data for column "reserved" (a row has the 6 fields '
        f"{EXPECTED_HEADER}; is the file truncated?)"
    )
    assert await pool.fetchval("SELECT count(*) FROM warehouse_snapshot_row") == 0


async def test_quarantine_is_logged_with_ids(pool: asyncpg.Pool, quarantine: Quarantine) -> None:
    with structlog.testing.capture_logs() as logs:
        reason = await quarantine(csv(f"S001,SKU-1,-1,0,0,{T6}"))

    [event] = [e for e in logs if e["event"] == "snapshot.quarantined"]
    snapshot_id = (await snapshot_rows(pool))[-1][0]
    assert (event["feed"], event["snapshot_id"], event["reason"]) == (
        "wh-main",
        snapshot_id,
        reason,
    )
    assert event["log_level"] == "warning"


async def test_truncated_inside_as_of_names_line_and_value(quarantine: Quarantine) -> None:
    body = csv(f"S001,SKU-1,5,0,0,{T6}", f"S001,SKU-2,6,1,0,{T6}", f"S002,SKU-1,2,0,3,{T6}")
    cut = body[: body.index("S002") + len("S002,SKU-1,2,0,3,2026-11-23T06:0")]

    reason = await quarantine(cut)

    assert reason == "line 4: as_of '2026-11-23T06:0' is not an RFC 3339 timestamp with offset"


async def test_wrong_header_is_quarantined(quarantine: Quarantine) -> None:
    body = csv(f"S001,SKU-1,5,0,0,{T6}", header="location,sku,on_hand,reserved,as_of")

    reason = await quarantine(body)

    assert reason == (
        "line 1: expected header 'location_id,sku,on_hand,reserved,in_transit,as_of', "
        "received 'location,sku,on_hand,reserved,as_of'"
    )


async def test_bad_values_are_quarantined_with_lines(quarantine: Quarantine) -> None:
    body = csv(
        f"S001,SKU-1,5,0,0,{T6}",
        f"S001,SKU-2,-3,0,0,{T6}",
        "S001,SKU-3,1,0,0,2026-11-23 06:00:00",
        f"S 001,SKU-4,1,0,0,{T6}",
        f"S001,SKU-5,1,x,99999999999,{T6}",
        f"S001,SKU-6,1,0,0,{T6}",
        f"S001,,1,0,0,{T6}",
        "S001,SKU-8,1,0,0,2026-02-30T06:00:00Z",
    )

    reason = await quarantine(body)

    assert reason == (
        "line 3: on_hand '-3' is not a non-negative integer; "
        "line 4: as_of '2026-11-23 06:00:00' is not an RFC 3339 timestamp with offset; "
        "line 5: location_id 'S 001' is not an identifier (1 to 64 of A-Z a-z 0-9 . _ - :); "
        "line 6: reserved 'x' is not a non-negative integer, "
        "in_transit '99999999999' is not a non-negative integer; "
        "line 8: sku is empty "
        "(6 problems, first 5 shown)"
    )


async def test_identifier_longer_than_64_is_quarantined(quarantine: Quarantine) -> None:
    body = csv(f"S001,{'K' * 64},5,0,0,{T6}", f"S001,{'K' * 65},5,0,0,{T6}")

    reason = await quarantine(body)

    assert reason == (
        f"line 3: sku '{'K' * 65}' is not an identifier (1 to 64 of A-Z a-z 0-9 . _ - :)"
    )


async def test_duplicate_pair_is_quarantined(quarantine: Quarantine) -> None:
    body = csv(f"S001,SKU-1,5,0,0,{T6}", f"S002,SKU-1,5,0,0,{T6}", f"S001,SKU-1,4,0,0,{T6}")

    reason = await quarantine(body)

    assert reason == "line 4: duplicate (location_id, sku) ('S001', 'SKU-1'), first on line 2"


async def test_empty_snapshot_is_quarantined(pool: asyncpg.Pool, quarantine: Quarantine) -> None:
    reason = await quarantine(csv())

    assert reason == "snapshot has no rows (header only)"
    assert (await snapshot_rows(pool))[-1][3:5] == (0, 0)


async def test_empty_body_is_quarantined(quarantine: Quarantine) -> None:
    reason = await quarantine("")

    assert reason == (
        "line 1: expected header 'location_id,sku,on_hand,reserved,in_transit,as_of', "
        "received an empty line"
    )


async def test_header_without_line_end_is_an_empty_snapshot(quarantine: Quarantine) -> None:
    reason = await quarantine(EXPECTED_HEADER)

    assert reason == "snapshot has no rows (header only)"


async def test_corrupt_gzip_is_quarantined(quarantine: Quarantine) -> None:
    corrupt = Reply(
        body=b"this is not gzip at all",
        headers={"Content-Type": "text/csv", "Content-Encoding": "gzip"},
    )

    reason = await quarantine(corrupt)

    assert reason.startswith("body: cannot be decoded (")


async def test_backslash_is_quarantined(quarantine: Quarantine) -> None:
    body = csv(f"S001,SKU-1,5,0,0,{T6}", "\\.", f"S001,SKU-2,5,0,0,{T6}")

    reason = await quarantine(body)

    assert reason == "line 3: a backslash, which no field may contain"


async def test_oversized_body_is_quarantined(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull, settings: Settings, previous: InForce
) -> None:
    small = msgspec_replace(settings, max_feed_bytes=1000)
    body = csv(*rows_for("S001", 100))
    feed_server.always(
        PATH,
        Reply(
            body=body.encode(),
            headers={"Content-Type": "text/csv"},
            chunked=True,
            chunk_size=256,
        ),
    )

    outcome = await pull(small)

    assert outcome.outcome == "quarantined"
    assert outcome.detail is not None
    assert outcome.detail.startswith("body is larger than max_feed_bytes (1000 bytes); stopped")
    assert await in_force(pool) == previous


def msgspec_replace(settings: Settings, **changes: Any) -> Settings:
    return msgspec.structs.replace(settings, **changes)


async def test_row_drop_over_limit_is_quarantined_and_rows_kept(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    serve_rows(feed_server, *rows_for("S001", 10, T5))
    await pull()
    before = await in_force(pool)

    reason = await quarantined(pool, feed_server, pull, csv(*rows_for("S001", 4)), before)

    assert reason == (
        "row count fell by more than the allowed 50% against the rows in force: "
        "location S001: 10 -> 4 rows (60%); it looks truncated"
    )
    snapshot_id = (await snapshot_rows(pool))[-1][0]
    kept = await pool.fetch(
        "SELECT sku, on_hand, as_of FROM warehouse_snapshot_row WHERE snapshot_id = $1 ORDER BY 1",
        snapshot_id,
    )
    assert [tuple(r) for r in kept] == [(f"SKU-{i:04d}", i % 7 + 1, ts(T6)) for i in range(4)]


async def test_row_drop_within_limit_is_applied(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    feed_server.sequence(
        PATH,
        text_reply(csv(*rows_for("S001", 10, T5))),
        text_reply(csv(*rows_for("S001", 6))),
    )
    await pull()

    outcome = await pull()

    assert (outcome.outcome, outcome.rows) == ("applied", 6)
    assert len(await stock(pool)) == 6


async def test_a_feed_that_sends_one_location_at_a_time_is_applied_file_by_file(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    """The contract lets a file name only some locations: the next file naming another
    location is no truncation of the first (a feed-wide row count would say it is)."""
    feed_server.sequence(
        PATH,
        text_reply(csv(*rows_for("S001", 10, T5))),
        text_reply(csv(*rows_for("S002", 2))),
        text_reply(csv(*rows_for("S001", 9))),
    )
    outcomes = [(o.outcome, o.rows) for o in [await pull(), await pull(), await pull()]]

    assert outcomes == [("applied", 10), ("applied", 2), ("applied", 9)]
    rows = await pool.fetch(
        "SELECT location_id, count(*) AS n FROM warehouse_stock GROUP BY 1 ORDER BY 1"
    )
    assert [tuple(r) for r in rows] == [("S001", 9), ("S002", 2)]
    counted = await pool.fetch("SELECT location_id, row_count FROM warehouse_location ORDER BY 1")
    assert [tuple(r) for r in counted] == [("S001", 9), ("S002", 2)]


async def test_a_file_cut_inside_one_location_is_quarantined_naming_it(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    serve_rows(feed_server, *rows_for("S001", 10, T5), *rows_for("S002", 10, T5))
    await pull()
    before = await in_force(pool)

    reason = await quarantined(
        pool, feed_server, pull, csv(*rows_for("S001", 10), *rows_for("S002", 3)), before
    )

    assert reason == (
        "row count fell by more than the allowed 50% against the rows in force: "
        "location S002: 10 -> 3 rows (70%); it looks truncated"
    )


async def test_rows_in_force_are_counted_for_a_location_applied_before_its_row_count(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    """Locations applied before migration 0014 have no row_count: their stock is counted."""
    serve_rows(feed_server, *rows_for("S001", 10, T5))
    await pull()
    await pool.execute("UPDATE warehouse_location SET row_count = NULL")
    before = await in_force(pool)

    reason = await quarantined(pool, feed_server, pull, csv(*rows_for("S001", 4)), before)

    assert "location S001: 10 -> 4 rows (60%)" in reason


async def test_feed_max_drop_overrides_setting(
    pool: asyncpg.Pool,
    feed_server: FeedServer,
    client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    strict = make_feed(feed_server, max_drop=0.1)
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [strict])
    feed_server.sequence(
        PATH,
        text_reply(csv(*rows_for("S001", 10, T5))),
        text_reply(csv(*rows_for("S001", 8))),
    )
    await pull_once(pool, strict, client, settings)

    outcome = await pull_once(pool, strict, client, settings)

    assert outcome.outcome == "quarantined"
    assert (
        outcome.detail is not None
        and "more than the allowed 10%" in outcome.detail
        and "location S001: 10 -> 8 rows (20%)" in outcome.detail
    )


async def test_quarantined_snapshot_is_fetched_again_but_recorded_once(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull, previous: InForce
) -> None:
    bad = text_reply(csv(f"S001,SKU-1,-1,0,0,{T6}"), headers={"ETag": '"v2"'})
    feed_server.always(PATH, bad)
    await pull()

    again = await pull()

    assert again.outcome == "quarantined"
    assert [r.headers.get("if-none-match") for r in feed_server.requests_to(PATH)] == [
        None,
        '"v1"',
        '"v1"',
    ]
    statuses = [s[1] for s in await snapshot_rows(pool)]
    assert statuses == ["applied", "quarantined"]
    assert again.detail == (
        f"same as quarantined snapshot {(await snapshot_rows(pool))[-1][0]}: "
        "line 2: on_hand '-1' is not a non-negative integer"
    )
    assert await in_force(pool) == previous


async def test_good_snapshot_after_quarantine_is_applied(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull, previous: InForce
) -> None:
    feed_server.sequence(
        PATH,
        text_reply(csv(f"S001,SKU-1,-1,0,0,{T6}"), headers={"ETag": '"v2"'}),
        text_reply(
            csv(f"S001,SKU-1,9,0,0,{T6}", f"S002,SKU-1,9,0,0,{T6}"), headers={"ETag": '"v3"'}
        ),
    )
    assert (await pull()).outcome == "quarantined"

    outcome = await pull()

    assert outcome.outcome == "applied"
    assert [(r[0], r[1], r[2]) for r in await stock(pool)] == [
        ("S001", "SKU-1", 9),
        ("S002", "SKU-1", 9),
    ]
    assert await pool.fetchval("SELECT etag FROM feed WHERE name = 'wh-main'") == '"v3"'


# -- positions -----------------------------------------------------------------------


async def test_positions_follow_the_snapshot(
    pool: asyncpg.Pool, feed_server: FeedServer, pull: Pull
) -> None:
    feed_server.sequence(
        PATH,
        text_reply(
            csv(f"S001,SKU-1,12,2,6,{T5}", f"S001,SKU-2,3,0,0,{T5}", f"S002,SKU-1,8,0,0,{T5}")
        ),
        text_reply(csv(f"S001,SKU-1,7,1,0,{T6}", f"S003,SKU-9,4,0,0,{T6}")),
    )
    first = await pull()
    assert first.positions == 3

    second = await pull()

    assert second.positions == 3  # S001: SKU-1 and the unlisted SKU-2; S003: SKU-9
    rows = await pool.fetch(
        "SELECT store_id, sku, book, base_source, base_at, in_transit FROM book_position ORDER BY 1, 2"
    )
    assert [tuple(r) for r in rows] == [
        ("S001", "SKU-1", 6, "snapshot", ts(T6), 0),
        ("S001", "SKU-2", 0, "snapshot", ts(T6), 0),  # named location, sku not listed
        ("S002", "SKU-1", 8, "snapshot", ts(T5), 0),  # not named: untouched
        ("S003", "SKU-9", 4, "snapshot", ts(T6), 0),
    ]


# -- pure rules and the body stream --------------------------------------------------


def test_header_rules() -> None:
    assert header_problem(EXPECTED_HEADER.encode()) is None
    assert header_problem(b"\xef\xbb\xbf" + EXPECTED_HEADER.encode() + b"\r\n") is None
    assert header_problem(b"LOCATION_ID,sku,on_hand,reserved,in_transit,as_of") == (
        f"line 1: expected header {EXPECTED_HEADER!r}, "
        "received 'LOCATION_ID,sku,on_hand,reserved,in_transit,as_of'"
    )


def test_header_names_may_come_in_csv_quotes() -> None:
    """Writers that quote every field quote the header too (RFC 4180): same names."""
    quoted = ",".join(f'"{name}"' for name in EXPECTED_HEADER.split(","))
    assert header_problem(quoted.encode() + b"\r\n") is None
    assert header_problem(b'"location_id",sku,on_hand,reserved,in_transit,"as_of"') is None
    assert header_problem(b'"location_id","sku","on_hand","reserved","in_transit"') == (
        f"line 1: expected header {EXPECTED_HEADER!r}, "
        """received '"location_id","sku","on_hand","reserved","in_transit"'"""
    )
    assert header_problem(b'"location_id,sku",on_hand,reserved,in_transit,as_of') is not None


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def test_quoted_fields_stay_plain_and_reach_copy_without_their_quotes() -> None:
    """A field wholly in quotes holds the same value without them: the typed COPY gets
    the bytes without quotes, the spool (the text path's replay) the bytes as sent,
    wherever the chunks split. A quote inside a field makes the body not plain."""
    sent = b'"S1","K1",1,"0","0","2026-11-23T06:00:00Z"\r\n"S1",K2,2,0,0,2026-11-23T06:00:00Z'
    for cut in range(1, len(sent)):
        body = SnapshotBody(chunks(b"location_id,sku,on_hand,reserved,in_transit,as_of\n",
                                   sent[:cut], sent[cut:]), max_bytes=1000)  # fmt: skip
        await body.read_header()
        typed = b"".join([c async for c in body])
        assert typed == sent.replace(b'"', b""), cut
        assert body.plain, cut
        assert b"".join([c async for c in body.replay()]) == sent
        body.close()
    for odd in (b'S1,x"K1",1,0,0,2026-11-23T06:00:00Z\n', b'S1,"K""1",1,0,0,2026-11-23T06:00:00Z\n',
                b'S1,"K1"x,1,0,0,2026-11-23T06:00:00Z\n', b'S1,"K1,1,0,0,2026-11-23T06:00:00Z\n',
                b'S1,"K 1",1,0,0,2026-11-23T06:00:00Z\n', b'S1,"+1",1,0,0,2026-11-23T06:00:00Z\n',
                b'S1,K1,"1_0",0,0,2026-11-23T06:00:00Z\n'):  # fmt: skip
        for cut in (1, 4, len(odd) - 1):
            body = SnapshotBody(chunks(b"location_id,sku,on_hand,reserved,in_transit,as_of\n",
                                       odd[:cut], odd[cut:]), max_bytes=1000)  # fmt: skip
            await body.read_header()
            assert [c async for c in body]
            assert not body.plain, (odd, cut)
            body.close()


async def test_body_splits_header_across_chunks() -> None:
    body = SnapshotBody(
        chunks(
            b"\xef\xbb\xbfloca",
            b"tion_id,sku,on_hand,reserved,in_transit,as_of\r",
            b"\nS1,",
            b"A,1,0,0,x\n",
        ),
        max_bytes=1000,
    )
    await body.read_header()
    assert b"".join([c async for c in body]) == b"S1,A,1,0,0,x\n"


async def test_body_without_header_line_end_is_rejected() -> None:
    body = SnapshotBody(chunks(b"x" * 70_000), max_bytes=10**6)
    with pytest.raises(SnapshotRejected, match="line 1: no line end in the first 65536 bytes"):
        await body.read_header()


async def test_snapshot_repository_reports_first_problems_and_total(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await snapshots.create_staging(conn)
        await snapshots.copy_into_staging(
            conn, chunks(*(f"S1,SKU-{i},-{i},0,0,{T6}\n".encode() for i in range(1, 9)))
        )
        problems = await snapshots.staged_problems(conn, limit=2)
    assert problems.total == 8
    assert [(p.line, p.problem) for p in problems.first] == [
        (2, "on_hand '-1' is not a non-negative integer"),
        (3, "on_hand '-2' is not a non-negative integer"),
    ]

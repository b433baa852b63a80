"""Square Inventory API feed: pure translation, and pulls against real PostgreSQL and a
local HTTP server replaying Square-shaped responses (tests/fixtures/vendors/)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from structlog.testing import capture_logs

from app.db.feeds import get_feed
from app.domain.model import Adjustment, Count, Identifier, Receipt, Return, Sale
from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.adapters import square
from reconcilers.adapters.ids import IdMap, Skipped
from reconcilers.adapters.square_pull import pull_square
from reconcilers.feeds_config import FeedConfig
from reconcilers.jobs import run_feed
from tests.feedserver import FeedServer, Reply, Request, json_reply

FIXTURES = Path(__file__).parent / "fixtures" / "vendors"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LOCATIONS = {"59TNP9SA8VGDA": "S1", "LZ1TG3EXAMPLE": "S2"}
ITEMS = {"W62UWFY35CWMYGVWK6TWJDNI": "SKU-A", "AII22ZWC7TQ5NLZTCNVVIZAX": "SKU-B"}
IDS = IdMap(LOCATIONS, ITEMS)


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def clock() -> datetime:
    return NOW


# -- pure translation ----------------------------------------------------------------------
def test_changes_follow_the_mapping_table() -> None:
    page = msgspec.convert(fixture("square_changes.json"), square.ChangesResponse)
    skipped = Skipped()
    events = square.translate_changes(page, IDS, skipped)
    got = [(type(e), e.event_id, e.store_id, e.sku,
            e.on_hand if isinstance(e, Count) else e.qty) for e in events]  # fmt: skip
    assert got == [
        (Sale, "sq:adj:UDMOEO78BG6GQ5ZGTUAZ9ZLV", "S1", "SKU-A", 3),
        (Adjustment, "sq:adj:6K4K7N5GHY2A6M4N8Q5P3R2W", "S1", "SKU-A", -1),
        (Return, "sq:adj:R3TURNED0000000000000001", "S1", "SKU-A", 1),
        (Receipt, "sq:adj:RECEIVED0000000000000001", "S1", "SKU-B", 10),
        (Count, "sq:pc:ANBMGRSG3Y3TWJ7GMHW3AAOJ", "S2", "SKU-A", 53),
    ]
    assert skipped.reasons == {"fractional": 1, "not_in_stock": 1}
    assert square.high_water(page) == datetime(2026, 11, 23, 9, 55, tzinfo=UTC)


def test_counts_become_count_events_with_stable_ids_and_unmapped_ids_are_counted() -> None:
    page = msgspec.convert(fixture("square_counts_page1.json"), square.CountsResponse)
    skipped = Skipped()
    first = square.translate_counts(page, IDS, skipped)
    again = square.translate_counts(page, IDS, Skipped())
    assert [(e.store_id, e.sku, e.on_hand) for e in first if isinstance(e, Count)] == [
        ("S1", "SKU-A", 79),
        ("S1", "SKU-B", 0),  # Square's -2 (oversold) is a count of 0
    ]
    assert [e.event_id for e in first] == [e.event_id for e in again]
    for e in first:
        assert 1 <= len(e.event_id) <= 64 and e.event_id.startswith("sq:cnt:h")
    assert skipped.unmapped_items == {"UNMAPPEDVARIATION0000000": 1}


def test_event_ids_stay_in_the_contract_charset() -> None:
    assert square.event_id("adj", "ABC123") == "sq:adj:ABC123"
    odd = square.event_id("adj", "has space/slash")
    long = square.event_id("adj", "X" * 80)
    for eid in (odd, long):
        assert len(eid) <= 64
        msgspec.convert(eid, Identifier)
    assert odd == square.event_id("adj", "has space/slash")


def test_resume_point_moves_from_counts_to_changes_and_keeps_an_overlap() -> None:
    start = square.initial_resume(NOW)
    assert start.phase == "counts" and start.updated_after == NOW - square.OVERLAP
    mid = square.after_page(start, "C2", None)
    assert mid.phase == "counts" and mid.cursor == "C2"
    changes = square.after_page(mid, None, None)
    assert changes == square.Resume(phase="changes", updated_after=NOW - square.OVERLAP)
    later = NOW + timedelta(hours=1)
    paged = square.after_page(changes, "K2", later)
    assert paged.high_water == later and paged.cursor == "K2"
    done = square.after_page(paged, None, None)
    assert done == square.Resume(phase="changes", updated_after=later - square.OVERLAP)
    assert square.decode_resume(done.encode()) == done
    assert square.decode_resume("c7") is None  # a contract cursor: start over


# -- pulls -----------------------------------------------------------------------------------
@pytest.fixture
def feed(feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> FeedConfig:
    monkeypatch.setenv("SQUARE_TEST_TOKEN", "EAAAl-secret-token")
    return FeedConfig(
        name="square-main", kind="pos", format="square", url=feed_server.url(""),
        timeout=timedelta(seconds=2), auth_header="Authorization", auth_env="SQUARE_TEST_TOKEN",
        auth_scheme="Bearer", locations=LOCATIONS, items=ITEMS,
    )  # fmt: skip


def counts_by_cursor(request: Request) -> Reply:
    body = json.loads(request.body)
    name = (
        "square_counts_page2.json"
        if body.get("cursor") == "CURSOR-COUNTS-2"
        else "square_counts_page1.json"
    )
    return json_reply(fixture(name))


def serve_counts_and_changes(feed_server: FeedServer) -> None:
    """The two counts pages (by cursor), then the changes fixture on every changes request."""
    feed_server.route(square.COUNTS_PATH, counts_by_cursor)
    feed_server.always(square.CHANGES_PATH, json_reply(fixture("square_changes.json")))


async def run(
    pool: asyncpg.Pool, feed: FeedConfig, client: httpx.AsyncClient, settings: Settings
) -> Any:
    return await run_feed(pool, feed, client, settings=settings, policy=Policy(), clock=clock)


async def events(pool: asyncpg.Pool) -> list[tuple[Any, ...]]:
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT event_id, type, store_id, sku, qty, on_hand FROM pos_event ORDER BY occurred_at, event_id"
        )
    return [tuple(r) for r in rows]


async def test_pulls_counts_then_changes_with_auth_and_saves_the_resume_point(
    db: asyncpg.Pool, feed_server: FeedServer, feed: FeedConfig, client: httpx.AsyncClient,
    settings: Settings,
) -> None:  # fmt: skip
    serve_counts_and_changes(feed_server)
    with capture_logs() as logs:
        outcome = await run(db, feed, client, settings)
    assert outcome.outcome == "applied", outcome.detail
    assert outcome.pages == 3 and outcome.events_new == 8
    stored = await events(db)
    assert ("sq:adj:UDMOEO78BG6GQ5ZGTUAZ9ZLV", "sale", "S1", "SKU-A", 3, None) in stored
    assert ("sq:pc:ANBMGRSG3Y3TWJ7GMHW3AAOJ", "count", "S2", "SKU-A", None, 53) in stored
    assert not any("UNMAPPED" in str(r) or "UNKNOWN" in str(r) for r in stored)
    # requests: POSTed bodies carry the mapped locations, the cursor, then updated_after
    counts = feed_server.requests_to(square.COUNTS_PATH)
    bodies = [json.loads(r.body) for r in counts]
    assert [b.get("cursor") for b in bodies] == [None, "CURSOR-COUNTS-2"]
    assert bodies[0]["location_ids"] == sorted(LOCATIONS) and bodies[0]["states"] == ["IN_STOCK"]
    change_body = json.loads(feed_server.requests_to(square.CHANGES_PATH)[0].body)
    assert change_body["updated_after"].startswith("2026-11-23T11:55:00")
    assert all(r.method == "POST" for r in feed_server.requests)
    assert {r.headers["authorization"] for r in feed_server.requests} == {
        "Bearer EAAAl-secret-token"
    }
    assert all(r.headers.get("square-version") for r in feed_server.requests)
    # the resume point: changes; the fixture's changes are older than where this pass
    # began, so updated_after does not move back (the pure test covers moving forward)
    async with db.acquire() as conn:
        state = await get_feed(conn, "square-main")
    assert state is not None
    resume = square.decode_resume(state.cursor)
    assert resume == square.Resume(phase="changes", updated_after=NOW - square.OVERLAP)
    skipped_logs = [e for e in logs if e["event"] == "square.records_skipped"]
    assert skipped_logs and "UNKNOWNLOCATION" in skipped_logs[0]["unmapped_locations"]
    assert "EAAAl-secret-token" not in repr(logs)
    # a book position follows: S1/SKU-A count 79 at 07:30, then -3 -1 +1 (the 0.25 is skipped)
    async with db.acquire() as conn:
        book = await conn.fetchval(
            "SELECT book FROM book_position WHERE store_id='S1' AND sku='SKU-A'"
        )
    assert book == 76


async def test_redelivered_changes_change_nothing(
    db: asyncpg.Pool, feed_server: FeedServer, feed: FeedConfig, client: httpx.AsyncClient,
    settings: Settings,
) -> None:  # fmt: skip
    serve_counts_and_changes(feed_server)
    await run(db, feed, client, settings)
    before = await events(db)
    again = await run(db, feed, client, settings)
    assert again.outcome == "unchanged" and again.events_new == 0 and again.events_duplicate == 5
    assert await events(db) == before
    assert len(feed_server.requests_to(square.COUNTS_PATH)) == 2  # the baseline is read once


async def test_rate_limit_is_waited_out_as_retry_after_says(
    db: asyncpg.Pool, feed_server: FeedServer, feed: FeedConfig, client: httpx.AsyncClient,
    settings: Settings,
) -> None:  # fmt: skip
    limited = json_reply({"errors": [{"category": "RATE_LIMIT_ERROR", "code": "RATE_LIMITED",
                                      "detail": "Rate limit exceeded"}]}, status=429,
                         headers={"Retry-After": "1"})  # fmt: skip
    feed_server.sequence(square.COUNTS_PATH, limited, counts_by_cursor)
    feed_server.always(square.CHANGES_PATH, json_reply({"changes": []}))
    outcome = await run(db, feed, client, settings)
    assert outcome.outcome == "applied", outcome.detail
    first, second = feed_server.requests_to(square.COUNTS_PATH)[:2]
    assert second.at - first.at >= 0.95  # the backoff alone would be ~0.01 s


async def test_server_errors_fail_the_run_and_keep_the_resume_point(
    db: asyncpg.Pool, feed_server: FeedServer, feed: FeedConfig, client: httpx.AsyncClient,
    settings: Settings,
) -> None:  # fmt: skip
    feed_server.route(square.COUNTS_PATH, counts_by_cursor)
    feed_server.always(square.CHANGES_PATH, Reply(status=503))
    outcome = await run(db, feed, client, settings)
    assert outcome.outcome == "failed"
    assert outcome.detail is not None and "HTTP 503" in outcome.detail
    assert len(feed_server.requests_to(square.CHANGES_PATH)) == settings.retry_attempts
    async with db.acquire() as conn:
        state = await get_feed(conn, "square-main")
    assert state is not None and state.consecutive_failures == 1
    resume = square.decode_resume(state.cursor)
    assert resume is not None and resume.phase == "changes" and resume.cursor is None
    assert len(await events(db)) == 3  # the counts pages stay stored


async def test_a_malformed_page_is_rejected_whole_with_its_place(
    db: asyncpg.Pool, feed_server: FeedServer, feed: FeedConfig, client: httpx.AsyncClient,
    settings: Settings,
) -> None:  # fmt: skip
    bad = fixture("square_counts_page1.json")
    bad["counts"][1]["calculated_at"] = "yesterday"
    bad.pop("cursor")
    feed_server.always(square.COUNTS_PATH, json_reply(bad))
    outcome = await run(db, feed, client, settings)
    assert outcome.outcome == "failed"
    assert outcome.detail is not None
    assert "page 1 (counts" in outcome.detail and "$.counts[1].calculated_at" in outcome.detail
    assert await events(db) == []


async def test_missing_token_fails_before_any_request(
    db: asyncpg.Pool, feed_server: FeedServer, feed: FeedConfig, client: httpx.AsyncClient,
    settings: Settings, monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.delenv("SQUARE_TEST_TOKEN")
    outcome = await run(db, feed, client, settings)
    assert outcome.outcome == "failed"
    assert outcome.detail == "feed square-main: environment variable SQUARE_TEST_TOKEN is not set"
    assert feed_server.requests == []


async def test_pages_are_stored_together_as_a_contract_feeds_are(
    db: asyncpg.Pool, feed_server: FeedServer, feed: FeedConfig, client: httpx.AsyncClient,
    settings: Settings,
) -> None:  # fmt: skip
    serve_counts_and_changes(feed_server)
    with capture_logs() as logs:
        outcome = await pull_square(db, feed, client, settings=settings, policy=Policy(),
                                    clock=clock)  # fmt: skip
    stores = [e["pages"] for e in logs if e["event"] == "pos.pages_stored"]
    assert stores == [[1, 2, 3]]  # one transaction for the run's three pages
    assert (outcome.pages, outcome.events_new) == (3, 8)
    async with db.acquire() as conn:
        state = await get_feed(conn, "square-main")
    assert state is not None and square.decode_resume(state.cursor) == square.Resume(
        phase="changes", updated_after=NOW - square.OVERLAP
    )
    # a group of one page at a time stores each page with its own resume point
    with capture_logs() as logs:
        again = await pull_square(db, feed, client, settings=settings, policy=Policy(),
                                  clock=clock, group_events=1)  # fmt: skip
    assert [e["pages"] for e in logs if e["event"] == "pos.pages_stored"] == [[1]]
    assert (again.events_new, again.events_duplicate) == (0, 5)

"""Shopify inventory levels as a warehouse snapshot, against real PostgreSQL and a local
HTTP server replaying Shopify-shaped pages (Link header paging, 429 Retry-After)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.adapters import shopify
from reconcilers.feeds_config import FeedConfig
from reconcilers.jobs import run_feed
from reconcilers.retry import retry_after_seconds
from reconcilers.warehouse import SnapshotRejected
from tests.conftest import stock_in_force
from tests.feedserver import FeedServer, Reply, Request, json_reply

FIXTURES = Path(__file__).parent / "fixtures" / "vendors"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
PATH = "/admin/api/2024-10/inventory_levels.json"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def test_link_header_paging_and_first_url() -> None:
    base = "https://shop.example/admin/api/2024-10/inventory_levels.json"
    link = (f'<{base}?limit=250&page_info=abc>; rel="previous", '
            f'<{base}?limit=250&page_info=def>; rel="next"')  # fmt: skip
    assert shopify.next_url(link, base=base) == f"{base}?limit=250&page_info=def"
    assert shopify.next_url(f'<{base}?page_info=abc>; rel="previous"', base=base) is None
    with pytest.raises(SnapshotRejected, match="another host"):
        shopify.next_url('<https://evil.example/x?page_info=1>; rel="next"', base=base)
    assert shopify.first_url(base, ["1", "2"]) == f"{base}?location_ids=1,2&limit=250"
    assert shopify.first_url(f"{base}?inventory_item_ids=9", ["1"]) == (
        f"{base}?inventory_item_ids=9&limit=250"
    )


def test_retry_after_values() -> None:
    assert retry_after_seconds("2.0") == 2.0
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds("Mon, 23 Nov 2026 12:00:10 GMT", now=NOW) == 10.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


@pytest.fixture
def feed(feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch) -> FeedConfig:
    monkeypatch.setenv("SHOPIFY_TEST_TOKEN", "shpat_secret")
    return FeedConfig(
        name="shopify-main", kind="warehouse", format="shopify", url=feed_server.url(PATH),
        timeout=timedelta(seconds=2), auth_header="X-Shopify-Access-Token",
        auth_env="SHOPIFY_TEST_TOKEN",
        locations={"655441491": "S1", "487838322": "S2"},
        items={"808950810": "SKU-A", "39072856": "SKU-B", "457924702": "SKU-C"},
    )  # fmt: skip


def pages(feed_server: FeedServer, page2: Reply | None = None) -> None:
    def respond(request: Request) -> Reply:
        if request.param("page_info") == "P2":
            return page2 or json_reply(fixture("shopify_levels_page2.json"))
        link = f'<{feed_server.url(PATH)}?limit=250&page_info=P2>; rel="next"'
        return json_reply(fixture("shopify_levels_page1.json"), headers={"Link": link})

    feed_server.route(PATH, respond)


async def run(
    pool: asyncpg.Pool, feed: FeedConfig, client: httpx.AsyncClient, settings: Settings
) -> Any:
    return await run_feed(pool, feed, client, settings=settings, policy=Policy(), clock=lambda: NOW)


async def test_all_pages_make_one_snapshot_with_429_waited_out(
    db: asyncpg.Pool, feed_server: FeedServer, feed: FeedConfig, client: httpx.AsyncClient,
    settings: Settings,
) -> None:  # fmt: skip
    limited = Reply(status=429, body=b'{"errors":"Exceeded 2 calls per second"}',
                    headers={"Retry-After": "0.5"})  # fmt: skip
    state = {"limited": False}
    pages(feed_server)
    original = feed_server._routes[PATH]

    def with_limit(request: Request) -> Reply:
        if request.param("page_info") == "P2" and not state["limited"]:
            state["limited"] = True
            return limited
        return original(request)

    feed_server.route(PATH, with_limit)
    outcome = await run(db, feed, client, settings)
    assert outcome.outcome == "applied", outcome.detail
    assert await stock_in_force(db) == [
        ("S1", "SKU-A", 27, 0, 0, NOW),
        ("S1", "SKU-B", 0, 0, 0, NOW),  # Shopify's -3 (oversold) is 0
        ("S2", "SKU-A", 9, 0, 0, NOW),
    ]
    assert outcome.detail is not None and "unmapped_item 1" in outcome.detail
    assert "untracked 1" in outcome.detail
    requests = feed_server.requests_to(PATH)
    assert requests[0].param("location_ids") == "487838322,655441491"
    assert [r.param("page_info") for r in requests] == [None, "P2", "P2"]
    assert requests[2].at - requests[1].at >= 0.45
    assert {r.headers["x-shopify-access-token"] for r in requests} == {"shpat_secret"}


async def test_a_bad_page_quarantines_the_whole_snapshot(
    db: asyncpg.Pool, feed_server: FeedServer, feed: FeedConfig, client: httpx.AsyncClient,
    settings: Settings,
) -> None:  # fmt: skip
    pages(feed_server)
    assert (await run(db, feed, client, settings)).outcome == "applied"
    before = await stock_in_force(db)
    pages(feed_server, json_reply({"inventory_levels": [{"location_id": 487838322}]}))
    outcome = await run(db, feed, client, settings)
    assert outcome.outcome == "quarantined"
    assert outcome.detail is not None and "page 2" in outcome.detail
    assert "inventory_item_id" in outcome.detail
    assert await stock_in_force(db) == before


async def test_server_errors_on_a_later_page_fail_the_run_and_store_nothing(
    db: asyncpg.Pool, feed_server: FeedServer, feed: FeedConfig, client: httpx.AsyncClient,
    settings: Settings,
) -> None:  # fmt: skip
    pages(feed_server, Reply(status=502))
    outcome = await run(db, feed, client, settings)
    assert outcome.outcome == "failed"
    assert outcome.detail is not None and "HTTP 502" in outcome.detail
    assert await stock_in_force(db) == []
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM warehouse_snapshot") == 0

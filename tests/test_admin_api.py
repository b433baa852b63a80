"""Admin API: feeds and their state, pull now, quarantined snapshots and their release.

Real PostgreSQL, real feed servers on 127.0.0.1, the app over ASGI in the test's loop.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from litestar import Litestar

from app.settings import Settings
from tests.conftest import serve_in_loop, with_feeds_file
from tests.feedserver import FeedServer, json_reply, text_reply

NOW = datetime.now(UTC).replace(microsecond=0)
HEADER = "location_id,sku,on_hand,reserved,in_transit,as_of"
TOKEN = "admin-s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def snapshot(store: str, n: int, as_of: datetime, on_hand: int = 5) -> str:
    rows = [f"{store},SKU-{i:03d},{on_hand},0,0,{iso(as_of)}" for i in range(n)]
    return "\n".join([HEADER, *rows]) + "\n"


@pytest.fixture
def admin_settings(settings: Settings, tmp_path: Path, feed_server: FeedServer) -> Settings:
    return with_feeds_file(
        settings,
        tmp_path,
        {
            "name": "pos-main",
            "kind": "pos",
            "url": f"{feed_server.url('/events')}?token=query-secret",
        },
        {"name": "wh", "kind": "warehouse", "url": feed_server.url("/snap.csv"), "max_drop": 0.5},
        admin_token=TOKEN,
    )


async def test_admin_routes_need_the_admin_credential(
    make_app: Callable[..., Litestar], admin_settings: Settings
) -> None:
    async with serve_in_loop(make_app(settings=admin_settings)) as client:
        for method, path in [
            ("GET", "/v1/admin/feeds"),
            ("POST", "/v1/admin/feeds/pos-main/pull"),
            ("GET", "/v1/admin/snapshots"),
            ("POST", "/v1/admin/snapshots/1/release"),
        ]:
            r = await client.request(method, path)
            assert r.status_code == 401, (method, path, r.text)
            r = await client.request(method, path, headers={"Authorization": "Bearer wrong"})
            assert r.status_code == 403, (method, path, r.text)


async def test_list_feeds_and_pull_now(
    make_app: Callable[..., Litestar], admin_settings: Settings, feed_server: FeedServer
) -> None:
    event = {"event_id": "E1", "type": "receipt", "store_id": "S1", "sku": "SKU-A", "qty": 4,
             "occurred_at": iso(NOW - timedelta(minutes=5))}  # fmt: skip
    feed_server.always("/events", json_reply({"events": [event], "next_cursor": "n1",
                                              "has_more": False}))  # fmt: skip
    async with serve_in_loop(make_app(settings=admin_settings)) as client:
        r = await client.get("/v1/admin/feeds", headers=AUTH)
        assert r.status_code == 200, r.text
        feeds = {f["name"]: f for f in r.json()["feeds"]}
        assert sorted(feeds) == ["pos-main", "wh"]
        pos = feeds["pos-main"]
        assert pos["configured"] is True and pos["last_success_at"] is None
        assert pos["url"] == feed_server.url("/events")  # the query (a token) is not shown
        assert "query-secret" not in r.text

        r = await client.post("/v1/admin/feeds/pos-main/pull", headers=AUTH)
        assert r.status_code == 200, r.text
        body = r.json()
        assert (body["outcome"], body["pages"], body["events_new"]) == ("applied", 1, 1)
        assert body["feed"]["cursor"] == "n1" and body["feed"]["consecutive_failures"] == 0
        assert body["feed"]["last_success_at"] is not None

        # a failing pull answers 200 with the outcome; the feed's state says why
        feed_server.always("/snap.csv", text_reply("nope", status=404))
        r = await client.post("/v1/admin/feeds/wh/pull", headers=AUTH)
        assert r.status_code == 200 and r.json()["outcome"] == "failed"
        assert "HTTP 404" in r.json()["feed"]["last_error"]
        assert r.json()["feed"]["consecutive_failures"] == 1

        r = await client.post("/v1/admin/feeds/nope/pull", headers=AUTH)
        assert r.status_code == 404 and "no feed named 'nope'" in r.json()["error"]
        r = await client.post("/v1/admin/feeds/bad%20name/pull", headers=AUTH)
        assert r.status_code == 400
    assert [r.param("token") for r in feed_server.requests_to("/events")] == ["query-secret"]


async def quarantined_ids(client: Any) -> list[int]:
    r = await client.get("/v1/admin/snapshots", headers=AUTH)
    assert r.status_code == 200, r.text
    return [s["snapshot_id"] for s in r.json()["snapshots"]]


async def stock(pool: asyncpg.Pool) -> list[tuple[Any, ...]]:
    # The snapshot in force at the row's location (a row keeps the one that last wrote it).
    rows = await pool.fetch("SELECT ws.location_id, sku, on_hand, wl.snapshot_id FROM warehouse_stock ws "
                            "JOIN warehouse_location wl USING (location_id) ORDER BY 1, 2")  # fmt: skip
    return [tuple(r) for r in rows]


async def test_quarantined_snapshot_listed_released_and_not_twice(
    make_app: Callable[..., Litestar],
    admin_settings: Settings,
    feed_server: FeedServer,
    pool: asyncpg.Pool,
) -> None:
    t1, t2 = NOW - timedelta(hours=2), NOW - timedelta(hours=1)
    feed_server.sequence(
        "/snap.csv",
        text_reply(snapshot("S1", 10, t1), headers={"ETag": '"v1"'}),
        text_reply(snapshot("S1", 3, t2, on_hand=9), headers={"ETag": '"v2"'}),
    )
    async with serve_in_loop(make_app(settings=admin_settings)) as client:
        assert (await client.post("/v1/admin/feeds/wh/pull", headers=AUTH)).json()["outcome"] == (
            "applied"
        )
        r = await client.post("/v1/admin/feeds/wh/pull", headers=AUTH)
        assert r.json()["outcome"] == "quarantined"
        assert "location S1: 10 -> 3 rows (70%)" in r.json()["detail"]
        before = await stock(pool)
        assert len(before) == 10

        r = await client.get("/v1/admin/snapshots", headers=AUTH)
        [snap] = r.json()["snapshots"]
        assert (snap["status"], snap["rows_kept"], snap["row_count"], snap["releasable"]) == (
            "quarantined", 3, 3, True,
        )  # fmt: skip
        assert snap["etag"] == '"v2"' and snap["feed"] == "wh"
        all_ = await client.get("/v1/admin/snapshots", params={"status": "all"}, headers=AUTH)
        assert [s["status"] for s in all_.json()["snapshots"]] == ["quarantined", "applied"]

        r = await client.post(f"/v1/admin/snapshots/{snap['snapshot_id']}/release", headers=AUTH)
        assert r.status_code == 200, r.text
        assert (r.json()["rows"], r.json()["positions"]) == (3, 10)
        after = await stock(pool)
        assert after == [("S1", f"SKU-{i:03d}", 9, snap["snapshot_id"]) for i in range(3)]
        assert await quarantined_ids(client) == []
        assert await pool.fetchval("SELECT etag FROM feed WHERE name = 'wh'") == '"v2"'
        books = await pool.fetch("SELECT sku, book FROM book_position ORDER BY sku")
        assert [tuple(b) for b in books] == [
            *((f"SKU-{i:03d}", 9) for i in range(3)),
            *((f"SKU-{i:03d}", 0) for i in range(3, 10)),  # not listed: none at S1
        ]

        r = await client.post(f"/v1/admin/snapshots/{snap['snapshot_id']}/release", headers=AUTH)
        assert r.status_code == 409 and "is applied, not quarantined" in r.json()["error"]
        r = await client.post("/v1/admin/snapshots/999999/release", headers=AUTH)
        assert r.status_code == 404 and r.json()["error"] == "no snapshot 999999"
        # the next pull sends the released ETag: 304, nothing changes
        feed_server.always("/snap.csv", text_reply("", status=304))
        r = await client.post("/v1/admin/feeds/wh/pull", headers=AUTH)
        assert r.json()["outcome"] == "unchanged"
        assert feed_server.requests_to("/snap.csv")[-1].headers["if-none-match"] == '"v2"'
        assert await stock(pool) == after


async def test_release_refuses_what_would_move_stock_back_or_has_no_rows(
    make_app: Callable[..., Litestar],
    admin_settings: Settings,
    feed_server: FeedServer,
    pool: asyncpg.Pool,
) -> None:
    t1, t2, t3 = (NOW - timedelta(hours=h) for h in (3, 2, 1))
    feed_server.sequence(
        "/snap.csv",
        text_reply(snapshot("S1", 10, t1)),
        text_reply(snapshot("S1", 2, t2)),  # quarantined, rows kept
        text_reply(HEADER + "\nS1,SKU-000,x,0,0,bad\n"),  # quarantined, nothing kept
        text_reply(snapshot("S1", 9, t3)),  # applied after both
    )
    async with serve_in_loop(make_app(settings=admin_settings)) as client:
        outcomes = [
            (await client.post("/v1/admin/feeds/wh/pull", headers=AUTH)).json()["outcome"]
            for _ in range(4)
        ]
        assert outcomes == ["applied", "quarantined", "quarantined", "applied"]
        dropped, unparsed = sorted(await quarantined_ids(client))
        before = await stock(pool)

        r = await client.post(f"/v1/admin/snapshots/{unparsed}/release", headers=AUTH)
        assert r.status_code == 409 and "kept no rows" in r.json()["error"]
        r = await client.post(f"/v1/admin/snapshots/{dropped}/release", headers=AUTH)
        assert r.status_code == 409
        assert f"older than snapshot {unparsed + 1} of feed wh" in r.json()["error"]
        assert await stock(pool) == before
        assert sorted(await quarantined_ids(client)) == [dropped, unparsed]


async def test_release_refuses_a_snapshot_older_than_stock_from_another_feed(
    make_app: Callable[..., Litestar],
    admin_settings: Settings,
    feed_server: FeedServer,
    pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    t1, t2, t3 = (NOW - timedelta(hours=h) for h in (3, 2, 1))
    feeds = tmp_path / "feeds2.toml"
    feeds.write_text(
        (admin_settings.feeds_file or Path()).read_text()
        + f'\n[[feeds]]\nname = "wh2"\nkind = "warehouse"\nurl = "{feed_server.url("/other.csv")}"\n'
    )
    two = msgspec.structs.replace(admin_settings, feeds_file=feeds)
    feed_server.sequence(
        "/snap.csv", text_reply(snapshot("S1", 10, t1)), text_reply(snapshot("S1", 2, t2))
    )
    feed_server.always("/other.csv", text_reply(snapshot("S1", 10, t3, on_hand=1)))
    async with serve_in_loop(make_app(settings=two)) as client:
        for name in ("wh", "wh", "wh2"):
            await client.post(f"/v1/admin/feeds/{name}/pull", headers=AUTH)
        [dropped] = await quarantined_ids(client)
        before = await stock(pool)
        r = await client.post(f"/v1/admin/snapshots/{dropped}/release", headers=AUTH)
        assert r.status_code == 409, r.text
        assert r.json()["error"].startswith(
            f"snapshot {dropped} is older than the stock in force at: S1 (in force as of "
        )
        assert await stock(pool) == before

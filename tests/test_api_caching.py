"""HTTP caching of the public reads: ETag, Cache-Control, 304 on If-None-Match."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import asyncpg
import msgspec
import pytest
from litestar import Litestar

from app.api.caching import entity_tag, matches
from app.db.availability import notify_badges_changed
from app.settings import Settings
from tests.conftest import serve_in_loop
from tests.test_api_availability import (
    LAT,
    LON,
    NOW,
    POLICY,
    add_one_badge,
)
from tests.test_read_model import wait_for_notification


async def test_nearby_read_has_etag_cache_control_and_304(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool
) -> None:
    await add_one_badge(pool)
    now = [NOW]
    app = make_app(clock=lambda: now[0], policy=POLICY)
    params = {"lat": LAT, "lon": LON}
    async with serve_in_loop(app) as client:
        first = await client.get("/v1/availability/SKU-1", params=params)
        assert first.status_code == 200
        assert first.headers["cache-control"] == "public, max-age=15"
        tag = first.headers["etag"]
        assert tag.startswith('W/"')  # generated_at is left out of the hash: weak
        # A later request with the same badges: same tag, 304 and no body.
        now[0] = NOW + timedelta(seconds=30)
        again = await client.get(
            "/v1/availability/SKU-1", params=params, headers={"If-None-Match": tag}
        )
        assert again.status_code == 304
        assert again.content == b""
        assert again.headers["etag"] == tag
        assert again.headers["cache-control"] == "public, max-age=15"
        # A reconciler publishes a new badge (and notifies, as app.db.positions does):
        # the old tag no longer matches.
        seen = app.state.read_model.notifications
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("UPDATE book_position SET book = 9")
            await notify_badges_changed(conn, ["S001"])
        await wait_for_notification(app, seen)
        changed = await client.get(
            "/v1/availability/SKU-1", params=params, headers={"If-None-Match": tag}
        )
        assert changed.status_code == 200
        assert changed.json()["stores"][0]["book"] == 9
        assert changed.headers["etag"] != tag


async def test_single_store_read_has_a_strong_etag(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool, settings: Settings
) -> None:
    await add_one_badge(pool)
    custom = msgspec.structs.replace(settings, http_cache_max_age=60)
    app = make_app(settings=custom, clock=lambda: NOW, policy=POLICY)
    async with serve_in_loop(app) as client:
        r = await client.get("/v1/stores/S001/availability/SKU-1")
        assert r.headers["cache-control"] == "public, max-age=60"
        assert r.headers["etag"] == entity_tag(r.content)
        assert not r.headers["etag"].startswith("W/")
        r304 = await client.get(
            "/v1/stores/S001/availability/SKU-1",
            headers={"If-None-Match": f'"other", {r.headers["etag"]}'},
        )
        assert r304.status_code == 304 and r304.content == b""
        assert "content-type" not in r304.headers
        # Errors are not cached.
        missing = await client.get("/v1/stores/NOPE/availability/SKU-1")
        assert missing.status_code == 404
        assert "etag" not in missing.headers and "cache-control" not in missing.headers
        # Store reads are cacheable too; list answers carry generated_at.
        stores = await client.get("/v1/stores")
        assert stores.json()["generated_at"] == "2026-11-23T12:00:00Z"
        assert stores.headers["etag"].startswith('W/"')


async def test_writes_and_batch_are_not_marked_cacheable(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool
) -> None:
    await add_one_badge(pool)
    async with serve_in_loop(make_app(clock=lambda: NOW, policy=POLICY)) as client:
        r = await client.post(
            "/v1/availability:batch", json={"skus": ["SKU-1"], "lat": LAT, "lon": LON}
        )
        assert r.status_code == 200
        assert "etag" not in r.headers and "cache-control" not in r.headers
        assert r.json()["generated_at"] == "2026-11-23T12:00:00Z"


@pytest.mark.parametrize(
    ("header", "tag", "hit"),
    [
        ('"abc"', '"abc"', True),
        ('W/"abc"', '"abc"', True),  # If-None-Match compares weakly
        ('"x", W/"abc"', 'W/"abc"', True),
        ("*", '"abc"', True),
        ('"abd"', '"abc"', False),
        ("", '"abc"', False),
    ],
)
def test_if_none_match_comparison(header: str, tag: str, hit: bool) -> None:
    assert matches(header, tag) is hit


def test_entity_tag_ignores_only_generated_at() -> None:
    a = b'{"sku":"X","generated_at":"2026-11-23T12:00:00Z","stores":[]}'
    b = b'{"sku":"X","generated_at":"2026-11-23T12:00:09Z","stores":[]}'
    c = b'{"sku":"X","generated_at":"2026-11-23T12:00:09Z","stores":[1]}'
    assert entity_tag(a) == entity_tag(b) != entity_tag(c)
    assert entity_tag(b'{"as_of":"2026-11-23T12:00:00Z"}') != entity_tag(
        b'{"as_of":"2026-11-23T12:00:01Z"}'
    )

"""Postal-code lookups, display_text and the batch endpoint, on real PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import asyncpg
import pytest
from litestar import Litestar

from app.domain.geo import distance_km
from tests.conftest import serve_in_loop
from tests.test_api_availability import (
    LAT,
    LON,
    NOW,
    POLICY,
    add_freshness,
    add_position,
    add_product,
    north_of,
)


async def add_store(
    pool: asyncpg.Pool, store_id: str, lat: float, lon: float, postal_code: str | None
) -> None:
    await pool.execute(
        "INSERT INTO store (store_id, name, lat, lon, postal_code) VALUES ($1, $2, $3, $4, $5)",
        store_id,
        f"Store {store_id}",
        lat,
        lon,
        postal_code,
    )


@pytest.fixture
def app(make_app: Callable[..., Litestar]) -> Litestar:
    return make_app(clock=lambda: NOW, policy=POLICY)


async def _world(pool: asyncpg.Pool) -> None:
    """Two stores share postal code 69002 (centroid between them), one has 69003."""
    await add_store(pool, "A", north_of(LAT, 2.0), LON, "69002")
    await add_store(pool, "B", north_of(LAT, 4.0), LON, "69 002")
    await add_store(pool, "C", north_of(LAT, 40.0), LON, "69003")
    for s in ("A", "B", "C"):
        await add_freshness(pool, s, NOW - timedelta(minutes=5))
    await add_product(pool, "SKU-1")
    await add_product(pool, "SKU-2")
    await add_position(pool, "A", "SKU-1", book=10)
    await add_position(pool, "B", "SKU-1", book=3, state="low_stock", reasons=["few_left"])
    await add_position(pool, "A", "SKU-2", book=0, state="unavailable", reasons=["out_of_stock"])


async def test_postal_code_resolves_to_the_centroid_of_its_stores(
    app: Litestar, pool: asyncpg.Pool
) -> None:
    await _world(pool)
    async with serve_in_loop(app) as client:
        r = await client.get("/v1/availability/SKU-1", params={"postal_code": "69002"})
        assert r.status_code == 200
        body = r.json()
        # The centre is the mean of A and B (spaces and case in postal codes ignored).
        assert body["lat"] == pytest.approx(north_of(LAT, 3.0), abs=1e-9)
        assert body["lon"] == pytest.approx(LON)
        assert body["postal_code"] == "69002"
        assert [
            (s["store"]["store_id"], s["store"]["distance_km"], s["display_text"])
            for s in body["stores"]
        ] == [("A", 1.0, "In stock"), ("B", 1.0, "Only a few left")]
        assert body["generated_at"] == "2026-11-23T12:00:00Z"

        r = await client.get("/v1/availability/SKU-1", params={"postal_code": "99999"})
        assert r.status_code == 404
        assert r.json() == {"status": 404, "error": "unknown postal_code '99999'"}


async def test_display_text_never_promises_for_unavailable_or_unknown(
    app: Litestar, pool: asyncpg.Pool
) -> None:
    await _world(pool)
    async with serve_in_loop(app) as client:
        body = (await client.get("/v1/availability/SKU-2", params={"lat": LAT, "lon": LON})).json()
    texts = {s["store"]["store_id"]: (s["state"], s["display_text"]) for s in body["stores"]}
    assert texts == {
        "A": ("unavailable", "Check with store"),
        "B": ("unknown", "Check with store"),  # no record for SKU-2 at B
    }


async def test_batch_answers_every_sku_in_order_with_one_badge_query(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool, db_dsn: str
) -> None:
    await _world(pool)
    queries: list[str] = []

    async def log_queries(conn: asyncpg.Connection) -> None:
        conn.add_query_logger(lambda q: queries.append(q.query))

    counted = await asyncpg.create_pool(db_dsn, min_size=1, max_size=2, init=log_queries)
    assert counted is not None
    try:
        async with serve_in_loop(make_app(pool=counted, clock=lambda: NOW, policy=POLICY)) as c:
            queries.clear()  # start-up (migrations, reference data) is not the request
            r = await c.post(
                "/v1/availability:batch",
                json={"skus": ["SKU-2", "SKU-1", "SKU-NOPE", "SKU-1"], "postal_code": "69002"},
            )
            # asyncpg's own reset when the connection goes back to the pool is not ours
            during = [q for q in queries if not q.startswith("SELECT pg_advisory_unlock_all")]
            queries.clear()
            again = await c.post(
                "/v1/availability:batch",
                json={"skus": ["SKU-2", "SKU-1", "SKU-NOPE", "SKU-1"], "postal_code": "69002"},
            )
            warm = [q for q in queries if not q.startswith("SELECT pg_advisory_unlock_all")]
    finally:
        await counted.close()
    assert r.status_code == 200
    # Cold cache: the stores once, then one statement for every sku at every store in range.
    assert len(during) == 2, [q[:80] for q in during]
    assert "FROM store s" in during[0] and "unnest($1::text[])" in during[1]
    # Warm cache: answered from memory, the same answer.
    assert warm == [] and again.json() == r.json()
    body = r.json()
    assert body["generated_at"] == "2026-11-23T12:00:00Z"
    assert (body["radius_km"], body["limit"], body["postal_code"]) == (25.0, 10, "69002")
    assert [(x["sku"], x["known"]) for x in body["results"]] == [
        ("SKU-2", True),
        ("SKU-1", True),
        ("SKU-NOPE", False),
    ]
    assert [s["display_text"] for s in body["results"][1]["stores"]] == [
        "In stock",
        "Only a few left",
    ]
    assert body["results"][2]["stores"] == []


async def test_batch_matches_single_lookups(app: Litestar, pool: asyncpg.Pool) -> None:
    await _world(pool)
    skus = ["SKU-1", "SKU-2"]
    async with serve_in_loop(app) as client:
        batch = (
            await client.post(
                "/v1/availability:batch",
                json={"skus": skus, "lat": LAT, "lon": LON, "radius_km": 30, "limit": 1},
            )
        ).json()
        singles = [
            (
                await client.get(
                    f"/v1/availability/{sku}",
                    params={"lat": LAT, "lon": LON, "radius_km": 30, "limit": 1},
                )
            ).json()
            for sku in skus
        ]
    assert [x["stores"] for x in batch["results"]] == [s["stores"] for s in singles]
    assert batch["results"][0]["stores"][0]["store"]["distance_km"] == pytest.approx(
        distance_km(LAT, LON, north_of(LAT, 2.0), LON), abs=1e-3
    )


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"skus": [f"S{i}" for i in range(101)], "lat": LAT, "lon": LON}, "skus"),
        ({"skus": [], "lat": LAT, "lon": LON}, "skus"),
        ({"skus": ["bad sku!"], "lat": LAT, "lon": LON}, "skus[0]"),
        ({"skus": ["SKU-1"]}, "invalid parameter: lat (give lat and lon, or postal_code)"),
        ({"skus": ["SKU-1"], "lat": LAT}, "invalid parameter: lon"),
        ({"skus": ["SKU-1"], "lat": 91, "lon": LON}, "lat"),
        ({"skus": ["SKU-1"], "lat": LAT, "lon": LON, "limit": 51}, "limit"),
        ({"skus": ["SKU-1"], "lat": LAT, "lon": LON, "radius_km": 0}, "radius_km"),
        ({"skus": ["SKU-1"], "lat": LAT, "lon": LON, "postal_code": "69002"}, "postal_code"),
        ({"skus": ["SKU-1"], "lat": LAT, "lon": LON, "qty": 0}, "qty"),
        ({"skus": ["SKU-1"], "lat": LAT, "lon": LON, "qty": 101}, "qty"),
        ({"skus": ["SKU-1"], "lat": LAT, "lon": LON, "pickup_within": -1}, "pickup_within"),
        ({"skus": ["SKU-1"], "lat": LAT, "lon": LON, "pickup_within": 1441}, "pickup_within"),
        ({"skus": ["SKU-1"], "lat": LAT, "lon": LON, "wanted": 2}, "wanted"),
    ],
)
async def test_bad_batch_bodies_are_400_naming_the_field(
    app: Litestar, pool: asyncpg.Pool, body: dict[str, Any], error: str
) -> None:
    async with serve_in_loop(app) as client:
        r = await client.post("/v1/availability:batch", json=body)
    assert r.status_code == 400
    assert error in r.json()["error"]


async def test_batch_unknown_postal_code_is_404(app: Litestar, pool: asyncpg.Pool) -> None:
    await _world(pool)
    async with serve_in_loop(app) as client:
        r = await client.post(
            "/v1/availability:batch", json={"skus": ["SKU-1"], "postal_code": "12345"}
        )
    assert r.status_code == 404
    assert r.json()["error"] == "unknown postal_code '12345'"

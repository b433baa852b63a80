"""Stores and products over HTTP: reads, upserts, CSV uploads and the admin guard."""

from __future__ import annotations

import math
from collections.abc import Callable

import asyncpg
import msgspec
from litestar import Litestar

from app.domain.geo import EARTH_RADIUS_KM
from app.settings import Settings
from tests.conftest import serve_in_loop

CSV = {"content-type": "text/csv"}
HEADER = "store_id,name,lat,lon,postal_code,timezone\n"


def north_of(lat: float, km: float) -> float:
    """Latitude ``km`` due north (distance along a meridian is exact)."""
    return lat + math.degrees(km / EARTH_RADIUS_KM)


async def _store_ids(pool: asyncpg.Pool) -> list[str]:
    return [r["store_id"] for r in await pool.fetch("SELECT store_id FROM store ORDER BY 1")]


async def test_put_get_and_list_stores(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool, admin_auth: dict[str, str]
) -> None:
    async with serve_in_loop(make_app(), headers=admin_auth) as client:
        r = await client.put(
            "/v1/stores/S001", json={"name": "Main Street", "lat": 48.85, "lon": 2.35}
        )
        assert r.status_code == 201
        assert r.json()["store_id"] == "S001" and r.json()["postal_code"] is None
        body = {
            "store_id": "S001",
            "name": "Main St",
            "lat": 48.85,
            "lon": 2.35,
            "timezone": "Europe/Paris",
        }
        r = await client.put("/v1/stores/S001", json=body)
        assert r.status_code == 200
        assert r.json()["name"] == "Main St" and r.json()["timezone"] == "Europe/Paris"
        r = await client.get("/v1/stores/S001")
        assert r.status_code == 200 and r.json()["name"] == "Main St"
        assert r.json()["updated_at"]
        await client.put("/v1/stores/A000", json={"name": "First", "lat": 0, "lon": 0})
        r = await client.get("/v1/stores")
        assert r.status_code == 200
        assert [s["store_id"] for s in r.json()["stores"]] == ["A000", "S001"]
        assert r.json()["generated_at"]
    assert await _store_ids(pool) == ["A000", "S001"]


async def test_store_errors_say_where_and_why(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool, admin_auth: dict[str, str]
) -> None:
    async with serve_in_loop(make_app(), headers=admin_auth) as client:
        r = await client.get("/v1/stores/NOPE")
        assert r.status_code == 404
        assert r.json() == {"status": 404, "error": "unknown store 'NOPE'"}

        r = await client.put(
            "/v1/stores/S001", json={"store_id": "S002", "name": "X", "lat": 1, "lon": 2}
        )
        assert r.status_code == 400
        assert r.json()["error"] == "store_id in the body ('S002') does not match the URL ('S001')"

        r = await client.put("/v1/stores/S001", json={"name": "X", "lat": 91, "lon": 2})
        assert r.status_code == 400
        assert r.json()["error"] == "invalid parameter: lat (Expected `float` <= 90.0)"

        r = await client.put(
            "/v1/stores/S001", json={"name": "X", "lat": 1, "lon": 2, "timezone": "Nowhere/Land"}
        )
        assert r.status_code == 400
        assert "timezone 'Nowhere/Land' is not an IANA time zone" in r.json()["error"]

        r = await client.put("/v1/stores/S001", json={"name": "X", "latitude": 1, "lon": 2})
        assert r.status_code == 400
        assert (
            r.json()["error"]
            == "invalid parameter: data (Object contains unknown field `latitude`)"
        )

        r = await client.put("/v1/stores/bad%20id", json={"name": "X", "lat": 1, "lon": 2})
        assert r.status_code == 400
        assert "store_id" in r.json()["error"]
    assert await _store_ids(pool) == []


async def test_nearby_store_list_is_nearest_first_within_radius(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool
) -> None:
    lat, lon = 48.0, 2.0
    rows = [
        ("FAR", north_of(lat, 10.0)),
        ("NEAR", north_of(lat, 1.0)),
        ("INSIDE", north_of(lat, 24.99)),
        ("OUTSIDE", north_of(lat, 25.01)),
    ]
    await pool.executemany(
        "INSERT INTO store (store_id, name, lat, lon) VALUES ($1, $2, $3, $4)",
        [(s, s, la, lon) for s, la in rows],
    )
    async with serve_in_loop(make_app()) as client:
        r = await client.get("/v1/stores", params={"lat": lat, "lon": lon})
        assert r.status_code == 200
        stores = r.json()["stores"]
        assert [s["store_id"] for s in stores] == ["NEAR", "FAR", "INSIDE"]
        assert [s["distance_km"] for s in stores] == [1.0, 10.0, 24.99]

        r = await client.get("/v1/stores", params={"lat": lat, "lon": lon, "radius_km": 5})
        assert [s["store_id"] for s in r.json()["stores"]] == ["NEAR"]

        r = await client.get("/v1/stores", params={"lat": lat})
        assert r.status_code == 400
        assert r.json()["error"] == "invalid parameter: lon (lat and lon go together)"

        r = await client.get("/v1/stores", params={"lat": lat, "lon": 181})
        assert r.status_code == 400
        assert r.json()["error"].startswith("invalid parameter: lon")


async def test_csv_upload_with_bad_rows_is_rejected_whole(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool, admin_auth: dict[str, str]
) -> None:
    text = (
        HEADER
        + "S001,One,48.0,2.0,,\nS002,Two,95,2.0,,\nS003,Three,48.0,2.0,,\nS001,Dup,48.0,2.0,,\n"
    )
    async with serve_in_loop(make_app(), headers=admin_auth) as client:
        r = await client.post("/v1/stores", content=text, headers=CSV)
        assert r.status_code == 422
        body = r.json()
        assert body["error"] == (
            "stores.csv rejected, nothing applied (2 problems): "
            "line 3: lat 95.0 is out of range -90..90; line 5: store_id 'S001' repeats line 2"
        )
        assert body["detail"] == {
            "problem_count": 2,
            "problems": [
                {"line": 3, "reason": "lat 95.0 is out of range -90..90"},
                {"line": 5, "reason": "store_id 'S001' repeats line 2"},
            ],
        }

        r = await client.post(
            "/v1/stores",
            content=HEADER + "S001,One,48,2,,\n",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 415
        assert "text/csv" in r.json()["error"]

        r = await client.post(
            "/v1/stores", content=b"store_id,name,lat,lon,postal_code,timezone\n\xff\n", headers=CSV
        )
        assert r.status_code == 422
        assert "line 2: not UTF-8 text" in r.json()["error"]
    assert await _store_ids(pool) == []


async def test_csv_upload_upserts(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool, admin_auth: dict[str, str]
) -> None:
    await pool.execute(
        "INSERT INTO store (store_id, name, lat, lon) VALUES ('S001', 'Old name', 48, 2)"
    )
    await pool.execute(
        "INSERT INTO store (store_id, name, lat, lon) VALUES ('S003', 'Same', 40, 3)"
    )
    text = HEADER + "S001,New name,48,2,,\nS002,Two,48.1,2.1,75002,Europe/Paris\nS003,Same,40,3,,\n"
    async with serve_in_loop(make_app(), headers=admin_auth) as client:
        r = await client.post("/v1/stores", content=text, headers=CSV)
        assert r.status_code == 200
        assert r.json() == {"received": 3, "created": 1, "updated": 1, "unchanged": 1}
    rows = await pool.fetch("SELECT store_id, name, postal_code, timezone FROM store ORDER BY 1")
    assert [tuple(r) for r in rows] == [
        ("S001", "New name", None, None),
        ("S002", "Two", "75002", "Europe/Paris"),
        ("S003", "Same", None, None),
    ]


async def test_products_put_get_and_csv(
    make_app: Callable[..., Litestar], pool: asyncpg.Pool, admin_auth: dict[str, str]
) -> None:
    async with serve_in_loop(make_app(), headers=admin_auth) as client:
        r = await client.put("/v1/products/SKU-1", json={"name": "Drill", "category": "tools"})
        assert r.status_code == 201 and r.json()["category"] == "tools"
        r = await client.put("/v1/products/SKU-1", json={"sku": "SKU-2", "name": "Drill"})
        assert r.status_code == 400
        assert r.json()["error"] == "sku in the body ('SKU-2') does not match the URL ('SKU-1')"
        r = await client.get("/v1/products/SKU-9")
        assert r.status_code == 404 and r.json()["error"] == "unknown sku 'SKU-9'"

        r = await client.post(
            "/v1/products", content="sku,name,category\nSKU-2,Saw,tools\nSKU 3,x,y\n", headers=CSV
        )
        assert r.status_code == 422
        assert r.json()["detail"]["problems"] == [
            {
                "line": 3,
                "reason": "sku 'SKU 3' is not an identifier (1 to 64 of A-Z a-z 0-9 . _ - :)",
            }
        ]
        assert await pool.fetchval("SELECT count(*) FROM product") == 1

        r = await client.post(
            "/v1/products",
            content="sku,name,category\nSKU-1,Drill,hand-tools\nSKU-2,Saw,\n",
            headers=CSV,
        )
        assert r.status_code == 200
        assert r.json() == {"received": 2, "created": 1, "updated": 1, "unchanged": 0}
        r = await client.get("/v1/products/SKU-2")
        assert r.json()["name"] == "Saw" and r.json()["category"] is None


async def test_admin_token_guards_writes_only(
    make_app: Callable[..., Litestar], settings: Settings, pool: asyncpg.Pool
) -> None:
    app = make_app(settings=msgspec.structs.replace(settings, admin_token="s3cret"))
    body = {"name": "One", "lat": 1, "lon": 2}
    async with serve_in_loop(app) as client:
        r = await client.put("/v1/stores/S001", json=body)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith("Bearer")
        assert r.json()["error"] == (
            "API key required (role admin): send 'Authorization: Bearer <key>'"
        )
        r = await client.put(
            "/v1/stores/S001", json=body, headers={"authorization": "Bearer wrong"}
        )
        assert r.status_code == 403
        r = await client.post(
            "/v1/stores",
            content=HEADER + "S001,One,1,2,,\n",
            headers={**CSV, "authorization": "Basic s3cret"},
        )
        assert r.status_code == 401
        r = await client.post("/v1/products", content="sku,name,category\nSKU-1,,\n", headers=CSV)
        assert r.status_code == 401
        assert await _store_ids(pool) == []

        r = await client.put(
            "/v1/stores/S001", json=body, headers={"authorization": "Bearer s3cret"}
        )
        assert r.status_code == 201
        r = await client.get("/v1/stores/S001")
        assert r.status_code == 200
    assert await _store_ids(pool) == ["S001"]


async def test_openapi_documents_every_endpoint(make_app: Callable[..., Litestar]) -> None:
    async with serve_in_loop(make_app()) as client:
        schema = (await client.get("/schema/openapi.json")).json()
    paths = schema["paths"]
    assert {
        "/v1/stores",
        "/v1/stores/{store_id}",
        "/v1/products",
        "/v1/products/{sku}",
        "/v1/stores/{store_id}/availability/{sku}",
        "/v1/availability/{sku}",
    } <= set(paths)
    assert "text/csv" in paths["/v1/stores"]["post"]["requestBody"]["content"]
    assert paths["/v1/stores"]["post"]["security"] == [{"adminToken": []}]
    assert "422" in paths["/v1/stores"]["post"]["responses"]
    assert schema["components"]["securitySchemes"]["adminToken"]["scheme"] == "bearer"
    nearby = paths["/v1/availability/{sku}"]["get"]
    assert nearby["tags"] == ["availability"] and nearby["summary"]
    params = {p["name"]: p for p in nearby["parameters"]}
    assert params["lat"]["required"] is False and params["radius_km"]["schema"]["maximum"] == 500
    assert params["postal_code"]["required"] is False  # lat/lon or postal_code
    batch = paths["/v1/availability:batch"]["post"]
    body_schema = batch["requestBody"]["content"]["application/json"]["schema"]
    assert body_schema["allOf"] == [{"$ref": "#/components/schemas/BatchRequest"}]
    assert body_schema["examples"][0]["postal_code"] == "69002"
    assert {
        "NearbyAvailability",
        "Availability",
        "StoreOut",
        "UpsertResult",
        "ErrorBody",
        "BatchRequest",
        "BatchAvailability",
    } <= set(schema["components"]["schemas"])

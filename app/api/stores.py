"""Stores: read them, find them near a point, and upsert them (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import asyncpg
import msgspec
import structlog
from litestar import Response, get, put
from litestar.di import NamedDependency
from litestar.exceptions import ValidationException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from app.api import reference
from app.api.auth import ADMIN_SECURITY, require_admin
from app.api.errors import error_responses
from app.api.params import (
    DEFAULT_RADIUS_KM,
    OptionalLat,
    OptionalLon,
    OptionalRadiusKm,
    StoreIdPath,
)
from app.clock import Clock
from app.db import stores as store_db
from app.domain.geo import bounding_box, distance_km
from app.domain.model import Identifier, Store
from app.reference_data import optional_text, parse_stores_csv, store_problems

log = structlog.get_logger(__name__)
TAGS = ["stores"]


class StoreBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A store to create or replace. ``store_id``, if given, must match the URL."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    postal_code: str | None = None
    timezone: Annotated[
        str | None, msgspec.Meta(description="IANA time zone, e.g. Europe/Paris")
    ] = None
    store_id: Identifier | None = None


class StoreOut(msgspec.Struct, frozen=True, kw_only=True):
    """A store; ``distance_km`` is set when the list was asked for around a point."""

    store_id: str
    name: str
    lat: float
    lon: float
    postal_code: str | None
    timezone: str | None
    updated_at: datetime
    distance_km: float | None = None


class StoreList(msgspec.Struct, frozen=True, kw_only=True):
    generated_at: datetime
    stores: list[StoreOut]


def _out(record: store_db.StoreRecord, distance: float | None = None) -> StoreOut:
    s = record.store
    return StoreOut(
        store_id=s.store_id,
        name=s.name,
        lat=s.lat,
        lon=s.lon,
        postal_code=s.postal_code,
        timezone=s.timezone,
        updated_at=record.updated_at,
        distance_km=None if distance is None else round(distance, 3),
    )


def _missing(field: str, why: str) -> ValidationException:
    return ValidationException(
        detail=f"invalid parameter: {field}",
        extra=[{"key": field, "message": why, "source": "query"}],
    )


@get(
    "/v1/stores",
    summary="List stores, or the stores near a point",
    description=(
        "Without coordinates: every store by id. With `lat` and `lon`: the stores within "
        "`radius_km` (great-circle), nearest first, each with `distance_km`."
    ),
    tags=TAGS,
    responses=error_responses(400),
    opt={"http_cache": True},
)
async def list_stores(
    pool: NamedDependency[asyncpg.Pool],
    clock: NamedDependency[Clock],
    lat: OptionalLat = None,
    lon: OptionalLon = None,
    radius_km: OptionalRadiusKm = None,
) -> StoreList:
    now = clock()
    if lat is None and lon is None:
        if radius_km is not None:
            raise _missing("lat", "radius_km needs lat and lon")
        async with pool.acquire() as conn:
            records = await store_db.list_stores(conn)
        return StoreList(generated_at=now, stores=[_out(r) for r in records])
    if lat is None or lon is None:
        raise _missing("lat" if lat is None else "lon", "lat and lon go together")
    radius = DEFAULT_RADIUS_KM if radius_km is None else radius_km
    async with pool.acquire() as conn:
        records = await store_db.stores_in_box(conn, bounding_box(lat, lon, radius))
    near = sorted(
        (
            (d, r)
            for r in records
            if (d := distance_km(lat, lon, r.store.lat, r.store.lon)) <= radius
        ),
        key=lambda dr: (dr[0], dr[1].store.store_id),
    )
    return StoreList(generated_at=now, stores=[_out(r, d) for d, r in near])


@get(
    "/v1/stores/{store_id:str}",
    summary="One store",
    tags=TAGS,
    responses=error_responses(400, 404),
    opt={"http_cache": True},
)
async def get_store(store_id: StoreIdPath, pool: NamedDependency[asyncpg.Pool]) -> StoreOut:
    return _out(await reference.get_one(pool, store_db.get_store, store_id, what="store"))


@put(
    "/v1/stores/{store_id:str}",
    summary="Create or replace a store (admin)",
    description="201 when the store is new, 200 when it existed. Body `store_id`, if given, must equal the URL's.",
    tags=TAGS,
    guards=[require_admin],
    security=ADMIN_SECURITY,
    responses=error_responses(400, 401, 403),
    status_code=HTTP_200_OK,
)
async def put_store(
    store_id: StoreIdPath, data: JSONBody[StoreBody], pool: NamedDependency[asyncpg.Pool]
) -> Response[StoreOut]:
    reference.check_body_id("store_id", data.store_id, store_id)
    store = Store(
        store_id=store_id,
        name=data.name,
        lat=data.lat,
        lon=data.lon,
        postal_code=optional_text(data.postal_code),
        timezone=optional_text(data.timezone),
    )
    reference.check_valid("store", store_problems(store))
    record, counts = await reference.replace_one(
        pool, store, store_id, upsert=store_db.upsert_stores, get=store_db.get_store
    )
    log.info("stores.put", store_id=store_id, **counts.as_log())
    return Response(_out(record), status_code=reference.put_status(counts))


STORES_EXAMPLE = "store_id,name,lat,lon,postal_code,timezone\nS001,Main Street,48.8566,2.3522,75001,Europe/Paris\n"


upload_stores = reference.csv_upsert_route(
    "/v1/stores",
    source="stores.csv",
    header="store_id,name,lat,lon,postal_code,timezone",
    example=STORES_EXAMPLE,
    tags=TAGS,
    parse=parse_stores_csv,
    upsert=store_db.upsert_stores,
    event="stores",
)

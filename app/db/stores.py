"""Stores and products in PostgreSQL: bulk upserts and the reads the API needs."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import msgspec

from app.db import Connection
from app.db.queries import Queries
from app.domain.model import Product, Store

Q = Queries("stores.sql")
Box = tuple[float, float, float, float]


class UpsertCounts(msgspec.Struct, frozen=True):
    """What a bulk upsert did: new rows, changed rows, rows already as given."""

    created: int
    updated: int
    unchanged: int

    def as_log(self) -> dict[str, int]:
        return msgspec.structs.asdict(self)


class StoreRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A stored store and when its reference data last changed."""

    store: Store
    updated_at: datetime


class ProductRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A stored product and when its reference data last changed."""

    product: Product
    updated_at: datetime


def _counts(rows: Sequence[asyncpg.Record], given: int) -> UpsertCounts:
    created = sum(1 for r in rows if r["created"])
    return UpsertCounts(created=created, updated=len(rows) - created, unchanged=given - len(rows))


def _store(row: asyncpg.Record) -> StoreRecord:
    return StoreRecord(
        store=Store(
            store_id=row["store_id"],
            name=row["name"],
            lat=row["lat"],
            lon=row["lon"],
            postal_code=row["postal_code"],
            timezone=row["timezone"],
        ),
        updated_at=row["updated_at"],
    )


async def upsert_stores(conn: Connection, stores: Sequence[Store]) -> UpsertCounts:
    """Insert or update ``stores`` in one statement (all or nothing)."""
    rows = await conn.fetch(
        Q.upsert_stores,
        [s.store_id for s in stores],
        [s.name for s in stores],
        [s.lat for s in stores],
        [s.lon for s in stores],
        [s.postal_code for s in stores],
        [s.timezone for s in stores],
    )
    return _counts(rows, len(stores))


async def upsert_products(conn: Connection, products: Sequence[Product]) -> UpsertCounts:
    """Insert or update ``products`` in one statement (all or nothing)."""
    rows = await conn.fetch(
        Q.upsert_products,
        [p.sku for p in products],
        [p.name for p in products],
        [p.category for p in products],
    )
    return _counts(rows, len(products))


async def get_store(conn: Connection, store_id: str) -> StoreRecord | None:
    row = await conn.fetchrow(Q.get_store, store_id)
    return None if row is None else _store(row)


async def list_stores(conn: Connection) -> list[StoreRecord]:
    """Every store, by id."""
    return [_store(r) for r in await conn.fetch(Q.list_stores)]


async def stores_in_box(conn: Connection, box: Box) -> list[StoreRecord]:
    """Stores inside ``(min_lat, max_lat, min_lon, max_lon)``, in no particular order."""
    return [_store(r) for r in await conn.fetch(Q.stores_in_box, *box)]


async def get_product(conn: Connection, sku: str) -> ProductRecord | None:
    row = await conn.fetchrow(Q.get_product, sku)
    if row is None:
        return None
    return ProductRecord(
        product=Product(sku=row["sku"], name=row["name"], category=row["category"]),
        updated_at=row["updated_at"],
    )

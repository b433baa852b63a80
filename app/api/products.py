"""Products: read one, and upsert them (admin). Category lets stores share what they learn."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import asyncpg
import msgspec
import structlog
from litestar import Response, get, put
from litestar.di import NamedDependency
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK

from app.api import reference
from app.api.auth import ADMIN_SECURITY, require_admin
from app.api.errors import error_responses
from app.api.params import SkuPath
from app.db import stores as store_db
from app.domain.model import Identifier, Product
from app.reference_data import optional_text, parse_products_csv, product_problems

log = structlog.get_logger(__name__)
TAGS = ["products"]


class ProductBody(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """A product to create or replace. ``sku``, if given, must match the URL."""

    name: Annotated[str | None, msgspec.Meta(description="Display name")] = None
    category: Annotated[
        str | None, msgspec.Meta(description="Category; shares learning between items")
    ] = None
    sku: Identifier | None = None


class ProductOut(msgspec.Struct, frozen=True, kw_only=True):
    sku: str
    name: str | None
    category: str | None
    updated_at: datetime


def _out(record: store_db.ProductRecord) -> ProductOut:
    p = record.product
    return ProductOut(sku=p.sku, name=p.name, category=p.category, updated_at=record.updated_at)


@get(
    "/v1/products/{sku:str}", summary="One product", tags=TAGS, responses=error_responses(400, 404)
)
async def get_product(sku: SkuPath, pool: NamedDependency[asyncpg.Pool]) -> ProductOut:
    return _out(await reference.get_one(pool, store_db.get_product, sku, what="sku"))


@put(
    "/v1/products/{sku:str}",
    summary="Create or replace a product (admin)",
    description="201 when the product is new, 200 when it existed. Body `sku`, if given, must equal the URL's.",
    tags=TAGS,
    guards=[require_admin],
    security=ADMIN_SECURITY,
    responses=error_responses(400, 401, 403),
    status_code=HTTP_200_OK,
)
async def put_product(
    sku: SkuPath, data: JSONBody[ProductBody], pool: NamedDependency[asyncpg.Pool]
) -> Response[ProductOut]:
    reference.check_body_id("sku", data.sku, sku)
    product = Product(sku=sku, name=optional_text(data.name), category=optional_text(data.category))
    reference.check_valid("product", product_problems(product))
    record, counts = await reference.replace_one(
        pool, product, sku, upsert=store_db.upsert_products, get=store_db.get_product
    )
    log.info("products.put", sku=sku, **counts.as_log())
    return Response(_out(record), status_code=reference.put_status(counts))


PRODUCTS_EXAMPLE = "sku,name,category\nSKU-0001,Cordless drill,power-tools\n"


upload_products = reference.csv_upsert_route(
    "/v1/products",
    source="products.csv",
    header="sku,name,category",
    example=PRODUCTS_EXAMPLE,
    tags=TAGS,
    parse=parse_products_csv,
    upsert=store_db.upsert_products,
    event="products",
)

"""Products: read one, and upsert them (admin). Category lets stores share what they learn."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import asyncpg
import msgspec
import structlog
from litestar import Request, Response, get, post, put
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from app.api.auth import ADMIN_SECURITY, require_admin
from app.api.csv_body import UpsertResult, csv_operation, csv_text, rejected
from app.api.errors import error_responses
from app.api.params import SkuPath
from app.db import stores as store_db
from app.domain.model import Identifier, Product
from app.reference_data import CsvRejected, optional_text, parse_products_csv, product_problems

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
    async with pool.acquire() as conn:
        record = await store_db.get_product(conn, sku)
    if record is None:
        raise NotFoundException(f"unknown sku {sku!r}")
    return _out(record)


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
    if data.sku is not None and data.sku != sku:
        raise ValidationException(
            detail=f"sku in the body ({data.sku!r}) does not match the URL ({sku!r})",
        )
    product = Product(sku=sku, name=optional_text(data.name), category=optional_text(data.category))
    if problems := product_problems(product):
        raise ValidationException(detail=f"invalid product: {'; '.join(problems)}")
    async with pool.acquire() as conn, conn.transaction():
        counts = await store_db.upsert_products(conn, [product])
        record = await store_db.get_product(conn, sku)
    assert record is not None
    log.info("products.put", sku=sku, **counts.as_log())
    return Response(_out(record), status_code=HTTP_201_CREATED if counts.created else HTTP_200_OK)


PRODUCTS_EXAMPLE = "sku,name,category\nSKU-0001,Cordless drill,power-tools\n"


@post(
    "/v1/products",
    summary="Upsert products from a products.csv (admin)",
    description=(
        "The body is a `products.csv` as in the data contract. Every row is checked first; "
        "any bad row rejects the whole file (422, with each line number and reason) and "
        "nothing is applied."
    ),
    tags=TAGS,
    guards=[require_admin],
    security=ADMIN_SECURITY,
    responses=error_responses(401, 403, 415, 422),
    operation_class=csv_operation("sku,name,category", PRODUCTS_EXAMPLE),
    status_code=HTTP_200_OK,
)
async def upload_products(
    request: Request[Any, Any, Any], pool: NamedDependency[asyncpg.Pool]
) -> UpsertResult:
    text = await csv_text(request, "products.csv")
    try:
        products = parse_products_csv(text, source="products.csv")
    except CsvRejected as exc:
        log.info("products.upload_rejected", problems=len(exc.problems))
        raise rejected(exc) from None
    async with pool.acquire() as conn, conn.transaction():
        counts = await store_db.upsert_products(conn, products)
    log.info("products.uploaded", received=len(products), **counts.as_log())
    return UpsertResult.of(len(products), counts)

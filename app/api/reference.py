"""What the store and product routes share: both are reference data keyed by an id.

Reading one (404 when unknown), replacing one (201 when new, 200 when it existed)
and upserting a CSV file of them are the same steps for either; only the repository
calls, the parser and the words differ, so the routes pass those in. The CSV upload
is the same route for both, so it is made here whole (:func:`csv_upsert_route`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, TypeVar

import asyncpg
import structlog
from litestar import Request, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.status_codes import HTTP_200_OK, HTTP_201_CREATED

from app.api.auth import ADMIN_SECURITY, require_admin
from app.api.csv_body import UpsertResult, csv_operation, csv_text, rejected
from app.api.errors import error_responses
from app.db import Connection
from app.db.stores import UpsertCounts
from app.reference_data import CsvRejected

log = structlog.get_logger(__name__)

T = TypeVar("T")
R = TypeVar("R")

Get = Callable[[Connection, str], Awaitable[R | None]]
Upsert = Callable[[Connection, Sequence[T]], Awaitable[UpsertCounts]]


class CsvParser(Protocol[T]):
    """A reference-data parser: every row of the file, or :class:`CsvRejected`."""

    def __call__(self, text: str, *, source: str) -> list[T]: ...


async def get_one(pool: asyncpg.Pool, get: Get[R], key: str, *, what: str) -> R:
    """The record under ``key``; 404 naming ``what`` was asked for when there is none."""
    async with pool.acquire() as conn:
        record = await get(conn, key)
    if record is None:
        raise NotFoundException(f"unknown {what} {key!r}")
    return record


def check_body_id(field: str, in_body: str | None, in_url: str) -> None:
    """The body may repeat the URL's id but not contradict it (400 saying both)."""
    if in_body is not None and in_body != in_url:
        raise ValidationException(
            detail=f"{field} in the body ({in_body!r}) does not match the URL ({in_url!r})",
        )


def check_valid(what: str, problems: list[str]) -> None:
    """400 listing every problem, so a client fixes them all in one go."""
    if problems:
        raise ValidationException(detail=f"invalid {what}: {'; '.join(problems)}")


async def replace_one(
    pool: asyncpg.Pool, item: T, key: str, *, upsert: Upsert[T], get: Get[R]
) -> tuple[R, UpsertCounts]:
    """Upsert ``item`` and read it back in one transaction, so the answer is what was stored."""
    async with pool.acquire() as conn, conn.transaction():
        counts = await upsert(conn, [item])
        record = await get(conn, key)
    assert record is not None
    return record, counts


def put_status(counts: UpsertCounts) -> int:
    """201 when the PUT created the item, 200 when it replaced (or kept) one."""
    return HTTP_201_CREATED if counts.created else HTTP_200_OK


async def upsert_csv(
    request: Request[Any, Any, Any],
    pool: asyncpg.Pool,
    *,
    source: str,
    parse: CsvParser[T],
    upsert: Upsert[T],
    event: str,
) -> UpsertResult:
    """Parse the CSV body whole (422 with every bad line, nothing applied), then upsert
    it in one transaction; ``event`` prefixes the log lines (``products``, ``stores``)."""
    text = await csv_text(request, source)
    try:
        items = parse(text, source=source)
    except CsvRejected as exc:
        log.info(f"{event}.upload_rejected", problems=len(exc.problems))
        raise rejected(exc) from None
    async with pool.acquire() as conn, conn.transaction():
        counts = await upsert(conn, items)
    log.info(f"{event}.uploaded", received=len(items), **counts.as_log())
    return UpsertResult.of(len(items), counts)


def csv_upsert_route(
    path: str,
    *,
    source: str,
    header: str,
    example: str,
    tags: list[str],
    parse: CsvParser[T],
    upsert: Upsert[T],
    event: str,
) -> HTTPRouteHandler:
    """``POST path`` (admin): upsert a ``source`` file as in the data contract; the
    stores and products uploads differ only in these arguments."""

    async def upload(
        request: Request[Any, Any, Any], pool: NamedDependency[asyncpg.Pool]
    ) -> UpsertResult:
        return await upsert_csv(
            request, pool, source=source, parse=parse, upsert=upsert, event=event
        )

    upload.__name__ = upload.__qualname__ = f"upload_{event}"  # names the OpenAPI operation
    return post(
        path,
        summary=f"Upsert {event} from a {source} (admin)",
        description=(
            f"The body is a `{source}` as in the data contract. Every row is checked first; "
            "any bad row rejects the whole file (422, with each line number and reason) and "
            "nothing is applied."
        ),
        tags=tags,
        guards=[require_admin],
        security=ADMIN_SECURITY,
        responses=error_responses(401, 403, 415, 422),
        operation_class=csv_operation(header, example),
        status_code=HTTP_200_OK,
    )(upload)

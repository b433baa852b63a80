"""``text/csv`` request bodies: reading one, describing it in OpenAPI, and the 422
that refuses a body whole (CSV lines here, JSON items in :mod:`app.api.feedback`).

Litestar decodes JSON bodies itself; a CSV upload is read raw and handed to the
shared parser in :mod:`app.reference_data`, which judges it exactly as it judges
the start-up files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Request
from litestar.exceptions import HTTPException
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.status_codes import HTTP_415_UNSUPPORTED_MEDIA_TYPE, HTTP_422_UNPROCESSABLE_ENTITY

from app.db.stores import UpsertCounts
from app.reference_data import CsvRejected, decode_csv_bytes

CSV_MEDIA_TYPES = frozenset({"text/csv", "application/csv", "text/plain"})
MAX_LISTED_PROBLEMS = 1000


class UpsertResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a bulk upload did. Rows already as given are left untouched."""

    received: int
    created: int
    updated: int
    unchanged: int

    @classmethod
    def of(cls, received: int, counts: UpsertCounts) -> UpsertResult:
        return cls(
            received=received,
            created=counts.created,
            updated=counts.updated,
            unchanged=counts.unchanged,
        )


def csv_operation(header: str, example: str) -> type[Operation]:
    """An OpenAPI operation whose request body is a CSV file with ``header``."""

    @dataclass
    class CsvOperation(Operation):
        def __post_init__(self) -> None:
            self.request_body = RequestBody(
                description=f"A CSV file; header exactly `{header}`.",
                required=True,
                content={
                    "text/csv": OpenAPIMediaType(
                        schema=Schema(type=OpenAPIType.STRING), example=example
                    )
                },
            )

    return CsvOperation


async def csv_text(request: Request[Any, Any, Any], source: str) -> str:
    """The body as text; 415 unless it is sent as CSV."""
    media_type = request_media_type(request)
    if media_type not in CSV_MEDIA_TYPES:
        raise HTTPException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail=f"send {source} as Content-Type: text/csv (got {media_type or 'none'})",
        )
    try:
        return decode_csv_bytes(await request.body(), source)
    except CsvRejected as exc:
        raise rejected(exc) from None


def request_media_type(request: Request[Any, Any, Any]) -> str:
    """The body's media type, bare and lower-case (``""`` when none was sent)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def rejected(exc: CsvRejected) -> HTTPException:
    """422 carrying every line problem (up to a bound) and the total count."""
    return unprocessable(exc.message, exc.problems)


def unprocessable(detail: str, problems: Sequence[msgspec.Struct]) -> HTTPException:
    """422 for a body refused whole: every problem (up to a bound) with its fields, and
    the total count. Shared by CSV lines and JSON items so both refusals read alike."""
    return HTTPException(
        status_code=HTTP_422_UNPROCESSABLE_ENTITY,
        detail=detail,
        extra={
            "problem_count": len(problems),
            "problems": [msgspec.structs.asdict(p) for p in problems[:MAX_LISTED_PROBLEMS]],
        },
    )

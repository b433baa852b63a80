"""The store managers' reconciliation report: a streamed CSV and its totals.

``GET /v1/stores/{store_id}/reconciliation.csv``: one row per item that needs a
look, highest priority first (docs/managers.md). ``GET
/v1/stores/{store_id}/reconciliation/summary``: items and priority per suggested
action, items per reason. Both for ``admin`` keys and the store's managers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg
import msgspec
import structlog
from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.response import Stream

from app.api.auth import ADMIN_SECURITY, require_role
from app.api.errors import error_responses
from app.api.params import StoreIdPath
from app.clock import Clock
from app.db import reports as reports_db
from app.domain.reconciliation import iso

log = structlog.get_logger(__name__)
TAGS = ["managers"]
CSV_MEDIA_TYPE = "text/csv"  # Litestar adds "; charset=utf-8"
require_store_access = require_role("store_manager", store_param="store_id")


class ActionTotal(msgspec.Struct, frozen=True, kw_only=True):
    items: int
    priority: float


class ReportSummary(msgspec.Struct, frozen=True, kw_only=True):
    """Totals of the report (the same rows as the CSV)."""

    store_id: str
    generated_at: str
    positions: int
    items: int
    by_action: dict[str, ActionTotal]
    by_reason: dict[str, int]


async def _known(pool: asyncpg.Pool, store_id: str) -> None:
    async with pool.acquire() as conn:
        if not await reports_db.store_known(conn, store_id):
            raise NotFoundException(f"unknown store {store_id!r}")


def report_filename(store_id: str, now: datetime) -> str:
    return f"reconciliation-{store_id}-{iso(now)[:10]}.csv"


@get(
    "/v1/stores/{store_id:str}/reconciliation.csv",
    guards=[require_store_access],
    security=ADMIN_SECURITY,
    tags=TAGS,
    summary="Reconciliation report of one store (CSV, streamed; admin or its manager)",
    description=(
        "One row per item that needs a look (records disagree, badge held back, phantom "
        "stock suspected, old count on a fast seller), highest priority first: the "
        "expected sales that fixing the record protects. Spreadsheet-safe UTF-8 CSV."
    ),
    responses=error_responses(401, 403, 404),
)
async def reconciliation_csv(
    store_id: StoreIdPath, pool: NamedDependency[asyncpg.Pool], clock: NamedDependency[Clock]
) -> Stream:
    await _known(pool, store_id)
    now = clock()

    async def body() -> AsyncIterator[bytes]:
        sent = 0
        async with (
            pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            async for chunk in reports_db.report_csv(conn, store_id, now=now):
                sent += len(chunk)
                yield chunk
        log.info("report.served", store_id=store_id, bytes=sent)

    return Stream(
        body(),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{report_filename(store_id, now)}"'},
    )


@get(
    "/v1/stores/{store_id:str}/reconciliation/summary",
    guards=[require_store_access],
    security=ADMIN_SECURITY,
    tags=TAGS,
    summary="Totals of the reconciliation report per action and reason",
    responses=error_responses(401, 403, 404),
)
async def reconciliation_summary(
    store_id: StoreIdPath, pool: NamedDependency[asyncpg.Pool], clock: NamedDependency[Clock]
) -> ReportSummary:
    await _known(pool, store_id)
    now = clock()
    async with pool.acquire() as conn:
        positions, by_action, by_reason = await reports_db.review_summary(conn, store_id, now=now)
    return ReportSummary(
        store_id=store_id,
        generated_at=iso(now),
        positions=positions,
        items=sum(n for n, _ in by_action.values()),
        by_action={a: ActionTotal(items=n, priority=p) for a, (n, p) in by_action.items()},
        by_reason=by_reason,
    )

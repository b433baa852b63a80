"""Admin API (role ``admin``): feeds and their state, pull now, quarantined snapshots.

Every route is guarded by ``require_admin``. The feeds come from the ``feed`` table
(configured or not: a feed removed from the feeds file keeps its row); "pull now"
runs the configured feed through the same locked runner as the scheduler, so a run
already in flight (here or in another process) makes it ``skipped``. A quarantined
snapshot that kept its rows (it parsed, but its row count fell too far) can be
released: applied whole through the same path as a pull, unless something newer is
already in force (409 naming it).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import asyncpg
import msgspec
import structlog
from litestar import Request, get, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException, NotFoundException
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import PathParameter, QueryParameter
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from app.api.auth import ADMIN_SECURITY, require_admin
from app.api.errors import ErrorBody, error_responses
from app.clock import Clock
from app.db import admin as admin_db
from app.db import feeds as feed_db
from app.domain.model import ID_PATTERN
from app.domain.policy import Policy

log = structlog.get_logger(__name__)
TAGS = ["admin"]
MAX_SNAPSHOTS = 500

FeedNamePath = Annotated[
    str,
    PathParameter(
        pattern=ID_PATTERN,
        max_length=64,
        description="Feed name, as in the feeds file (1 to 64 of A-Z a-z 0-9 . _ - :).",
    ),
]
SnapshotIdPath = Annotated[
    int, PathParameter(ge=1, le=2**63 - 1, description="Warehouse snapshot id.")
]


def _spec(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorBody, description=description, generate_examples=False)


_NOT_FOUND = _spec("No such feed or snapshot.")
_CONFLICT = _spec("The snapshot cannot be released; the message says why.")
_UNAVAILABLE = _spec("The reconcilers are not running (shutting down).")


class FeedOut(feed_db.FeedState, frozen=True, kw_only=True):
    """A feed's state (the ``feed`` table) and whether the feeds file still names it.

    ``url`` is shown without credentials or query (tokens, cursors).
    """

    configured: bool


class FeedList(msgspec.Struct, frozen=True, kw_only=True):
    feeds: list[FeedOut]


class PullResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a pull run did, and the feed's state after it."""

    outcome: str
    pages: int
    events_new: int
    events_duplicate: int
    rows: int
    positions: int
    detail: str | None
    feed: FeedOut


class SnapshotOut(admin_db.SnapshotInfo, frozen=True, kw_only=True):
    releasable: bool  # quarantined with its rows kept


class SnapshotList(msgspec.Struct, frozen=True, kw_only=True):
    snapshots: list[SnapshotOut]


class ReleaseResult(msgspec.Struct, frozen=True, kw_only=True):
    snapshot_id: int
    rows: int
    positions: int
    detail: str | None


def redacted_url(url: str) -> str:
    """The URL without userinfo or query: what may be shown and logged."""
    import httpx

    try:
        return str(httpx.URL(url).copy_with(query=None, userinfo=b"", fragment=None))
    except (httpx.InvalidURL, ValueError):
        return "<unparseable url>"


def _feed_out(state: feed_db.FeedState, configured: set[str]) -> FeedOut:
    return FeedOut(
        **{
            f: getattr(state, f)
            for f in FeedOut.__struct_fields__
            if f not in {"url", "configured"}
        },
        url=redacted_url(state.url),
        configured=state.name in configured,
    )


def _configured(request: Request[Any, Any, Any]) -> set[str]:
    reconcilers = getattr(request.app.state, "reconcilers", None)
    return set(reconcilers.feed_names) if reconcilers is not None else set()


@get(
    "/v1/admin/feeds",
    summary="Feeds and their state (admin)",
    description="Every feed the database knows, by name: resume point, last success, last error.",
    tags=TAGS,
    guards=[require_admin],
    security=ADMIN_SECURITY,
    responses=error_responses(401, 403),
)
async def list_feeds(
    request: Request[Any, Any, Any], pool: NamedDependency[asyncpg.Pool]
) -> FeedList:
    async with pool.acquire() as conn:
        states = await feed_db.list_feeds(conn)
    configured = _configured(request)
    return FeedList(feeds=[_feed_out(s, configured) for s in states])


@post(
    "/v1/admin/feeds/{name:str}/pull",
    summary="Pull a feed now (admin)",
    description=(
        "Runs the feed once, now, through the scheduler's locked runner, and answers when "
        "it ends. `outcome` is `skipped` when a run of that feed is already in flight. "
        "A failed run answers 200 too: the outcome and the feed's state say why."
    ),
    tags=TAGS,
    guards=[require_admin],
    security=ADMIN_SECURITY,
    responses={**error_responses(400, 401, 403), 404: _NOT_FOUND, 503: _UNAVAILABLE},
    status_code=HTTP_200_OK,
)
async def pull_feed_now(
    name: FeedNamePath,
    request: Request[Any, Any, Any],
    pool: NamedDependency[asyncpg.Pool],
) -> PullResult:
    from reconcilers.scheduler import UnknownFeed

    reconcilers = getattr(request.app.state, "reconcilers", None)
    if reconcilers is None:
        raise HTTPException(
            "the reconcilers are not running", status_code=HTTP_503_SERVICE_UNAVAILABLE
        )
    log.info("admin.pull_requested", feed=name)
    try:
        outcome = await reconcilers.run_now(name)
    except UnknownFeed as exc:
        raise NotFoundException(str(exc)) from None
    except RuntimeError as exc:
        raise HTTPException(str(exc), status_code=HTTP_503_SERVICE_UNAVAILABLE) from None
    async with pool.acquire() as conn:
        state = await feed_db.get_feed(conn, name)
    assert state is not None, "a configured feed always has its row"
    # The run's counts as jobs logs them (PullOutcome's fields), and the feed's state.
    return PullResult(
        **msgspec.structs.asdict(outcome), feed=_feed_out(state, set(reconcilers.feed_names))
    )


def _snapshot_out(info: admin_db.SnapshotInfo) -> SnapshotOut:
    return SnapshotOut(
        **msgspec.structs.asdict(info),
        releasable=info.status == "quarantined" and info.rows_kept > 0,
    )


@get(
    "/v1/admin/snapshots",
    summary="Warehouse snapshots, newest first (admin)",
    description="By default the quarantined ones; `status=all` for every snapshot.",
    tags=TAGS,
    guards=[require_admin],
    security=ADMIN_SECURITY,
    responses=error_responses(400, 401, 403),
)
async def list_snapshots(
    pool: NamedDependency[asyncpg.Pool],
    status: Annotated[
        Literal["quarantined", "applied", "all"],
        QueryParameter(description="Which snapshots: quarantined (default), applied or all."),
    ] = "quarantined",
    feed: Annotated[
        str | None, QueryParameter(pattern=ID_PATTERN, max_length=64, description="Only this feed.")
    ] = None,
    limit: Annotated[
        int, QueryParameter(ge=1, le=MAX_SNAPSHOTS, description="At most this many.")
    ] = 50,
) -> SnapshotList:
    async with pool.acquire() as conn:
        infos = await admin_db.list_snapshots(
            conn, status=None if status == "all" else status, feed=feed, limit=limit
        )
    return SnapshotList(snapshots=[_snapshot_out(i) for i in infos])


@post(
    "/v1/admin/snapshots/{snapshot_id:int}/release",
    summary="Release a quarantined snapshot (admin)",
    description=(
        "Applies a quarantined snapshot's kept rows whole, as a pull would have, and saves "
        "its ETag. 409 when it is not quarantined, kept no rows (it did not parse), or is "
        "older than what is in force (a later snapshot of its feed, or newer stock at a "
        "location it names)."
    ),
    tags=TAGS,
    guards=[require_admin],
    security=ADMIN_SECURITY,
    responses={**error_responses(400, 401, 403), 404: _NOT_FOUND, 409: _CONFLICT},
    status_code=HTTP_200_OK,
)
async def release_snapshot(
    snapshot_id: SnapshotIdPath,
    pool: NamedDependency[asyncpg.Pool],
    policy: NamedDependency[Policy],
    clock: NamedDependency[Clock],
) -> ReleaseResult:
    from reconcilers.warehouse import ReleaseRefused
    from reconcilers.warehouse import release_snapshot as release

    try:
        outcome = await release(pool, snapshot_id, policy=policy, clock=clock)
    except ReleaseRefused as exc:
        log.info("admin.release_refused", snapshot_id=snapshot_id, reason=str(exc))
        raise HTTPException(str(exc), status_code=exc.status) from None
    return ReleaseResult(
        snapshot_id=snapshot_id,
        rows=outcome.rows,
        positions=outcome.positions,
        detail=outcome.detail,
    )


def admin_handlers() -> list[object]:
    return [list_feeds, pull_feed_now, list_snapshots, release_snapshot]

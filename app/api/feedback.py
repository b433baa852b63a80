"""``POST /v1/feedback``: what staff and orders observed on the shelf.

The body is a JSON batch (``{"feedback": [...]}``) or a ``feedback.csv`` as in the
data contract (``observed_at,store_id,sku,kind,qty``, an optional trailing
``published_at`` column is ignored). The whole batch is checked first; any bad item
rejects it (422, every item or line with its reason) and nothing is stored. A good
batch is stored idempotently by its natural key (store_id, sku, kind, observed_at,
qty) and the pairs that got a new shelf count have their position and badge
recomputed in the same transaction. See docs/feedback.md.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, cast

import asyncpg
import msgspec
import structlog
from litestar import Request, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.openapi.spec import (
    OpenAPIFormat,
    OpenAPIMediaType,
    OpenAPIType,
    Operation,
    RequestBody,
    Schema,
)
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_415_UNSUPPORTED_MEDIA_TYPE,
)

from app.api.auth import ADMIN_SECURITY, require_ingest
from app.api.csv_body import CSV_MEDIA_TYPES, rejected, request_media_type, unprocessable
from app.api.errors import error_responses
from app.clock import Clock
from app.db import feedback as feedback_db
from app.db.engine_state import binding
from app.domain.model import ID_PATTERN, OBSERVATION_MAX_AHEAD, Timestamp
from app.domain.policy import Policy
from app.reference_data import (
    CsvRejected,
    LineProblem,
    csv_lines,
    decode_csv_bytes,
    identifier_problem,
)

log = structlog.get_logger(__name__)
TAGS = ["feedback"]

MAX_ITEMS = 10_000
MAX_QTY = 2**31 - 1
SHOWN_PROBLEMS = 20
CSV_HEADER = ("observed_at", "store_id", "sku", "kind", "qty")
CSV_HEADER_PUBLISHED = (*CSV_HEADER, "published_at")
JSON_MEDIA_TYPES = frozenset({"application/json"})
_KINDS = ", ".join(feedback_db.FEEDBACK_KINDS)
_WHOLE = re.compile(r"[+-]?[0-9]+")


# --- request and response bodies -------------------------------------------------


class FeedbackItem(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """One observation (the JSON item; the CSV has the same columns)."""

    observed_at: Annotated[
        str, msgspec.Meta(description="RFC 3339 with an offset, e.g. 2026-11-23T10:01:02Z")
    ]
    store_id: Annotated[str, msgspec.Meta(description="Store identifier")]
    sku: Annotated[str, msgspec.Meta(description="Product identifier")]
    kind: Annotated[str, msgspec.Meta(description=f"One of {_KINDS}")]
    qty: Annotated[
        int,
        msgspec.Meta(
            description="shelf_count: units counted; pick_found: units wanted (all found, ≥ 1); "
            "pick_short: units found (0: none)"
        ),
    ]


class FeedbackBatch(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The JSON body: up to 10,000 observations."""

    feedback: list[msgspec.Raw]


class FeedbackResult(msgspec.Struct, frozen=True, kw_only=True):
    """What a batch did. Observations already stored count as duplicates."""

    received: int
    stored: int
    duplicates: int
    positions_recomputed: Annotated[
        int, msgspec.Meta(description="Book positions recomputed for new shelf counts")
    ]
    stored_by_kind: dict[str, int]


class ItemProblem(msgspec.Struct, frozen=True):
    """One reason a JSON item was refused; ``item`` is its 0-based index."""

    item: int
    reason: str


class FeedbackRejected(ValueError):
    """A JSON batch was refused whole."""

    def __init__(self, problems: list[ItemProblem], *, summary: str | None = None) -> None:
        self.problems = problems
        n = len(problems)
        shown = "; ".join(
            f"$.feedback[{p.item}]: {p.reason}" if p.item >= 0 else p.reason
            for p in problems[:SHOWN_PROBLEMS]
        )
        more = f"; and {n - SHOWN_PROBLEMS} more" if n > SHOWN_PROBLEMS else ""
        self.message = summary or (
            f"feedback rejected, nothing stored ({n} problem{'s' * (n != 1)}): {shown}{more}"
        )
        super().__init__(self.message)


# --- validation (pure) -----------------------------------------------------------


def observation(
    observed_at: str, store_id: str, sku: str, kind: str, qty: int | None, *, now: datetime
) -> tuple[feedback_db.Observation | None, list[str]]:
    """The observation, or ``None`` and every reason it is refused.

    ``qty`` is ``None`` when it was not a whole number (the caller said so already).
    """
    problems: list[str] = []
    when: datetime | None = None
    try:
        when = msgspec.convert(observed_at, Timestamp)
    except msgspec.ValidationError:
        problems.append(
            f"observed_at {observed_at!r} is not an RFC 3339 timestamp with an offset "
            "(e.g. 2026-11-23T10:01:02Z)"
        )
    # A device clock a little ahead is tolerated (the observation applies when its time
    # comes); further ahead is a mistake and rejected.
    if when is not None and when > now + OBSERVATION_MAX_AHEAD:
        problems.append(
            f"observed_at {observed_at} is in the future (more than "
            f"{OBSERVATION_MAX_AHEAD.total_seconds() / 60:g} minutes after the service's clock)"
        )
    for field, value in (("store_id", store_id), ("sku", sku)):
        if bad := identifier_problem(field, value):
            problems.append(bad)
    if kind not in feedback_db.FEEDBACK_KINDS:
        problems.append(f"kind {kind!r} is not one of {_KINDS}")
    if qty is None:
        pass
    elif qty < 0:
        problems.append(f"qty {qty} is negative")
    elif qty > MAX_QTY:
        problems.append(f"qty {qty} is too large (at most {MAX_QTY})")
    elif kind == "pick_found" and qty == 0:
        problems.append("qty 0 for pick_found: qty is the units the pick wanted, at least 1")
    if problems or when is None or qty is None:
        return None, problems
    item = feedback_db.Observation(
        observed_at=when,
        store_id=store_id,
        sku=sku,
        kind=cast(feedback_db.FeedbackKind, kind),  # checked against FEEDBACK_KINDS above
        qty=qty,
    )
    return item, []


def parse_feedback_json(body: bytes, *, now: datetime) -> list[feedback_db.Observation]:
    """Every item of a JSON batch; :class:`FeedbackRejected` when anything is wrong."""
    try:
        batch = msgspec.json.decode(body, type=FeedbackBatch)
    except msgspec.ValidationError as exc:
        raise FeedbackRejected(
            [], summary=f"feedback rejected, nothing stored: body is not a feedback batch: {exc}"
        ) from None
    except msgspec.DecodeError as exc:
        raise FeedbackRejected(
            [], summary=f"feedback rejected, nothing stored: body is not valid JSON: {exc}"
        ) from None
    _check_size(len(batch.feedback))
    items: list[feedback_db.Observation] = []
    problems: list[ItemProblem] = []
    for i, raw in enumerate(batch.feedback):
        try:
            fields = msgspec.json.decode(raw, type=FeedbackItem)
        except msgspec.ValidationError as exc:
            problems.append(ItemProblem(i, _relative(str(exc))))
            continue
        item, reasons = observation(
            fields.observed_at, fields.store_id, fields.sku, fields.kind, fields.qty, now=now
        )
        problems.extend(ItemProblem(i, r) for r in reasons)
        if item is not None:
            items.append(item)
    if problems:
        raise FeedbackRejected(problems)
    return items


def parse_feedback_csv(
    text: str, *, now: datetime, source: str = "feedback.csv"
) -> list[feedback_db.Observation]:
    """Every row of a ``feedback.csv``; :class:`CsvRejected` when anything is wrong."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    try:
        header = next(reader, None)
    except csv.Error as exc:
        raise CsvRejected(source, [LineProblem(1, f"not valid CSV: {exc}")]) from None
    if header is None or tuple(header) not in (CSV_HEADER, CSV_HEADER_PUBLISHED):
        got = "an empty file" if header is None else repr(",".join(header))
        expected = ",".join(CSV_HEADER)
        raise CsvRejected(
            source,
            [
                LineProblem(
                    1, f"header must be {expected!r} (optionally ',published_at'), got {got}"
                )
            ],
        )
    width = len(header)
    items: list[feedback_db.Observation] = []
    problems: list[LineProblem] = []
    rows = 0
    for line, fields in csv_lines(reader, problems):
        if fields:  # a blank line carries nothing
            rows += 1
            _check_size(rows)
            if len(fields) != width:
                problems.append(LineProblem(line, f"expected {width} fields, got {len(fields)}"))
            else:
                observed_at, store_id, sku, kind, qty_text = fields[:5]
                qty, reasons = _whole_number("qty", qty_text)
                item, more = observation(observed_at, store_id, sku, kind, qty, now=now)
                problems.extend(LineProblem(line, r) for r in [*reasons, *more])
                if item is not None:
                    items.append(item)
    if problems:
        raise CsvRejected(source, problems)
    return items


def _whole_number(field: str, text: str) -> tuple[int | None, list[str]]:
    value = text.strip()
    if not value:
        return None, [f"{field} is empty"]
    if not _WHOLE.fullmatch(value):
        return None, [f"{field} {text!r} is not a whole number"]
    return int(value), []


def _check_size(n: int) -> None:
    if n > MAX_ITEMS:
        raise FeedbackRejected(
            [],
            summary=f"feedback rejected, nothing stored: {n} items, at most {MAX_ITEMS} "
            "per batch; send it in parts",
        )


def _relative(message: str) -> str:
    """msgspec's message for one item, its path made relative to the item."""
    return message.replace("`$.", "`").replace(" - at `$`", "")


# --- OpenAPI ---------------------------------------------------------------------

_ITEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=list(CSV_HEADER),
    properties={
        "observed_at": Schema(
            type=OpenAPIType.STRING,
            format=OpenAPIFormat.DATE_TIME,
            description="RFC 3339 with an offset",
        ),
        "store_id": Schema(type=OpenAPIType.STRING, pattern=ID_PATTERN, max_length=64),
        "sku": Schema(type=OpenAPIType.STRING, pattern=ID_PATTERN, max_length=64),
        "kind": Schema(type=OpenAPIType.STRING, enum=list(feedback_db.FEEDBACK_KINDS)),
        "qty": Schema(
            type=OpenAPIType.INTEGER,
            minimum=0,
            description="shelf_count: units counted; pick_found: units wanted (≥ 1); "
            "pick_short: units found (0: none)",
        ),
    },
)
JSON_EXAMPLE = {
    "feedback": [
        {
            "observed_at": "2026-11-23T10:01:02Z",
            "store_id": "S001",
            "sku": "SKU-0001",
            "kind": "shelf_count",
            "qty": 4,
        },
        {
            "observed_at": "2026-11-23T10:05:00+01:00",
            "store_id": "S001",
            "sku": "SKU-0002",
            "kind": "pick_short",
            "qty": 0,
        },
    ]
}
CSV_EXAMPLE = (
    "observed_at,store_id,sku,kind,qty\n"
    "2026-11-23T10:01:02Z,S001,SKU-0001,shelf_count,4\n"
    "2026-11-23T10:05:00Z,S001,SKU-0002,pick_found,2\n"
)


@dataclass
class FeedbackOperation(Operation):
    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            description=f"A JSON batch (at most {MAX_ITEMS} items) or a feedback.csv.",
            required=True,
            content={
                "application/json": OpenAPIMediaType(
                    schema=Schema(
                        type=OpenAPIType.OBJECT,
                        required=["feedback"],
                        properties={
                            "feedback": Schema(
                                type=OpenAPIType.ARRAY, items=_ITEM_SCHEMA, max_items=MAX_ITEMS
                            )
                        },
                    ),
                    example=JSON_EXAMPLE,
                ),
                "text/csv": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING), example=CSV_EXAMPLE
                ),
            },
        )


# --- the handler -----------------------------------------------------------------


@post(
    "/v1/feedback",
    summary="Report what staff and orders observed on the shelf (role ingest)",
    description=(
        'Shelf counts and pick outcomes, as a JSON batch (`{"feedback": [...]}`) or a '
        "`feedback.csv` (`observed_at,store_id,sku,kind,qty`, optional trailing `published_at` "
        "ignored). The whole batch is checked first; any bad item rejects it (422, every item "
        "or line and reason) and nothing is stored. Re-posting an observation (same store, sku, "
        "kind, observed_at and qty) changes nothing. A `shelf_count` acts as a count in the book "
        "position; the affected badges are recomputed before the answer."
    ),
    tags=TAGS,
    guards=[require_ingest],
    security=ADMIN_SECURITY,
    responses=error_responses(401, 403, 415, 422),
    operation_class=FeedbackOperation,
    status_code=HTTP_200_OK,
)
async def post_feedback(
    request: Request[Any, Any, Any],
    pool: NamedDependency[asyncpg.Pool],
    policy: NamedDependency[Policy],
    clock: NamedDependency[Clock],
) -> FeedbackResult:
    media_type = request_media_type(request)
    body_format: Literal["json", "csv"]
    if media_type in JSON_MEDIA_TYPES:
        body_format = "json"
    elif media_type in CSV_MEDIA_TYPES:
        body_format = "csv"
    else:
        raise HTTPException(
            status_code=HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            detail="send feedback as Content-Type: application/json or text/csv "
            f"(got {media_type or 'none'})",
        )
    now = clock()
    body = await request.body()
    try:
        if body_format == "json":
            items = parse_feedback_json(body, now=now)
        else:
            items = parse_feedback_csv(decode_csv_bytes(body, "feedback.csv"), now=now)
    except FeedbackRejected as exc:
        log.info("feedback.rejected", format=body_format, problems=len(exc.problems))
        raise unprocessable(exc.message, exc.problems) from None
    except CsvRejected as exc:
        log.info("feedback.rejected", format=body_format, problems=len(exc.problems))
        raise rejected(exc) from None
    reconcilers = getattr(request.app.state, "reconcilers", None)
    with binding(None if reconcilers is None else reconcilers.live):  # the engine assesses
        async with pool.acquire() as conn:
            stored = await feedback_db.store_feedback(conn, items, policy=policy, now=now)
    log.info(
        "feedback.received",
        format=body_format,
        received=len(items),
        stored=stored.stored,
        duplicates=stored.duplicates,
        positions=stored.positions,
        stores=len({i.store_id for i in items}),
        **{f"stored_{kind}": n for kind, n in stored.stored_by_kind.items()},
    )
    return FeedbackResult(
        received=len(items),
        stored=stored.stored,
        duplicates=stored.duplicates,
        positions_recomputed=stored.positions,
        stored_by_kind=stored.stored_by_kind,
    )

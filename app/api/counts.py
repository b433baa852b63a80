"""``POST /v1/stores/{store_id}/counts``: a store manager's counts, from a spreadsheet.

The body is a CSV with the columns ``sku,counted_qty,counted_at`` and optionally
``note`` and ``store_id`` (any order; ``,`` or ``;`` between fields, as spreadsheets
in many locales save). The whole file is checked first; any bad row rejects it (422,
every line and reason, as JSON or, when the client accepts ``text/csv``, as a CSV of
``line,reason``) and nothing is applied. A good file is applied in one transaction
(``app/db/counts.py``), idempotently. See docs/managers.md.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime
from typing import Any

import asyncpg
import msgspec
import structlog
from litestar import Request, Response, post
from litestar.di import NamedDependency
from litestar.exceptions import HTTPException
from litestar.status_codes import HTTP_200_OK, HTTP_422_UNPROCESSABLE_ENTITY

from app.api.auth import ADMIN_SECURITY, check_store, principal_of, require_role
from app.api.csv_body import csv_operation, csv_text, rejected
from app.api.errors import error_responses
from app.api.params import StoreIdPath
from app.clock import Clock
from app.db import counts as counts_db
from app.domain.model import OBSERVATION_MAX_AHEAD, Timestamp
from app.domain.policy import Policy
from app.domain.reconciliation import uncell
from app.reference_data import CsvRejected, LineProblem, csv_lines, identifier_problem

log = structlog.get_logger(__name__)

SOURCE = "counts.csv"
REQUIRED = ("sku", "counted_qty", "counted_at")
OPTIONAL = ("note", "store_id")
MAX_ROWS = 100_000
MAX_QTY = 2**31 - 1
MAX_NOTE = 500
LISTED_CHANGES = 1_000
_WHOLE = re.compile(r"[+]?[0-9]+")
EXAMPLE = (
    "sku,counted_qty,counted_at,note\n"
    "SKU-0001,4,2026-11-23T10:01:02Z,shelf and back room\n"
    "SKU-0002,0,2026-11-23T10:05:00+01:00,\n"
)


class CountsResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an upload did; ``changes`` lists the book positions it moved."""

    received: int
    stored: int
    duplicates: int
    positions_recomputed: int
    records_changed: int
    units_added: int
    units_removed: int
    changes: list[counts_db.CountChange]
    changes_listed: int


class CountsRejected(CsvRejected):
    """A refused upload, with the store ids it named (a foreign one is a 403)."""

    def __init__(self, problems: list[LineProblem], stores: set[str]) -> None:
        super().__init__(SOURCE, problems)
        self.stores = stores


def _delimiter(header_line: str) -> str:
    return ";" if ";" in header_line and "," not in header_line else ","


def parse_counts_csv(
    text: str, *, store_id: str, now: datetime
) -> tuple[list[counts_db.ManagerCount], set[str]]:
    """The counts of an upload and the store ids it names; :class:`CsvRejected` if any
    line is bad (every line with every reason; :class:`CountsRejected` for row problems)."""
    text = text.removeprefix("\ufeff")
    first = text.split("\n", 1)[0]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(first), strict=True)
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        raise CsvRejected(SOURCE, [LineProblem(1, f"not valid CSV: {exc}")]) from None
    if problems := _header_problems(header):
        raise CsvRejected(SOURCE, [LineProblem(1, p) for p in problems])
    col = {name: i for i, name in enumerate(header)}
    counts: dict[tuple[str, datetime], tuple[int, counts_db.ManagerCount]] = {}
    problems_at: list[LineProblem] = []
    stores: set[str] = set()
    rows = 0
    for line, fields in csv_lines(reader, problems_at):
        if any(f.strip() for f in fields):
            rows += 1
            if rows > MAX_ROWS:
                raise CsvRejected(
                    SOURCE, [LineProblem(line, f"more than {MAX_ROWS} rows; send it in parts")]
                )
            reasons, count = _row(fields, col, len(header), store_id=store_id, now=now)
            named_store = (
                uncell(fields[col["store_id"]].strip())
                if "store_id" in col and len(fields) == len(header)
                else ""
            )
            if named_store:
                stores.add(named_store)
            if count is not None:
                key = (count.sku, count.counted_at)
                seen = counts.get(key)
                if seen is not None and seen[1].counted_qty != count.counted_qty:
                    reasons.append(
                        f"sku {count.sku} counted at {fields[col['counted_at']].strip()} is "
                        f"also on line {seen[0]} with counted_qty {seen[1].counted_qty}"
                    )
                elif seen is None:
                    counts[key] = (line, count)
            problems_at.extend(LineProblem(line, r) for r in reasons)
    if not problems_at and not counts:
        problems_at.append(LineProblem(1, "no counts in the file (only a header)"))
    if problems_at:
        raise CountsRejected(problems_at, stores)
    return [c for _, c in counts.values()], stores


def _header_problems(header: list[str]) -> list[str]:
    if not header or header == [""]:
        return [f"the file is empty; the header must name {', '.join(REQUIRED)}"]
    problems: list[str] = []
    if missing := [c for c in REQUIRED if c not in header]:
        problems.append(f"header is missing {', '.join(missing)} (got {','.join(header)!r})")
    if unknown := [c for c in header if c not in REQUIRED + OPTIONAL]:
        problems.append(
            f"header has unknown columns {', '.join(unknown)!s}; the columns are "
            f"{', '.join(REQUIRED)} and optionally {', '.join(OPTIONAL)}"
        )
    if dup := sorted({c for c in header if header.count(c) > 1}):
        problems.append(f"header names {', '.join(dup)} more than once")
    return problems


def _row(
    fields: list[str], col: dict[str, int], width: int, *, store_id: str, now: datetime
) -> tuple[list[str], counts_db.ManagerCount | None]:
    if len(fields) != width:
        return [f"expected {width} fields, got {len(fields)}"], None
    reasons: list[str] = []
    sku = uncell(fields[col["sku"]].strip())
    if bad := identifier_problem("sku", sku):
        reasons.append(bad)
    qty_text = fields[col["counted_qty"]].strip()
    qty: int | None = None
    if not qty_text:
        reasons.append("counted_qty is empty")
    elif not _WHOLE.fullmatch(qty_text):
        reasons.append(f"counted_qty {qty_text!r} is not a whole number ≥ 0")
    elif int(qty_text) > MAX_QTY:
        reasons.append(f"counted_qty {qty_text} is too large (at most {MAX_QTY})")
    else:
        qty = int(qty_text)
    at_text = fields[col["counted_at"]].strip()
    at: datetime | None = None
    try:
        at = msgspec.convert(at_text, Timestamp)
    except msgspec.ValidationError:
        reasons.append(
            f"counted_at {at_text!r} is not an RFC 3339 time with an offset "
            "(e.g. 2026-11-23T10:01:02Z or 2026-11-23T11:01:02+01:00)"
        )
    if at is not None and at > now + OBSERVATION_MAX_AHEAD:
        reasons.append(f"counted_at {at_text} is in the future")
    note: str | None = None
    if "note" in col:
        note = uncell(fields[col["note"]].strip()) or None
        if note is not None and len(note) > MAX_NOTE:
            reasons.append(f"note is longer than {MAX_NOTE} characters")
    if "store_id" in col:
        named = uncell(fields[col["store_id"]].strip())
        if named and named != store_id:
            reasons.append(f"store_id {named!r} is not the store of the URL ({store_id!r})")
    if reasons or qty is None or at is None:
        return reasons, None
    return [], counts_db.ManagerCount(sku=sku, counted_qty=qty, counted_at=at, note=note)


def _rejected(exc: CsvRejected, request: Request[Any, Any, Any]) -> HTTPException | Response[str]:
    """JSON by default; a ``line,reason`` CSV when the client asks for text/csv."""
    accept = request.headers.get("accept", "")
    if "text/csv" in accept and "application/json" not in accept:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(("line", "reason"))
        writer.writerows((p.line, p.reason) for p in exc.problems)
        return Response(
            out.getvalue(),
            status_code=HTTP_422_UNPROCESSABLE_ENTITY,
            media_type="text/csv; charset=utf-8",
        )
    return rejected(exc)


@post(
    "/v1/stores/{store_id:str}/counts",
    guards=[require_role("store_manager", store_param="store_id")],
    security=ADMIN_SECURITY,
    tags=["managers"],
    summary="Upload a store's counts (CSV; admin or the store's manager)",
    description=(
        "`sku,counted_qty,counted_at` and optionally `note`, `store_id` (must be the URL's). "
        "The whole file is checked first: any bad row → 422 with every line and reason, "
        "nothing applied. A good file is applied in one transaction, as counts; uploading "
        "it again changes nothing. The answer lists each book position moved, before and "
        "after."
    ),
    operation_class=csv_operation("sku,counted_qty,counted_at[,note]", EXAMPLE),
    responses=error_responses(400, 401, 403, 415, 422),
    status_code=HTTP_200_OK,
)
async def upload_counts(
    store_id: StoreIdPath,
    request: Request[Any, Any, Any],
    pool: NamedDependency[asyncpg.Pool],
    policy: NamedDependency[Policy],
    clock: NamedDependency[Clock],
) -> Response[Any]:
    principal = await principal_of(request)
    assert principal is not None  # the guard let it through
    now = clock()
    text = await csv_text(request, SOURCE)
    try:
        counts, named = parse_counts_csv(text, store_id=store_id, now=now)
    except CsvRejected as exc:
        for other in getattr(exc, "stores", ()):  # naming a foreign store is a 403
            check_store(request, principal, other)
        log.info("counts.rejected", store_id=store_id, key_id=principal.key_id,
                 problems=len(exc.problems))  # fmt: skip
        answer = _rejected(exc, request)
        if isinstance(answer, HTTPException):
            raise answer from None
        return answer
    for other in named:
        check_store(request, principal, other)
    async with pool.acquire() as conn:
        applied = await counts_db.apply_counts(
            conn, store_id, counts, key_id=principal.key_id, policy=policy, now=now
        )
    added = sum(c.change for c in applied.changes if c.change > 0)
    removed = -sum(c.change for c in applied.changes if c.change < 0)
    log.info(
        "counts.applied",
        store_id=store_id,
        key_id=principal.key_id,
        received=len(counts),
        stored=applied.stored,
        duplicates=applied.duplicates,
        positions=applied.positions_recomputed,
        changed=len(applied.changes),
        units_added=added,
        units_removed=removed,
    )
    result = CountsResult(
        received=len(counts),
        stored=applied.stored,
        duplicates=applied.duplicates,
        positions_recomputed=applied.positions_recomputed,
        records_changed=len(applied.changes),
        units_added=added,
        units_removed=removed,
        changes=applied.changes[:LISTED_CHANGES],
        changes_listed=min(len(applied.changes), LISTED_CHANGES),
    )
    return Response(result, status_code=HTTP_200_OK)

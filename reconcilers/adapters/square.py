"""Square Inventory API -> contract POS events (pure: no I/O).

Square's shapes (``POST /v2/inventory/counts/batch-retrieve`` and
``POST /v2/inventory/changes/batch-retrieve``) as msgspec Structs, the request
bodies, the resume point, and the translation table (docs/adapters.md):

| Square record                                   | contract event            |
|-------------------------------------------------|---------------------------|
| count, state IN_STOCK                           | ``count`` on_hand = qty   |
| PHYSICAL_COUNT, state IN_STOCK                  | ``count`` on_hand = qty   |
| ADJUSTMENT IN_STOCK -> SOLD                     | ``sale`` qty              |
| ADJUSTMENT IN_STOCK -> any other state          | ``adjustment`` -qty       |
| ADJUSTMENT SOLD / RETURNED_BY_CUSTOMER /        | ``return`` qty            |
|   UNLINKED_RETURN / SOLD_ONLINE -> IN_STOCK     |                           |
| ADJUSTMENT NONE / ORDERED_FROM_VENDOR /         | ``receipt`` qty           |
|   RECEIVED_FROM_VENDOR / IN_TRANSIT /           |                           |
|   IN_TRANSIT_TO -> IN_STOCK                     |                           |
| ADJUSTMENT any other state -> IN_STOCK          | ``adjustment`` +qty       |
| anything not touching IN_STOCK                  | skipped (``not_in_stock``)|

A negative IN_STOCK count (Square lets stock go below zero) is a count of 0. A
quantity that is not a whole number (measured units) or beyond 2^31 is skipped
(``fractional``),
as is a zero movement. Unmapped locations and items are skipped and counted.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

import msgspec

from app.domain.model import Adjustment, Count, PosEvent, Receipt, Return, Sale
from reconcilers.adapters.ids import IdMap, Skipped, map_pair

SQUARE_VERSION = "2025-01-23"  # sent as Square-Version; the shapes below are stable across versions
COUNTS_PATH = "/v2/inventory/counts/batch-retrieve"
CHANGES_PATH = "/v2/inventory/changes/batch-retrieve"
PAGE_LIMIT = 1000
# Changes created up to this long before the last one seen are asked for again next
# time (redelivery is idempotent): a change committed late is not missed.
OVERLAP = timedelta(minutes=5)

Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
IN_STOCK = "IN_STOCK"
RETURN_FROM = frozenset({"SOLD", "RETURNED_BY_CUSTOMER", "UNLINKED_RETURN", "SOLD_ONLINE"})
RECEIPT_FROM = frozenset(
    {"NONE", "ORDERED_FROM_VENDOR", "RECEIVED_FROM_VENDOR", "IN_TRANSIT", "IN_TRANSIT_TO"}
)
_INT4 = 2**31 - 1
_ID_SAFE = re.compile(r"^[A-Za-z0-9._:-]+$")


# -- Square's shapes (unknown fields ignored) ----------------------------------------


class InventoryCount(msgspec.Struct, frozen=True):
    catalog_object_id: str
    location_id: str
    state: str
    quantity: str
    calculated_at: Timestamp


class CountsResponse(msgspec.Struct, frozen=True):
    counts: list[InventoryCount] = []
    cursor: str | None = None


class PhysicalCount(msgspec.Struct, frozen=True):
    id: str
    catalog_object_id: str
    location_id: str
    state: str
    quantity: str
    occurred_at: Timestamp
    created_at: Timestamp | None = None


class InventoryAdjustment(msgspec.Struct, frozen=True):
    id: str
    catalog_object_id: str
    location_id: str
    from_state: str
    to_state: str
    quantity: str
    occurred_at: Timestamp
    created_at: Timestamp | None = None


class InventoryChange(msgspec.Struct, frozen=True):
    type: str
    physical_count: PhysicalCount | None = None
    adjustment: InventoryAdjustment | None = None


class ChangesResponse(msgspec.Struct, frozen=True):
    changes: list[InventoryChange] = []
    cursor: str | None = None


# -- requests and the resume point -----------------------------------------------------


class CountsRequest(msgspec.Struct, frozen=True, omit_defaults=True):
    location_ids: list[str]
    states: list[str] = msgspec.field(default_factory=lambda: [IN_STOCK])
    limit: int = PAGE_LIMIT
    cursor: str | None = None


class ChangesRequest(msgspec.Struct, frozen=True, omit_defaults=True):
    location_ids: list[str]
    updated_after: datetime
    types: list[str] = msgspec.field(default_factory=lambda: ["PHYSICAL_COUNT", "ADJUSTMENT"])
    limit: int = PAGE_LIMIT
    cursor: str | None = None


class Resume(msgspec.Struct, frozen=True, omit_defaults=True):
    """Where a Square feed continues, saved as the feed's cursor with each page.

    ``counts``: reading the current counts (the baseline) at ``cursor``; changes then
    start at ``updated_after``. ``changes``: reading changes created after
    ``updated_after`` at ``cursor``; ``high_water`` is the latest ``created_at`` seen
    in this pass, the next pass's ``updated_after`` (less ``OVERLAP``).
    """

    phase: Literal["counts", "changes"]
    updated_after: datetime
    cursor: str | None = None
    high_water: datetime | None = None

    def encode(self) -> str:
        return msgspec.json.encode(self).decode()


def initial_resume(now: datetime) -> Resume:
    return Resume(phase="counts", updated_after=now - OVERLAP)


def decode_resume(saved: str | None) -> Resume | None:
    """The saved resume point, or ``None`` when there is none or it is not Square's
    (the feed was another format before): the feed then starts over, which is safe."""
    if not saved:
        return None
    try:
        return msgspec.json.decode(saved, type=Resume)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def after_page(resume: Resume, next_cursor: str | None, page_high: datetime | None) -> Resume:
    """The resume point once a page read at ``resume`` is stored."""
    if resume.phase == "counts":
        if next_cursor:
            return msgspec.structs.replace(resume, cursor=next_cursor)
        return Resume(phase="changes", updated_after=resume.updated_after)
    high = max((t for t in (resume.high_water, page_high) if t is not None), default=None)
    if next_cursor:
        return msgspec.structs.replace(resume, cursor=next_cursor, high_water=high)
    updated_after = (
        resume.updated_after if high is None else max(resume.updated_after, high - OVERLAP)
    )
    return Resume(phase="changes", updated_after=updated_after)


def request_body(resume: Resume, location_ids: list[str]) -> tuple[str, bytes]:
    """(path, JSON body) for the next page at ``resume``."""
    if resume.phase == "counts":
        return COUNTS_PATH, msgspec.json.encode(
            CountsRequest(location_ids=location_ids, cursor=resume.cursor)
        )
    return CHANGES_PATH, msgspec.json.encode(
        ChangesRequest(
            location_ids=location_ids, updated_after=resume.updated_after, cursor=resume.cursor
        )
    )


# -- translation -------------------------------------------------------------------------


def event_id(prefix: str, *parts: str) -> str:
    """A contract event id from Square ids: ``sq:<prefix>:<id>`` when that is an
    identifier, else ``sq:<prefix>:h<digest>`` (deterministic either way)."""
    if len(parts) == 1 and _ID_SAFE.match(parts[0]) and len(parts[0]) <= 64 - 4 - len(prefix):
        return f"sq:{prefix}:{parts[0]}"
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
    return f"sq:{prefix}:h{digest}"


def whole_quantity(text: str) -> int | None:
    """Square's decimal-string quantity as an int, ``None`` when not a whole number."""
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or value != value.to_integral_value() or abs(value) > _INT4:
        return None
    return int(value)


def translate_counts(page: CountsResponse, ids: IdMap, skipped: Skipped) -> list[PosEvent]:
    events: list[PosEvent] = []
    for c in page.counts:
        if c.state != IN_STOCK:
            skipped.add("not_in_stock")
            continue
        qty = whole_quantity(c.quantity)
        if qty is None:
            skipped.add("fractional")
            continue
        pair = map_pair(ids, c.location_id, c.catalog_object_id, skipped)
        if pair is None:
            continue
        eid = event_id("cnt", c.location_id, c.catalog_object_id, c.calculated_at.isoformat())
        events.append(
            Count(event_id=eid, store_id=pair[0], sku=pair[1], occurred_at=c.calculated_at,
                  on_hand=max(qty, 0))
        )  # fmt: skip
    return events


def translate_changes(page: ChangesResponse, ids: IdMap, skipped: Skipped) -> list[PosEvent]:
    events: list[PosEvent] = []
    for change in page.changes:
        event = _change_event(change, ids, skipped)
        if event is not None:
            events.append(event)
    return events


def high_water(page: ChangesResponse) -> datetime | None:
    """The latest ``created_at`` (else ``occurred_at``) on the page."""
    times = [
        r.created_at or r.occurred_at
        for c in page.changes
        for r in (c.physical_count, c.adjustment)
        if r is not None
    ]
    return max(times, default=None)


def _change_event(change: InventoryChange, ids: IdMap, skipped: Skipped) -> PosEvent | None:
    pc, adj = change.physical_count, change.adjustment
    if change.type == "PHYSICAL_COUNT" and pc is not None:
        if pc.state != IN_STOCK:
            skipped.add("not_in_stock")
            return None
        qty = whole_quantity(pc.quantity)
        if qty is None:
            skipped.add("fractional")
            return None
        pair = map_pair(ids, pc.location_id, pc.catalog_object_id, skipped)
        if pair is None:
            return None
        return Count(event_id=event_id("pc", pc.id), store_id=pair[0], sku=pair[1],
                     occurred_at=pc.occurred_at, on_hand=max(qty, 0))  # fmt: skip
    if change.type != "ADJUSTMENT" or adj is None:
        skipped.add("other_type")
        return None
    if (adj.from_state == IN_STOCK) == (adj.to_state == IN_STOCK):
        skipped.add("not_in_stock")
        return None
    qty = whole_quantity(adj.quantity)
    if qty is None:
        skipped.add("fractional")
        return None
    if qty <= 0:
        skipped.add("zero")
        return None
    pair = map_pair(ids, adj.location_id, adj.catalog_object_id, skipped)
    if pair is None:
        return None
    kind: type[Sale | Return | Receipt | Adjustment]
    if adj.from_state == IN_STOCK:
        kind, qty = (Sale, qty) if adj.to_state == "SOLD" else (Adjustment, -qty)
    elif adj.from_state in RETURN_FROM:
        kind = Return
    elif adj.from_state in RECEIPT_FROM:
        kind = Receipt
    else:
        kind = Adjustment
    return kind(event_id=event_id("adj", adj.id), store_id=pair[0], sku=pair[1],
                occurred_at=adj.occurred_at, qty=qty)  # fmt: skip

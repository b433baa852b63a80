"""Contract types (``shared/spec/contract.md``) as msgspec Structs.

Decoding a feed page straight into these types is the validation: a bad event is
rejected with msgspec's path (``$.events[3].qty``) telling where and why.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

import msgspec

ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
# A POS event dated further ahead of the clock that receives it than this comes from a
# wrong device clock (or a local time sent as UTC): the live pull rejects its page, the
# backtest leaves it out. Less than this is a till's clock a little fast: taken.
MAX_AHEAD = timedelta(minutes=15)
# The same for an observation of the shelf (feedback, a manager's count): the API
# refuses one dated further ahead of its clock, the backtest leaves it out.
OBSERVATION_MAX_AHEAD = timedelta(minutes=5)
Identifier = Annotated[str, msgspec.Meta(pattern=ID_PATTERN, min_length=1, max_length=64)]
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
PositiveQty = Annotated[int, msgspec.Meta(gt=0)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]


# ``gc=False`` on the types engines hold by the hundred thousand (events, snapshot rows,
# positions): scalars only, so never part of a reference cycle; untracked, they (and
# the tuples holding them) are skipped by the cyclic collector's passes, which took ~7%
# of a backtest replay.
class _Event(msgspec.Struct, frozen=True, tag_field="type", kw_only=True, gc=False):
    event_id: Identifier
    store_id: Identifier
    sku: Identifier
    occurred_at: Timestamp


class Sale(_Event, frozen=True, tag="sale"):
    """Units left the store with a customer."""

    qty: PositiveQty


class Return(_Event, frozen=True, tag="return"):
    """Units came back to sellable stock."""

    qty: PositiveQty


class Receipt(_Event, frozen=True, tag="receipt"):
    """Units received into the store."""

    qty: PositiveQty


class Adjustment(_Event, frozen=True, tag="adjustment"):
    """Signed write-on or write-off (damage, found, transfer)."""

    qty: int

    def __post_init__(self) -> None:
        if self.qty == 0:
            raise ValueError("adjustment qty must not be 0")


class Count(_Event, frozen=True, tag="count"):
    """A physical count: exactly ``on_hand`` units at ``occurred_at``."""

    on_hand: NonNegative


PosEvent = Sale | Return | Receipt | Adjustment | Count
Movement = Sale | Return | Receipt | Adjustment
EVENT_TYPES: tuple[str, ...] = ("sale", "return", "receipt", "adjustment", "count")


EventKind = type[Sale] | type[Return] | type[Receipt] | type[Adjustment] | type[Count]
# The contract type of each event class met (itself, or the one a subclass extends: the
# backtest reader's carry ``published_at``). ``isinstance`` against a msgspec Struct class
# costs ~4x as much when it fails or the type is a subclass (msgspec's metaclass sends it
# through ``__instancecheck__``); the hot paths ask ``kind_of`` once per event instead.
EVENT_KINDS: dict[type, EventKind] = {Sale: Sale, Return: Return, Receipt: Receipt,
                                 Adjustment: Adjustment, Count: Count}  # fmt: skip


def kind_of(e: PosEvent) -> EventKind:
    """The contract type of ``e`` (``Sale`` for a ``Sale`` or a subclass of it)."""
    kind = EVENT_KINDS.get(type(e))
    if kind is None:
        for t in (Sale, Return, Receipt, Adjustment, Count):
            if isinstance(e, t):
                kind = EVENT_KINDS[type(e)] = t
                break
        else:
            raise TypeError(f"not a POS event: {type(e).__name__}")
    return kind


def delta(event: Movement) -> int:
    """Signed change a movement makes to the book (sale −qty, others +qty)."""
    return -event.qty if isinstance(event, Sale) else event.qty


class PosPage(msgspec.Struct, frozen=True):
    """One page of the POS feed."""

    events: list[PosEvent]
    has_more: bool
    next_cursor: str | None = None

    def __post_init__(self) -> None:
        if self.has_more and not self.next_cursor:
            raise ValueError("has_more is true but next_cursor is missing")


class SnapshotRow(msgspec.Struct, frozen=True, gc=False):
    """One warehouse snapshot row: the system of record at ``as_of``."""

    location_id: Identifier
    sku: Identifier
    on_hand: NonNegative
    reserved: NonNegative
    in_transit: NonNegative
    as_of: Timestamp


class Store(msgspec.Struct, frozen=True):
    """A location where shoppers can walk in or pick up."""

    store_id: Identifier
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90)]
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180)]
    postal_code: str | None = None
    timezone: str | None = None


class Product(msgspec.Struct, frozen=True):
    sku: Identifier
    name: str | None = None
    category: str | None = None


BaseSource = Literal["snapshot", "count"]


class BookPosition(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What the record says is sellable at a (store, sku), with its inputs' times.

    ``base_source`` is ``snapshot`` when the base is the latest warehouse row (or 0
    when the location's latest snapshot does not list the sku) and ``count`` when a
    later POS count replaced it.
    """

    store_id: str
    sku: str
    book: int
    base_source: BaseSource
    base_at: datetime
    snapshot_as_of: datetime | None = None
    last_event_at: datetime | None = None
    in_transit: int = 0

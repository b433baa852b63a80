"""Our badges -> Google Merchant Center's local inventory feed (pure: no I/O).

One TSV line per (store, sku): ``store_code`` (our store_id), ``id`` (our sku),
``availability`` and ``quantity``, plus ``pickup_method``/``pickup_sla`` when
configured. ``availability`` follows the badge, so ads promise only what the site
promises: ``in_stock`` -> ``in_stock``, ``low_stock`` -> ``limited_availability``,
anything else (``unavailable``, ``unknown``) -> ``out_of_stock``. ``quantity`` is the
book less the safety buffer, never below 0, and 0 when the badge makes no promise: the
raw book is never published.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

import msgspec

COLUMNS = ("store_code", "id", "availability", "quantity")
PICKUP_COLUMNS = ("pickup_method", "pickup_sla")
AVAILABILITY = {"in_stock": "in_stock", "low_stock": "limited_availability"}
_UNSAFE = str.maketrans({"\t": " ", "\n": " ", "\r": " "})


class Position(msgspec.Struct, frozen=True, kw_only=True):
    store_id: str
    sku: str
    badge_state: str
    book: int | None
    safety_buffer: int


class Pickup(msgspec.Struct, frozen=True, kw_only=True):
    method: str | None = None
    sla: str | None = None


def tsv_value(value: object) -> str:
    """A field with no tab or line break (each becomes a space)."""
    return str(value).translate(_UNSAFE)


def header(pickup: Pickup) -> str:
    return "\t".join(COLUMNS + (PICKUP_COLUMNS if _has_pickup(pickup) else ())) + "\n"


def row(position: Position, pickup: Pickup) -> str:
    availability = AVAILABILITY.get(position.badge_state, "out_of_stock")
    promised = availability != "out_of_stock" and position.book is not None
    quantity = max(position.book - position.safety_buffer, 0) if promised and position.book else 0
    values: list[object] = [position.store_id, position.sku, availability, quantity]
    if _has_pickup(pickup):
        values += [pickup.method or "", pickup.sla or ""]
    return "\t".join(tsv_value(v) for v in values) + "\n"


async def tsv(positions: AsyncIterable[Position], pickup: Pickup) -> AsyncIterator[bytes]:
    """The feed as UTF-8 chunks (header first), a batch of lines at a time."""
    yield header(pickup).encode()
    batch: list[str] = []
    async for position in positions:
        batch.append(row(position, pickup))
        if len(batch) >= 1000:
            yield "".join(batch).encode()
            batch = []
    if batch:
        yield "".join(batch).encode()


def _has_pickup(pickup: Pickup) -> bool:
    return pickup.method is not None or pickup.sla is not None

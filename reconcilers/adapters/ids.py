"""Vendor ids to ours: a pure lookup that counts what it could not map."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

import msgspec

UNMAPPED_SHOWN = 10


class IdMap(msgspec.Struct, frozen=True):
    """``locations``: vendor location id -> store_id; ``items``: vendor item id -> sku."""

    locations: Mapping[str, str]
    items: Mapping[str, str]


class Skipped(msgspec.Struct):
    """Vendor records not turned into contract data, by reason, and the unmapped ids."""

    reasons: Counter[str] = msgspec.field(default_factory=Counter)
    unmapped_locations: Counter[str] = msgspec.field(default_factory=Counter)
    unmapped_items: Counter[str] = msgspec.field(default_factory=Counter)

    def add(self, reason: str) -> None:
        self.reasons[reason] += 1

    def merge(self, other: Skipped) -> None:
        self.reasons.update(other.reasons)
        self.unmapped_locations.update(other.unmapped_locations)
        self.unmapped_items.update(other.unmapped_items)

    @property
    def total(self) -> int:
        return sum(self.reasons.values())

    def log_fields(self) -> dict[str, object]:
        """For a log line: counts by reason and the most frequent unmapped ids."""
        return {
            "skipped": dict(self.reasons),
            "unmapped_locations": [
                k for k, _ in self.unmapped_locations.most_common(UNMAPPED_SHOWN)
            ],
            "unmapped_items": [k for k, _ in self.unmapped_items.most_common(UNMAPPED_SHOWN)],
        }


def map_pair(ids: IdMap, location: str, item: str, skipped: Skipped) -> tuple[str, str] | None:
    """(store_id, sku) for a vendor (location, item), or ``None`` (counted in ``skipped``)."""
    store = ids.locations.get(location)
    sku = ids.items.get(item)
    if store is None:
        skipped.add("unmapped_location")
        skipped.unmapped_locations[location] += 1
        return None
    if sku is None:
        skipped.add("unmapped_item")
        skipped.unmapped_items[item] += 1
        return None
    return store, sku

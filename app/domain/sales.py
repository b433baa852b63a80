"""Sales speed per (store, sku), learned online from POS sales.

Speed is units per average trade hour (see ``rhythm``). An item with little
history borrows from its store and category: a gamma-Poisson posterior whose
prior mean is the store × category speed per item, worth ``PRIOR_HOURS`` of the
item's own trade.
"""

from __future__ import annotations

from datetime import datetime

from app.domain.rhythm import Rhythm

PRIOR_HOURS = 48.0


class SalesSpeed:
    """Units sold per pair and per store × category, against each store's trade hours."""

    def __init__(self) -> None:
        self.units: dict[tuple[str, str], float] = {}
        self.group_units: dict[tuple[str, str | None], float] = {}
        self.group_items: dict[tuple[str, str | None], set[str]] = {}
        self.rhythm: dict[str, Rhythm] = {}
        self.opened: dict[str, datetime] = {}

    def store_rhythm(self, store_id: str) -> Rhythm:
        r = self.rhythm.get(store_id)
        if r is None:
            r = self.rhythm[store_id] = Rhythm()
        return r

    def know(self, store_id: str, sku: str, category: str | None, at: datetime) -> None:
        """An item is stocked at a store from ``at`` (first event or snapshot row)."""
        self.group_items.setdefault((store_id, category), set()).add(sku)
        first = self.opened.get(store_id)
        if first is None or at < first:
            self.opened[store_id] = at

    def sold(self, store_id: str, sku: str, category: str | None, qty: int, at: datetime) -> None:
        key = (store_id, sku)
        self.units[key] = self.units.get(key, 0.0) + qty
        g = (store_id, category)
        self.group_units[g] = self.group_units.get(g, 0.0) + qty
        r = self.rhythm.get(store_id)
        if r is None:
            r = self.rhythm[store_id] = Rhythm()
        r.add_hour(int(at.timestamp() // 3600), qty)

    def speed(self, store_id: str, sku: str, category: str | None, now: datetime) -> float:
        """Posterior mean units per average trade hour."""
        opened = self.opened.get(store_id)
        exposure = 0.0 if opened is None else max(0.0, (now - opened).total_seconds() / 3600)
        g = (store_id, category)
        items = max(1, len(self.group_items.get(g, ())))
        group = self.group_units.get(g, 0.0)
        prior = (group + 1.0) / (items * exposure + PRIOR_HOURS * items)
        return (self.units.get((store_id, sku), 0.0) + PRIOR_HOURS * prior) / (
            exposure + PRIOR_HOURS
        )

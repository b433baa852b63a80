"""Sales speed per (store, sku), learned online from POS sales.

Speed is units per average trade hour (see ``rhythm``). An item with little
history borrows from its store and category: a gamma-Poisson posterior whose
prior mean is the store × category speed per item, worth ``PRIOR_HOURS`` of the
item's own trade.
"""

from __future__ import annotations

from bisect import insort
from datetime import datetime

from app.domain.rhythm import Rhythm

PRIOR_HOURS = 48.0
# Units one sale line can teach the store's side (its week's rhythm, its store × category
# speed): a till that sends qty 2,000,000,000 by mistake would otherwise rewrite the
# store's week and every item's prior there (measured: one such line moved a whole
# dataset's false-promise rate, docs/engine.md). Two dozen still counts a bulk buy as
# a big one; the book and the pair's own speed take every unit.
STORE_UNITS_PER_SALE = 24
# A store trades from its OPENED_BY-th earliest item sighting: one event from a till
# whose clock was reset (year 2000, 1970) would otherwise date the store decades back,
# and every item's speed there (units over the store's trade since it opened) to ~0
# (measured: one such sale moved a dataset's FPR 2.73 -> 2.86%, docs/engine.md).
OPENED_BY = 5


class SalesGroup:
    """One store × category's side of the speed: units sold there (at most
    ``STORE_UNITS_PER_SALE`` a line) and the skus known. The engine's per-pair state
    holds its group's, so an event or a visit builds no ``(store, category)`` key."""

    __slots__ = ("items", "units")

    def __init__(self) -> None:
        self.units = 0.0
        self.items = 0


class SalesSpeed:
    """Units sold per store × category, against each store's trade hours.

    A pair's own units are kept on the engine's per-pair state (``Pair.units``): one
    lookup per event or visit instead of one here and one in every other learner.
    """

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str | None], SalesGroup] = {}
        self.rhythm: dict[str, Rhythm] = {}
        self.opened: dict[str, datetime] = {}
        # per store, its OPENED_BY earliest item sightings (``opened`` is the last of them)
        self._earliest: dict[str, list[datetime]] = {}

    @property
    def group_items(self) -> dict[tuple[str, str | None], int]:
        """Skus known per store × category (groups with one)."""
        return {g: c.items for g, c in self.groups.items() if c.items}

    def group(self, store_id: str, category: str | None) -> SalesGroup:
        """The store × category's group (a new, empty one the first time)."""
        g = (store_id, category)
        c = self.groups.get(g)
        if c is None:
            c = self.groups[g] = SalesGroup()
        return c

    def store_rhythm(self, store_id: str) -> Rhythm:
        r = self.rhythm.get(store_id)
        if r is None:
            r = self.rhythm[store_id] = Rhythm()
        return r

    def know(self, store_id: str, category: str | None, at: datetime, new: bool) -> None:
        """An item is stocked at a store from ``at`` (first event or snapshot row);
        ``new`` when the store had not known the sku (it joins its group's count)."""
        if new:
            self.group(store_id, category).items += 1
        earliest = self._earliest.get(store_id)
        if earliest is None:
            self._earliest[store_id] = [at]
            self.opened[store_id] = at
        elif len(earliest) < OPENED_BY or at < earliest[-1]:
            insort(earliest, at)
            del earliest[OPENED_BY:]
            self.opened[store_id] = earliest[-1]

    def known_again(self, store_id: str, at: datetime, times: int) -> None:
        """``times`` calls of ``know(store_id, _, at, new=False)`` (items the store knew,
        seen again at ``at``): only the store's earliest times can move."""
        earliest = self._earliest.get(store_id)
        if earliest is not None and len(earliest) >= OPENED_BY and at >= earliest[-1]:
            return  # each call would change nothing
        for _ in range(min(times, OPENED_BY)):  # the first OPENED_BY calls decide
            self.know(store_id, None, at, False)

    @staticmethod
    def sold_in_group(rhythm: Rhythm, group: SalesGroup, qty: int, hour: int) -> None:
        """The store × category side of a sale (the pair's units are the caller's): its
        group and the store's rhythm, given the sale's epoch hour (``int(timestamp //
        3600)``), which the engine's sale path already holds; at most
        ``STORE_UNITS_PER_SALE`` units."""
        qty = qty if qty < STORE_UNITS_PER_SALE else STORE_UNITS_PER_SALE
        group.units += qty
        rhythm.add_hour(hour, qty)

    def speed(self, store_id: str, units: float, category: str | None, now: datetime) -> float:
        """Posterior mean units per average trade hour of a pair that sold ``units``."""
        exposure = self.exposure(self.opened.get(store_id), now)
        return self.speed_in(self.groups.get((store_id, category)), units, exposure)

    @staticmethod
    def exposure(opened: datetime | None, now: datetime) -> float:
        """Clock hours from the store's first sighting (``opened``) to ``now``: one per
        store and moment, whatever the pair."""
        if opened is None:
            return 0.0
        hours = (now - opened).total_seconds() / 3600
        return hours if hours > 0.0 else 0.0  # max(0.0, hours)

    def speed_at(self, store_id: str, units: float, category: str | None, exposure: float) -> float:
        """``speed`` given the store's ``exposure`` at the moment."""
        return self.speed_in(self.groups.get((store_id, category)), units, exposure)

    @staticmethod
    def speed_in(group: SalesGroup | None, units: float, exposure: float) -> float:
        """``speed_at`` given the store × category's group (None: none yet)."""
        if group is None:
            items, sold = 1, 0.0
        else:
            items = group.items
            items = items if items > 1 else 1  # max(1, items), as a conditional (per visit)
            sold = group.units
        prior = (sold + 1.0) / (items * exposure + PRIOR_HOURS * items)
        return (units + PRIOR_HOURS * prior) / (exposure + PRIOR_HOURS)

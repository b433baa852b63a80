"""Unrecorded loss (theft, damage, receiving errors) per store and category.

Learned from counts: the book just before a count minus the count is what left
without a record since the pair was last verified. The rate is units per item-day,
a gamma-style ratio shrunk toward the chain's rate; a pair never verified in the
data is assumed last verified ``UNVERIFIED_DAYS`` before it was first seen.
"""

from __future__ import annotations

from datetime import datetime

UNVERIFIED_DAYS = 30.0
PRIOR_DAYS = 60.0
MAX_DAYS = 90.0
# Units one count may say were found (count above the book) for the rates: a count keyed
# as 2,000,000,000, or 1000 for 10, would otherwise cancel the chain's losses for good
# and make every pair look safer (measured in docs/engine.md). A loss is never clipped
# (it cannot exceed the book before the count: the cautious side).
MAX_FOUND_PER_COUNT = 24


def days_unverified(verified: datetime | None, first_seen: datetime | None, now: datetime) -> float:
    """Days since the pair's book was last checked against the shelf."""
    # max(0.0, days) as a conditional: this runs per visit
    if verified is not None:
        days = (now - verified).total_seconds() / 86400
        return days if days > 0.0 else 0.0
    first = now if first_seen is None else first_seen
    days = (now - first).total_seconds() / 86400
    return UNVERIFIED_DAYS + (days if days > 0.0 else 0.0)


class LossRate:
    """Loss per store × category and when each pair was first seen.

    When a pair was last verified and its last gap are kept on the engine's per-pair
    state. ``first_seen`` is per store, then sku (no tuple key per pair: most pairs
    are only ever seen in warehouse snapshots, ~1M of them in production).
    """

    def __init__(self) -> None:
        self.gone: dict[tuple[str, str | None], float] = {}
        self.days: dict[tuple[str, str | None], float] = {}
        self.chain_gone = 0.0
        self.chain_days = 0.0
        self.first_seen: dict[str, dict[str, datetime]] = {}
        self._rates: dict[tuple[str, str | None], float] = {}  # ``rate``, until the next count

    def seen(self, store_id: str, sku: str, at: datetime) -> bool:
        """The pair is seen at ``at``; True the first time."""
        at_store = self.first_seen.get(store_id)
        if at_store is None:
            at_store = self.first_seen[store_id] = {}
        if sku in at_store:
            return False
        at_store[sku] = at
        return True

    def first_seen_at(self, store_id: str, sku: str) -> datetime | None:
        at_store = self.first_seen.get(store_id)
        return None if at_store is None else at_store.get(sku)

    def counted(self, store_id: str, category: str | None, days: float, gap: int) -> None:
        """A count found ``gap`` units fewer than the book after ``days`` unverified
        (already capped at ``MAX_DAYS``); a count above the book by more than
        ``MAX_FOUND_PER_COUNT`` counts as that many found."""
        gap = gap if gap > -MAX_FOUND_PER_COUNT else -MAX_FOUND_PER_COUNT
        g = (store_id, category)
        self.gone[g] = self.gone.get(g, 0.0) + gap
        self.days[g] = self.days.get(g, 0.0) + days
        self.chain_gone += gap
        self.chain_days += days
        self._rates.clear()  # the chain moved: every group's rate did

    def rate(self, store_id: str, category: str | None) -> float:
        """Units per item-day, never negative."""
        # max(0.0, x) as conditionals (after every count, per store and category read)
        gone = self.chain_gone
        chain = (gone if gone > 0.0 else 0.0) / (self.chain_days + PRIOR_DAYS)
        g = (store_id, category)
        gone = self.gone.get(g, 0.0) + PRIOR_DAYS * chain
        return (gone if gone > 0.0 else 0.0) / (self.days.get(g, 0.0) + PRIOR_DAYS)

    def cached_rate(self, store_id: str, category: str | None) -> float:
        """``rate``, kept until the next count moves it."""
        g = (store_id, category)
        rate = self._rates.get(g)
        if rate is None:
            rate = self._rates[g] = self.rate(store_id, category)
        return rate

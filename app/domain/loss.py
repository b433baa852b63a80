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


class LossRate:
    def __init__(self) -> None:
        self.gone: dict[tuple[str, str | None], float] = {}
        self.days: dict[tuple[str, str | None], float] = {}
        self.chain_gone = 0.0
        self.chain_days = 0.0
        self.verified: dict[tuple[str, str], datetime] = {}
        self.first_seen: dict[tuple[str, str], datetime] = {}
        self.last_gap: dict[tuple[str, str], tuple[datetime, int]] = {}
        self._rates: dict[tuple[str, str | None], float] = {}  # ``rate``, until the next count

    def seen(self, store_id: str, sku: str, at: datetime) -> None:
        self.first_seen.setdefault((store_id, sku), at)

    def days_unverified(self, store_id: str, sku: str, now: datetime) -> float:
        """Days since the pair's book was last checked against the shelf."""
        key = (store_id, sku)
        v = self.verified.get(key)
        if v is not None:
            return max(0.0, (now - v).total_seconds() / 86400)
        first = self.first_seen.get(key, now)
        return UNVERIFIED_DAYS + max(0.0, (now - first).total_seconds() / 86400)

    def counted(
        self, store_id: str, sku: str, category: str | None, book_before: int, on_hand: int,
        at: datetime,
    ) -> None:  # fmt: skip
        """A count found ``on_hand`` where the book said ``book_before``."""
        key = (store_id, sku)
        days = min(MAX_DAYS, self.days_unverified(store_id, sku, at))
        gap = book_before - on_hand
        g = (store_id, category)
        self.gone[g] = self.gone.get(g, 0.0) + gap
        self.days[g] = self.days.get(g, 0.0) + days
        self.chain_gone += gap
        self.chain_days += days
        self._rates.clear()  # the chain moved: every group's rate did
        self.verified[key] = max(at, self.verified.get(key, at))
        self.last_gap[key] = (at, gap)

    def verified_at(self, store_id: str, sku: str, at: datetime) -> None:
        """A shelf observation that checks the book without measuring a gap."""
        key = (store_id, sku)
        self.verified[key] = max(at, self.verified.get(key, at))

    def rate(self, store_id: str, category: str | None) -> float:
        """Units per item-day, never negative."""
        chain = max(0.0, self.chain_gone) / (self.chain_days + PRIOR_DAYS)
        g = (store_id, category)
        return max(0.0, (self.gone.get(g, 0.0) + PRIOR_DAYS * chain)) / (
            self.days.get(g, 0.0) + PRIOR_DAYS
        )

    def expected(self, store_id: str, sku: str, category: str | None, now: datetime) -> float:
        """Expected units lost without a record since the last verification."""
        g = (store_id, category)
        rate = self._rates.get(g)
        if rate is None:
            rate = self._rates[g] = self.rate(store_id, category)
        return rate * min(MAX_DAYS, self.days_unverified(store_id, sku, now))

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


def expected_loss(
    rate: float, days: float, since_receipt: float | None = None, book_before: int | None = None
) -> float:
    """Units expected gone without a record over ``days`` unverified (capped at
    ``MAX_DAYS``) at ``rate`` a day.

    Loss only takes units that are there: what accrued before the pair's last receipt
    (``since_receipt`` days ago, into a book of ``book_before``) is at most that book,
    and the receipt's units have been exposed only since they came. Without the cap a
    pair unverified for weeks carries weeks of loss against a delivery that came an
    hour ago (measured in docs/engine.md). Non-decreasing in ``rate`` and ``days``."""
    days = days if days < MAX_DAYS else MAX_DAYS
    loss = rate * days
    if since_receipt is None or book_before is None or since_receipt >= days:
        return loss
    since = since_receipt if since_receipt > 0.0 else 0.0
    cap = float(book_before) if book_before > 0 else 0.0
    return rate * since + cap if rate * (days - since) > cap else loss


class LossGroup:
    """One store × category's counts: units gone and days unverified summed, and its
    ``rate`` as of the ``version``-th count (every count moves the chain's rate, so
    every group's). The engine's per-pair state holds its group's: no key per visit."""

    __slots__ = ("days", "gone", "rate", "version")

    def __init__(self) -> None:
        self.gone = 0.0
        self.days = 0.0
        self.rate = 0.0
        self.version = -1


class LossRate:
    """Loss per store × category and when each pair was first seen.

    When a pair was last verified and its last gap are kept on the engine's per-pair
    state. ``first_seen`` is per store, then sku (no tuple key per pair: most pairs
    are only ever seen in warehouse snapshots, ~1M of them in production).
    """

    def __init__(self) -> None:
        self.groups: dict[tuple[str, str | None], LossGroup] = {}
        self.chain_gone = 0.0
        self.chain_days = 0.0
        self.counts = 0  # counts learnt from (a group's kept rate is of one of them)
        self.first_seen: dict[str, dict[str, datetime]] = {}

    def group(self, store_id: str, category: str | None) -> LossGroup:
        """The store × category's group (a new, empty one the first time)."""
        g = (store_id, category)
        c = self.groups.get(g)
        if c is None:
            c = self.groups[g] = LossGroup()
        return c

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
        c = self.group(store_id, category)
        c.gone += gap
        c.days += days
        self.chain_gone += gap
        self.chain_days += days
        self.counts += 1  # the chain moved: every group's rate did

    def rate(self, store_id: str, category: str | None) -> float:
        """Units per item-day, never negative."""
        return self._rate(self.groups.get((store_id, category)))

    def _rate(self, c: LossGroup | None) -> float:
        """``rate`` of the group (None: no count there yet)."""
        # max(0.0, x) as conditionals (after every count, per store and category read)
        gone = self.chain_gone
        chain = (gone if gone > 0.0 else 0.0) / (self.chain_days + PRIOR_DAYS)
        if c is None:
            gone, days = PRIOR_DAYS * chain, 0.0
        else:
            gone, days = c.gone + PRIOR_DAYS * chain, c.days
        return (gone if gone > 0.0 else 0.0) / (days + PRIOR_DAYS)

    def cached_rate(self, store_id: str, category: str | None) -> float:
        """``rate``, kept until the next count moves it."""
        return self.group_rate(self.group(store_id, category))

    def group_rate(self, c: LossGroup) -> float:
        """``cached_rate`` of the group."""
        if c.version != self.counts:
            c.rate = self._rate(c)
            c.version = self.counts
        return c.rate

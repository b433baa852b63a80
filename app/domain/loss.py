"""Unrecorded loss (theft, damage, receiving errors) per store and category.

Learned from counts: the book just before a count minus the count is what left
without a record since the pair was last verified. Loss has two parts: one per day
unverified (damage, misplaced units, receiving errors: any item) and one per unit
sold since (theft and mis-scans follow the traffic: an item that sells ten a day is
handled, and stolen, far more than one that sells one a week). The chain's split is
a least-squares fit of the count gaps on (days, units sold), both rates ≥ 0, the
per-unit one pulled toward 0 by ``UNIT_PRIOR`` pseudo-counts, so a chain whose gaps
do not follow sales keeps a loss per day alone; each store × category scales the
chain's split by its own gaps against what the split predicts there, shrunk toward
the chain. A pair never verified in the data is assumed last verified
``UNVERIFIED_DAYS`` before it was first seen (its units sold count from then).
"""

from __future__ import annotations

from datetime import datetime

from mypy_extensions import mypyc_attr

UNVERIFIED_DAYS = 30.0
PRIOR_DAYS = 60.0
MAX_DAYS = 90.0
# Units one count may say were found (count above the book) for the rates: a count keyed
# as 2,000,000,000, or 1000 for 10, would otherwise cancel the chain's losses for good
# and make every pair look safer (measured in docs/engine.md). A loss is never clipped
# (it cannot exceed the book before the count: the cautious side).
MAX_FOUND_PER_COUNT = 24
# Pseudo-counts of no loss at the counts' typical units sold (their root mean square):
# the per-unit rate needs this many counts' worth of gaps that follow sales to move.
UNIT_PRIOR = 50.0


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

    __slots__ = ("days", "gone", "rate", "sold", "unit_rate", "version")

    def __init__(self) -> None:
        self.gone = 0.0
        self.days = 0.0
        self.sold = 0.0
        self.rate = 0.0  # units a day unverified
        self.unit_rate = 0.0  # units per unit sold since verified
        self.version = -1


# Compiled by mypyc (``app.domain.NATIVE``); scripts/accuracy_probe.py subclasses it.
@mypyc_attr(allow_interpreted_subclasses=True)
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
        self.chain_sold = 0.0
        # The chain's least squares of gap on (days, sold): sums of products.
        self.sdd = self.sss = self.sds = self.sdy = self.ssy = 0.0
        self._split: tuple[float, float] | None = None
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

    def counted(
        self, store_id: str, category: str | None, days: float, gap: int, sold: float = 0.0
    ) -> None:
        """A count found ``gap`` units fewer than the book after ``days`` unverified
        (already capped at ``MAX_DAYS``) and ``sold`` units sold since; a count above
        the book by more than ``MAX_FOUND_PER_COUNT`` counts as that many found."""
        gap = gap if gap > -MAX_FOUND_PER_COUNT else -MAX_FOUND_PER_COUNT
        sold = sold if sold > 0.0 else 0.0
        c = self.group(store_id, category)
        c.gone += gap
        c.days += days
        c.sold += sold
        self.chain_gone += gap
        self.chain_days += days
        self.chain_sold += sold
        self.sdd += days * days
        self.sss += sold * sold
        self.sds += days * sold
        self.sdy += days * gap
        self.ssy += sold * gap
        self._split = None
        self.counts += 1  # the chain moved: every group's rate did

    def split(self) -> tuple[float, float]:
        """The chain's loss per day unverified and per unit sold since: the shape
        from ``chain_split``, the level its gaps' total shrunk toward none by
        ``PRIOR_DAYS`` days (with only a loss per day, the chain's rate as before:
        units gone over days unverified plus ``PRIOR_DAYS``)."""
        if self._split is None:
            per_day, per_unit = chain_split(
                self.sdd, self.sss, self.sds, self.sdy, self.ssy, self.counts
            )
            days = self.chain_days
            predicted = (per_day * days + per_unit * self.chain_sold) * (days + PRIOR_DAYS)
            gone = self.chain_gone if self.chain_gone > 0.0 else 0.0
            level = gone * days / predicted if predicted > 0.0 else 0.0
            self._split = (level * per_day, level * per_unit)
        return self._split

    def rate(self, store_id: str, category: str | None) -> float:
        """The store × category's loss per day unverified (``group_rates``), never negative."""
        return self.cached_rate(store_id, category)

    def _rate(self, c: LossGroup | None) -> float:
        """The group's loss per day with no loss per unit (None: no count there yet):
        units gone over days unverified, shrunk toward the chain's by ``PRIOR_DAYS``."""
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
        """``cached_rate`` of the group: its loss per day unverified."""
        return self.group_rates(c)[0]

    def group_rates(self, c: LossGroup) -> tuple[float, float]:
        """The group's loss per day unverified and per unit sold since, kept until the
        next count moves them."""
        if c.version != self.counts:
            self._rates(c)
        return c.rate, c.unit_rate

    def _rates(self, c: LossGroup) -> None:
        """The chain's split scaled by the group's gaps over what the split predicts
        for its counts, shrunk toward the chain by ``PRIOR_DAYS`` of the chain's loss;
        the day rate alone (``_rate``) while the chain's gaps fit no split."""
        c.version = self.counts
        per_day, per_unit = self.split()
        if per_day <= 0.0 and per_unit <= 0.0:
            c.rate, c.unit_rate = self._rate(c), 0.0
            return
        # PRIOR_DAYS of the chain's loss: its split's loss over its counts, per day
        pseudo = PRIOR_DAYS * (per_day + per_unit * self.chain_sold / self.chain_days)
        own = c.gone + pseudo  # (found units may offset the chain's share: at least 0)
        predicted = per_day * c.days + per_unit * c.sold + pseudo
        scale = (own if own > 0.0 else 0.0) / predicted
        c.rate, c.unit_rate = scale * per_day, scale * per_unit


def chain_split(
    sdd: float, sss: float, sds: float, sdy: float, ssy: float, counts: int
) -> tuple[float, float]:
    """(per day, per unit sold) minimising Σ (gap − a·days − b·sold)² + prior·b², a, b ≥ 0,
    from the sums of products; ``prior`` is ``UNIT_PRIOR`` counts at the mean square of
    ``sold``. At a bound, the one-term fit that explains more."""
    prior = UNIT_PRIOR * sss / counts if counts > 0 else 0.0
    sss += prior
    det = sdd * sss - sds * sds
    if det > 1e-12:
        a = (sss * sdy - sds * ssy) / det
        b = (sdd * ssy - sds * sdy) / det
        if a >= 0.0 and b >= 0.0:
            return a, b
    a = sdy / sdd if sdd > 0.0 and sdy > 0.0 else 0.0
    b = ssy / sss if sss > 0.0 and ssy > 0.0 else 0.0
    return (a, 0.0) if a * sdy >= b * ssy else (0.0, b)

"""Shelf run-out through the trading day, learned from POS sales alone.

A fast seller's shelf holds far less than its book and is refilled when staff get to
it; deep into a busy day it can be drained before they do. Shelf capacity is not
published, but sales show run-outs after the fact: a stretch of the store's trade in
which the pair should have sold ``DRY_EXPECTED`` units or more (by its sales speed and
the store's rhythm) and sold none is a retrospective "the shelf ran dry" event, and the
units the pair had sold that trading day when the stretch began say where it ran dry.

Every sale of a pair expected to sell at least ``STRETCHES_PER_DAY`` such stretches a
trading day (``STRETCHES_PER_DAY × DRY_EXPECTED`` units: slower pairs cannot show a
run-out within a day) closes the stretch since its previous sale: one observation,
dry or not, in the bin of units the pair had sold that trading day when the stretch
began (``RUN_EDGES``). Per chain, each bin's dry rate is shrunk toward the chain's
(``RUN_PRIOR_N`` pseudo-observations) and pooled so it never falls as units sold grow;
per store (refill habits are a store's), each bin's rate is shrunk toward that chain
curve (``RUN_PRIOR_N`` again) and pooled the same way. Over the chain's rate, bounded to
``[1, RUN_FACTOR_MAX]``, it is the factor on the store's pairs' empty-shelf prior by the
units they sold today. Never below 1, so pairs early in their
day and slow sellers keep their prior, and a learner that finds no rise changes
nothing; non-decreasing in units sold by construction, so more sales today never
raise confidence (hypothesis property in ``tests/test_engine_properties.py``).

The trading day is the store's (``Rhythm.day_start_h``: from the first trading hour
after a quiet one). Only published sales are read, in publication order; nothing here
looks at a shelf.
"""

from __future__ import annotations

from bisect import bisect_right

from app.domain.pooled import overall_rate, pooled_rates
from app.domain.rhythm import Rhythm

# Units the pair sold today before the stretch began (upper edges of the bins).
RUN_EDGES = (2.0, 4.0, 8.0, 12.0, 16.0, 24.0, 32.0, 48.0, 64.0, 96.0, 128.0, 192.0)
DRY_EXPECTED = 5.0  # units the stretch should have sold, with none sold: the shelf ran dry
STRETCHES_PER_DAY = 8.0  # learn from pairs expected to sell this many such stretches a day
RUN_PRIOR_N = 50.0  # pseudo-observations per bin, at the chain's dry rate
RUN_FACTOR_MAX = 4.0  # bound on the factor (a bin's dry rate over the chain's)
SAME_DAY_HOURS = 4  # day starts this close are one trading day (the rhythm is relearned)
REBUILD_GROWTH = 1.02  # rebuild the factors after 2% more stretches (not at every sale)


class DayTally:
    """A pair's sales on its current trading day (kept on the engine's pair state)."""

    __slots__ = ("builds", "c_last", "end", "per_day", "start", "units", "x_last")

    def __init__(self) -> None:
        self.start = -(10**9)  # epoch hour the trading day began
        self.end = -(10**9)  # epoch hour the next one begins (as the rhythm said at a sale)
        self.units = 0.0  # units sold since then
        self.x_last = -1.0  # epoch hours of the newest sale (-1: none yet)
        self.per_day = -1.0  # the pair's sales speed at the day's first sale (-1: not read yet)
        self.c_last = 0.0  # the store's trade clock at ``x_last``, read in rhythm build ``builds``
        self.builds = -1  # (none yet)


class RunOut:
    """How much likelier a stretch after a sale runs dry, by units sold today, per store."""

    __slots__ = ("_built_n", "_chain_rates", "_factors", "bin_dry", "bin_n", "n", "stores")

    def __init__(self) -> None:
        self.bin_dry = [0.0] * (len(RUN_EDGES) + 1)
        self.bin_n = [0.0] * (len(RUN_EDGES) + 1)
        self.stores: dict[str, tuple[list[float], list[float]]] = {}  # store → (dry, n) per bin
        self.n = 0.0  # stretches observed
        self._chain_rates: list[float] | None = None
        self._factors: dict[str | None, list[float]] = {}  # per store (None: the chain's)
        self._built_n = 0.0

    def observe(self, store: str, units_before: float, dry: bool) -> None:
        """A stretch at ``store`` that began with ``units_before`` sold that trading day."""
        i = bisect_right(RUN_EDGES, units_before if units_before > 0.0 else 0.0)
        e = 1.0 if dry else 0.0
        self.bin_dry[i] += e
        self.bin_n[i] += 1.0
        cells = self.stores.get(store)
        if cells is None:
            cells = self.stores[store] = ([0.0] * len(self.bin_n), [0.0] * len(self.bin_n))
        cells[0][i] += e
        cells[1][i] += 1.0
        self.n += 1.0
        if self.n > self._built_n * REBUILD_GROWTH + 1.0:  # rebuilt lazily, on the next read
            self._chain_rates = None

    def chain(self) -> float:
        """The chain's dry rate over all stretches (one pseudo-dry in 20 pseudo-stretches)."""
        return overall_rate(self.bin_dry, self.bin_n)

    def factors(self, store: str | None = None) -> list[float]:
        """Per bin, the store's pooled (non-decreasing) dry rate over the chain's, bounded
        to [1, RUN_FACTOR_MAX]; the chain's own curve for a store with no stretches."""
        if self._chain_rates is None:
            self._chain_rates = pooled_rates(self.bin_dry, self.bin_n, RUN_PRIOR_N, self.chain())
            self._factors = {}
            self._built_n = self.n
        f = self._factors.get(store)
        if f is None:
            chain = self.chain()
            rates = self._chain_rates
            cells = None if store is None else self.stores.get(store)
            if cells is not None:
                dry, n = cells
                rates = pooled_rates(
                    [e + RUN_PRIOR_N * r for e, r in zip(dry, rates, strict=True)],
                    [k + RUN_PRIOR_N for k in n],
                    0.0,
                    0.0,
                )
            f = self._factors[store] = []
            for r in rates:  # min(RUN_FACTOR_MAX, max(1.0, r / chain)) as conditionals
                x = r / chain
                x = x if x > 1.0 else 1.0
                f.append(x if x < RUN_FACTOR_MAX else RUN_FACTOR_MAX)
        return f

    def factor(self, units_today: float, store: str | None = None) -> float:
        """Multiplier on the empty-shelf prior of a pair of ``store`` that sold
        ``units_today`` on the store's trading day."""
        f = self._factors.get(store) if self._chain_rates is not None else None  # (per visit)
        if f is None:
            f = self.factors(store)
        return f[bisect_right(RUN_EDGES, units_today if units_today > 0.0 else 0.0)]

    def sold(
        self, store: str, tally: DayTally | None, rhythm: Rhythm, x: float, qty: float
    ) -> DayTally:
        """A sale of ``qty`` at epoch hours ``x`` by a pair of ``store`` (its tally, None
        for a pair's first sale, and the store's rhythm given); the tally after it.

        Closes the stretch since the pair's previous sale (an observation when the pair
        sold fast enough by its speed at the start of that trading day), then counts the
        sale on its trading day. On a new day ``tally.per_day`` is left at -1 for the
        caller to fill with the pair's speed (units per trading day, before this sale). A
        sale older than the pair's newest (published late) only counts if it falls on the
        current trading day. The rhythm is read as last built (no rebuild: the engine's
        other readings stay as they would have been).
        """
        if tally is None:
            tally = DayTally()
        elif tally.x_last <= x < tally.end and tally.per_day < STRETCHES_PER_DAY * DRY_EXPECTED:
            tally.units += qty  # a slow pair's sale later the same day: no rhythm reading
            tally.x_last = x
            tally.builds = -1  # its clock was not read
            return tally
        start, end, c_now = rhythm.built_day_clock_h(x)
        if x >= tally.x_last:
            per_day = tally.per_day
            builds = rhythm.builds
            if per_day >= STRETCHES_PER_DAY * DRY_EXPECTED:
                c_last = tally.c_last
                if tally.builds != builds:  # rebuilt since (or not read): read it again
                    c_last = rhythm.built_day_clock_h(tally.x_last)[2]
                self.observe(store, tally.units, per_day / 24.0 * (c_now - c_last) >= DRY_EXPECTED)
            tally.c_last, tally.builds = c_now, builds
            tally.x_last = x
            if start > tally.start + SAME_DAY_HOURS:
                tally.start = start
                tally.units = 0.0
                tally.per_day = -1.0
            tally.end = end
            tally.units += qty
        elif abs(start - tally.start) <= SAME_DAY_HOURS:
            tally.units += qty
        return tally

    @staticmethod
    def today(tally: DayTally | None, x_now: float) -> float:
        """Units the pair sold on the store's trading day at ``x_now`` (0 on a new day)."""
        if tally is None or x_now >= tally.end:
            return 0.0
        return tally.units

"""What feedback teaches about the shelf: how fast deliveries reach it, and phantoms.

- **Shelf fill**: after a receipt, P(the received units are on the shelf) by hours
  since the receipt, learned per chain from shelf observations (shelf counts and
  picks) that followed a receipt; a beta count per bucket, made non-decreasing.
- **Phantom prior**: P(the shelf is empty while the book says there are units),
  per store, shrunk toward the chain, from the same observations.
"""

from __future__ import annotations

import math
from bisect import bisect_right

from app.domain.pooled import overall_rate, pooled_rates, rebuild_due

# Upper edges (hours since receipt) of the fill buckets; later than the last = filled.
FILL_EDGES = (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 24.0, 48.0)
FILL_PRIOR = 2.0  # pseudo-observations per bucket, at 1/2
PHANTOM_PRIOR_N = 50.0


class ShelfFill:
    def __init__(self) -> None:
        self.filled = [0.0] * len(FILL_EDGES)
        self.n = [0.0] * len(FILL_EDGES)
        self._curve: list[float] | None = None

    def observe(self, hours: float, filled: bool) -> None:
        if hours < 0 or hours >= FILL_EDGES[-1]:
            return
        i = bisect_right(FILL_EDGES, hours)
        self.n[i] += 1
        self.filled[i] += 1.0 if filled else 0.0
        self._curve = None

    def curve(self) -> list[float]:
        """Posterior means per bucket (FILL_PRIOR pseudo-observations at 1/2), pooled so
        they never fall."""
        if self._curve is None:
            self._curve = pooled_rates(self.filled, self.n, FILL_PRIOR, 0.5)
        return self._curve

    def p_filled(self, hours: float) -> float:
        if hours >= FILL_EDGES[-1]:
            return 1.0
        return self.curve()[bisect_right(FILL_EDGES, hours if hours > 0.0 else 0.0)]


class PhantomRate:
    def __init__(self) -> None:
        self.empty: dict[str, float] = {}
        self.n: dict[str, float] = {}
        self.chain_empty = 0.0
        self.chain_n = 0.0

    def observe(self, store_id: str, empty: bool) -> None:
        e = 1.0 if empty else 0.0
        self.empty[store_id] = self.empty.get(store_id, 0.0) + e
        self.n[store_id] = self.n.get(store_id, 0.0) + 1
        self.chain_empty += e
        self.chain_n += 1

    def prior(self, store_id: str) -> float:
        chain = (self.chain_empty + 1.0) / (self.chain_n + 20.0)
        return (self.empty.get(store_id, 0.0) + PHANTOM_PRIOR_N * chain) / (
            self.n.get(store_id, 0.0) + PHANTOM_PRIOR_N
        )


# Sales-speed bins (units per trading day, upper edges) for the chain's empty-shelf curve.
SPEED_EDGES = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
SPEED_PRIOR_N = 20.0  # pseudo-observations per speed bin, at the chain's overall rate
PAIR_PRIOR_N = 8.0  # pseudo-observations a pair's own record must outweigh
STORE_FACTOR = (0.25, 4.0)  # bounds on a store's empty rate relative to the chain's


class PairEmptiness:
    """P(the shelf is empty while the book is positive), per (store, sku).

    Learned from shelf observations (picks, shelf counts) with a hierarchical prior:
    a pair borrows from the chain's rate for items of its sales speed (bins in units
    per trading day, pooled so the curve never falls as speed rises: a faster seller
    empties a shelf of a few days' demand between refills at least as often), scaled
    by its store's rate against the chain's (``PhantomRate``, refill habits are a
    store's), then its own record outweighs ``PAIR_PRIOR_N`` pseudo-observations.
    Monotone by construction: faster sales never lower the prior.
    """

    def __init__(self) -> None:
        self.empty: dict[tuple[str, str], float] = {}
        self.n: dict[tuple[str, str], float] = {}
        self.bin_empty = [0.0] * (len(SPEED_EDGES) + 1)
        self.bin_n = [0.0] * (len(SPEED_EDGES) + 1)
        self._curve: list[float] | None = None
        self._chain: float | None = None
        self._seen = 0.0  # chain observations, and how many the curve was built from
        self._built = 0.0

    @staticmethod
    def _bin(per_day: float) -> int:
        return bisect_right(SPEED_EDGES, per_day if per_day > 0.0 else 0.0)

    def observe(self, store_id: str, sku: str, per_day: float, empty: bool) -> None:
        key = (store_id, sku)
        e = 1.0 if empty else 0.0
        self.empty[key] = self.empty.get(key, 0.0) + e
        self.n[key] = self.n.get(key, 0.0) + 1.0
        self.observe_bin(per_day, empty)

    def observe_bin(self, per_day: float, empty: bool) -> None:
        """The chain side of ``observe`` (the engine keeps the pair's counts on its pair state)."""
        i = self._bin(per_day)
        self.bin_empty[i] += 1.0 if empty else 0.0
        self.bin_n[i] += 1.0
        self._seen += 1.0
        if rebuild_due(self._seen, self._built):
            self._curve = None
            self._chain = None

    def curve(self) -> list[float]:
        """Chain empty rate per speed bin, non-decreasing in speed (pool adjacent violators)."""
        if self._curve is None:
            self._curve = pooled_rates(self.bin_empty, self.bin_n, SPEED_PRIOR_N, self.chain())
            self._built = self._seen
        return self._curve

    def chain(self) -> float:
        if self._chain is None:
            self._chain = overall_rate(self.bin_empty, self.bin_n)
        return self._chain

    def prior(self, store_id: str, sku: str, per_day: float, store_rate: float) -> float:
        """Posterior mean P(empty shelf | positive book) for the pair."""
        key = (store_id, sku)
        return self.prior_of(self.empty.get(key, 0.0), self.n.get(key, 0.0), per_day, store_rate)

    def prior_of(self, empty: float, n: float, per_day: float, store_rate: float) -> float:
        """``prior`` for a pair with ``empty`` of ``n`` observations empty."""
        return self.prior_with(empty, n, per_day, self.store_factor(store_rate))

    def store_factor(self, store_rate: float) -> float:
        """A store's empty rate (``PhantomRate.prior``) relative to the chain's, bounded:
        one per store until the next observation, whatever the pair."""
        lo, hi = STORE_FACTOR
        chain = self._chain if self._chain is not None else self.chain()
        f = store_rate / chain  # min(hi, max(lo, f)) as conditionals
        f = f if f > lo else lo
        return f if f < hi else hi

    def prior_with(self, empty: float, n: float, per_day: float, factor: float) -> float:
        """``prior_of`` given the store's ``store_factor``."""
        curve = self._curve if self._curve is not None else self.curve()
        # min(0.95, curve[bin of max(0.0, per_day)] * factor), as conditionals (hot path)
        base = curve[bisect_right(SPEED_EDGES, per_day if per_day > 0.0 else 0.0)] * factor
        base = base if base < 0.95 else 0.95
        return (empty + PAIR_PRIOR_N * base) / (n + PAIR_PRIOR_N)


# Average trade hours since the pair's last sign of life (sale, receipt, count, found pick),
# upper edges (a closed night adds ~0, a trading day ~24 on average).
IDLE_EDGES = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0)
IDLE_PRIOR_N = 20.0  # pseudo-observations per idle bin, at the chain's overall rate
IDLE_FACTOR = (0.25, 4.0)  # bounds on an idle bin's empty rate relative to the chain's


class IdleEmptiness:
    """How much likelier an empty shelf is the longer a pair has gone unseen on it.

    A slow seller's silence says little through its sales speed (a few quiet days
    are normal), yet its phantoms are the pairs with no sign of life for days. Learned
    per chain from shelf observations (empty or not, book positive) by average trade
    hours since the pair's last sign of life (the moment ``silence`` counts from),
    pooled so the rate never falls as that time grows: a longer silence never raises
    confidence. Independent of speed, so the pair prior stays non-decreasing in speed.
    Below 1 for pairs seen minutes ago: they are emptier than the chain less often.
    """

    __slots__ = ("_built", "_factors", "_seen", "bin_empty", "bin_n")

    def __init__(self) -> None:
        self.bin_empty = [0.0] * (len(IDLE_EDGES) + 1)
        self.bin_n = [0.0] * (len(IDLE_EDGES) + 1)
        self._factors: list[float] | None = None
        self._seen = 0.0
        self._built = 0.0

    def observe(self, idle_hours: float, empty: bool) -> None:
        i = bisect_right(IDLE_EDGES, idle_hours if idle_hours > 0.0 else 0.0)
        self.bin_empty[i] += 1.0 if empty else 0.0
        self.bin_n[i] += 1.0
        self._seen += 1.0
        if rebuild_due(self._seen, self._built):
            self._factors = None

    def factors(self) -> list[float]:
        """Per idle bin, its pooled (non-decreasing) empty rate over the chain's, bounded."""
        if self._factors is None:
            chain = overall_rate(self.bin_empty, self.bin_n)
            lo, hi = IDLE_FACTOR
            rates = pooled_rates(self.bin_empty, self.bin_n, IDLE_PRIOR_N, chain)
            factors = []
            for r in rates:  # min(hi, max(lo, r / chain)), as conditionals
                f = r / chain
                f = f if f > lo else lo
                factors.append(f if f < hi else hi)
            self._factors = factors
            self._built = self._seen
        return self._factors

    def factor(self, idle_hours: float) -> float:
        """Multiplier on a pair's empty-shelf prior after ``idle_hours`` unseen."""
        f = self._factors if self._factors is not None else self.factors()
        return f[bisect_right(IDLE_EDGES, idle_hours if idle_hours > 0.0 else 0.0)]


RESTOCK_PRIOR_N = 5.0  # pseudo-empties at the model's own rate: nothing learnt, no change
RESTOCK_FACTOR = (0.1, 1.0)  # a delivery never makes an empty shelf likelier


class RestockEmptiness:
    """How much less often a shelf is empty after a delivery than the model expects.

    A receipt is a restock: staff put the new units out, and the shelf that an
    empty-shelf prior and a stretch of silence took for a phantom is full again. Per
    chain, from shelf counts (the shelf alone: a pick may take from the back room,
    where a fresh delivery waits) at a positive book within the back-room window of a
    receipt: the empties seen against the model's P(empty shelf) for each, shrunk to 1
    by ``RESTOCK_PRIOR_N`` pseudo-empties and bounded within ``RESTOCK_FACTOR``. One
    number, so every badge property holds: it only scales the prior down while a
    delivery is fresh, and an older delivery only loses it.
    """

    __slots__ = ("_factor", "empty", "expected")

    def __init__(self) -> None:
        self.empty = 0.0
        self.expected = 0.0
        self._factor: float | None = None

    def observe(self, expected: float, empty: bool) -> None:
        """A shelf count after a delivery: ``expected`` the model's P(empty), before this factor."""
        self.empty += 1.0 if empty else 0.0
        self.expected += expected
        self._factor = None

    def factor(self) -> float:
        """Multiplier on the empty-shelf prior of a pair with a delivery in the window."""
        if self._factor is None:
            lo, hi = RESTOCK_FACTOR
            f = (self.empty + RESTOCK_PRIOR_N) / (self.expected + RESTOCK_PRIOR_N)
            f = f if f > lo else lo
            self._factor = f if f < hi else hi
        return self._factor


# Shelf counts (with a positive book and count) before the shelf share is used at all.
SHARE_MIN_COUNTS = 50
SHARE_PRIOR_N = 20.0  # pseudo-counts at "the shelf holds the whole book" (a = 0, b = 1)
SHARE_MIN_SPREAD = 0.1  # floor on the log-scale spread: a fit on few counts is never sure
SHARE_REFIT = 1.02  # refit after 2% more counts (a replay asks per visit)


class ShelfShare:
    """How many of the book's units the shelf holds, learned from shelf counts.

    A store keeps a few days of an item on the shelf and the rest in the back room, so a
    book of 20 does not put 6 units in front of a shopper who wants 6. Shelf counts say
    how much the shelf held against the book just before them: in the simulated worlds
    and, by design, in planogram-run stores, ``ln(shelf) ≈ a + b·ln(book)`` with b about
    0.5-0.7 and a log-scale spread of ~0.4. Per chain, by least squares with a prior at
    a = 0, b = 1 (the shelf holds the book), b kept in [0, 1] (a bigger book never puts
    fewer units on the shelf, nor more than it adds to the book).

    ``typical(book)`` is the median shelf for that book, ``spread`` the log-scale
    spread; both go into the evidence (``Evidence.shelf_typical``), and the confidence
    is scaled by P(shelf ≥ wanted + half the sales before arrival | shelf ≥ 1)
    (``confidence.shelf_share_factor``). Pure sufficient statistics, no clock.
    """

    __slots__ = ("_fit", "_fit_at", "_typical", "n", "sx", "sxx", "sxy", "sy", "syy")

    def __init__(self) -> None:
        self.n = self.sx = self.sy = self.sxx = self.sxy = self.syy = 0.0
        self._fit: tuple[float, float, float] | None = None  # (a, b, spread)
        self._fit_at = 0.0
        self._typical: dict[int, float] = {}

    def observe(self, book: int, shelf: int) -> None:
        """A shelf count of ``shelf`` units (≥ 1) where the book said ``book`` (≥ 1)."""
        if book < 1 or shelf < 1:
            return  # an empty shelf is the phantom prior's business, not the share's
        x, y = math.log(book), math.log(shelf)
        self.n += 1.0
        self.sx += x
        self.sy += y
        self.sxx += x * x
        self.sxy += x * y
        self.syy += y * y
        if self.n >= SHARE_MIN_COUNTS and self.n >= self._fit_at * SHARE_REFIT:
            self._fit = None

    def fit(self) -> tuple[float, float, float] | None:
        """(a, b, spread), or None before ``SHARE_MIN_COUNTS`` counts."""
        if self.n < SHARE_MIN_COUNTS:
            return None
        if self._fit is None:
            self._fit = self._solve()
            self._fit_at = self.n
            self._typical = {}
        return self._fit

    def _solve(self) -> tuple[float, float, float]:
        # The prior: SHARE_PRIOR_N pseudo-counts on the line y = x, spread over the
        # observed books (their mean and variance), so it pulls toward a = 0, b = 1.
        n, k = self.n, SHARE_PRIOR_N
        mx = self.sx / n
        vx = max(self.sxx / n - mx * mx, 1e-6)
        N = n + k
        sx, sxx = self.sx + k * mx, self.sxx + k * (vx + mx * mx)
        sy, sxy = self.sy + k * mx, self.sxy + k * (vx + mx * mx)
        syy = self.syy + k * (vx + mx * mx)
        det = N * sxx - sx * sx
        b = (N * sxy - sx * sy) / det if det > 1e-12 else 1.0
        b = 0.0 if b < 0.0 else (1.0 if b > 1.0 else b)
        a = (sy - b * sx) / N
        rss = syy - 2 * a * sy - 2 * b * sxy + N * a * a + 2 * a * b * sx + b * b * sxx
        spread = math.sqrt(max(rss / N, 0.0))
        return a, b, (spread if spread > SHARE_MIN_SPREAD else SHARE_MIN_SPREAD)

    def typical(self, book: int) -> tuple[float, float]:
        """(median shelf units for ``book``, log-scale spread); (0, 0) while unfitted."""
        fit = self._fit if self._fit is not None else self.fit()
        if fit is None or book < 1:
            return 0.0, 0.0
        m = self._typical.get(book)
        if m is None:
            m = math.exp(fit[0] + fit[1] * math.log(book))
            m = self._typical[book] = m if m < book else float(book)
        return m, fit[2]


# Upper edges (hours since a short pick) of the refill buckets; later than the last = the last.
REFILL_EDGES = (1.0, 2.0, 4.0, 8.0, 12.0, 24.0, 48.0)
REFILL_PRIOR_N = 4.0  # pseudo-observations per bucket, at "not refilled" (the bound holds)


# A sale beyond the units a look saw on a short shelf is a sign of a refill, not proof:
# an online order is on record when paid and picked later, and a look can miss a unit.
# Each unit sold beyond them multiplies the odds that the shelf was not refilled by
# this (0.2, 0.35 and 0.5 measured alike; one unit beyond found the shelf stocked on
# 31-57% of visits, two or more on 56-100%: docs/engine.md, stop 24).
SOLD_BEYOND_ODDS = 0.35


def not_refilled_after_sales(stays: float, beyond: int) -> float:
    """P(not refilled) from ``stays`` once ``beyond`` units sold past what was seen;
    non-increasing in ``beyond``, non-decreasing in ``stays``."""
    if beyond <= 0 or stays <= 0.0:
        return stays
    kept = stays * SOLD_BEYOND_ODDS**beyond
    return kept / (kept + (1.0 - stays)) if kept > 0.0 else 0.0


class Refill:
    """After a short pick, P(the shelf has been refilled beyond what the pick found), by
    hours since the pick, learned per chain from the pair's next shelf observations
    while the pick's bound still applies (a count, or a pick, finding more than the
    bound); the same after a shelf count that left units out of the book. Staff
    restock a short shelf from the back room; the bound says the shelf was short, not
    that it stays so. Pooled so it never falls with time (each bucket's
    pseudo-observations sit at 0: with nothing learnt the bound holds, as before)."""

    __slots__ = ("_curve", "n", "refilled")

    def __init__(self) -> None:
        self.refilled = [0.0] * (len(REFILL_EDGES) + 1)
        self.n = [0.0] * (len(REFILL_EDGES) + 1)
        self._curve: list[float] | None = None

    def observe(self, hours: float, refilled: bool) -> None:
        i = bisect_right(REFILL_EDGES, hours if hours > 0.0 else 0.0)
        self.n[i] += 1.0
        self.refilled[i] += 1.0 if refilled else 0.0
        self._curve = None

    def curve(self) -> list[float]:
        """Per bucket: the pooled rate of the buckets seen so far; a bucket with nothing
        seen carries the one before (0 before the first): a refill only gets likelier
        with time, and no look yet at 24 hours is no sign the shelf stays short that long."""
        if self._curve is None:
            seen = [i for i, n in enumerate(self.n) if n > 0]
            rates = pooled_rates(
                [self.refilled[i] for i in seen], [self.n[i] for i in seen], REFILL_PRIOR_N, 0.0
            )
            by_bucket = dict(zip(seen, rates, strict=True))
            curve, last = [], 0.0
            for i in range(len(self.n)):
                last = by_bucket.get(i, last)
                curve.append(last)
            self._curve = curve
        return self._curve

    def p_refilled(self, hours: float) -> float:
        curve = self._curve if self._curve is not None else self.curve()
        return curve[bisect_right(REFILL_EDGES, hours if hours > 0.0 else 0.0)]

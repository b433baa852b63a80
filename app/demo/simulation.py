"""A chain of stores in miniature: hidden shelf stock and the events tills report.

Pure and seeded; the caller passes the time (``advance(now)``), so one seed and one
sequence of times always tell the same story. Two quantities per (store, sku):

- the **shelf**: what is really there (hidden from the service);
- the **book**: what the system of record believes is sellable.

Sales, returns, receipts, write-offs and counts move both and are reported as POS
events. Shrink (theft, misplaced items) empties the shelf without an event, so
the book drifts above the shelf until a count finds out: exactly the gap a
truthful badge must leave room for. Items whose book runs low are reordered and
arrive some minutes later as a receipt; meanwhile they are ``in_transit``.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from app.domain.model import (
    Adjustment,
    Count,
    PosEvent,
    Product,
    Receipt,
    Return,
    Sale,
    SnapshotRow,
    Store,
)

Pair = tuple[str, str]
"""(store_id, sku)"""

# What happens, and how often relative to each other. Receipts are not drawn:
# they arrive when a reorder is due.
_HAPPENINGS: tuple[str, ...] = ("sale", "return", "shrink", "write_off", "count")
_HAPPENING_WEIGHTS: tuple[float, ...] = (82, 5, 5, 4, 4)
_MAX_STEP = timedelta(seconds=10)


@dataclass(frozen=True)
class SimulationConfig:
    """How busy the chain is and how it restocks."""

    events_per_minute: float = 40.0
    reorder_point: int = 2
    restock_lead_min: timedelta = timedelta(minutes=4)
    restock_lead_max: timedelta = timedelta(minutes=15)
    popularity_skew: float = 1.0
    """Zipf exponent: a few skus sell a lot, most sell a little."""

    def __post_init__(self) -> None:
        if self.events_per_minute <= 0 or self.reorder_point < 0:
            raise ValueError("events_per_minute must be positive and reorder_point not negative")
        if not _MAX_STEP <= self.restock_lead_min <= self.restock_lead_max:
            raise ValueError(f"restock leads must be ordered and at least {_MAX_STEP}")


@dataclass(frozen=True)
class _Order:
    due_at: datetime
    pair: Pair
    qty: int


class Simulation:
    """Hidden stock per (store, sku), advanced tick by tick, reporting POS events."""

    def __init__(
        self,
        stores: Sequence[Store],
        products: Sequence[Product],
        *,
        seed: int,
        start: datetime,
        config: SimulationConfig | None = None,
        event_prefix: str = "P-",
        stock: Mapping[Pair, int] | None = None,
    ) -> None:
        """``stock`` overrides the seeded opening stock for the pairs it names."""
        if start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if not stores or not products:
            raise ValueError("a simulation needs stores and products")
        self.config = config or SimulationConfig()
        self.stores = tuple(stores)
        self.products = tuple(products)
        self.now = start.replace(microsecond=0)
        self.events: list[PosEvent] = []
        self._rng = random.Random(seed)
        self._prefix = event_prefix
        self._seed = seed

        order = list(range(len(self.products)))
        self._rng.shuffle(order)  # which sku is the best seller depends on the seed
        weights = [0.0] * len(self.products)
        for rank, index in enumerate(order, start=1):
            weights[index] = 1.0 / rank**self.config.popularity_skew
        self._sku_weights = _cumulative(weights)
        self._store_weights = _cumulative([self._rng.uniform(0.7, 1.3) for _ in self.stores])
        top = max(weights)

        self._par: dict[Pair, int] = {}
        self.initial_book: dict[Pair, int] = {}
        for store in self.stores:
            for product, weight in zip(self.products, weights, strict=True):
                pair = (store.store_id, product.sku)
                par = 4 + round(14 * weight / top) + self._rng.randint(0, 4)
                self._par[pair] = par
                low = self._rng.random() < 0.1
                opening = (
                    self._rng.randint(0, 2)
                    if low
                    else self._rng.randint(self.config.reorder_point + 1, par)
                )
                self.initial_book[pair] = opening if stock is None else stock.get(pair, opening)
        self._shelf = dict(self.initial_book)
        self._book = dict(self.initial_book)
        self._in_transit: dict[Pair, int] = {}
        self._orders: list[_Order] = []
        self._drift: set[Pair] = set()
        self._recent_sales: dict[str, deque[str]] = {
            s.store_id: deque(maxlen=50) for s in self.stores
        }
        for pair in self.initial_book:
            self._reorder_if_low(pair, self.now)

    # -- what an observer may read ------------------------------------------------

    def shelf(self, pair: Pair) -> int:
        """Units really on the shelf (the truth the service never sees)."""
        return self._shelf[pair]

    def book(self, pair: Pair) -> int:
        """Units the system of record believes are sellable."""
        return self._book[pair]

    def in_transit(self, pair: Pair) -> int:
        return self._in_transit.get(pair, 0)

    def best_sellers(self, n: int = 5) -> list[str]:
        """The ``n`` skus that sell fastest, best first."""
        weights = [
            b - a for a, b in zip([0.0, *self._sku_weights], self._sku_weights, strict=False)
        ]
        ranked = sorted(range(len(self.products)), key=lambda i: -weights[i])
        return [self.products[i].sku for i in ranked[:n]]

    def snapshot(self) -> list[SnapshotRow]:
        """The system of record at ``now``: every pair with stock on hand or on its way.

        ``on_hand − reserved`` is the book; a few pairs hold units back for orders.
        Pairs with nothing on hand or in transit are left out (no stock there).
        """
        rng = random.Random(f"{self._seed}:snapshot:{self.now.isoformat()}")
        rows: list[SnapshotRow] = []
        for pair in sorted(self._book):
            book, transit = self._book[pair], self.in_transit(pair)
            reserved = rng.randint(1, 2) if book > 0 and rng.random() < 0.05 else 0
            if book + reserved == 0 and transit == 0:
                continue
            rows.append(
                SnapshotRow(
                    location_id=pair[0],
                    sku=pair[1],
                    on_hand=book + reserved,
                    reserved=reserved,
                    in_transit=transit,
                    as_of=self.now,
                )
            )
        return rows

    # -- the passage of time ------------------------------------------------------

    def advance(self, now: datetime) -> list[PosEvent]:
        """Let the chain trade until ``now`` (whole seconds); return the new events.

        Every new event has ``now_before < occurred_at ≤ now``, so a snapshot taken
        at ``now`` reflects exactly the events up to it.
        """
        now = now.replace(microsecond=0)
        first = len(self.events)
        while self.now < now:
            self._step(min(now, self.now + _MAX_STEP))
        return self.events[first:]

    def _step(self, until: datetime) -> None:
        seconds = int((until - self.now).total_seconds())
        lam = self.config.events_per_minute / 60 * seconds
        # Within one second, receipts come first and counts last: a count then covers
        # every movement of its second, as the contract's "movements strictly after
        # the base's time" assumes.
        happenings: list[tuple[datetime, int, str]] = []
        for _ in range(_poisson(self._rng, lam)):
            at = self.now + timedelta(seconds=self._rng.randint(1, seconds))
            kind = self._rng.choices(_HAPPENINGS, _HAPPENING_WEIGHTS)[0]
            happenings.append((at, 2 if kind == "count" else 1, kind))
        due = [o for o in self._orders if o.due_at <= until]
        self._orders = [o for o in self._orders if o.due_at > until]
        timeline: list[tuple[datetime, int, str | _Order]] = [(o.due_at, 0, o) for o in due]
        timeline.extend(happenings)
        for at, _, what in sorted(timeline, key=lambda item: (item[0], item[1])):
            if isinstance(what, _Order):
                self._receive(what, at)
            else:
                self._happen(what, at)
        self.now = until

    def _happen(self, kind: str, at: datetime) -> None:
        store = self.stores[_pick(self._rng, self._store_weights)].store_id
        sku = self.products[_pick(self._rng, self._sku_weights)].sku
        pair = (store, sku)
        if kind == "sale":
            qty = min(self._rng.choices((1, 2, 3), (80, 15, 5))[0], self._shelf[pair])
            if qty == 0:
                return  # sold out: the shopper leaves empty-handed
            self._move(pair, -qty, at)
            self._recent_sales[store].append(sku)
            self._emit(Sale, pair, at, qty=qty)
        elif kind == "return":
            recent = self._recent_sales[store]
            if not recent:
                return
            pair = (store, recent.pop())
            self._move(pair, +1, at)
            self._emit(Return, pair, at, qty=1)
        elif kind == "shrink":
            if self._shelf[pair] > 0:
                self._shelf[pair] -= 1
                self._drift.add(pair)
        elif kind == "write_off":
            qty = min(self._rng.randint(1, 2), self._shelf[pair])
            if qty:
                self._move(pair, -qty, at)
                self._emit(Adjustment, pair, at, qty=-qty)
        elif kind == "count":
            if self._drift and self._rng.random() < 0.5:
                pair = sorted(self._drift)[self._rng.randrange(len(self._drift))]
            self._book[pair] = self._shelf[pair]
            self._drift.discard(pair)
            self._emit(Count, pair, at, on_hand=self._shelf[pair])
            self._reorder_if_low(pair, at)

    def _receive(self, order: _Order, at: datetime) -> None:
        self._move(order.pair, order.qty, at)
        self._in_transit[order.pair] -= order.qty
        self._emit(Receipt, order.pair, at, qty=order.qty)

    def _move(self, pair: Pair, qty: int, at: datetime) -> None:
        self._shelf[pair] += qty
        self._book[pair] += qty
        if qty < 0:
            self._reorder_if_low(pair, at)

    def _reorder_if_low(self, pair: Pair, at: datetime) -> None:
        if self._book[pair] > self.config.reorder_point or self.in_transit(pair) > 0:
            return
        low, high = self.config.restock_lead_min, self.config.restock_lead_max
        lead = self._rng.randint(int(low.total_seconds()), int(high.total_seconds()))
        qty = self._par[pair] - self._book[pair]
        self._orders.append(_Order(due_at=at + timedelta(seconds=lead), pair=pair, qty=qty))
        self._in_transit[pair] = qty

    def _emit(
        self,
        kind: type[Sale | Return | Receipt | Adjustment | Count],
        pair: Pair,
        at: datetime,
        **fields: int,
    ) -> None:
        event_id = f"{self._prefix}{len(self.events) + 1:07d}"
        self.events.append(
            kind(event_id=event_id, store_id=pair[0], sku=pair[1], occurred_at=at, **fields)
        )


def _cumulative(weights: Sequence[float]) -> list[float]:
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


def _pick(rng: random.Random, cumulative: Sequence[float]) -> int:
    """An index drawn with the weights whose running sums are ``cumulative``."""
    return min(bisect_right(cumulative, rng.random() * cumulative[-1]), len(cumulative) - 1)


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method: fine for the small rates of one step."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k

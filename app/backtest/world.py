"""The hidden truth of one (store, sku): shelf, back room, lost units, and the record.

One pair is simulated as a discrete-event process. The physical stock (shelf,
back room, misplaced units) and the book (what the recorded movements imply) are
kept apart on purpose: every way they drift — theft, damage, receiving errors,
misplacement, mis-scans, shelves not yet filled from the back room — is a named
step below, and only recorded facts leave this module as events.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field

from app.backtest.calendar import DAY, HOUR, StoreCalendar, arrivals
from app.backtest.params import WorldParams
from app.backtest.sampling import bounded_lognormal, lognormal_median, poisson

# Kinds of scheduled happenings (heap entries); SNAPSHOT sorts last at equal times
# so a snapshot reflects every movement with occurred_at ≤ as_of.
SHOPPER, ONLINE_ORDER, SHRINK, MISPLACE, FOUND, DAMAGE = 0, 1, 2, 3, 4, 5
CYCLE_COUNT, SHELF_COUNT, REVIEW, DELIVERY, RESTOCK, RETURN, PICK, SNAPSHOT = (
    6, 7, 8, 9, 10, 11, 12, 13,
)  # fmt: skip

RecordedEvent = tuple[int, str, int]  # (occurred_at, type, qty or on_hand)
FeedbackFact = tuple[int, str, int]  # (observed_at, kind, qty)
VisitFact = tuple[int, int, int, int]  # (viewed_at, arrived_at, qty_wanted, on_shelf_qty)
SnapshotFact = tuple[int, int, int, int]  # (as_of, on_hand, reserved, in_transit)


@dataclass(frozen=True, slots=True)
class PairSetup:
    """Everything fixed about a (store, sku) before the clock runs."""

    store_id: str
    sku: str
    calendar: StoreCalendar
    cum_shopper: list[float]
    cum_online: list[float]
    shoppers_per_day: float
    lookup_share: float
    shrink_per_day: float
    shelf_capacity: int
    case_pack: int
    reorder_point: int
    order_up_to: int
    lead_days: int
    restock_hours_median: float
    start: int  # dataset window [start, end) in epoch seconds
    end: int
    snapshot_times: tuple[int, ...]
    review_times: tuple[int, ...]
    params: WorldParams
    dc_outage: tuple[int, int] | None = None  # [from, to) epoch seconds: nothing ships


@dataclass(slots=True)
class PairOutcome:
    """What one pair produced inside the dataset window (and its shelf trace)."""

    events: list[RecordedEvent] = field(default_factory=list)
    feedback: list[FeedbackFact] = field(default_factory=list)
    visits: list[VisitFact] = field(default_factory=list)
    snapshots: list[SnapshotFact] = field(default_factory=list)
    # Hidden, per visit: the recorded book when it looked, the back room when it arrived.
    book_at_view: list[int] = field(default_factory=list)
    back_at_arrival: list[int] = field(default_factory=list)
    shelf_trace: list[tuple[int, int]] = field(default_factory=list)  # (t, shelf) after changes
    lost_sales: int = 0
    demand_units: int = 0


class _Pair:
    """Mutable state of one pair while it is simulated."""

    def __init__(self, setup: PairSetup, rng: random.Random, trace: bool) -> None:
        self.s = setup
        self.p = setup.params
        self.rng = rng
        self.trace = trace
        self.out = PairOutcome()
        self.heap: list[tuple[int, int, int, int, int]] = []  # (t, last, seq, kind, payload)
        self.seq = 0
        self.shelf = 0
        self.back = 0
        self.misplaced = 0
        self.book = 0
        self.reserved = 0
        self.on_order: list[tuple[int, int]] = []  # (arrival, ordered qty)
        self.restock_pending = False
        self.book_times: list[int] = []
        self.book_values: list[int] = []

    # --- scheduling -------------------------------------------------------
    def at(self, t: int, kind: int, payload: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (t, 1 if kind == SNAPSHOT else 0, self.seq, kind, payload))

    def in_window(self, t: int) -> bool:
        return self.s.start < t < self.s.end

    # --- records ----------------------------------------------------------
    def record(self, t: int, kind: str, qty: int) -> None:
        if kind == "count":
            self.book = qty
        elif kind == "sale":
            self.book -= qty
        else:
            self.book += qty
        if self.in_window(t):
            self.out.events.append((t, kind, qty))
        self.book_times.append(t)
        self.book_values.append(self.book)

    def set_shelf(self, t: int, shelf: int) -> None:
        self.shelf = shelf
        if self.trace:
            self.out.shelf_trace.append((t, shelf))

    def book_at(self, t: int) -> int:
        """The recorded book at ``t`` (after every movement with occurred_at ≤ t)."""
        lo, hi = 0, len(self.book_times)
        while lo < hi:
            mid = (lo + hi) // 2
            if self.book_times[mid] <= t:
                lo = mid + 1
            else:
                hi = mid
        return self.book_values[lo - 1] if lo else self.book_values[0] if self.book_values else 0

    # --- staff ------------------------------------------------------------
    def restock_delay(self) -> int:
        return int(
            lognormal_median(self.rng, self.s.restock_hours_median, self.p.restock_hours_sigma)
            * HOUR
        )

    def maybe_restock(self, t: int) -> None:
        """Staff notice a low shelf and fetch from the back room — hours later."""
        trigger = max(1, math.ceil(self.s.shelf_capacity * self.p.refill_trigger))
        if self.restock_pending or self.back <= 0 or self.shelf > trigger:
            return
        delay = self.restock_delay()
        if self.rng.random() < self.p.forget_restock_share:
            delay += DAY  # the task was dropped; someone notices tomorrow
        self.restock_pending = True
        self.at(self.s.calendar.next_open_time(t + delay, self.rng), RESTOCK)

    def schedule_count(self, t: int) -> None:
        self.at(
            self.s.calendar.next_open_time(t + int(self.rng.random() * 2 * HOUR), self.rng),
            CYCLE_COUNT,
        )

    # --- the clock ---------------------------------------------------------
    def run(self) -> PairOutcome:
        s, p, rng, cal = self.s, self.p, self.rng, self.s.calendar
        self.initial_stock()
        t0 = cal.t0
        for t in arrivals(rng, t0, s.cum_shopper, s.shoppers_per_day):
            self.at(t, SHOPPER)
        for t in arrivals(rng, t0, s.cum_online, s.shoppers_per_day * p.online_order_share):
            self.at(t, ONLINE_ORDER)
        for t in arrivals(rng, t0, s.cum_shopper, s.shrink_per_day):
            self.at(t, SHRINK)
        for t in arrivals(rng, t0, s.cum_shopper, p.misplace_per_day):
            self.at(t, MISPLACE)
        for t in arrivals(rng, t0, cal.cum_staff, p.damage_writeoff_per_day):
            self.at(t, DAMAGE)
        for t in arrivals(rng, t0, cal.cum_staff, p.cycle_count_per_day):
            self.at(t, CYCLE_COUNT)
        for t in arrivals(rng, t0, cal.cum_staff, p.shelf_count_per_day):
            self.at(t, SHELF_COUNT)
        for t in s.review_times:
            self.at(t, REVIEW)
        for t in s.snapshot_times:
            self.at(t, SNAPSHOT)
        handlers = {
            SHOPPER: self.shopper,
            ONLINE_ORDER: self.online_order,
            SHRINK: self.shrink,
            MISPLACE: self.misplace,
            FOUND: self.found,
            DAMAGE: self.damage,
            CYCLE_COUNT: self.cycle_count,
            SHELF_COUNT: self.shelf_count,
            REVIEW: self.review,
            DELIVERY: self.delivery,
            RESTOCK: self.restock,
            RETURN: self.return_,
            PICK: self.pick,
            SNAPSHOT: self.snapshot,
        }
        heap = self.heap
        while heap:
            t, _, _, kind, payload = heapq.heappop(heap)
            handlers[kind](t, payload)
        return self.out

    def initial_stock(self) -> None:
        """A plausible state at warm-up start, with some long-standing phantom stock."""
        s, rng = self.s, self.rng
        t = self.s.calendar.t0
        self.set_shelf(t, max(1, s.shelf_capacity - int(rng.random() * s.shelf_capacity * 0.5)))
        self.back = int(rng.random() * max(0, s.order_up_to - s.shelf_capacity + 1))
        # Loss from before the warm-up that no count has caught yet.
        self.book = self.shelf + self.back + poisson(rng, s.shrink_per_day * 20)
        self.book_times.append(t)
        self.book_values.append(self.book)

    # --- happenings --------------------------------------------------------
    def shopper(self, t: int, _: int) -> None:
        p, rng = self.p, self.rng
        r = rng.random()
        want = 1
        if r < p.bulk_share:
            want = 3 + int(rng.random() * 4)
        elif r < p.bulk_share + p.multi_unit_share:
            want = 2
        if rng.random() < self.s.lookup_share:
            minutes = bounded_lognormal(
                rng, p.travel_min_minutes, p.travel_median_minutes, p.travel_max_minutes
            )
            viewed = t - int(minutes * 60)
            if self.s.start <= viewed < self.s.end:
                self.out.visits.append((viewed, t, want, self.shelf))
                self.out.book_at_view.append(self.book_at(viewed))
                self.out.back_at_arrival.append(self.back)
        if self.in_window(t):
            self.out.demand_units += want
        if self.shelf >= want:
            bought = want
        elif self.shelf > 0 and rng.random() < p.partial_buy_share:
            bought = self.shelf
        else:
            bought = 0
        if bought == 0:
            if self.in_window(t):
                self.out.lost_sales += 1
            return
        self.set_shelf(t, self.shelf - bought)
        recorded = bought
        if rng.random() < p.scan_error_share:
            recorded = max(1, bought + (1 if rng.random() < 0.5 else -1))
        self.record(t, "sale", recorded)
        if self.book < 0:  # the system of record floors negative stock with a write-on
            self.record(t, "adjustment", -self.book)
        if rng.random() < p.return_share:
            back_at = t + int((0.3 + rng.random() * 9.7) * DAY)
            self.at(self.s.calendar.next_open_time(back_at, rng), RETURN, 1)
        self.maybe_restock(t)

    def online_order(self, t: int, _: int) -> None:
        """Paid online (a sale on record now), picked from the shelf hours later."""
        want = 2 if self.rng.random() < self.p.multi_unit_share else 1
        if self.book < want:
            return  # the site does not sell what the record does not show
        self.record(t, "sale", want)
        self.reserved += want
        delay = int((0.5 + self.rng.random() * max(0.0, self.p.pick_delay_hours_max - 0.5)) * HOUR)
        self.at(self.s.calendar.next_open_time(t + delay, self.rng), PICK, want)

    def pick(self, t: int, want: int) -> None:
        p, rng = self.p, self.rng
        took = min(want, self.shelf)
        self.set_shelf(t, self.shelf - took)
        if took < want and self.back > 0 and rng.random() < p.pick_checks_back_room_share:
            extra = min(want - took, self.back)
            self.back -= extra
            took += extra
        self.reserved -= want
        if self.in_window(t):
            kind = "pick_found" if took == want else "pick_short"
            self.out.feedback.append((t, kind, want if took == want else took))
        if took < want:
            self.record(t, "adjustment", want - took)  # refund reverses the unfulfilled sale
            if rng.random() < p.count_after_short_share:
                self.schedule_count(t)
        self.maybe_restock(t)

    def shrink(self, t: int, _: int) -> None:
        """Theft or unrecorded damage: units vanish, nothing is recorded."""
        if self.shelf > 0:
            self.set_shelf(t, self.shelf - 1)
            self.maybe_restock(t)
        elif self.back > 0 and self.rng.random() < 0.3:
            self.back -= 1

    def misplace(self, t: int, _: int) -> None:
        """A unit ends up in the wrong aisle: on record, not findable, found days later."""
        if self.shelf <= 0:
            return
        self.set_shelf(t, self.shelf - 1)
        self.misplaced += 1
        later = t + int(self.rng.expovariate(1.0) * self.p.misplace_found_days * DAY)
        self.at(self.s.calendar.next_open_time(later, self.rng), FOUND)
        self.maybe_restock(t)

    def found(self, t: int, _: int) -> None:
        self.misplaced -= 1
        self.set_shelf(t, self.shelf + 1)

    def damage(self, t: int, _: int) -> None:
        """Damage staff notice and write off: a recorded negative adjustment."""
        if self.shelf <= 0 or self.book <= 0:
            return
        qty = min(self.shelf, self.book, 1 + (1 if self.rng.random() < 0.2 else 0))
        self.set_shelf(t, self.shelf - qty)
        self.record(t, "adjustment", -qty)
        self.maybe_restock(t)

    def cycle_count(self, t: int, _: int) -> None:
        """Staff count what they can find (shelf + back room); the count resets the book."""
        counted = self.shelf + self.back
        if self.rng.random() < self.p.count_error_share:
            counted = max(0, counted + self.rng.choice((-2, -1, -1, 1, 1, 2)))
        self.record(t, "count", counted)

    def shelf_count(self, t: int, _: int) -> None:
        if self.in_window(t):
            self.out.feedback.append((t, "shelf_count", self.shelf))

    def review(self, t: int, _: int) -> None:
        """Nightly reorder: order up to S when book + on order is at or below the reorder point."""
        s = self.s
        position = self.book + sum(q for _, q in self.on_order)
        if position > s.reorder_point:
            return
        qty = math.ceil((s.order_up_to - position) / s.case_pack) * s.case_pack
        if qty <= 0:
            return
        lead = s.lead_days + (1 if self.rng.random() < 0.15 else 0)
        # Reviews run late evening; trucks arrive early morning (before opening).
        arrival = t + lead * DAY - 17 * HOUR + int(self.rng.random() * 2 * HOUR)
        self.on_order.append((arrival, qty))
        self.at(arrival, DELIVERY, qty)

    def delivery(self, t: int, ordered: int) -> None:
        """Stock lands in the back room; the receipt records the shipped quantity."""
        self.on_order.remove(next(o for o in self.on_order if o[0] == t and o[1] == ordered))
        out = self.s.dc_outage
        if (out is not None and out[0] <= t < out[1]) or (
            self.p.supplier_short_share > 0 and self.rng.random() < self.p.supplier_short_share
        ):
            return  # the DC could not ship: nothing is received; the next review reorders
        arrived = ordered
        if self.rng.random() < self.p.receiving_error_share:
            off = 1 + int(self.rng.random() * self.s.case_pack)
            arrived = max(0, ordered - off) if self.rng.random() < 0.7 else ordered + off
        self.back += arrived
        self.record(t, "receipt", ordered)
        if not self.restock_pending and self.back > 0:
            self.restock_pending = True
            self.at(self.s.calendar.next_open_time(t + self.restock_delay(), self.rng), RESTOCK)

    def restock(self, t: int, _: int) -> None:
        self.restock_pending = False
        move = min(self.back, self.s.shelf_capacity - self.shelf)
        if move > 0:
            self.back -= move
            self.set_shelf(t, self.shelf + move)

    def return_(self, t: int, qty: int) -> None:
        """A customer return goes to the back room and onto the record."""
        self.back += qty
        self.record(t, "return", qty)
        self.maybe_restock(t)

    def snapshot(self, t: int, _: int) -> None:
        """The system of record at ``as_of``: on_hand − reserved is the book."""
        in_transit = sum(q for a, q in self.on_order if a > t)
        self.out.snapshots.append((t, self.book + self.reserved, self.reserved, in_transit))


def simulate_pair(setup: PairSetup, rng: random.Random, *, trace: bool = False) -> PairOutcome:
    """Run one pair from warm-up start to the calendar's end; keep only the window's facts."""
    return _Pair(setup, rng, trace).run()

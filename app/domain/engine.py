"""The confidence engine: everything published so far, folded into learners, answered per visit.

The engine is fed published facts in publication order (POS events, warehouse
snapshots, feedback) and asked, at a moment ``now``, for the badge of a
(store, sku, wanted). It holds the contract book (``ledger``) and what it learns
online from the data itself: the store's rhythm and each item's sales speed
(``sales``), unrecorded loss (``loss``), how fast deliveries reach the shelf and
how often the shelf is empty behind a positive book (``shelf``), and a calibration
map from labelled feedback (``calibration``). No I/O and no clock: every call is
given its time. Assembling ``Evidence`` is here; the probability is in ``confidence``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from app.domain.badge import Badge, badge_for, newest
from app.domain.calibration import MIN_LABELS, Calibration
from app.domain.confidence import Assessment, Evidence, assessment
from app.domain.confidence import raw_confidence as raw_of
from app.domain.ledger import Ledger
from app.domain.loss import LossRate
from app.domain.model import BookPosition, Count, PosEvent, Receipt, Sale, SnapshotRow
from app.domain.policy import Policy
from app.domain.sales import SalesSpeed
from app.domain.shelf import FILL_EDGES, PairEmptiness, PhantomRate, ShelfFill

BACK_ROOM_WINDOW = timedelta(hours=FILL_EDGES[-1])
QUIET_EVENTS = 4.6  # expected store events with none published: P(silence | normal) < 1%
DISAGREE_DAYS = 7.0
ZERO = timedelta(0)


def _order(e: PosEvent) -> tuple[datetime, str]:
    return (e.occurred_at, e.event_id)


class PairSignals:
    """Per-pair facts beyond the book: receipts' book-before, shelf observations."""

    __slots__ = ("found_at", "last_receipt", "last_sale", "receipt_before", "shelf_obs")

    def __init__(self) -> None:
        self.last_sale: Sale | None = None  # newest by (occurred_at, event_id)
        self.last_receipt: Receipt | None = None
        self.receipt_before: dict[str, int] = {}  # receipt event_id → book just before it
        self.found_at: datetime | None = None  # last pick that found what it wanted
        self.shelf_obs: tuple[datetime, int] | None = None  # last pick_short (at, qty)


class Engine:
    def __init__(self, policy: Policy, categories: Mapping[str, str | None]) -> None:
        self.policy = policy
        self.categories = categories
        self.ledger = Ledger()
        self.sales = SalesSpeed()
        self.loss = LossRate()
        self.fill = ShelfFill()
        self.phantom = PhantomRate()
        self.emptiness = PairEmptiness()
        self.calibration = Calibration()
        self.signals: dict[tuple[str, str], PairSignals] = {}
        self.watermark: dict[str, datetime] = {}  # newest occurred_at published per store
        self.events_seen: dict[str, int] = {}
        self._feedback_ids = 0
        # Per store: (watermark, opened, rhythm builds, their clock readings) for ``_quiet``.
        self._quiet_clocks: dict[str, tuple[datetime, datetime, int, float, float]] = {}

    # ---- feeding -------------------------------------------------------------------

    def _signals(self, key: tuple[str, str]) -> PairSignals:
        s = self.signals.get(key)
        if s is None:
            s = self.signals[key] = PairSignals()
        return s

    def observe_event(self, e: PosEvent) -> bool:
        """One published POS event; False for a redelivery (nothing changes)."""
        ledger = self.ledger
        if ledger.knows(e.event_id):
            return False
        store, sku, at = e.store_id, e.sku, e.occurred_at
        key = (store, sku)
        category = self.categories.get(sku)
        if key not in ledger.pairs:
            self.sales.know(store, sku, category, at)
            self.loss.seen(store, sku, at)
        if isinstance(e, Sale):  # the common case first; the order of effects is unchanged
            self.sales.sold(store, sku, category, e.qty, at)
            sig = self.signals.get(key)
            if sig is None:
                sig = self.signals[key] = PairSignals()
            last = sig.last_sale
            if (
                last is None
                or last.occurred_at < at
                or (last.occurred_at == at and last.event_id < e.event_id)
            ):
                sig.last_sale = e
        elif isinstance(e, (Count, Receipt)):
            before = ledger.position(store, sku, at)
            if before is not None:
                if isinstance(e, Count):
                    self.loss.counted(store, sku, category, before.book, e.on_hand, at)
                else:
                    self._signals(key).receipt_before[e.event_id] = before.book
            if isinstance(e, Receipt):
                sig = self._signals(key)
                if sig.last_receipt is None or _order(sig.last_receipt) < _order(e):
                    sig.last_receipt = e
        ledger.add_event(e)
        wm = self.watermark.get(store)
        if wm is None or at > wm:
            self.watermark[store] = at
        self.events_seen[store] = self.events_seen.get(store, 0) + 1
        return True

    def observe_snapshot(self, as_of: datetime, rows: Iterable[SnapshotRow]) -> None:
        """A parsed warehouse snapshot (quarantined ones never reach here)."""
        rows = list(rows)
        for r in rows:
            if (r.location_id, r.sku) not in self.ledger.pairs:
                self.sales.know(r.location_id, r.sku, self.categories.get(r.sku), as_of)
                self.loss.seen(r.location_id, r.sku, as_of)
        self.ledger.apply_snapshot(as_of, rows)

    def observe_feedback(
        self, *, kind: str, store_id: str, sku: str, qty: int, observed_at: datetime,
        now: datetime,
    ) -> None:  # fmt: skip
        """Staff or a pick saw the shelf: learn from it, then let it act (a shelf count is a count)."""
        key = (store_id, sku)
        pos = self.ledger.position(store_id, sku, observed_at)
        if pos is not None:
            wanted = qty if kind == "pick_found" else (qty + 1 if kind == "pick_short" else 1)
            outcome = kind == "pick_found" or (kind == "shelf_count" and qty >= 1)
            if pos.book >= wanted:
                ev = self._evidence(pos, wanted, observed_at, timedelta(0))
                self.calibration.observe(ev, raw_of(ev), outcome)
            if pos.book >= 1:
                empty = kind != "pick_found" and qty == 0
                self.phantom.observe(store_id, empty)
                per_day = 24.0 * self.sales.speed(store_id, sku, self.categories.get(sku), now)
                self.emptiness.observe(store_id, sku, per_day, empty)
            self._learn_fill(pos, kind, qty, observed_at)
        sig = self._signals(key)
        if kind == "shelf_count":
            self._feedback_ids += 1
            self.loss.verified_at(store_id, sku, observed_at)
            self.ledger.add_event(
                Count(
                    event_id=f"feedback:{self._feedback_ids}",
                    store_id=store_id,
                    sku=sku,
                    occurred_at=observed_at,
                    on_hand=qty,
                )
            )
        elif kind == "pick_found":
            if sig.found_at is None or observed_at > sig.found_at:
                sig.found_at = observed_at
        elif sig.shelf_obs is None or observed_at > sig.shelf_obs[0]:
            sig.shelf_obs = (observed_at, qty)

    def _learn_fill(self, pos: BookPosition, kind: str, qty: int, at: datetime) -> None:
        """After a receipt into a near-empty book, did the shelf show the new units?"""
        receipt = self._last(pos.store_id, pos.sku, at, Receipt)
        if receipt is None:
            return
        before = self.signals.get((pos.store_id, pos.sku))
        pre = None if before is None else before.receipt_before.get(receipt.event_id)
        if pre is None or pre > 2:
            return
        hours = (at - receipt.occurred_at).total_seconds() / 3600
        if qty > max(pre, 0):
            self.fill.observe(hours, True)  # more than was there before: the delivery is out
        elif kind != "pick_found":
            self.fill.observe(hours, False)  # a count or short pick saw only the old units

    # ---- asking --------------------------------------------------------------------

    def _last(
        self, store_id: str, sku: str, at: datetime, kind: type[Sale] | type[Receipt]
    ) -> Sale | Receipt | None:
        sig = self.signals.get((store_id, sku))
        if sig is not None:  # the newest one, kept as events arrive, usually answers
            cached = sig.last_sale if kind is Sale else sig.last_receipt
            if cached is None:
                return None
            if cached.occurred_at <= at:
                return cached
        pb = self.ledger.pairs.get((store_id, sku))
        if pb is None:
            return None
        for occurred, _, e in reversed(pb.events):
            if occurred <= at and isinstance(e, kind):
                return e
        return None

    def _evidence(
        self, pos: BookPosition, wanted: int, now: datetime, horizon: timedelta
    ) -> Evidence:
        return self._evidence_h(pos, wanted, now, horizon, now.timestamp() / 3600)

    def _evidence_h(
        self, pos: BookPosition, wanted: int, now: datetime, horizon: timedelta, x_now: float
    ) -> Evidence:
        """``_evidence`` with ``now`` also given as epoch hours (read once per visit)."""
        store, sku = pos.store_id, pos.sku
        category = self.categories.get(sku)
        sales = self.sales
        speed = sales.speed(store, sku, category, now)
        rhythm = sales.store_rhythm(store)
        wm = min(now, self.watermark.get(store, pos.base_at))
        sig = self.signals.get((store, sku))
        last_sale: Sale | Receipt | None
        receipt: Sale | Receipt | None
        if sig is not None:  # the newest ones, kept as events arrive, usually answer
            last_sale, receipt = sig.last_sale, sig.last_receipt
            if last_sale is not None and last_sale.occurred_at > now:
                last_sale = self._last(store, sku, now, Sale)
            if receipt is not None and receipt.occurred_at > now:
                receipt = self._last(store, sku, now, Receipt)
        else:
            last_sale = self._last(store, sku, now, Sale)
            receipt = self._last(store, sku, now, Receipt)
        # The last sign of life: the newest of these marks.
        since = sales.opened.get(store, pos.base_at)
        if last_sale is not None and last_sale.occurred_at > since:
            since = last_sale.occurred_at
        if receipt is not None and receipt.occurred_at > since:
            since = receipt.occurred_at
        if pos.base_source == "count" and pos.base_at > since:
            since = pos.base_at
        shelf_bound: int | None = None
        if sig is not None:
            found = sig.found_at
            if found is not None and found <= now and found > since:
                since = found
            if sig.shelf_obs is not None and pos.base_at < sig.shelf_obs[0] <= now:
                shelf_bound = self._rolled_forward(store, sku, *sig.shelf_obs, now)
        back_room, fill = 0, 1.0
        if (
            receipt is not None
            and now - receipt.occurred_at < BACK_ROOM_WINDOW
            and (pos.base_source != "count" or pos.base_at < receipt.occurred_at)
        ):
            pre = None if sig is None else sig.receipt_before.get(receipt.event_id)
            sold_since = last_sale is not None and last_sale.occurred_at > receipt.occurred_at
            if not (sold_since and pre is not None and pre <= 0):
                back_room = receipt.qty
                hours = (now - receipt.occurred_at).total_seconds() / 3600
                fill = self.fill.p_filled(hours)
        # Trade-hour clock readings, each taken once (rhythm.hours(a, b) = clock(b) - clock(a)).
        x_wm = x_now if wm == now else wm.timestamp() / 3600
        since_wm = min(since, wm)
        x_since = x_wm if since_wm == wm else since_wm.timestamp() / 3600
        if horizon > ZERO:
            x_end = (now + horizon).timestamp() / 3600
            c_now, c_wm, c_end, c_since = rhythm.clocks_h(x_now, x_wm, x_end, x_since)
            expected = speed * (c_end - c_now)
        else:
            c_now, c_wm, c_since = rhythm.clocks_h(x_now, x_wm, x_since)
            expected = 0.0
        return Evidence(
            book=pos.book,
            wanted=wanted,
            expected_sales=expected,
            unreported_sales=speed * (c_now - c_wm) if wm < now else 0.0,
            unrecorded_loss=self.loss.expected(store, sku, category, now),
            back_room=back_room,
            shelf_fill=fill,
            silence=speed * (c_wm - c_since) if since < wm else 0.0,
            phantom_prior=self.emptiness.prior(store, sku, 24.0 * speed, self.phantom.prior(store)),
            shelf_bound=shelf_bound,
            into_day=rhythm.into_day_h(x_now),
        )

    def _rolled_forward(self, store: str, sku: str, at: datetime, qty: int, now: datetime) -> int:
        """A shelf observation plus the movements recorded after it."""
        pb = self.ledger.pairs.get((store, sku))
        units = qty
        if pb is not None:
            for occurred, _, e in reversed(pb.events):
                if occurred <= at:
                    break
                if occurred <= now and not isinstance(e, Count):
                    units += -e.qty if isinstance(e, Sale) else e.qty
        return units

    def store_quiet(self, store_id: str, now: datetime) -> float:
        """Expected store events since the newest one published (high: the POS went quiet)."""
        return self._quiet(store_id, now, now.timestamp() / 3600)

    def _quiet(self, store_id: str, now: datetime, x_now: float) -> float:
        wm = self.watermark.get(store_id)
        opened = self.sales.opened.get(store_id)
        if wm is None or opened is None:
            return 0.0
        rhythm = self.sales.store_rhythm(store_id)
        builds = rhythm.fresh_builds()
        cached = self._quiet_clocks.get(store_id)
        if cached is None or cached[0] is not wm or cached[1] is not opened or cached[2] != builds:
            c_opened, c_wm = rhythm.clocks_h(opened.timestamp() / 3600, wm.timestamp() / 3600)
            cached = self._quiet_clocks[store_id] = (wm, opened, builds, c_opened, c_wm)
        _, _, _, c_opened, c_wm = cached
        exposure = c_wm - c_opened if wm > opened else 0.0
        if exposure <= 1.0:
            return 0.0
        rate = self.events_seen.get(store_id, 0) / exposure
        return rate * (rhythm.clocks_h(x_now)[0] - c_wm) if now > wm else 0.0

    def assess(self, pos: BookPosition, wanted: int, now: datetime) -> Assessment:
        """Confidence, held-back units and the reasons behind them."""
        return self._assess(pos, wanted, now, now.timestamp() / 3600)

    def _assess(self, pos: BookPosition, wanted: int, now: datetime, x_now: float) -> Assessment:
        ev = self._evidence_h(pos, wanted, now, self.policy.arrival_horizon, x_now)
        gap = self.loss.last_gap.get((pos.store_id, pos.sku))
        return assessment(
            ev,
            threshold=self.policy.confidence_threshold,
            calibrate=self.calibration if self.calibration.labels >= MIN_LABELS else None,
            pos_quiet=self._quiet(pos.store_id, now, x_now) >= QUIET_EVENTS,
            sources_disagree=(
                gap is not None
                and (now - gap[0]).total_seconds() < DISAGREE_DAYS * 86400
                and abs(gap[1]) >= max(3, 0.3 * max(pos.book, 1))
            ),
        )

    def answer(self, store_id: str, sku: str, wanted: int, now: datetime) -> Badge:
        """The badge the live API would give at ``now``, with the default arrival horizon."""
        pos = self.ledger.position(store_id, sku, now)
        x_now = now.timestamp() / 3600
        store_newest = newest(
            self.watermark.get(store_id), self.ledger.location_as_of.get(store_id)
        )
        return badge_for(
            pos,
            policy=self.policy,
            category=self.categories.get(sku),
            store_newest_at=store_newest,
            now=now,
            wanted=wanted,
            assessment=None if pos is None else self._assess(pos, wanted, now, x_now),
        )

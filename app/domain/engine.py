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
from datetime import UTC, datetime, timedelta, timezone

import msgspec
from mypy_extensions import mypyc_attr

from app.domain.badge import Badge, badge_for
from app.domain.calibration import Calibration
from app.domain.confidence import (
    Assessment,
    Evidence,
    assessment,
    empty_given_quiet,
    p_phantom,
)
from app.domain.confidence import raw_confidence as raw_of
from app.domain.ledger import Ledger, PairBook
from app.domain.loss import MAX_DAYS, LossGroup, LossRate, days_unverified, expected_loss
from app.domain.model import (
    EVENT_KINDS,
    BookPosition,
    Count,
    PosEvent,
    Receipt,
    Sale,
    SnapshotRow,
    kind_of,
)
from app.domain.policy import Policy
from app.domain.records import StoreAt as StoreAt
from app.domain.rhythm import Rhythm
from app.domain.runout import DayTally, RunOut
from app.domain.sales import OPENED_BY, STORE_UNITS_PER_SALE, SalesGroup, SalesSpeed
from app.domain.shelf import (
    FILL_EDGES,
    IdleEmptiness,
    PairEmptiness,
    PhantomRate,
    Refill,
    RestockEmptiness,
    ShelfFill,
    ShelfShare,
    not_refilled_after_sales,
)

BACK_ROOM_WINDOW = timedelta(hours=FILL_EDGES[-1])
QUIET_EVENTS = 4.6  # expected store events with none published: P(silence | normal) < 1%
DISAGREE_DAYS = 7.0
ZERO = timedelta(0)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_us(t: datetime) -> int | None:
    """Whole microseconds from the epoch to ``t`` when its zone is a fixed offset (a
    ``datetime.timezone``, as the contract's timestamps decode), else None. ``t.timestamp()``
    is this over 10**6 (an integer true division), a difference's ``total_seconds()`` is
    the two moments' difference over 10**6, and ``t + d`` is ``t``'s plus ``d``'s: the same
    floats from integers, without a timedelta and its microseconds per reading (~1,400
    instructions each; a visit read four)."""
    if type(t.tzinfo) is not timezone:
        return None
    return _delta_us(t - EPOCH)


def _delta_us(d: timedelta) -> int:
    """Whole microseconds of ``d`` (what its ``total_seconds()`` divides by 10**6)."""
    return (d.days * 86400 + d.seconds) * 1_000_000 + d.microseconds


def _shelf_book(pos: BookPosition, p: Pair) -> bool:
    """The book starts from a shelf count: its units are the shelf's, no share applies."""
    return (
        pos.base_source == "count"
        and p.shelf_counted is not None
        and pos.base_at == p.shelf_counted
    )


def _x_of(t: datetime, us: int | None) -> float:
    """``t``'s epoch hours, ``t.timestamp() / 3600``, from ``_epoch_us(t)`` when there is one."""
    return t.timestamp() / 3600 if us is None else us / 1_000_000 / 3600


def _order(e: PosEvent) -> tuple[datetime, str]:
    return (e.occurred_at, e.event_id)


class StoreState:
    """What the engine keeps about one store: its rhythm (``SalesSpeed``'s own object),
    the newest ``occurred_at`` published (the watermark), the events seen, and readings
    kept while what they read holds. One dict lookup per visit (none per event: a pair
    holds its store's) in place of a store key in a dict each."""

    __slots__ = (
        "events",
        "opened_clock",
        "opened_us",
        "pairs",
        "rhythm",
        "shelf_factor",
        "shelf_version",
        "watermark",
        "wm_clock",
        "wm_x",
    )

    def __init__(self, rhythm: Rhythm) -> None:
        self.rhythm = rhythm
        # Its pairs by sku (``Engine.pairs`` by key too): an event or a visit looks its
        # pair up by strings, without building, hashing and comparing a (store, sku) tuple.
        self.pairs: dict[str, Pair] = {}
        self.watermark: datetime | None = None  # newest occurred_at published
        # Its epoch hours when a sale set it (read at the sale; None when another event
        # did): a datetime's ``timestamp()`` is ~1,400 instructions.
        self.wm_x: float | None = None
        self.events = 0  # POS events seen
        # Clock readings kept while the moment and the rhythm hold: (watermark, rhythm
        # builds, its clock), (opened, builds, its clock).
        self.wm_clock: tuple[datetime, int, float] | None = None
        self.opened_clock: tuple[datetime, int, float] | None = None
        self.opened_us: tuple[datetime, int | None] | None = None  # (opened, its _epoch_us)
        # ``PairEmptiness.store_factor`` of its phantom rate, as of the engine's shelf
        # observation count ``shelf_version`` (any store's observation moves the chain's rates).
        self.shelf_factor = 0.0
        self.shelf_version = -1


class Pair:
    """What the engine keeps about one (store, sku) that saw a POS event or feedback.

    One object, one dict lookup per event or visit, in place of a ``(store, sku)`` key
    in each learner (ledger, sales, loss, emptiness, signals). A pair only ever seen
    in warehouse snapshots has none (most of the ~1M pairs in production).
    """

    __slots__ = (
        "book",
        "category",
        "day",
        "empty",
        "found_at",
        "hidden",
        "last_gap",
        "last_receipt",
        "last_sale",
        "loss_group",
        "n",
        "receipt_before",
        "sale_x",
        "sales_group",
        "shelf_counted",
        "shelf_obs",
        "store",
        "traffic",
        "traffic_verified",
        "units",
        "verified",
        "verified_us",
    )

    def __init__(self, store: StoreState) -> None:
        self.store = store  # its store's state
        # Its store × category's learner groups, for the category they were found for
        # (``Engine._groups``: looked up again should the catalogue move the sku).
        self.category: str | None = None
        self.sales_group: SalesGroup | None = None
        self.loss_group: LossGroup | None = None
        self.book: PairBook | None = None  # the ledger's events and running book
        self.units = 0.0  # units sold (``SalesSpeed``)
        # Units sold, each sale line up to STORE_UNITS_PER_SALE (one absurd line must not
        # outweigh every other count's sales in the loss learner), and that when last
        # verified: loss follows the traffic since (``LossRate``).
        self.traffic = 0.0
        self.traffic_verified = 0.0
        self.verified: datetime | None = None  # last count or shelf count (``loss``)
        self.verified_us: tuple[datetime, int | None] | None = None  # (verified, _epoch_us)
        self.last_gap: tuple[datetime, int] | None = None  # (at, book − count) of the last count
        self.shelf_counted: datetime | None = None  # the last shelf count (a book of shelf units)
        self.hidden = 0  # units that count took out of the book (shelf short, back room?)
        self.empty = 0.0  # shelf observations that found it empty (``PairEmptiness``)
        self.n = 0.0  # shelf observations
        self.last_sale: Sale | None = None  # newest by (occurred_at, event_id)
        self.sale_x = 0.0  # its epoch hours (``timestamp() / 3600``), read at the sale
        self.last_receipt: Receipt | None = None
        self.receipt_before: dict[str, int] | None = None  # receipt event_id → book before it
        self.found_at: datetime | None = None  # last pick that found what it wanted
        self.shelf_obs: tuple[datetime, int] | None = None  # last pick_short (at, qty)
        self.day: DayTally | None = None  # units sold on the current trading day (``runout``)


# Compiled by mypyc (``app.domain.NATIVE``); the probes in scripts/ and tests subclass it.
@mypyc_attr(allow_interpreted_subclasses=True)
class Engine:
    def __init__(
        self, policy: Policy, categories: Mapping[str, str | None], *, runout_factor: bool = True
    ) -> None:
        self.policy = policy
        self.categories = categories
        # The run-out factor on the empty-shelf prior by units sold today (``runout``);
        # off (diagnosis), the learner is not fed either: the answers are those without it.
        self.runout_factor = runout_factor
        self.ledger = Ledger()
        self.sales = SalesSpeed()
        self.loss = LossRate()
        self.fill = ShelfFill()
        self.shelf_share = ShelfShare()
        self.refill = Refill()
        self.phantom = PhantomRate()
        self.emptiness = PairEmptiness()
        self.idle = IdleEmptiness()
        self.restock = RestockEmptiness()
        self.runout = RunOut()
        self.calibration = Calibration()
        self.pairs: dict[tuple[str, str], Pair] = {}
        self.stores: dict[str, StoreState] = {}
        self._feedback_ids = 0
        self._horizon_us: tuple[timedelta, int] = (ZERO, 0)  # (a horizon, its microseconds)
        self._shelf_observations = 0  # (a store's empty-shelf factor holds until the next)

    # ---- feeding -------------------------------------------------------------------

    def _pair(self, key: tuple[str, str]) -> Pair:
        p = self.pairs.get(key)
        if p is None:
            p = self._new_pair(self._store(key[0]), key[0], key[1])
        return p

    def _new_pair(self, st: StoreState, store: str, sku: str) -> Pair:
        p = self.pairs[(store, sku)] = st.pairs[sku] = Pair(st)
        return p

    def _groups(self, p: Pair, store: str, category: str | None) -> SalesGroup:
        """The pair's store × category groups (sales speed, loss) for ``category``, found
        once (a tuple key per event or visit was ~5% of their instructions); its sales
        group."""
        p.category = category
        p.loss_group = self.loss.group(store, category)
        g = p.sales_group = self.sales.group(store, category)
        return g

    def _store(self, store_id: str) -> StoreState:
        st = self.stores.get(store_id)
        if st is None:
            st = self.stores[store_id] = StoreState(self.sales.store_rhythm(store_id))
        return st

    def watermarks(self) -> dict[str, datetime]:
        """The newest ``occurred_at`` published per store (stores with a POS event)."""
        return {s: st.watermark for s, st in self.stores.items() if st.watermark is not None}

    def _sighted(self, store: str, sku: str, category: str | None, at: datetime) -> None:
        """A pair without ledger events seen at ``at`` (an event or a snapshot row)."""
        self.sales.know(store, category, at, self.loss.seen(store, sku, at))

    def first_seen(self, store_id: str, sku: str) -> datetime | None:
        """When the pair was first seen (event or snapshot row), for unverified loss."""
        return self.loss.first_seen_at(store_id, sku)

    def speed(self, store_id: str, sku: str, now: datetime) -> float:
        """The pair's sales speed (units per average trade hour) at ``now``."""
        p = self.pairs.get((store_id, sku))
        units = 0.0 if p is None else p.units
        return self.sales.speed(store_id, units, self.categories.get(sku), now)

    def observe_event(self, e: PosEvent) -> bool:
        """One published POS event; False for a redelivery (nothing changes)."""
        ledger = self.ledger
        if ledger.knows(e.event_id):
            return False
        store, sku, at = e.store_id, e.sku, e.occurred_at
        category = self.categories.get(sku)
        st = self.stores.get(store)
        if st is None:
            st = self._store(store)
        p = st.pairs.get(sku)
        if p is None:
            p = self._new_pair(st, store, sku)
        if p.book is None:
            self._sighted(store, sku, category, at)
        x: float | None = None  # a sale's epoch hours
        kind = EVENT_KINDS.get(type(e)) or kind_of(e)  # (one lookup for every type test below)
        if kind is Sale:  # the common case first; the order of effects is unchanged
            sale: Sale = e  # type: ignore[assignment]  # (its kind is Sale)
            qty = sale.qty
            sales = self.sales
            rhythm = st.rhythm
            ts = at.timestamp()  # one reading for the learner, the rhythm and the marks below
            x = ts / 3600
            group = p.sales_group
            if group is None or p.category is not category:
                group = self._groups(p, store, category)
            if self.runout_factor:  # the run-out learner, before the sale counts toward speed
                tally = p.day = self.runout.sold(store, p.day, rhythm, x, qty)
                if tally.per_day < 0.0:  # a new trading day: the pair's speed, read once a day
                    exposure = sales.exposure(sales.opened.get(store), at)  # sales.speed()
                    tally.per_day = 24.0 * sales.speed_in(group, p.units, exposure)
            p.units += qty
            p.traffic += qty if qty < STORE_UNITS_PER_SALE else STORE_UNITS_PER_SALE
            sales.sold_in_group(rhythm, group, qty, int(ts // 3600))
            last = p.last_sale
            if (
                last is None
                or last.occurred_at < at
                or (last.occurred_at == at and last.event_id < e.event_id)
            ):
                p.last_sale = sale
                p.sale_x = x
        elif kind is Count:
            before = ledger.position_in(p.book, store, sku, at)
            if before is not None:
                on_hand = e.on_hand  # type: ignore[union-attr]  # (its kind is Count)
                self._counted(store, sku, p, category, before.book, on_hand, at)
        elif kind is Receipt:
            receipt: Receipt = e  # type: ignore[assignment]  # (its kind is Receipt)
            before = ledger.position_in(p.book, store, sku, at)
            if before is not None:
                if p.receipt_before is None:
                    p.receipt_before = {}
                p.receipt_before[e.event_id] = before.book
            if p.last_receipt is None or _order(p.last_receipt) < _order(receipt):
                p.last_receipt = receipt
        p.book = ledger.record(e, p.book, kind)
        wm = st.watermark
        if wm is None or at > wm:
            st.watermark, st.wm_x = at, x
        st.events += 1
        return True

    def _counted(
        self, store: str, sku: str, p: Pair, category: str | None, book_before: int,
        on_hand: int, at: datetime,
    ) -> None:  # fmt: skip
        """A count found ``on_hand`` where the book said ``book_before``: loss learns."""
        days = min(MAX_DAYS, days_unverified(p.verified, self.first_seen(store, sku), at))
        gap = book_before - on_hand
        self.loss.counted(store, category, days, gap, p.traffic - p.traffic_verified)
        p.verified = at if p.verified is None else max(at, p.verified)
        p.traffic_verified = p.traffic
        p.last_gap = (at, gap)

    def observe_snapshot(self, as_of: datetime, rows: Iterable[SnapshotRow]) -> None:
        """A parsed warehouse snapshot (quarantined ones never reach here)."""
        rows = list(rows)
        pairs = self.pairs
        categories = self.categories
        for r in rows:
            p = pairs.get((r.location_id, r.sku))
            if p is None or p.book is None:
                self._sighted(r.location_id, r.sku, categories.get(r.sku), as_of)
        self.ledger.apply_snapshot(as_of, rows)

    def observe_changes(
        self, location: str, as_of: datetime, rows: Iterable[SnapshotRow], removed: Iterable[str]
    ) -> bool:
        """One location's next snapshot given as what changed (the live engine's catch-up
        of a snapshot it saw applied): ``rows`` every row that is new, changed, or whose
        ``as_of`` is not ``as_of``; ``removed`` the skus no longer listed. Same state as
        ``observe_snapshot(as_of, <the location's whole rows>)``; False (nothing
        changes) when the ledger would not take it this way (``Ledger.apply_changes``):
        give the whole rows then."""
        rows = list(rows)
        removed = list(removed)
        ledger = self.ledger
        if not ledger.takes_changes(location, as_of):
            return False
        held = ledger.rows_at[location]
        pairs = self.pairs
        categories = self.categories
        listed: set[str] = set()
        for r in rows:
            listed.add(r.sku)
            p = pairs.get((location, r.sku))
            if p is None or p.book is None:
                self._sighted(location, r.sku, categories.get(r.sku), as_of)
        # The rows kept as they were are sighted again too: the pair was seen (it was
        # in force already), so only the store's earliest times can move, and only
        # when as_of is earlier than those kept or they are fewer than the rule needs.
        gone = set(removed)
        again = 0
        for sku in held.index:
            if sku not in listed and sku not in gone:
                p = pairs.get((location, sku))
                if p is None or p.book is None:
                    again += 1
                    if again >= OPENED_BY:
                        break
        self.sales.known_again(location, as_of, again)
        return ledger.apply_changes(location, as_of, rows, removed)

    def observe_feedback(
        self, *, kind: str, store_id: str, sku: str, qty: int, observed_at: datetime,
        now: datetime,
    ) -> None:  # fmt: skip
        """Staff or a pick saw the shelf: learn from it, then let it act (a shelf count is a count)."""
        key = (store_id, sku)
        p = self._pair(key)
        pos = self.ledger.position_in(p.book, store_id, sku, observed_at)  # (p.book: its book)
        # The book starts from a shelf count (``_shelf_book``): read once, nothing below
        # changes it before the count itself is recorded.
        shelf_only = pos is not None and _shelf_book(pos, p)
        if pos is not None:
            wanted = qty if kind == "pick_found" else (qty + 1 if kind == "pick_short" else 1)
            outcome = kind == "pick_found" or (kind == "shelf_count" and qty >= 1)
            idle = 0.0
            restocked = False
            if pos.book >= wanted or pos.book >= 1:
                # One evidence at the observation: the label for the map and the pair's idle
                # hours (which do not depend on ``wanted``) for the idle factor.
                us = _epoch_us(observed_at)
                at = self._store_at(store_id, observed_at, _x_of(observed_at, us), ZERO, us)
                ev, idle, _, restocked = self._evidence_at(pos, p, wanted, at)
                if pos.book >= wanted and kind == "shelf_count":
                    # Labels for the map: shelf counts only. A visit's outcome is the
                    # shelf; a pick searches the back room too, so a found pick where the
                    # shelf was short reads as a kept promise (measured in docs/engine.md).
                    self.calibration.observe(ev, raw_of(ev), outcome)
            elif kind == "shelf_count" and not (p.hidden and shelf_only):
                # The book said none: was the record behind? (Not a shelf counted short
                # in front of a back room the book knew of: that is the refill's to learn.)
                self.calibration.observe_short(qty)
            if pos.book >= 1:
                empty = kind != "pick_found" and qty == 0
                self.phantom.observe(store_id, empty)
                category = self.categories.get(sku)
                per_day = 24.0 * self.sales.speed(store_id, p.units, category, now)
                p.empty += 1.0 if empty else 0.0
                p.n += 1.0
                self.emptiness.observe_bin(per_day, empty)
                self._shelf_observations += 1  # the store's and the chain's rates moved
                self.idle.observe(idle, empty)
                if restocked and kind == "shelf_count":
                    # The model's P(empty) without the restock factor, which it learns.
                    prior = min(ev.phantom_prior / self.restock.factor(), 0.95)
                    self.restock.observe(
                        p_phantom(msgspec.structs.replace(ev, phantom_prior=prior)), empty
                    )
            self._learn_fill(pos, p, kind, qty, observed_at)
            self._learn_refill(pos, p, kind, qty, observed_at, shelf_only)
        if kind == "shelf_count":
            self.calibration.observe_shelf(qty)  # every shelf: pairs with no record read it
            # The count takes the back room out of the book: what the record held beyond
            # the shelf may come back onto it (``Evidence.refilled_units``). A book that
            # is itself a shelf count still has its own hidden units behind it.
            if pos is None:
                p.hidden = 0
            elif shelf_only:  # the shelf's book: its own hidden units stay behind
                p.hidden = max(0, pos.book + p.hidden - qty)
            else:
                p.hidden = max(0, pos.book - qty)
                self.shelf_share.observe(pos.book, qty)
            p.shelf_counted = (
                observed_at if p.shelf_counted is None else max(observed_at, p.shelf_counted)
            )
            if p.shelf_obs is not None and p.shelf_obs[0] <= observed_at:
                p.shelf_obs = None  # staff saw the shelf itself: the short pick's bound is over
            self._feedback_ids += 1
            p.verified = observed_at if p.verified is None else max(observed_at, p.verified)
            p.traffic_verified = p.traffic
            count = Count(
                event_id=f"feedback:{self._feedback_ids}",
                store_id=store_id,
                sku=sku,
                occurred_at=observed_at,
                on_hand=qty,
            )
            p.book = self.ledger.record(count, p.book, Count, remember=False)
        elif kind == "pick_found":
            if p.found_at is None or observed_at > p.found_at:
                p.found_at = observed_at
        elif p.shelf_obs is None or observed_at > p.shelf_obs[0]:
            p.shelf_obs = (observed_at, qty)

    def _learn_refill(
        self, pos: BookPosition, p: Pair, kind: str, qty: int, at: datetime, shelf_only: bool
    ) -> None:
        """The shelf seen again after it was seen short (a short pick's bound, or a shelf
        count that left units out of the book): has it been refilled beyond that?
        ``shelf_only``: ``_shelf_book(pos, p)``, which the caller has."""
        _, seen, since = self._seen_short(pos, p, at, shelf_only, before=True)
        if seen is None or since is None or (kind == "pick_found" and qty <= seen):
            return  # a found pick of no more than was seen says nothing
        hours = (at - since).total_seconds() / 3600
        self.refill.observe(hours, qty > (seen if seen > 0 else 0))

    def _seen_short(
        self, pos: BookPosition, p: Pair, at: datetime, shelf_only: bool, *, before: bool
    ) -> tuple[int | None, int | None, datetime | None]:
        """The shelf as last seen short, as of ``at``: the short pick's bound rolled forward
        to ``at`` (None: none in force), and the units seen and when (a bound below the
        book, or a book that is a shelf count with units left out of it; None: not seen
        short). ``shelf_only``: ``_shelf_book(pos, p)``, which the caller has.
        ``before``: only looks strictly before ``at`` count (the look at ``at`` is the
        one being learned from)."""
        seen: int | None = None
        since: datetime | None = None
        if shelf_only and p.hidden and (pos.base_at < at or not before):
            seen, since = pos.book, pos.base_at
        bound: int | None = None
        short = p.shelf_obs
        if short is not None and (short[0] < at if before else short[0] <= at):
            bound = self._bound(pos, p, short, at)
            if bound is not None and bound < pos.book:
                seen, since = bound, short[0]
        return bound, seen, since

    def _learn_fill(self, pos: BookPosition, p: Pair, kind: str, qty: int, at: datetime) -> None:
        """After a receipt into a near-empty book, did the shelf show the new units?

        More than the book held before the receipt: they are out. No more than that is
        only evidence they are not when the book still holds them beyond what was seen
        (book − seen ≥ the receipt's units); after they sold through, a near-empty
        shelf says nothing about where they waited (measured in docs/engine.md)."""
        receipt = self._last(p, at, Receipt)
        if receipt is None:
            return
        pre = None if p.receipt_before is None else p.receipt_before.get(receipt.event_id)
        if pre is None or pre > 2:
            return
        hours = (at - receipt.occurred_at).total_seconds() / 3600
        if qty > max(pre, 0):
            self.fill.observe(hours, True)  # more than was there before: the delivery is out
        elif kind != "pick_found" and pos.book - qty >= receipt.qty:
            self.fill.observe(hours, False)  # a count or short pick missed the new units

    def forget(self, before: datetime) -> int:
        """Drop the raw events no answer at ``before`` or later reads; return how many.

        A running service takes events in for months: kept whole, they would grow its
        memory without end (a few hundred bytes an event). What the learners drew
        from an event stays; of a pair's events, those at or before ``before``, before
        its snapshot base and before its short pick's shelf observation go
        (``PairBook.forget``: but the newest of each kind). The book, the newest sale or receipt, the rolled
        forward shelf bound and every assessment at ``before`` or later are then as
        they were, and stay so as more comes in (a count, receipt or feedback dated
        before ``before`` may learn from a different book). Pairs without a snapshot
        row or location keep everything."""
        ledger = self.ledger
        dropped = 0
        for key, pb in ledger.pairs.items():
            events = pb.events
            if len(events) < 2 or events[0][0] > before:  # nothing to drop (the usual pair)
                continue
            store, sku = key
            rows = ledger.rows_at.get(store)
            i = None if rows is None else rows.index.get(sku)
            base = ledger.location_as_of.get(store) if rows is None or i is None else rows.as_of[i]
            if base is None:
                continue
            upto = before if before < base else base
            p = self.pairs.get(key)
            if p is not None and p.shelf_obs is not None and p.shelf_obs[0] < upto:
                upto = p.shelf_obs[0]
            n = pb.forget(upto)
            if n and p is not None and p.receipt_before:
                kept = {e.event_id for _, _, e, k in pb.events if k is Receipt}
                p.receipt_before = {r: b for r, b in p.receipt_before.items() if r in kept} or None
            dropped += n
        return dropped

    # ---- asking --------------------------------------------------------------------

    def _last(
        self, p: Pair, at: datetime, kind: type[Sale] | type[Receipt]
    ) -> Sale | Receipt | None:
        cached = p.last_sale if kind is Sale else p.last_receipt
        if cached is None:
            return None
        if cached.occurred_at <= at:  # the newest one, kept as events arrive, usually answers
            return cached
        if p.book is None:
            return None
        for occurred, _, e, k in reversed(p.book.events):
            if occurred <= at and k is kind:  # (the kind of a Sale or subclass is Sale)
                return e  # type: ignore[return-value]  # (k is kind: e is a Sale / Receipt)
        return None

    def _evidence(
        self, pos: BookPosition, wanted: int, now: datetime, horizon: timedelta
    ) -> Evidence:
        p = self.pairs.get((pos.store_id, pos.sku))
        us = _epoch_us(now)
        at = self._store_at(pos.store_id, now, _x_of(now, us), horizon, us)
        return self._evidence_at(pos, p, wanted, at)[0]

    def _store_at(
        self, store: str, now: datetime, x_now: float, horizon: timedelta, us: int | None = None
    ) -> StoreAt:
        """The store's side of the evidence at ``now`` (``x_now``: its epoch hours; ``us``:
        its ``_epoch_us`` when the caller has it), for arrival ``horizon`` ahead (zero: no
        arrival clock)."""
        sales = self.sales
        st = self.stores.get(store) or self._store(store)
        rhythm = st.rhythm
        opened = sales.opened.get(store)
        wm = st.watermark
        if wm is not None and not wm < now:
            wm = now  # min(now, wm)
        c_end: float | None
        if horizon > ZERO:
            if us is None:
                x_end = (now + horizon).timestamp() / 3600
            else:  # (now + horizon).timestamp(), from integers
                h_us = self._horizon_us
                if h_us[0] is not horizon:
                    h_us = self._horizon_us = (horizon, _delta_us(horizon))
                x_end = (us + h_us[1]) / 1_000_000 / 3600
            c_now, c_end, into_day = rhythm.now_clocks(x_now, x_end)
        else:
            c_now, _, into_day = rhythm.now_clocks(x_now, None)
            c_end = None
        c_wm = 0.0
        if wm is not None:
            if wm == now:
                c_wm = c_now
            else:  # _clock_wm(st, wm) when kept (now_clocks just freshened the rhythm)
                kept = st.wm_clock
                if kept is not None and kept[0] is wm and kept[1] == rhythm.builds:
                    c_wm = kept[2]
                else:
                    c_wm = self._clock_wm(st, wm)
        if st.shelf_version != self._shelf_observations:
            st.shelf_factor = self.emptiness.store_factor(self.phantom.prior(store))
            st.shelf_version = self._shelf_observations
        exposure = 0.0  # sales.exposure(opened, now), from integers when both have them
        if opened is not None:
            op = st.opened_us
            if op is None or op[0] is not opened:
                op = st.opened_us = (opened, _epoch_us(opened))
            if us is None or op[1] is None:
                exposure = sales.exposure(opened, now)
            else:
                hours = (us - op[1]) / 1_000_000 / 3600
                exposure = hours if hours > 0.0 else 0.0
        trade_f = 1.0
        if exposure >= 1.0:
            assert opened is not None  # (exposure > 0)
            # (now_clocks above freshened the rhythm: its builds are current)
            trade = c_now - self._clock_opened(st, opened, rhythm.builds)
            if trade > 0.0:
                trade_f = trade / exposure
        return StoreAt(store, st, now, x_now, rhythm, opened, wm, exposure,
                       c_now, c_end, into_day, c_wm, st.shelf_factor, us, trade_f)  # fmt: skip

    @staticmethod
    def _clock_wm(st: StoreState, wm: datetime) -> float:
        """The clock at the store's watermark ``wm`` (kept until it moves or the rhythm is
        rebuilt: read by a visit's evidence and again by ``_quiet``)."""
        rhythm = st.rhythm
        builds = rhythm.fresh_builds()
        cached = st.wm_clock
        if cached is None or cached[0] is not wm or cached[1] != builds:
            x = st.wm_x if st.wm_x is not None else wm.timestamp() / 3600  # (wm: the watermark)
            cached = st.wm_clock = (wm, builds, rhythm.clock_h(x))
        return cached[2]

    @staticmethod
    def _clock_opened(st: StoreState, opened: datetime, builds: int) -> float:
        """The clock at the store's opening, on its rhythm's profile ``builds`` (kept until
        the opening moves or the profile is rebuilt: read by every ``StoreAt`` and by
        ``_quiet``)."""
        cached = st.opened_clock
        if cached is None or cached[0] is not opened or cached[1] != builds:
            cached = st.opened_clock = (
                opened,
                builds,
                st.rhythm.clock_h(opened.timestamp() / 3600),
            )
        return cached[2]

    def _evidence_at(
        self, pos: BookPosition, p: Pair | None, wanted: int, at: StoreAt
    ) -> tuple[Evidence, float, float, bool]:
        """``_evidence`` given the pair's state and its store's side at the moment; also
        the trade hours since the pair's last sign of life (what ``IdleEmptiness`` reads),
        the pair's sales speed, and whether a delivery is within the back-room window
        (what ``RestockEmptiness`` reads)."""
        store, sku = pos.store_id, pos.sku
        now = at.now
        category = self.categories.get(sku)
        unit_loss = 0.0  # loss per unit sold since verified, times those units
        if p is None:
            speed = self.sales.speed_at(store, 0.0, category, at.exposure)
            loss_rate = self.loss.cached_rate(store, category)
        else:
            group = p.sales_group
            if group is None or p.category is not category:
                group = self._groups(p, store, category)
            speed = SalesSpeed.speed_in(group, p.units, at.exposure)
            loss_rate, per_unit = self.loss.group_rates(p.loss_group)  # type: ignore[arg-type]  # (set)
            unit_loss = per_unit * (p.traffic - p.traffic_verified)
        # Per trade hour: the clock differences below are in trade hours (``StoreAt.trade_f``).
        tspeed = speed / at.trade_f
        rhythm = at.rhythm
        wm = at.watermark
        if wm is None:  # no POS event at the store yet: the pair's base stands in
            wm = pos.base_at if pos.base_at < now else now  # min(now, base_at)
            c_wm = at.c_now if wm == now else rhythm.clock_h(wm.timestamp() / 3600)
        else:
            c_wm = at.c_wm
        # The last sign of life: the newest of these marks (``since_x``: its epoch hours
        # when already read, i.e. when it is the pair's last sale).
        since = pos.base_at if at.opened is None else at.opened
        since_x: float | None = None
        shelf_bound: int | None = None
        refill_to: int | None = None
        stays = 1.0
        seen: int | None = None  # the shelf as last seen short, rolled forward
        short_at: datetime | None = None  # when it was seen so
        back_room, fill = 0, 1.0
        restocked = False  # a receipt since the book's base, within the back-room window
        pre: int | None = None  # the book before the last receipt, which bounds the loss
        since_receipt: float | None = None  # days since that receipt, when ``pre`` is known
        empty = n = 0.0
        receipt: Sale | Receipt | None = None
        if p is not None:
            last_sale: Sale | Receipt | None = p.last_sale
            receipt = p.last_receipt
            if last_sale is not None and last_sale.occurred_at > now:
                last_sale = self._last(p, now, Sale)
            if receipt is not None and receipt.occurred_at > now:
                receipt = self._last(p, now, Receipt)
            if last_sale is not None and last_sale.occurred_at > since:
                since = last_sale.occurred_at
                since_x = p.sale_x if last_sale is p.last_sale else None
            if receipt is not None and receipt.occurred_at > since:
                since, since_x = receipt.occurred_at, None
            if pos.base_source == "count" and pos.base_at > since:
                since, since_x = pos.base_at, None
            found = p.found_at
            if found is not None and found <= now and found > since:
                since, since_x = found, None
            shelf_only = _shelf_book(pos, p)
            shelf_bound, seen, short_at = self._seen_short(pos, p, now, shelf_only, before=False)
            if short_at is not None:  # refilled, the shelf holds the book (and any units a
                # shelf count left out of it)
                refill_to = pos.book + p.hidden if shelf_only and p.hidden else pos.book
                stays = 1.0 - self.refill.p_refilled((now - short_at).total_seconds() / 3600)
                if seen is not None and seen < 0:  # sold more than was seen
                    stays = not_refilled_after_sales(stays, -seen)
            if receipt is not None:
                waited = now - receipt.occurred_at  # (one subtraction for every reading)
                before = p.receipt_before
                pre = None if before is None else before.get(receipt.event_id)
                if pre is not None:
                    since_receipt = waited.total_seconds() / 86400
                if waited < BACK_ROOM_WINDOW and (
                    pos.base_source != "count" or pos.base_at < receipt.occurred_at
                ):
                    restocked = True
                    sold_since = (
                        last_sale is not None and last_sale.occurred_at > receipt.occurred_at
                    )
                    if not (sold_since and pre is not None and pre <= 0):
                        back_room = receipt.qty
                        fill = self.fill.p_filled(waited.total_seconds() / 3600)
            verified = p.verified
            empty, n = p.empty, p.n
        else:
            shelf_only = False
            if pos.base_source == "count" and pos.base_at > since:
                since = pos.base_at
            verified = None
        # Trade-hour clock readings, each taken once (rhythm.hours(a, b) = clock(b) - clock(a)).
        c_now = at.c_now
        # min / max below as conditionals (a builtin call each costs ~0.1 µs per visit)
        since_wm = wm if wm < since else since  # min(since, wm)
        if since_wm == wm:
            c_since = c_wm
        else:  # since_wm is since
            c_since = rhythm.clock_h(since_wm.timestamp() / 3600 if since_x is None else since_x)
        if verified is not None and p is not None and at.us is not None:
            vu = p.verified_us  # days_unverified(verified, None, now), from integers
            if vu is None or vu[0] is not verified:
                vu = p.verified_us = (verified, _epoch_us(verified))
            if vu[1] is None:
                days = days_unverified(verified, None, now)
            else:
                days = (at.us - vu[1]) / 1_000_000 / 86400
                days = days if days > 0.0 else 0.0
        else:
            first = None if verified is not None else self.loss.first_seen_at(store, sku)
            days = days_unverified(verified, first, now)  # first sighting: only if unverified
        idle = c_now - c_since
        idle = idle if idle > 0.0 else 0.0
        if short_at is not None and seen is not None and seen <= 0 and since <= short_at < wm:
            # Seen empty, and no sale since: a refilled shelf would have sold, an empty
            # one cannot, so the quiet is evidence against the refill (its learned
            # chance by the hours since is the prior; measured in docs/engine.md).
            quiet = tspeed * (c_wm - rhythm.clock_h(short_at.timestamp() / 3600))
            stays = empty_given_quiet(stays, quiet)
        if unit_loss > 0.0 and days > 0.0:
            # The units' share of the loss, spread over the days unverified: the loss
            # bound below then charges it as it charges the loss per day.
            loss_rate += unit_loss / days
        if restocked and since_receipt is not None and since_receipt < days:
            # A delivery in the back-room window: loss is charged from the receipt on.
            # Charged before it too (up to the book before it), it held back units and
            # emptied the units before the delivery on visits that found the shelf
            # stocked 96-99% of the time (docs/engine.md, stop 24).
            days = since_receipt
        loss = expected_loss(loss_rate, days, since_receipt, pre)
        phantom = self.emptiness.prior_with(empty, n, 24.0 * speed, at.shelf_factor)
        phantom *= self.idle.factor(idle)
        if restocked:
            phantom *= self.restock.factor()
        if self.runout_factor and p is not None:
            tally = p.day  # RunOut.today(p.day, at.x_now), inline (per visit)
            today = 0.0 if tally is None or at.x_now >= tally.end else tally.units
            phantom *= self.runout.factor(today, store)
        typical, spread = (0.0, 0.0) if shelf_only else self.shelf_share.typical(pos.book)
        ev = Evidence(
            book=pos.book,
            wanted=wanted,
            expected_sales=0.0 if at.c_end is None else tspeed * (at.c_end - c_now),
            unreported_sales=tspeed * (c_now - c_wm) if wm < now else 0.0,
            unrecorded_loss=loss,
            back_room=back_room,
            shelf_fill=fill,
            silence=tspeed * (c_wm - c_since) if since < wm else 0.0,
            phantom_prior=phantom if phantom < 0.95 else 0.95,
            shelf_bound=shelf_bound,
            refilled_units=refill_to,
            not_refilled=stays,
            into_day=at.into_day,
            shelf_typical=typical,
            shelf_spread=spread,
        )
        return ev, idle, tspeed, restocked

    def _bound(
        self, pos: BookPosition, p: Pair, shelf_obs: tuple[datetime, int], now: datetime
    ) -> int | None:
        """The short pick's shelf bound at ``now`` (``shelf_obs`` at or before it), or None."""
        if pos.base_at < shelf_obs[0]:
            return self._rolled_forward(p, *shelf_obs, now)
        found = p.found_at
        if found is None or found <= shelf_obs[0]:
            # A count after a short pick finds shelf + back room, not a refilled
            # shelf: the pick's bound holds until sales or a found pick show a refill.
            bound = self._rolled_forward(p, *shelf_obs, now)
            if bound >= 0:
                return bound
        return None

    def _rolled_forward(self, p: Pair, at: datetime, qty: int, now: datetime) -> int:
        """A shelf observation plus the movements recorded after it."""
        units = qty
        if p.book is not None:
            for occurred, _, e, kind in reversed(p.book.events):
                if occurred <= at:
                    break
                if occurred <= now and kind is not Count:
                    units += -e.qty if kind is Sale else e.qty  # type: ignore[union-attr]
        return units

    def store_quiet(self, store_id: str, now: datetime) -> float:
        """Expected store events since the newest one published (high: the POS went quiet)."""
        return self._quiet(store_id, now, None)

    def _quiet(self, store_id: str, now: datetime, at: StoreAt | None) -> float:
        """``store_quiet``; ``at`` is the store's side at ``now`` when already built (its
        opening, rhythm and clock at ``now``)."""
        st = self.stores.get(store_id) if at is None else at.state
        opened = self.sales.opened.get(store_id) if at is None else at.opened
        if st is None or st.watermark is None or opened is None:
            return 0.0
        wm = st.watermark
        if at is None:
            rhythm = st.rhythm
            builds = rhythm.fresh_builds()  # a rebuild that is due happens now, as it did
            if now <= wm:
                return 0.0
            c_wm = self._clock_wm(st, wm)
            c_now = rhythm.clock_h(now.timestamp() / 3600)
        elif now <= wm:
            return 0.0
        else:  # the StoreAt's readings, on the profile it freshened (wm < now: at.c_wm is wm's)
            builds, c_wm, c_now = at.rhythm.builds, at.c_wm, at.c_now
        exposure = c_wm - self._clock_opened(st, opened, builds) if wm > opened else 0.0
        if exposure <= 1.0:
            return 0.0
        rate = st.events / exposure
        return rate * (c_now - c_wm)

    def last_gap(self, store_id: str, sku: str) -> tuple[datetime, int] | None:
        """(at, book − count) of the pair's last POS count, if any."""
        p = self.pairs.get((store_id, sku))
        return None if p is None else p.last_gap

    def assess(self, pos: BookPosition, wanted: int, now: datetime) -> Assessment:
        """Confidence, held-back units and the reasons behind them."""
        p = self.pairs.get((pos.store_id, pos.sku))
        us = _epoch_us(now)
        at = self._store_at(pos.store_id, now, _x_of(now, us), self.policy.arrival_horizon, us)
        return self._assess(pos, p, wanted, at)

    def _assess(
        self, pos: BookPosition, p: Pair | None, wanted: int, at: StoreAt, reasons: bool = True
    ) -> Assessment:
        ev = self._evidence_at(pos, p, wanted, at)[0]
        quiet = disagree = False  # read only for the reasons
        if reasons:
            now = at.now
            quiet = self._quiet(pos.store_id, now, at) >= QUIET_EVENTS
            gap = None if p is None else p.last_gap
            disagree = (
                gap is not None
                and (now - gap[0]).total_seconds() < DISAGREE_DAYS * 86400
                and abs(gap[1]) >= max(3, 0.3 * max(pos.book, 1))
            )
        return assessment(
            ev,
            threshold=self.policy.confidence_threshold,
            # (the bound method: calling the instance goes through the slower tp_call slot)
            calibrate=self.calibration.__call__,
            floor=self.calibration.floor,
            pos_quiet=quiet,
            sources_disagree=disagree,
            reasons=reasons,
        )

    def answer(
        self, store_id: str, sku: str, wanted: int, now: datetime, *, reasons: bool = True
    ) -> Badge:
        """The badge the live API would give at ``now``, with the default arrival horizon.
        ``reasons=False`` (the backtest, which scores state, book and confidence): the same
        badge without its reasons, nor the store-quiet and disagreement checks only they read."""
        st = self.stores.get(store_id)
        p = None if st is None else st.pairs.get(sku)
        pos = self.ledger.position_in(None if p is None else p.book, store_id, sku, now)
        wm = None if st is None else st.watermark
        snap = self.ledger.location_as_of.get(store_id)
        store_newest = snap if wm is None or (snap is not None and snap > wm) else wm  # newest()
        assessed = None
        if pos is not None:
            horizon = self.policy.arrival_horizon
            us = _epoch_us(now)
            at = self._store_at(store_id, now, _x_of(now, us), horizon, us)
            assessed = self._assess(pos, p, wanted, at, reasons)
        return badge_for(
            pos,
            policy=self.policy,
            category=self.categories.get(sku),
            store_newest_at=store_newest,
            now=now,
            wanted=wanted,
            assessment=assessed,
            reasons=reasons,
            unrecorded=self.calibration.unrecorded(),
        )

"""Book positions kept up to date one published fact at a time.

The contract's book position (``app.domain.book.book_position``) recomputed from
scratch per question is too slow for a replay that asks it ~50,000 times while
absorbing ~100,000 events. This ledger keeps, per (store, sku), the events in
``occurred_at`` order and a running sum of the movements after the current base,
so the usual question (the book *now*, after every known event) costs O(1); a
question about an earlier moment takes back the movements after it (feedback is
about a moment before the pair's newest events), and falls back to the reference
rules on the kept events only when a count came after it. A property test holds it equal to the reference on shuffled, redelivered
and late streams. Pure: no I/O, no clock.
"""

from __future__ import annotations

from bisect import bisect_right, insort
from collections.abc import Iterable
from datetime import datetime

from app.domain.book import book_position
from app.domain.location_rows import LocationRows
from app.domain.model import BookPosition, Count, EventKind, PosEvent, Sale, SnapshotRow, kind_of


def _key(e: PosEvent) -> tuple[datetime, str]:
    return (e.occurred_at, e.event_id)


class PairBook:
    """One (store, sku): its events (by ``occurred_at``, each with its contract type,
    ``model.kind_of``: the walks back over them test no type) and the running book."""

    __slots__ = (
        "base_generation",
        "events",
        "latest_count",
        "max_occurred",
        "moved",
        "moved_base_at",
        "sku",
        "store_id",
    )

    def __init__(self, store_id: str, sku: str) -> None:
        self.store_id = store_id
        self.sku = sku
        self.events: list[tuple[datetime, str, PosEvent, EventKind]] = []
        self.latest_count: Count | None = None
        self.max_occurred: datetime | None = None
        # Sum of movements strictly after ``moved_base_at``; valid while the base holds.
        self.moved = 0
        self.moved_base_at: datetime | None = None
        self.base_generation = -1

    def add(self, e: PosEvent, kind: EventKind | None = None) -> None:
        """Keep ``e`` (``kind``: its ``kind_of``, when the caller holds it)."""
        if kind is None:
            kind = kind_of(e)
        at, eid = e.occurred_at, e.event_id
        item = (at, eid, e, kind)
        events = self.events
        newest = self.max_occurred  # the last event's time (events are in (at, id) order)
        if newest is None or at > newest:  # the usual case: later than every kept event
            events.append(item)
            self.max_occurred = at
        else:
            last_at, last_id, _, _ = events[-1]  # (at, id) order, as comparing _key tuples
            if last_at < at or (last_at == at and last_id < eid):
                events.append(item)
            else:
                insort(events, item, key=lambda t: (t[0], t[1]))
        if kind is Count:
            latest = self.latest_count
            if latest is None or _key(latest) < _key(e):
                self.latest_count = e  # type: ignore[assignment]  # (kind Count: e is one)
                self.base_generation = -1  # the base may have moved: recompute lazily
        elif self.moved_base_at is not None and at > self.moved_base_at:
            self.moved += -e.qty if kind is Sale else e.qty  # type: ignore[union-attr]

    def forget(self, upto: datetime) -> int:
        """Drop the events at or before ``upto`` but the newest of each kind among them;
        return how many went. The caller picks ``upto`` at or before the pair's snapshot
        base (the book never reads those movements, nor the counts it supersedes): the
        kept newest ones still answer "the newest event (of a kind) at or before ``at``"
        for any ``at`` from ``upto`` on, so every such answer is as before."""
        events = self.events
        cut = bisect_right(events, upto, key=lambda t: t[0])  # (events are in (at, id) order)
        if cut <= 1:
            return 0
        newest: dict[EventKind, tuple[datetime, str, PosEvent, EventKind]] = {}
        for item in events[:cut]:
            newest[item[3]] = item
        if len(newest) == cut:
            return 0
        kept = sorted(newest.values(), key=lambda t: (t[0], t[1]))
        self.events = kept + events[cut:]
        return cut - len(kept)

    def recompute(self, base_at: datetime) -> None:
        """Re-sum the movements after a new base time."""
        total = 0
        for at, _, e, kind in reversed(self.events):
            if at <= base_at:
                break
            if kind is not Count:
                total += -e.qty if kind is Sale else e.qty  # type: ignore[union-attr]
        self.moved, self.moved_base_at = total, base_at

    def after(self, at: datetime, base_at: datetime) -> tuple[int, datetime | None]:
        """The movements after ``at`` (and after the base, ``base_at``) summed, and the
        newest ``occurred_at`` at or before ``at`` (None: none): what separates the book
        at ``at`` from the running one when the base is the same at both moments."""
        total = 0
        for occurred, _, e, kind in reversed(self.events):
            if occurred <= at:
                return total, occurred
            if occurred > base_at and kind is not Count:
                total += -e.qty if kind is Sale else e.qty  # type: ignore[union-attr]
        return total, None


class Ledger:
    """Book positions for every pair, from snapshots and POS events as they are published.

    Redelivered ``event_id`` values change nothing. Snapshots are applied whole: a
    snapshot replaces the rows of every location it names (an unlisted sku there
    has 0 units) unless that location already holds a newer ``as_of``; a location
    it does not name keeps its rows.
    """

    def __init__(self) -> None:
        self.pairs: dict[tuple[str, str], PairBook] = {}
        # Snapshot rows in force, per location: a snapshot replaces a location's
        # rows whole (no per-row deletes, no (store, sku) key per row).
        self.rows_at: dict[str, LocationRows] = {}
        self.location_as_of: dict[str, datetime] = {}
        self.generation: dict[str, int] = {}
        self._seen: set[str] = set()

    def pair(self, store_id: str, sku: str) -> PairBook:
        key = (store_id, sku)
        pb = self.pairs.get(key)
        if pb is None:
            pb = self.pairs[key] = PairBook(store_id, sku)
        return pb

    def knows(self, event_id: str) -> bool:
        """True when this ``event_id`` has been recorded (a redelivery changes nothing)."""
        return event_id in self._seen

    def forget_id(self, event_id: str) -> None:
        """``knows`` forgets ``event_id``: the caller will never send it again (the live
        engine's catch-up reads an event again only minutes after its receipt)."""
        self._seen.discard(event_id)

    def add_event(self, e: PosEvent) -> bool:
        """Record one POS event; False (and nothing changes) for a redelivered ``event_id``."""
        if e.event_id in self._seen:
            return False
        self._seen.add(e.event_id)
        self.pair(e.store_id, e.sku).add(e)
        return True

    def record(
        self, e: PosEvent, pb: PairBook | None = None, kind: EventKind | None = None,
        *, remember: bool = True,
    ) -> PairBook:  # fmt: skip
        """``add_event`` for an event the caller checked is new (``knows``); ``pb`` its
        pair's book and ``kind`` its ``kind_of`` when the caller holds them. Returns the
        pair's book. ``remember=False``: an id nobody will send again (the engine's own
        shelf counts), not kept for ``knows``."""
        if remember:
            self._seen.add(e.event_id)
        if pb is None:
            pb = self.pair(e.store_id, e.sku)
        pb.add(e, kind)
        return pb

    def apply_snapshot(self, as_of: datetime, rows: Iterable[SnapshotRow]) -> set[str]:
        """Apply one parsed snapshot whole; return the locations it replaced."""
        named: dict[str, LocationRows] = {}
        for r in rows:
            at = named.get(r.location_id)
            if at is None:
                at = named[r.location_id] = LocationRows()
            at.add(r)
        applied: set[str] = set()
        for location, new_rows in named.items():
            current = self.location_as_of.get(location)
            if current is not None and current >= as_of:
                continue  # an older snapshot published late does not roll the book back
            self.rows_at[location] = new_rows
            self.location_as_of[location] = as_of
            self.generation[location] = self.generation.get(location, 0) + 1
            applied.add(location)
        return applied

    def takes_changes(self, location: str, as_of: datetime) -> bool:
        """Whether ``apply_changes`` takes the location's snapshot at ``as_of``: it holds
        the location's rows, at an earlier ``as_of``."""
        current = self.location_as_of.get(location)
        return location in self.rows_at and current is not None and current < as_of

    def apply_changes(
        self, location: str, as_of: datetime, rows: Iterable[SnapshotRow], removed: Iterable[str]
    ) -> bool:
        """Apply one location's next snapshot as what changed from the rows it holds.

        Same result as ``apply_snapshot(as_of, <the location's whole rows>)`` when
        ``rows`` holds every row that is new, changed, or whose ``as_of`` is not
        ``as_of`` (every row not listed takes ``as_of``) and ``removed`` every sku the
        snapshot no longer lists. False, and nothing changes, when the location holds
        no rows yet or an ``as_of`` at or after this one (apply it whole then).
        """
        held = self.rows_at.get(location)
        if held is None or not self.takes_changes(location, as_of):
            return False
        held.as_of = [as_of] * len(held.as_of)
        for sku in removed:
            held.remove(sku)
        for r in rows:
            held.add(r)
        held.compact()
        self.location_as_of[location] = as_of
        self.generation[location] = self.generation.get(location, 0) + 1
        return True

    def position(self, store_id: str, sku: str, at: datetime) -> BookPosition | None:
        """The contract book position at ``at`` from everything recorded so far."""
        return self.position_in(self.pairs.get((store_id, sku)), store_id, sku, at)

    def position_in(
        self, pb: PairBook | None, store_id: str, sku: str, at: datetime
    ) -> BookPosition | None:
        """``position`` given the pair's book (``None``: no events), as its holder has it."""
        rows = self.rows_at.get(store_id)
        i = None if rows is None else rows.index.get(sku)
        loc_as_of = self.location_as_of.get(store_id)
        last: datetime | None = None  # the pair's newest occurred_at
        c: Count | None = None  # its latest count
        if pb is not None:
            last, c = pb.max_occurred, pb.latest_count
            if c is not None and at < c.occurred_at:
                # A count after ``at``: the base at ``at`` is an older one (reference rules).
                return book_position(
                    store_id,
                    sku,
                    snapshot_row=None if rows is None else rows.row(store_id, sku),
                    location_as_of=loc_as_of,
                    events=[e for _, _, e, _ in pb.events],
                    at=at,
                )
        # Fast path: the base at ``at`` is the running one (every count, if any, is at or
        # before ``at``); events after ``at`` are taken back below.
        base_qty: int | None = None
        base_at: datetime | None = None
        in_transit = 0
        snap_as_of: datetime | None = None
        if rows is not None and i is not None:
            base_qty = rows.on_hand[i] - rows.reserved[i]
            base_at = snap_as_of = rows.as_of[i]
            in_transit = rows.in_transit[i]
        elif loc_as_of is not None:
            base_qty, base_at, snap_as_of = 0, loc_as_of, loc_as_of
        if pb is None:  # no events: the snapshot base alone (the reference rules, with none)
            if base_qty is None or base_at is None:
                return None
            return BookPosition(store_id=store_id, sku=sku, book=base_qty, base_source="snapshot",
                                base_at=base_at, snapshot_as_of=snap_as_of, in_transit=in_transit)  # fmt: skip
        source = "snapshot"
        if c is not None and (base_at is None or c.occurred_at > base_at):
            base_qty, base_at, source = c.on_hand, c.occurred_at, "count"
        if base_qty is None or base_at is None:
            return None
        gen = self.generation.get(store_id, 0)
        if pb.base_generation != gen or pb.moved_base_at != base_at:
            pb.recompute(base_at)
            pb.base_generation = gen
        book = base_qty + pb.moved
        if last is not None and at < last:  # a moment before the pair's newest events
            later, last = pb.after(at, base_at)
            book -= later
        return BookPosition(
            store_id=store_id,
            sku=sku,
            book=book,
            base_source="count" if source == "count" else "snapshot",
            base_at=base_at,
            snapshot_as_of=snap_as_of,
            last_event_at=last,
            in_transit=in_transit,
        )

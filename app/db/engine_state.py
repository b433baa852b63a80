"""The confidence engine of a running service, fed from what the database stores.

A ``LiveEngine`` is owned by the process's ``Reconcilers`` (created in the app
lifespan). It holds one ``app.domain.engine.Engine`` and keeps it level with the
database by *catching up*: POS events and feedback by time of receipt, applied
snapshots by id, merged in publication order (snapshot, then events, then feedback
at one instant). Every recompute (``app.db.positions.recompute_pairs``) catches up
inside its own transaction, after its store locks, so the engine has seen the very
rows the recompute stores (including its own uncommitted page) and nothing older
is assessed. Each process keeps its own engine and catches up on what the others
stored too; whichever process holds a feed's lock writes its badges.

Warm start: at start-up the engine is fed the snapshots in force (whatever their
age), then the POS events and feedback received in the last ``window`` (default 14
days, ``WARM_WINDOW``). Older events are not replayed: their learning (sales speed,
loss, shelf fill, calibration) is lost at a restart; the book itself never is (it
is PostgreSQL's). A warm restart reproduces the running engine's assessments when
the running engine saw nothing older than the window.

Bounded memory: a running engine lets go of what neither a catch-up nor an answer
reads again (``LiveEngine._forget``): event ids and feedback keys 10 minutes after
their receipt, and, once an hour, the raw events older than the window
(``Engine.forget``). What was learnt from them stays; so a process that runs for
months holds about what a warm start loads, not every event it ever took in.

The recompute finds the engine through ``bound_engine()`` (a context variable the
reconcilers bind around their runs, and the feedback endpoint around its write):
the call chain (jobs, pullers) stays as it is, and nothing is global to the module.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import hashlib
import struct
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any

import asyncpg
import msgspec
import structlog
from msgspec.structs import replace

from app.db import Connection
from app.db.queries import Queries
from app.domain import NATIVE_IN_USE
from app.domain.engine import QUIET_EVENTS, Engine
from app.domain.live import Assessor, calibration_state
from app.domain.model import Adjustment, Count, PosEvent, Receipt, Return, Sale, SnapshotRow
from app.domain.policy import Policy
from app.domain.reassess import CalibrationMap

log = structlog.get_logger(__name__)
Q = Queries("engine_state.sql")

WARM_WINDOW = timedelta(days=14)
# A run's first catch-up looks this far behind its mark: another process's page
# committed after this one last looked, with an earlier time of receipt.
CATCH_UP_OVERLAP = timedelta(minutes=5)
# An event's id (and a feedback's key) is kept to tell a re-read from a new one this
# long after its receipt: a catch-up reads again at most CATCH_UP_OVERLAP back.
FORGET_IDS_AFTER = 2 * CATCH_UP_OVERLAP
# How often the engine lets go of raw events older than its window (``Engine.forget``).
FORGET_EVERY = timedelta(hours=1)
# Looks remembered to leave out what they read (``LiveEngine._looks``); forgetting
# one only means reading some events again (the engine ignores those it has).
MAX_LOOKS = 4
# Items a catch-up takes in between turns of the loop while a statement runs alongside.
YIELD_EVERY = 500

_BOUND: contextvars.ContextVar[LiveEngine | None] = contextvars.ContextVar(
    "live_engine", default=None
)


def bound_engine() -> LiveEngine | None:
    """The live engine bound to the running task, if any."""
    return _BOUND.get()


@contextlib.contextmanager
def binding(live: LiveEngine | None) -> Iterator[None]:
    """Bind ``live`` for the code (and tasks created) inside the block."""
    token = _BOUND.set(live)
    try:
        yield
    finally:
        _BOUND.reset(token)


def _engine_id(feed: str, event_id: str) -> str:
    """The engine's id of a stored event: event_id is unique within a feed only."""
    return f"{feed}:{event_id}"


def _event(r: asyncpg.Record) -> PosEvent:
    ident = _engine_id(r["feed"], r["event_id"])
    common: dict[str, Any] = {
        "event_id": ident, "store_id": r["store_id"], "sku": r["sku"], "occurred_at": r["occurred_at"],
    }  # fmt: skip
    kind, qty = r["type"], r["qty"]
    if kind == "count":
        return Count(on_hand=r["on_hand"], **common)
    if kind == "sale":
        return Sale(qty=qty, **common)
    if kind == "return":
        return Return(qty=qty, **common)
    if kind == "receipt":
        return Receipt(qty=qty, **common)
    return Adjustment(qty=qty, **common)


FeedbackKey = tuple[str, str, str, datetime, int]  # store, sku, kind, observed_at, qty


class Fresh(msgspec.Struct, frozen=True):
    """Events a transaction has just stored (``app.db.events.insert_events``' answer:
    the new ones, in the engine's order) for its recompute's catch-up to take in
    without reading them back. The transaction stores no POS events after that
    catch-up (later catch-ups take its events as seen)."""

    feed: str
    received_at: datetime
    events: Sequence[PosEvent]


class LocationChanges(msgspec.Struct, frozen=True):
    """What a snapshot changed at one location that held stock (``apply_staged``):
    ``rows`` the rows it wrote and those whose ``as_of`` is not the location's (every
    other row is as it was, now at ``as_of``), ``removed`` the skus it no longer lists."""

    as_of: datetime
    previous_snapshot: int
    rows: list[SnapshotRow]
    removed: list[str]


class SnapshotChanges(msgspec.Struct, frozen=True):
    """A snapshot this transaction has just applied, as what changed per location: its
    recompute's catch-up takes a location in this way instead of reading all its rows
    when the engine holds that location's rows of ``previous_snapshot`` (else it reads
    them all, as for any other snapshot)."""

    snapshot_id: int
    locations: dict[str, LocationChanges]


class LiveEngine:
    """One process's engine, its catch-up marks and the calibration map it persisted."""

    def __init__(self, policy: Policy, *, window: timedelta = WARM_WINDOW) -> None:
        self.policy = policy
        self.window = window
        self.categories: dict[str, str | None] = {}
        self.engine = Engine(policy, self.categories)
        self.events_mark: datetime | None = None
        self.feedback_mark: datetime | None = None
        self.snapshot_mark = 0
        # Per location, the applied snapshot whose rows the engine holds (taken in
        # whole or as changes); a snapshot's changes apply only on top of its previous.
        self._holds: dict[str, int] = {}
        self._feedback_seen: set[FeedbackKey] = set()
        # What was taken in, by time of receipt, so that its ids can be let go of once
        # no catch-up can read it again (``_forget``): memory stays bounded by the
        # window, not by the months a process runs.
        self._taken: deque[tuple[datetime, str]] = deque()
        self._taken_feedback: deque[tuple[datetime, FeedbackKey]] = deque()
        self._forgot_at: datetime | None = None
        # The events received exactly at events_mark the engine has seen: the next
        # catch-up (which reads from the mark on, for late commits at that instant)
        # leaves them out in SQL instead of fetching them again.
        self._at_mark: set[tuple[str, str]] = set()
        # Recent looks (snapshot, own id, whether it took its own events in, lower
        # bound of its read): events_since leaves out what they read. A look drops
        # the earlier ones whose bound is not below its own (it read all they did
        # from there on).
        self._looks: list[tuple[str, str | None, bool, datetime]] = []
        self._lock = asyncio.Lock()
        self._calibration: CalibrationMap | None = None
        self._calibration_digest: str | None = None
        self.observed = {"events": 0, "feedback": 0, "snapshot_rows": 0}

    async def warm_start(self, pool: asyncpg.Pool, now: datetime) -> None:
        """Feed the engine the snapshots in force and the last ``window`` of events and feedback."""
        self.events_mark = self.feedback_mark = now - self.window
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            await self._catch_up(conn, overlap=timedelta(0), in_recompute=False)
        log.info("engine.warm_started", window_days=self.window.total_seconds() / 86400,
                 since=self.events_mark.isoformat(), compiled=NATIVE_IN_USE,
                 **self.observed)  # fmt: skip

    async def catch_up(self, pool: asyncpg.Pool) -> None:
        """A run's first look: what any process stored since (with ``CATCH_UP_OVERLAP``)."""
        async with self._lock, pool.acquire() as conn, conn.transaction(readonly=True):
            await self._catch_up(conn, overlap=CATCH_UP_OVERLAP, in_recompute=False)

    @contextlib.asynccontextmanager
    async def assessor(
        self,
        conn: Connection,
        now: datetime,
        *,
        fresh: Fresh | None = None,
        changes: SnapshotChanges | None = None,
        alongside: Callable[[], Awaitable[None]] | None = None,
    ) -> AsyncIterator[Assessor]:
        """Catch up inside the caller's transaction, then assess at ``now`` (one at a time).

        ``fresh``: the events this transaction has just stored; the engine takes them
        as they are instead of reading them back. ``changes``: the snapshot this
        transaction has just applied, as what changed (see ``SnapshotChanges``).
        ``alongside``: the caller's next statement on ``conn``, run while the engine
        takes in what the catch-up read (PostgreSQL works while Python does), and
        done before this yields.

        Take the stores' advisory locks before entering: a recompute waiting for
        them must not hold this lock (another one holding them may need it).
        """
        async with self._lock:
            await self._catch_up(conn, overlap=timedelta(0), in_recompute=True, fresh=fresh,
                                 changes=changes, alongside=alongside)  # fmt: skip
            calibration = await self._persisted_calibration(conn)
            yield Assessor(self.engine, now, calibration)

    def quiet_stores(self, now: datetime) -> list[str]:
        """Stores whose tills went quiet for longer than usual (the ``pos_quiet`` reason)."""
        return sorted(
            s for s in self.engine.watermarks() if self.engine.store_quiet(s, now) >= QUIET_EVENTS
        )

    async def _persisted_calibration(self, conn: Connection) -> CalibrationMap:
        """The map in use, stored in the caller's transaction (its id for the records).

        Saved (or found) in every recompute, not only when the map changed: a map
        saved by a transaction that then rolled back is gone, and records written
        later must not name it."""
        weights, table, floors, unrecorded = calibration_state(self.engine)
        values = (*weights, *table, *floors, *unrecorded)
        digest = hashlib.sha256(struct.pack(f"{len(values)}d", *values)).hexdigest()
        labels = self.engine.calibration.labels
        cid = await conn.fetchval(
            Q.save_calibration, digest, labels, list(weights), list(table), list(floors),
            list(unrecorded),
        )  # fmt: skip
        if (
            self._calibration is None
            or digest != self._calibration_digest
            or cid != self._calibration.calibration_id
        ):
            self._calibration = CalibrationMap(cid, weights, table, floors, unrecorded)
            self._calibration_digest = digest
            log.info("engine.calibration_saved", calibration_id=cid, labels=labels)
        return self._calibration

    async def _catch_up(
        self,
        conn: Connection,
        *,
        overlap: timedelta,
        in_recompute: bool,
        fresh: Fresh | None = None,
        changes: SnapshotChanges | None = None,
        alongside: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """``in_recompute``: inside a recompute's transaction, which holds store locks:
        the catalogue's categories are not read again (the run's first look read
        them), nor is the hourly pass over the engine's pairs made (``_forget``)."""
        if not in_recompute:
            for r in await conn.fetch(Q.categories):
                self.categories[r["sku"]] = r["category"]
        if self.events_mark is None or self.feedback_mark is None:
            raise RuntimeError("the live engine must be warm-started before it catches up")
        seen = self._at_mark if not overlap else set()
        lower = self.events_mark - overlap
        since = (lower, [f for f, _ in seen], [e for _, e in seen])
        look = await conn.fetchrow(Q.look)
        assert look is not None  # one row, always
        looks = self._looks
        looked = tuple([x[k] for x in looks] for k in range(4))
        events = await conn.fetch(
            Q.events_since, *since, None if fresh is None else fresh.feed, *looked
        )
        takes_own = fresh is not None
        if fresh is not None and any(r["received_at"] == fresh.received_at for r in events):
            # Another feed's events at the very same instant: how they and these
            # interleave is the database's order; read them all back.
            events, fresh = await conn.fetch(Q.events_since, *since, None, *looked), None
        feedback = await conn.fetch(Q.feedback_since, self.feedback_mark - overlap)
        snaps = await conn.fetch(Q.snapshots_in_force_since, self.snapshot_mark)
        # Publication order: time of receipt; at one instant snapshot, events, feedback.
        items: list[tuple[datetime, int, int, asyncpg.Record | PosEvent]] = []
        items += [(r["received_at"], 0, i, r) for i, r in enumerate(snaps)]
        items += [(r["received_at"], 1, i, r) for i, r in enumerate(events)]
        if fresh is not None:  # already in the order events_since gives
            n = len(events)
            items += [(fresh.received_at, 1, n + i, e) for i, e in enumerate(fresh.events)]
        items += [(r["received_at"], 2, i, r) for i, r in enumerate(feedback)]
        items.sort(key=lambda t: (t[0], t[1], t[2]))
        running: asyncio.Future[None] | None = None
        if alongside is not None and not snaps:  # (a snapshot is read on conn as it goes)
            running = asyncio.ensure_future(alongside())
            await asyncio.sleep(0)  # it sends its statement, then the loop below runs
        try:
            snapshots = await self._take_in(conn, items, fresh, changes, yields=running is not None)
        except BaseException:
            if running is not None:  # the statement must end before the transaction does
                running.cancel()
                await asyncio.gather(running, return_exceptions=True)
            raise
        if running is not None:
            await running
        elif alongside is not None:
            await alongside()
        # This look read every event from ``lower`` on of the transactions its snapshot
        # saw complete; its own transaction's only if it took them in (``Fresh``: stored
        # before this catch-up, none after; without it, some may come later).
        kept = [x for x in looks if x[3] < lower][-(MAX_LOOKS - 1) :]
        self._looks = [*kept, (look["snapshot"], look["own"], takes_own, lower)]
        self._forget(in_recompute=in_recompute)
        if snapshots:
            settle_heap()

    async def _take_in(
        self,
        conn: Connection,
        items: list[tuple[datetime, int, int, asyncpg.Record | PosEvent]],
        fresh: Fresh | None,
        changes: SnapshotChanges | None,
        *,
        yields: bool = False,
    ) -> bool:
        """Feed the engine the catch-up's items in publication order; True if a
        snapshot was among them. ``yields``: let the loop run every ``YIELD_EVERY``
        items (a statement running alongside sends its arguments and takes its rows)."""
        assert self.events_mark is not None and self.feedback_mark is not None  # warm-started
        engine = self.engine
        snapshots = False
        for n, (received_at, kind, _, r) in enumerate(items):
            if yields and n % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            if kind == 1:
                if isinstance(r, asyncpg.Record):
                    event, ident = _event(r), (r["feed"], r["event_id"])
                else:
                    assert fresh is not None
                    at = r.occurred_at  # as read back: in UTC (a page may give an offset)
                    if at.tzinfo is not UTC:
                        at = at.astimezone(UTC)
                    event = replace(r, event_id=_engine_id(fresh.feed, r.event_id), occurred_at=at)
                    ident = (fresh.feed, r.event_id)
                if engine.observe_event(event):
                    self.observed["events"] += 1
                    self._taken.append((received_at, event.event_id))
                if received_at > self.events_mark:
                    self.events_mark = received_at
                    self._at_mark = set()
                if received_at == self.events_mark:
                    self._at_mark.add(ident)
            elif isinstance(r, asyncpg.Record) and kind == 2:
                key = (r["store_id"], r["sku"], r["kind"], r["observed_at"], r["qty"])
                if key not in self._feedback_seen:
                    self._feedback_seen.add(key)
                    self._taken_feedback.append((received_at, key))
                    engine.observe_feedback(kind=r["kind"], store_id=r["store_id"], sku=r["sku"],
                                            qty=r["qty"], observed_at=r["observed_at"],
                                            now=received_at)  # fmt: skip
                    self.observed["feedback"] += 1
                if received_at > self.feedback_mark:
                    self.feedback_mark = received_at
            elif isinstance(r, asyncpg.Record):
                await self._observe_snapshot(conn, r, changes)
                snapshots = True
        return snapshots

    def _forget(self, *, in_recompute: bool) -> None:
        """Let go of what no later catch-up or answer needs: the ids of events and the
        keys of feedback received ``FORGET_IDS_AFTER`` before the marks (a catch-up
        reads again only ``CATCH_UP_OVERLAP`` back), and, once an hour, the raw events
        older than the window (``Engine.forget``: a restarted engine never reads
        those; what was learnt from them stays). That pass over the pairs with events
        (~0.4 s per 100,000 pairs that have some to drop) runs in a warm start or a
        run's first catch-up, which hold no store locks; a recompute's catch-up runs it
        only when none has for two hours (a process without the scheduler, whose
        engine catches up only in the recomputes of the feedback posted to it)."""
        assert self.events_mark is not None and self.feedback_mark is not None
        ledger, taken = self.engine.ledger, self._taken
        horizon = self.events_mark - FORGET_IDS_AFTER
        while taken and taken[0][0] < horizon:
            ledger.forget_id(taken.popleft()[1])
        horizon, feedback = self.feedback_mark - FORGET_IDS_AFTER, self._taken_feedback
        while feedback and feedback[0][0] < horizon:
            self._feedback_seen.discard(feedback.popleft()[1])
        mark = self.events_mark
        every = 2 * FORGET_EVERY if in_recompute else FORGET_EVERY
        if self._forgot_at is None or mark - self._forgot_at >= every:
            self._forgot_at = mark
            dropped = self.engine.forget(mark - self.window)
            if dropped:
                log.info("engine.events_forgotten", events=dropped,
                         before=(mark - self.window).isoformat())  # fmt: skip

    async def _observe_snapshot(
        self, conn: Connection, snap: asyncpg.Record, changes: SnapshotChanges | None = None
    ) -> None:
        """Feed one applied snapshot, location by location (a few locations per fetch).

        A location ``changes`` gives (this transaction's snapshot) is taken in as its
        changes when the engine holds that location's rows of the snapshot before;
        any other is read whole."""
        snapshot_id: int = snap["snapshot_id"]
        as_of = dict(zip(snap["locations"], snap["as_ofs"], strict=True))
        engine, holds = self.engine, self._holds
        whole: list[str] = snap["locations"]
        if changes is not None and changes.snapshot_id == snapshot_id:
            whole = []
            for here in snap["locations"]:
                change = changes.locations.get(here)
                if (
                    change is not None
                    and holds.get(here) == change.previous_snapshot
                    and engine.observe_changes(here, as_of[here], change.rows, change.removed)
                ):
                    holds[here] = snapshot_id
                    self.observed["snapshot_rows"] += len(change.rows)
                else:
                    whole.append(here)
        if whole:
            await self._observe_whole(conn, snapshot_id, whole, as_of)
        self.snapshot_mark = max(self.snapshot_mark, snapshot_id)

    async def _observe_whole(
        self, conn: Connection, snapshot_id: int, locations: list[str], as_of: dict[str, datetime]
    ) -> None:
        """Feed every row in force at ``locations`` (a snapshot's)."""
        ledger, holds = self.engine.ledger, self._holds
        skus: dict[str, str] = {}  # one string per sku across locations
        times: dict[datetime, datetime] = {}  # one object per as_of (most rows share it)
        async for r in conn.cursor(Q.snapshot_rows, locations, prefetch=4):
            here: str = r["location_id"]
            names, ats = r["skus"], r["as_ofs"]
            if None in ats:  # NULL: the location's as_of (a row stores only its own)
                ats = [as_of[here] if a is None else a for a in ats]
            rows = list(map(SnapshotRow, repeat(here, len(names)), map(skus.setdefault, names, names),
                            r["on_hands"], r["reserveds"], r["in_transits"],
                            map(times.setdefault, ats, ats)))  # fmt: skip
            self.observed["snapshot_rows"] += len(rows)
            held = ledger.location_as_of.get(here)
            self.engine.observe_snapshot(as_of[here], rows)
            if held is None or held < as_of[here]:  # the ledger took the rows
                holds[here] = snapshot_id
            else:
                holds.pop(here, None)
            del rows, names, ats


def settle_heap() -> None:
    """Collect everything, then move every object now alive out of the collector's reach.

    After a snapshot the engine holds containers of millions of references that
    live as long as the process; each full collection would walk them again (55-70
    ms, two or three times a POS recompute at 1M rows; docs/scaling.md). Frozen,
    they are freed as usual when no longer referenced (reference counting); a
    reference cycle among them waits for the next call, which unfreezes and collects
    everything first (one full collection a snapshot).
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


async def load_calibration(conn: Connection, calibration_id: int) -> CalibrationMap | None:
    """A persisted calibration map (for ``reassess`` in API processes)."""
    row = await conn.fetchrow(Q.load_calibration, calibration_id)
    if row is None:
        return None
    return CalibrationMap(
        row["calibration_id"],
        tuple(row["weights"]),
        tuple(row["bins"]),
        tuple(row["floors"]),
        tuple(row["unrecorded"]),
    )

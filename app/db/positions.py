"""Recompute book positions and their badges for a set of (store, sku) pairs.

The book is computed set-wise in SQL (``sql/positions.sql``), the badge in Python by
the domain's ``badge_for``, and the batch is written back in one upsert (a
whole-store batch keeps its books on the server and receives only its distinct
badges, see ``_kept_badges``). When a live
engine is bound (``app.db.engine_state``), it catches up on the stored inputs first
and every badge carries its assessment (confidence, held-back units, reasons) and
the evidence record ``reassess`` answers other quantities and pickup times from. Callers
(the POS and warehouse pullers, the feedback endpoint) run this in the transaction
that stored the new inputs, so positions never lag the data they were computed from.
A count is a POS ``count`` event or a ``shelf_count`` feedback, whichever is latest.

``pairs_to_refresh`` finds the stored badges that time alone can change (data
ageing past the policy's limit, future-dated inputs coming due, and with the engine
the pairs of stores whose tills went quiet); the badge refresh
job (``reconcilers/jobs.py``) recomputes them.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from itertools import repeat
from typing import Literal

import asyncpg
import msgspec
import structlog

from app.collector import collector_paused
from app.db import Connection
from app.db.availability import notify_badges_changed
from app.db.engine_state import Fresh, LiveEngine, SnapshotChanges, bound_engine
from app.db.queries import Queries
from app.domain.badge import badge_for
from app.domain.live import Assessor
from app.domain.model import BookPosition
from app.domain.policy import Policy
from app.domain.reasons import Reason

Q = Queries("positions.sql")
log = structlog.get_logger(__name__)

# Pairs per round trip: bounds memory and statement size for very large recomputes.
BATCH = 20_000
# Stores per round trip of a whole-store recompute (a snapshot's: ~5,000 pairs a store).
STORES_PER_BATCH = 4
# From this many rows a batch is written by binary COPY into a temporary table.
COPY_FROM = 2_000
WRITE_COLUMNS = (
    "store_id", "sku", "book", "base_source", "base_at", "snapshot_as_of", "last_event_at",
    "in_transit", "badge_state", "safety_buffer", "confidence", "reasons", "badge_as_of",
    "evidence",
)  # fmt: skip
# How far back the refresh looks for future-dated inputs that came due (bounds the scan).
DUE_LOOKBACK = timedelta(days=1)
PROMISE_STATES = ("in_stock", "low_stock")
# A reason's stored text (``Reason.value``, an enum property, is slow per badge).
_REASON_TEXT: dict[Reason, str] = {r: r.value for r in Reason}

RefreshReason = Literal["aging", "fresh_again", "due"]


class RefreshCandidates(msgspec.Struct, frozen=True, kw_only=True):
    """Pairs whose stored badge time alone can change, and what they show now."""

    pairs: list[tuple[str, str]]
    by_reason: dict[str, int]
    promises: int


async def recompute_pairs(
    conn: Connection,
    pairs: Iterable[tuple[str, str]],
    *,
    policy: Policy,
    now: datetime,
    engine: LiveEngine | None = None,
    only_changed: bool = False,
    fresh: Fresh | None = None,
) -> int:
    """Recompute and store the position and badge of each pair; return how many were written.

    ``engine`` (default: the one bound to the task, if any) assesses every badge;
    ``fresh``: the events this transaction stored, which it takes in as they are.
    ``only_changed`` (a snapshot's recompute): a pair whose book, base source and
    units in transit come out as stored, with a badge that is not ``unknown`` and was
    assessed as this one would be, is left as stored: its badge was computed from the
    very same inputs, like any pair no feed touched (the store's freshness, which
    the read path gates on, moved with the snapshot).
    """
    unique = sorted(set(pairs))
    if not unique:
        return 0
    query = _BOOK_OF_PAIRS if only_changed else _BOOK_OF_PAIRS_PLAIN
    batches = [
        (query, [p[0] for p in chunk], ([p[1] for p in chunk],))
        for chunk in (unique[i : i + BATCH] for i in range(0, len(unique), BATCH))
    ]
    stores = sorted({store for store, _ in unique})
    return await _recompute(conn, stores, batches, policy=policy, now=now, engine=engine,
                            only_changed=only_changed, fresh=fresh)  # fmt: skip


async def recompute_stores(
    conn: Connection,
    store_ids: Iterable[str],
    *,
    policy: Policy,
    now: datetime,
    snapshot_id: int | None = None,
    changes: SnapshotChanges | None = None,
) -> int:
    """Recompute the pairs the stores have warehouse rows, POS events or positions for
    (those a snapshot left as they were are skipped, see ``only_changed``).

    The pairs are found and compared with what is stored in SQL, a few stores per
    round trip: only the pairs whose inputs changed come back to be assessed.
    ``snapshot_id``: the snapshot just applied to these stores; of a store that has
    positions, only the pairs it can have changed are computed (``pairs_of_snapshot``),
    the others are as stored. A store without positions yet (a first load) has all
    its pairs computed (every one is new; and the planner, which cannot foresee that
    pairs_of_snapshot names them all, would join them one by one). ``changes``: what
    that snapshot changed (``snapshots.apply_staged_changes``), for the engine's catch-up.
    """
    stores = sorted(set(store_ids))
    if not stores:
        return 0
    positioned: set[str] = set()
    if snapshot_id is not None:
        positioned = {r[0] for r in await conn.fetch(Q.stores_with_positions, stores)}
    known = set() if changes is None or changes.snapshot_id != snapshot_id else changes.locations
    batches: list[tuple[str, list[str], tuple[object, ...]]] = []
    for group, query, extra in (
        ([s for s in stores if s not in positioned], _KEPT_BOOKS_OF_STORES, ()),
        ([s for s in stores if s in positioned and s not in known], _KEPT_BOOKS_OF_SNAPSHOT,
         (snapshot_id,)),
    ):  # fmt: skip
        batches += [
            (query, group[i : i + STORES_PER_BATCH], extra)
            for i in range(0, len(group), STORES_PER_BATCH)
        ]
    search = None
    if changes is not None and (
        by_changes := [s for s in stores if s in positioned and s in known]
    ):
        listed: list[tuple[str, str]] = []
        for store in by_changes:
            change = changes.locations[store]
            listed += [(store, r.sku) for r in change.rows]
            listed += [(store, sku) for sku in change.removed]
        search = (by_changes, [p[0] for p in listed], [p[1] for p in listed])
    return await _recompute(conn, stores, batches, policy=policy, now=now, engine=None,
                            only_changed=True, kept=True, changes=changes,
                            search=search)  # fmt: skip


async def _recompute(
    conn: Connection,
    stores: list[str],
    batches: Sequence[tuple[str, list[str], tuple[object, ...]]],
    *,
    policy: Policy,
    now: datetime,
    engine: LiveEngine | None,
    only_changed: bool,
    kept: bool = False,
    fresh: Fresh | None = None,
    changes: SnapshotChanges | None = None,
    search: tuple[list[str], list[str], list[str]] | None = None,
) -> int:
    """Each batch is (query, its stores, its arguments after book_rule's four).

    ``kept``: the batches' queries keep their rows in ``book_batch`` (numbered ``n``)
    and the write joins them with the distinct badges derived (``_write_kept``).
    ``search`` (kept only): stores whose snapshot came with what it changed, and the
    pairs it listed (stores, skus): their candidates (``pairs_of_changes``) are found
    in one statement once the stores are locked, and computed as named pairs."""
    live = engine if engine is not None else bound_engine()
    timing = {"search_ms": 0.0, "inputs_ms": 0.0, "assess_ms": 0.0, "write_ms": 0.0}
    started = time.perf_counter()
    changed: list[tuple[str, str]] = []
    with collector_paused():  # the collector would walk the engine's heap again and again
        async with conn.transaction():
            await conn.fetchval(Q.lock_stores, stores)
            async with contextlib.AsyncExitStack() as stack:
                assessor = None

                async def book_rows(
                    batch: tuple[str, list[str], tuple[object, ...]],
                ) -> list[asyncpg.Record]:
                    """One batch's book query (assessed by the engine when there is one)."""
                    query, batch_stores, args = batch
                    return await conn.fetch(query, batch_stores, now, only_changed,
                                            live is not None, *args)  # fmt: skip

                first: list[list[asyncpg.Record]] = []  # the first batch's rows, if read early
                if live is not None:
                    alongside = None
                    if not kept and batches:  # its book query runs while the engine catches up

                        async def alongside() -> None:
                            first.append(await book_rows(batches[0]))

                    assessor = await stack.enter_async_context(
                        live.assessor(conn, now, fresh=fresh, changes=changes, alongside=alongside)
                    )
                caught_up = time.perf_counter()
                derive = _Deriver(policy, now, assessor)
                if kept:
                    await conn.execute(Q.create_book_batch)
                if search is not None:
                    searched = time.perf_counter()
                    found = await conn.fetch(Q.pairs_of_changes, search[0], assessor is not None,
                                             search[1], search[2])  # fmt: skip
                    batches = [*batches, *(
                        (_KEPT_BOOKS_OF_PAIRS, [r[0] for r in chunk], ([r[1] for r in chunk],))
                        for chunk in (found[i : i + BATCH] for i in range(0, len(found), BATCH))
                    )]  # fmt: skip
                    del found
                    timing["search_ms"] = (time.perf_counter() - searched) * 1000
                for batch in batches:
                    query, batch_stores, _ = batch
                    t0 = time.perf_counter()
                    rows = first.pop() if first else await book_rows(batch)
                    t1 = time.perf_counter()
                    if kept:
                        badges = _kept_badges(derive, rows)
                        t2 = time.perf_counter()
                        scope = None if query is _KEPT_BOOKS_OF_PAIRS else sorted(set(batch_stores))
                        await _write_kept(conn, badges, scope, now)
                        for group in rows:
                            changed.extend(zip(repeat(group["store_id"]), group["skus"]))
                    else:
                        values = [derive(row) for row in rows]
                        t2 = time.perf_counter()
                        await _write(conn, values, now)
                        changed.extend((v[0], v[1]) for v in values)
                        del values
                    timing["inputs_ms"] += (t1 - t0) * 1000
                    timing["assess_ms"] += (t2 - t1) * 1000
                    timing["write_ms"] += (time.perf_counter() - t2) * 1000
                    del rows
                    if kept:  # whole-store batches: no later batch has these stores' keys
                        derive.forget_stores()
            # API processes drop their cached badges for these pairs when this commits.
            await notify_badges_changed(conn, pairs=changed)
        written, engine_calls = len(changed), 0 if assessor is None else assessor.engine_calls
        # Freed while the collector is off: its first collection after the pause then
        # walks what the engine keeps, not also the memos of every pair derived (a
        # 10,000-pair POS pull: ~110,000 young objects -> ~80,000).
        del derive, assessor, changed
    if written >= 1000:
        log.info("positions.recomputed", written=written,
                 engine=live is not None, stores=len(stores),
                 catch_up_ms=round((caught_up - started) * 1000, 1), engine_calls=engine_calls,
                 **{k: round(v, 1) for k, v in timing.items()})  # fmt: skip
    return written


Row = tuple[
    str, str, int | None, str | None, datetime | None, datetime | None, datetime | None, int,
    str, int, float | None, str, datetime | None, bytes | None,
]  # fmt: skip


# The badge columns; the reasons comma-joined (codes hold no comma), as the writes take
# them: a text column is sent as one value, a text[] one element at a time.
Tail = tuple[str, int, float | None, str, datetime | None, bytes | None]


class _Deriver:
    """Turns one computed book row into the stored row (position, badge, evidence).

    Pairs the engine holds nothing particular about (``Assessor.shared_key``) share
    their record and assessment with every pair of the same key, so their badge
    depends on that key, the row's event time, the store's newest data and the
    buffer rule alone: it is derived once per distinct combination, not per pair.
    """

    def __init__(self, policy: Policy, now: datetime, assessor: Assessor | None) -> None:
        self.policy = policy
        self.now = now
        self.assessor = assessor
        # A pair with no record: the chain's unrecorded shelf (without the engine: none).
        self.unrecorded = None if assessor is None else assessor.calibration.unrecorded
        self._memo: dict[tuple[object, ...], Tail] = {}
        self._by_record: dict[tuple[object, ...], Tail] = {}
        self._buffers: dict[tuple[str, str | None], int] = {}
        self._per_sku = any(rule.sku is not None for rule in policy.buffers)

    def forget_stores(self) -> None:
        """Drop the memo keyed by store (bounds memory; the by-record memo stays)."""
        self._memo.clear()

    def buffer(self, store_id: str, sku: str, category: str | None) -> int:
        if self._per_sku:
            return self.policy.buffer_for(store_id, sku, category)
        key = (store_id, category)
        units = self._buffers.get(key)
        if units is None:
            units = self._buffers[key] = self.policy.buffer_for(store_id, sku, category)
        return units

    def __call__(self, row: asyncpg.Record) -> Row:
        head = (row["store_id"], row["sku"], row["book"], row["base_source"], row["base_at"],
                row["snapshot_as_of"], row["last_event_at"], row["in_transit"])  # fmt: skip
        return head + self.tail(row)

    def tail(self, row: asyncpg.Record) -> Tail:
        """The badge columns of one row; rows of one shared key get the same tuple object."""
        store_id, sku, book = row["store_id"], row["sku"], row["book"]
        base_source, base_at, category = row["base_source"], row["base_at"], row["category"]
        last_event_at, store_newest_at = row["last_event_at"], row["store_newest_at"]
        memo_key: tuple[object, ...] | None = None
        position = None
        if book is not None:
            shared: tuple[object, ...] | None
            if self.assessor is None:
                shared = (store_id, category, base_at, base_source, book)
            else:
                shared = self.assessor.shared_key(store_id, sku, base_at, base_source, book)
            if shared is not None:
                buffer = self.buffer(store_id, sku, category)
                memo_key = (shared, last_event_at, store_newest_at, buffer)
                hit = self._memo.get(memo_key)
                if hit is not None:
                    return hit
            position = BookPosition(
                store_id=store_id, sku=sku, book=book, base_source=base_source, base_at=base_at,
                snapshot_as_of=row["snapshot_as_of"], last_event_at=last_event_at,
                in_transit=row["in_transit"],
            )  # fmt: skip
        evidence: bytes | None = None
        assessment = None
        if self.assessor is not None and position is not None:
            evidence, assessment = self.assessor.assess(position)
        # The badge is a function of the record (the assessment is the record's) and of
        # these: pairs of other stores or categories whose records came out equal share
        # it. A pair the engine holds something particular about (no shared key) has a
        # record of its own: looking it up would only cost (~2 µs a pair of a POS pull).
        by_record = None
        if memo_key is not None:
            by_record = (evidence, buffer, book, base_source, base_at, last_event_at,
                         store_newest_at)  # fmt: skip
            hit = self._by_record.get(by_record)
            if hit is not None:
                self._memo[memo_key] = hit
                return hit
        badge = badge_for(position, policy=self.policy, category=category,
                          store_newest_at=store_newest_at, now=self.now,
                          assessment=assessment, unrecorded=self.unrecorded)  # fmt: skip
        tail = (badge.state, badge.safety_buffer, badge.confidence,
                ",".join([_REASON_TEXT[r] for r in badge.reasons]), badge.as_of, evidence)  # fmt: skip
        if memo_key is not None:
            self._memo[memo_key] = tail
        if by_record is not None:
            self._by_record[by_record] = tail
        return tail


# A whole-store batch's book query, its rows kept numbered in ``book_batch`` too and
# returned grouped: the pairs of one group share every computed column but the sku.
_GROUP_COLUMNS = (
    "store_id, book, base_source, base_at, snapshot_as_of, last_event_at, category, store_newest_at"
)


# book_rule's store filters (see its comment), for the whole-store recomputes only.
_STORE_FILTER = re.compile(r"\s+AND \w+\.\w+ = ANY\(\$1::text\[\]\)")


# book_rule's set-wise ``moved`` CTE, which named pairs swap for ``moved_per_pair``.
_SET_WISE_MOVED = re.compile(r"moved AS \(\n.*?\n\), booked AS \(", re.DOTALL)


def _book_of(
    pairs: str, *, scoped: bool = True, compared: bool = True, per_pair: bool = False
) -> str:
    """book_rule over the pairs of ``pairs`` (a query of (store_id, sku)); ``scoped``:
    keep the store filters (a few stores' every pair), else named pairs; ``compared``:
    with each pair's stored position (``stored``, only_changed), else every row as
    computed and no position read (``book_plain``: only_changed must be false);
    ``per_pair``: the movements by ``moved_per_pair`` (index probes per pair) instead
    of the set-wise pass over the pairs' events, and the stored positions by a probe
    per pair (``book_compared_per_pair``)."""
    rule = Q.book_rule
    if per_pair:
        rule, swapped = _SET_WISE_MOVED.subn(lambda _: Q.moved_per_pair + ", booked AS (", rule)
        assert swapped == 1, "book_rule's moved CTE not found"
    tail = Q.book_plain
    if compared:
        tail = Q.book_compared_per_pair if per_pair else Q.book_compared
    query = f"WITH pairs AS (\n{pairs}\n), {rule}\n{tail}"
    if not scoped:
        query, dropped = _STORE_FILTER.subn("", query)
        expected = (3 if per_pair else 4) + (1 if compared and not per_pair else 0)
        assert dropped == expected, f"book_rule has {dropped} store filters, expected {expected}"
    return query


def _kept(book: str) -> str:
    """``book``'s rows also kept in ``book_batch``, numbered, and returned grouped."""
    return (
        f"WITH computed AS ({book}), kept AS ("
        " INSERT INTO book_batch SELECT (row_number() OVER ())::integer, c.* FROM computed c"
        f" RETURNING *) SELECT {_GROUP_COLUMNS}, array_agg(sku) AS skus, array_agg(n) AS ns,"
        " array_agg(in_transit) AS in_transits"
        f" FROM kept GROUP BY {_GROUP_COLUMNS}"
    )


# Named pairs (a POS page, feedback, the refresh): their movements since the base by
# index probes, whatever their history (``moved_per_pair``).
_BOOK_OF_PAIRS = _book_of(Q.pairs_named, scoped=False, per_pair=True)
# Named pairs whose positions are all written (not only_changed): the stored
# positions are not read (a probe per pair, ~20 % of the query at 1M positions).
_BOOK_OF_PAIRS_PLAIN = _book_of(Q.pairs_named, scoped=False, compared=False, per_pair=True)
_KEPT_BOOKS_OF_STORES = _kept(_book_of(Q.pairs_of_stores))
_KEPT_BOOKS_OF_SNAPSHOT = _kept(_book_of(Q.pairs_of_snapshot))
# A snapshot's candidates found up front (``pairs_of_changes``), many stores' at once,
# by probes per pair too (``book_compared_per_pair`` says why the stored ones as well).
_KEPT_BOOKS_OF_PAIRS = _kept(_book_of(Q.pairs_named, scoped=False, per_pair=True))
# The badge update of the kept rows: whole-store batches read only their stores'
# positions; named pairs are probed by primary key (see of_named_pairs).
_UPDATE_STORES_FROM_BOOK_BATCH = f"{Q.update_from_book_batch}\n{Q.of_batch_stores}"
_UPDATE_PAIRS_FROM_BOOK_BATCH = f"{Q.update_from_book_batch}\n{Q.of_named_pairs}"
# The two ways a batch of positions is written end in the one conflict rule.
_UPSERT_POSITIONS = f"{Q.upsert_positions}\n{Q.position_on_conflict}"
_UPSERT_FROM_POSITION_WRITE = f"{Q.upsert_from_position_write}\n{Q.position_on_conflict}"


class _KeptBadges(msgspec.Struct):
    """Per kept row (by ``n``) the index of its badge, and the distinct badges."""

    index: list[int]
    tails: list[Tail]


class _PairOfGroup:
    """One pair of a group, read like a computed row (``row["book"]``)."""

    __slots__ = ("group", "in_transit", "sku")

    def __init__(self, group: asyncpg.Record, sku: str, in_transit: int) -> None:
        self.group = group
        self.sku = sku
        self.in_transit = in_transit

    def __getitem__(self, name: str) -> object:
        if name == "sku":
            return self.sku
        return self.in_transit if name == "in_transit" else self.group[name]


def _kept_badges(derive: _Deriver, groups: list[asyncpg.Record]) -> _KeptBadges:
    """The badge of every kept pair, derived once per distinct badge input.

    Within a group only the sku and the units in transit vary (the badge does not
    depend on the latter but for a pair the engine holds something about), so a pair's memo key (``_Deriver``) comes
    down to its shared engine key and buffer; pairs the engine holds something
    particular about are derived one by one, as always.
    """
    index = [0] * sum(len(g["ns"]) for g in groups)
    tails: list[Tail] = []
    seen: dict[int, int] = {}  # id of a derived tail -> its number (memo keeps it alive)
    assessor = derive.assessor
    for group in groups:
        store_id, book, category = group["store_id"], group["book"], group["category"]
        base_at, base_source = group["base_at"], group["base_source"]
        local: dict[tuple[object, ...], Tail] = {}
        for sku, n, in_transit in zip(
            group["skus"], group["ns"], group["in_transits"], strict=True
        ):
            key: tuple[object, ...] | None = None
            if book is not None:
                if assessor is None:
                    shared: tuple[object, ...] | None = (store_id, category, base_at, base_source)
                else:
                    shared = assessor.shared_key(store_id, sku, base_at, base_source, book)
                if shared is not None:
                    key = (shared, derive.buffer(store_id, sku, category))
            tail = None if key is None else local.get(key)
            if tail is None:
                tail = derive.tail(_PairOfGroup(group, sku, in_transit))  # type: ignore[arg-type]
                if key is not None:
                    local[key] = tail
            number = seen.get(id(tail))
            if number is None:
                tails.append(tail)
                number = seen[id(tail)] = len(tails)
            index[n - 1] = number
    return _KeptBadges(index, tails)


async def _write_kept(
    conn: Connection, badges: _KeptBadges, stores: list[str] | None, now: datetime
) -> None:
    """Write the kept rows with their badges; only the distinct badges are sent.

    ``stores``: a whole-store batch's stores (the update reads only their positions);
    ``None`` for named pairs, which the update probes by primary key in their order.
    """
    if badges.index:
        columns = [list(c) for c in zip(*badges.tails, strict=True)]
        if stores is None:
            await conn.execute(_UPDATE_PAIRS_FROM_BOOK_BATCH, badges.index, *columns, now)
        else:
            await conn.execute(_UPDATE_STORES_FROM_BOOK_BATCH, badges.index, *columns, now, stores)
        await conn.execute(Q.insert_from_book_batch, badges.index, *columns, now)
    await conn.execute(Q.truncate_book_batch)


async def _write(conn: Connection, values: list[Row], now: datetime) -> None:
    """Upsert the rows: one statement of arrays for a few, binary COPY + one statement for many."""
    if not values:
        return
    if len(values) < COPY_FROM:
        columns = [list(c) for c in zip(*values, strict=True)]
        await conn.execute(_UPSERT_POSITIONS, *columns, now)
        return
    await conn.execute(Q.create_position_write)
    await conn.copy_records_to_table("position_write", records=values, columns=WRITE_COLUMNS)
    await conn.execute(_UPSERT_FROM_POSITION_WRITE, now)
    await conn.execute(Q.truncate_position_write)


async def pairs_to_refresh(
    conn: Connection,
    *,
    now: datetime,
    max_data_age: timedelta,
    lookahead: timedelta,
    due_lookback: timedelta = DUE_LOOKBACK,
) -> RefreshCandidates:
    """The pairs to recompute at ``now`` so stored badges follow the clock (see the SQL).

    With a live engine bound, also every pair of a store whose tills went quiet
    (``quiet``): its unreported sales grow with time, so its confidence falls.
    """
    rows = await conn.fetch(Q.pairs_to_refresh, now, max_data_age, lookahead, due_lookback)
    by_reason: dict[str, int] = {"aging": 0, "fresh_again": 0, "due": 0, "quiet": 0}
    picked: dict[tuple[str, str], str | None] = {}
    for row in rows:
        by_reason[row["why"]] += 1
        picked[(row["store_id"], row["sku"])] = row["badge_state"]
    live = bound_engine()
    quiet = [] if live is None else live.quiet_stores(now)
    if quiet:
        for row in await conn.fetch(Q.pairs_of_quiet_stores, quiet):
            key = (row["store_id"], row["sku"])
            if key not in picked:
                by_reason["quiet"] += 1
                picked[key] = row["badge_state"]
    return RefreshCandidates(
        pairs=list(picked),
        by_reason=by_reason,
        promises=sum(1 for state in picked.values() if state in PROMISE_STATES),
    )


async def count_promises(conn: Connection, pairs: list[tuple[str, str]]) -> int:
    """How many of ``pairs`` show a promise in their stored badge."""
    if not pairs:
        return 0
    count: int = await conn.fetchval(Q.promises_among, [p[0] for p in pairs], [p[1] for p in pairs])
    return count

"""Pull a warehouse snapshot over HTTP and apply it whole, or quarantine it.

The body is streamed straight into a COPY (spooled as it goes: 8 MB in memory, then
a temporary file; never held whole), judged in SQL, and then, in the same
transaction, either applied (stock of every named location replaced, locations and
freshness updated, book positions of the named stores recomputed, ETag saved) or
quarantined (the previous snapshot stays in force). A plain file (``SnapshotBody``)
goes the typed fast path (``_judge_typed``: counts parsed by the COPY, judged on its
distinct values and on its differences from the stock in force, applied from those);
any other file, and any the fast path cannot vouch for, is judged again from the
spool by the text path, with line numbers. Transient HTTP failures are retried and
then raised; bad data is not retried.

ETag choice: the ETag is saved only when a snapshot is applied, so a quarantined
snapshot is downloaded and judged again on the next pull. That is deliberate: an
operator may raise ``max_drop`` or fix the source, and a re-judged snapshot that now
passes is applied without manual steps. To keep repeats cheap in storage, a snapshot
whose ETag and reason equal the feed's latest quarantined snapshot is not recorded
again (outcome "quarantined", detail says which snapshot it repeats).
"""

from __future__ import annotations

import csv
import re
import tempfile
import time
from codecs import BOM_UTF8
from collections.abc import AsyncIterator, Callable
from typing import Literal

import asyncpg
import httpx
import structlog

from app.clock import Clock
from app.db import Connection, snapshots
from app.db import feeds as feed_state
from app.domain.policy import Policy
from app.domain.truncation import truncation_problem
from app.settings import Settings
from reconcilers.feeds_config import FeedConfig
from reconcilers.jobs import DB_ERRORS
from reconcilers.outcome import FeedDataError, PullOutcome
from reconcilers.retry import retrying

log = structlog.get_logger(__name__)

EXPECTED_HEADER = "location_id,sku,on_hand,reserved,in_transit,as_of"
MAX_HEADER_BYTES = 64 * 1024
PROBLEMS_SHOWN = 5
# Positions a snapshot writes from which the tables are analyzed after it (``_analyze``).
ANALYZE_AFTER = 100_000


# An adapter's on-the-fly translation of a body into contract CSV (header included).
Translate = Callable[[AsyncIterator[bytes]], AsyncIterator[bytes]]


class SnapshotRejected(FeedDataError):
    """The snapshot cannot be applied; ``reason`` says where and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- pure rules --------------------------------------------------------------------


def header_problem(first_line: bytes) -> str | None:
    """Why the header line is not the contract's (``None`` when it is).

    Tolerates a UTF-8 BOM, a CRLF line end and names in CSV quotes (``"sku"``, as
    writers that quote every field send them); the names must match exactly.
    """
    line = first_line.removeprefix(BOM_UTF8).removesuffix(b"\n").removesuffix(b"\r")
    received = line.decode("utf-8", errors="replace")
    if received == EXPECTED_HEADER or (
        '"' in received and next(csv.reader([received]), None) == EXPECTED_HEADER.split(",")
    ):
        return None
    if not received:
        return f"line 1: expected header {EXPECTED_HEADER!r}, received an empty line"
    return f"line 1: expected header {EXPECTED_HEADER!r}, received {received[:200]!r}"


def totals(per_location: dict[str, int]) -> tuple[int, int]:
    """(rows, locations) of a snapshot, for its record."""
    return sum(per_location.values()), len(per_location)


async def _hold_and_check_truncation(
    conn: Connection, per_location: dict[str, int], max_drop: float
) -> str | None:
    """Hold the named locations (``snapshots.hold_locations``; this is the pull's first
    read of their stock in force), then say why the staged rows look truncated against
    the rows in force, per location (``app.domain.truncation``), if they do."""
    await snapshots.hold_locations(conn, per_location)
    in_force = await snapshots.rows_in_force(conn, per_location) if per_location else {}
    return truncation_problem(per_location, in_force, max_drop)


def problems_reason(first: list[snapshots.Problem], total: int) -> str:
    """The first problems, each with its line, and how many there are in all."""
    shown = "; ".join(f"line {p.line}: {p.problem}" for p in first)
    if total <= len(first):
        return shown
    return f"{shown} ({total} problems, first {len(first)} shown)"


_COPY_LINE = re.compile(r"\bline (\d+)\b")


def copy_error_reason(exc: asyncpg.PostgresError) -> str:
    """COPY's complaint with the file's line number (COPY counts data rows from 1)."""
    message = str(getattr(exc, "message", None) or exc)
    match = _COPY_LINE.search(getattr(exc, "context", None) or "")
    where = f"line {int(match.group(1)) + 1}" if match else "body"
    if "missing data for column" in message or "extra data after last" in message:
        message += f" (a row has the 6 fields {EXPECTED_HEADER}; is the file truncated?)"
    return f"{where}: {message}"


# -- the body as COPY data -----------------------------------------------------------


# The bytes of a plain file (``SnapshotBody.plain``): the contract's fields, commas and
# line ends. Then only these let int4in take a count that ^[0-9]+$ does not: a sign or
# a 0x/0o/0b prefix after a comma (a count never starts a line), or an underscore in a
# count ('1_000'; ids may hold one, so that is judged per line: COUNT_UNDERSCORE).
PLAIN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:+-,\r\n"
NOT_PLAIN = (b",+", b",-", b",0x", b",0X", b",0o", b",0O", b",0b", b",0B")
# A line with an underscore in its third to fifth field (on_hand, reserved, in_transit).
COUNT_UNDERSCORE = re.compile(rb"^[^,\n]*,[^,\n]*,(?:[^,\n]*,){0,2}[^,\n_]*_", re.MULTILINE)
# A field in CSV quotes with nothing a contract field may not hold inside: its quotes
# are decoration (COPY reads the same value without them).
QUOTED_FIELD = re.compile(rb'(?<![^,\n])"[^",\r\n]*"(?![^,\r\n])')
# No contract line is this long (six fields, ids of at most 64 bytes): past it, not plain.
MAX_PLAIN_LINE = 4096


def _plain_map() -> bytes:
    """A translation that keeps what NOT_PLAIN looks for and folds the rest: '!' for a
    byte not in PLAIN_BYTES, 'x' for x/o/b of either case, 'a' for any other letter,
    digit but 0, or '.', '_', ':'. Searching ``bytes.find`` for a sequence starting with a
    comma costs a step per comma (one every few bytes); on the folded text the rare
    bytes are looked for first and most searches are one ``memchr``."""
    table = bytearray(b"!" * 256)
    for byte in PLAIN_BYTES:
        table[byte] = ord("a")
    for byte in b",+-0\n":
        table[byte] = byte
    for byte in b"xXoObB":
        table[byte] = ord("x")
    table[ord("\r")] = ord("\n")
    return bytes(table)


PLAIN_MAP = _plain_map()


def is_plain(window: bytes) -> bool:
    """``window`` holds only PLAIN_BYTES and none of NOT_PLAIN."""
    folded = window.translate(PLAIN_MAP)
    return not (
        b"!" in folded
        or b",-" in folded
        or (b"+" in folded and b",+" in folded)
        or (b"x" in folded and b",0x" in folded)
    )


# A body is spooled (to replay it into the text path) in memory up to this size.
SPOOL_IN_MEMORY = 8 * 1024 * 1024
REPLAY_CHUNK = 1024 * 1024


class SnapshotBody:
    """A streamed response body as CSV data rows for COPY.

    ``read_header`` consumes and checks the header line; iterating then yields the
    remaining bytes as they arrive. Raises ``SnapshotRejected`` past ``max_bytes``
    (decoded, so a gzip bomb is caught too) or on a backslash: no contract field can
    hold one, and a line ``\\.`` would end a CSV COPY early, silently.

    The bytes are also spooled as received, and ``plain`` says whether, without the
    quotes of whole quoted fields, they have held only ``PLAIN_BYTES``, none of
    ``NOT_PLAIN`` and no underscore in a count (the typed fast path's premise; see
    ``_plain_lines``); iterating yields them for the typed COPY (while plain, without
    those quotes), ``replay`` yields them as received, then the rest of the body.
    """

    def __init__(
        self, chunks: AsyncIterator[bytes], *, max_bytes: int, in_memory: int = SPOOL_IN_MEMORY
    ) -> None:
        self._in_memory = in_memory  # spooled in memory up to this, then a temporary file
        self._chunks = chunks
        self._max_bytes = max_bytes
        self._rest = b""
        self._bytes = 0
        self._newlines = 0
        self.plain = True
        self._tail = b""  # the last 2 bytes yielded (a NOT_PLAIN sequence may straddle chunks)
        self._line = b""  # the last line received (quotes and all), while it has not ended
        self._spool: tempfile.SpooledTemporaryFile[bytes] | None = None
        self._replaying = False

    def close(self) -> None:
        """Drop the spool."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None

    def _kept(self, chunk: bytes) -> bytes:
        """Spool ``chunk`` and return it for the typed COPY, without its quotes: while
        the body is plain every quote so far is around a whole plain field
        (``QUOTED_FIELD``), which COPY reads the same without them."""
        typed = chunk
        if self.plain:
            if b'"' in chunk:
                typed = chunk.replace(b'"', b"")
            window = self._tail + typed
            self.plain = self._plain_lines(chunk) and is_plain(window)
            self._tail = window[-2:]  # (of the body so far: a chunk may be one byte)
        if self._spool is None:
            self._spool = tempfile.SpooledTemporaryFile(max_size=self._in_memory)  # noqa: SIM115 (closed by close())
        self._spool.write(chunk)
        return typed

    def _plain_lines(self, chunk: bytes, *, last: bool = False) -> bool:
        """Of the lines ended so far (``last``: the body's end, its last line too), every
        quote opens or closes a ``QUOTED_FIELD`` and no count holds an underscore (read
        without the quotes, as the typed COPY gets it); the line not ended yet waits."""
        window = self._line + chunk if self._line else chunk
        end = len(window) if last else window.rfind(b"\n") + 1
        self._line = window[end:]
        if len(self._line) > MAX_PLAIN_LINE:
            return False
        quotes = window.count(b'"', 0, end)
        if quotes:
            if quotes != 2 * len(QUOTED_FIELD.findall(window, 0, end)):
                return False
            window = window[:end].replace(b'"', b"")
            end = len(window)
        return window.find(b"_", 0, end) < 0 or COUNT_UNDERSCORE.search(window, 0, end) is None

    async def replay(self) -> AsyncIterator[bytes]:
        """The bytes yielded so far, then the rest of the body (not spooled)."""
        spool, self._spool = self._spool, None
        self.plain = False
        if spool is not None:
            with spool:
                spool.seek(0)
                while block := spool.read(REPLAY_CHUNK):
                    yield block
        self._replaying = True
        async for chunk in self:
            yield chunk

    async def _next_chunk(self) -> bytes | None:
        try:
            chunk = await self._chunks.__anext__()
        except StopAsyncIteration:
            return None
        self._bytes += len(chunk)
        if self._bytes > self._max_bytes:
            raise SnapshotRejected(
                f"body is larger than max_feed_bytes ({self._max_bytes} bytes); "
                f"stopped reading at {self._bytes} bytes"
            )
        return chunk

    async def read_header(self) -> None:
        buffer = b""
        while b"\n" not in buffer:
            if len(buffer) > MAX_HEADER_BYTES:
                raise SnapshotRejected(f"line 1: no line end in the first {MAX_HEADER_BYTES} bytes")
            chunk = await self._next_chunk()
            if chunk is None:
                break
            buffer += chunk
        header, newline, self._rest = buffer.partition(b"\n")
        problem = header_problem(header)
        if problem is None and not newline and not header:
            problem = "body is empty: no header line"
        if problem is not None:
            raise SnapshotRejected(problem)
        self._newlines = 1

    def _checked(self, chunk: bytes) -> bytes:
        backslash = chunk.find(b"\\")
        if backslash >= 0:
            line = self._newlines + chunk.count(b"\n", 0, backslash) + 1
            raise SnapshotRejected(f"line {line}: a backslash, which no field may contain")
        self._newlines += chunk.count(b"\n")
        return chunk

    async def __aiter__(self) -> AsyncIterator[bytes]:
        keep = not self._replaying
        if self._rest:
            rest, self._rest = self._rest, b""
            checked = self._checked(rest)
            yield self._kept(checked) if keep else checked
        while (chunk := await self._next_chunk()) is not None:
            if chunk:
                checked = self._checked(chunk)
                yield self._kept(checked) if keep else checked
        if keep and self.plain:
            self.plain = self._plain_lines(b"", last=True)


# -- the pull ------------------------------------------------------------------------


async def pull_warehouse(
    pool: asyncpg.Pool,
    feed: FeedConfig,
    client: httpx.AsyncClient,
    *,
    settings: Settings,
    policy: Policy,
    clock: Clock,
    translate: Translate | None = None,
) -> PullOutcome:
    """Fetch the feed's snapshot; apply it whole, quarantine it, or report it unchanged.

    Timeouts, connection errors, 5xx and 429 are retried (``settings.retry_*``), then
    raised for the runner to record. Nothing is stored unless a snapshot is judged.
    ``translate`` (an adapter) turns the body's bytes into contract CSV on the fly.
    """
    async with pool.acquire() as conn:
        state = await feed_state.get_feed(conn, feed.name)
        if state is None:
            await feed_state.upsert_feeds(conn, [feed])
    headers = feed.headers()
    if state is not None and state.etag:
        headers["If-None-Match"] = state.etag
    async for attempt in retrying(settings):
        with attempt:
            return await _fetch_and_judge(
                pool, feed, client, headers, settings=settings, policy=policy, clock=clock,
                translate=translate,
            )  # fmt: skip
    raise AssertionError("retrying() either returns an attempt's result or raises")


async def _fetch_and_judge(
    pool: asyncpg.Pool,
    feed: FeedConfig,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    *,
    settings: Settings,
    policy: Policy,
    clock: Clock,
    translate: Translate | None = None,
) -> PullOutcome:
    timeout = feed.timeout.total_seconds()
    async with client.stream("GET", feed.url, headers=headers, timeout=timeout) as response:
        if response.status_code == 304:
            log.info("snapshot.unchanged", feed=feed.name, etag=headers.get("If-None-Match"))
            return PullOutcome(outcome="unchanged", detail="304 Not Modified")
        response.raise_for_status()
        chunks = response.aiter_bytes()
        return await apply_snapshot_stream(
            pool, feed, chunks if translate is None else translate(chunks), response.headers.get("etag"),
            settings=settings, policy=policy, clock=clock,
        )  # fmt: skip


async def apply_snapshot_stream(
    pool: asyncpg.Pool,
    feed: FeedConfig,
    chunks: AsyncIterator[bytes],
    etag: str | None,
    *,
    settings: Settings,
    policy: Policy,
    clock: Clock,
    analyze_after: int = ANALYZE_AFTER,
) -> PullOutcome:
    """Judge a contract CSV byte stream (header included) and apply it whole or quarantine it.

    The stream goes straight into COPY (never held whole). An exception the stream
    raises other than ``SnapshotRejected`` (a transport error, say) rolls everything
    back and propagates; ``SnapshotRejected`` quarantines with its reason. A snapshot
    that wrote ``analyze_after`` positions or more is followed by ``ANALYZE``.
    """
    body = SnapshotBody(chunks, max_bytes=settings.max_feed_bytes)
    try:
        async with pool.acquire() as conn:
            async with conn.transaction():
                await snapshots.begin_pull(conn, feed.name)
                outcome = await _judge(conn, feed, body, etag, settings=settings,
                                       policy=policy, clock=clock)  # fmt: skip
            if outcome.outcome == "applied" and (outcome.positions or 0) >= analyze_after:
                await _analyze(conn, feed.name, outcome.positions or 0)
            return outcome
    finally:
        body.close()


async def _analyze(conn: Connection, feed: str, positions: int) -> None:
    """Fresh planner statistics after a load that wrote many positions (a first load).

    Autovacuum gets to it within minutes; until then the planner costs the next pulls
    with default selectivities (a snapshot's candidate search took ~85 ms instead of
    ~45 ms after a 1M-position first load in bench_reconcile). The snapshot is committed
    already: a failure is logged, never raised."""
    started = time.perf_counter()
    try:
        await conn.execute(snapshots.Q.analyze_after_load)
    except DB_ERRORS as exc:
        log.warning("snapshot.analyze_failed", feed=feed, error=f"{type(exc).__name__}: {exc}")
        return
    log.info("snapshot.analyzed", feed=feed, positions=positions, analyze_ms=_ms(started))


async def _judge(
    conn: Connection,
    feed: FeedConfig,
    body: SnapshotBody,
    etag: str | None,
    *,
    settings: Settings,
    policy: Policy,
    clock: Clock,
    fast: bool = True,
) -> PullOutcome:
    """The typed fast path when the file is plain and passes; else (or not ``fast``,
    for tests) the text path."""
    started = time.perf_counter()
    max_drop = settings.max_snapshot_drop if feed.max_drop is None else feed.max_drop
    reason = await _read_header(body)
    if reason is None:
        typed = await _judge_typed(conn, feed, body, max_drop) if fast else None
        if isinstance(typed, str):
            reason = typed
        elif typed is not None:
            counts, staged = typed
            timings = {"stage_ms": _ms(started, staged), "validate_ms": _ms(staged)}
            return await _apply(
                conn, feed, etag, counts, timings, policy=policy, clock=clock, typed=True
            )
        else:  # the text path judges it again from the start (its reasons, line numbers)
            reason = await _stage(conn, body.replay())
    staged = time.perf_counter()
    if reason is not None:
        return await _quarantine(conn, feed, etag, reason, None, clock=clock)
    problems = await snapshots.staged_problems(conn, limit=PROBLEMS_SHOWN)
    per_location = await snapshots.staged_summary(conn)
    counts = totals(per_location)
    if problems.total:
        reason = problems_reason(problems.first, problems.total)
        return await _quarantine(conn, feed, etag, reason, counts, clock=clock)
    rows, _ = counts
    reason = await _hold_and_check_truncation(conn, per_location, max_drop)
    if reason is not None:
        return await _quarantine(conn, feed, etag, reason, counts, keep_rows=rows > 0, clock=clock)
    timings = {"stage_ms": _ms(started, staged), "validate_ms": _ms(staged)}
    return await _apply(conn, feed, etag, counts, timings, policy=policy, clock=clock)


async def _judge_typed(
    conn: Connection, feed: FeedConfig, body: SnapshotBody, max_drop: float
) -> tuple[tuple[int, int], float] | str | None:
    """The fast path, in a savepoint: COPY into typed columns, judge the few distinct
    locations and as_of values and the rows that differ from the stock in force.
    Returns (rows, locations) and when the COPY ended when the file can be applied
    (``snapshots.apply_typed_changes``), the reason when the body itself is rejected
    (``SnapshotBody``'s checks, decoding), ``None`` (all undone) when the text path
    must judge it: the file is not plain, a row does not parse, a rule may fail, or it
    must be quarantined (the text path gives the same answer with line numbers).
    """
    savepoint = conn.transaction()
    await savepoint.start()
    try:
        staging = await snapshots.create_typed_staging(conn)
        try:
            await snapshots.copy_into_typed(conn, staging, body)
        except asyncpg.DataError:
            await savepoint.rollback()
            return None
        staged = time.perf_counter()
        per_location = None if not body.plain else await snapshots.typed_summary(conn, staging)
        counts = None
        if (
            per_location is not None
            and await _hold_and_check_truncation(conn, per_location, max_drop) is None
        ):
            counts = totals(per_location)
        if counts is None or not await snapshots.typed_differences(conn, staging):
            await savepoint.rollback()
            return None
    except BODY_ERRORS as exc:
        await savepoint.rollback()
        return _body_reason(exc)
    except BaseException:
        await savepoint.rollback()
        raise
    await savepoint.commit()
    return counts, staged


# What rejects the body itself (past its size, a backslash, an encoding that does not
# decode), whichever path reads it.
BODY_ERRORS = (SnapshotRejected, httpx.DecodingError)


def _body_reason(exc: SnapshotRejected | httpx.DecodingError) -> str:
    """The quarantine reason for a body ``BODY_ERRORS`` rejected."""
    if isinstance(exc, SnapshotRejected):
        return exc.reason
    return f"body: cannot be decoded ({exc})"


def _ms(start: float, end: float | None = None) -> float:
    return round(((time.perf_counter() if end is None else end) - start) * 1000, 1)


async def _read_header(body: SnapshotBody) -> str | None:
    """Consume and check the header line; the reason it is rejected, if it is."""
    try:
        await body.read_header()
    except BODY_ERRORS as exc:
        return _body_reason(exc)
    return None


async def _stage(conn: Connection, source: AsyncIterator[bytes]) -> str | None:
    """COPY the data rows into the text staging; the reason they cannot be staged, if any.

    Transport errors mid-body propagate (the transaction rolls back, the pull retries).
    """
    try:
        await snapshots.create_staging(conn)
        async with conn.transaction():  # a savepoint: a failed COPY leaves the pull usable
            await snapshots.copy_into_staging(conn, source)
    except BODY_ERRORS as exc:
        return _body_reason(exc)
    except asyncpg.DataError as exc:
        return copy_error_reason(exc)
    return None


async def _record_snapshot(
    conn: Connection,
    feed: FeedConfig,
    etag: str | None,
    counts: tuple[int, int] | None,
    *,
    status: Literal["applied", "quarantined"],
    reason: str | None,
    clock: Clock,
) -> int:
    """Record the pulled snapshot received now (rows and locations as counted, or
    unknown); both outcomes keep the same record, only status and reason differ."""
    rows, locations = counts if counts is not None else (None, None)
    return await snapshots.insert_snapshot(
        conn,
        feed=feed.name,
        etag=etag,
        status=status,
        reason=reason,
        row_count=rows,
        locations=locations,
        received_at=clock(),
    )


async def _quarantine(
    conn: Connection,
    feed: FeedConfig,
    etag: str | None,
    reason: str,
    counts: tuple[int, int] | None,
    *,
    clock: Clock,
    keep_rows: bool = False,
) -> PullOutcome:
    """Record the snapshot as quarantined; what is in force stays untouched."""
    rows = counts[0] if counts is not None else None
    latest = await snapshots.latest_snapshot(conn, feed.name)
    if (
        latest is not None
        and latest.status == "quarantined"
        and etag is not None
        and latest.etag == etag
        and latest.reason == reason
    ):
        log.warning(
            "snapshot.still_quarantined",
            feed=feed.name,
            snapshot_id=latest.snapshot_id,
            etag=etag,
            reason=reason,
        )
        return PullOutcome(
            outcome="quarantined",
            rows=rows or 0,
            detail=f"same as quarantined snapshot {latest.snapshot_id}: {reason}",
        )
    snapshot_id = await _record_snapshot(
        conn, feed, etag, counts, status="quarantined", reason=reason, clock=clock
    )
    if keep_rows:
        await snapshots.keep_staged_rows(conn, snapshot_id)
    log.warning(
        "snapshot.quarantined",
        feed=feed.name,
        snapshot_id=snapshot_id,
        etag=etag,
        rows=rows,
        rows_kept=keep_rows,
        reason=reason,
    )
    return PullOutcome(outcome="quarantined", rows=rows or 0, detail=reason)


async def _apply(
    conn: Connection,
    feed: FeedConfig,
    etag: str | None,
    counts: tuple[int, int],
    timings: dict[str, float],
    *,
    policy: Policy,
    clock: Clock,
    typed: bool = False,
) -> PullOutcome:
    """Make the staged snapshot the one in force, in the caller's transaction
    (``typed``: the fast path's differences, else the text staging)."""
    from app.db.positions import recompute_stores

    rows, locations = counts
    snapshot_id = await _record_snapshot(
        conn, feed, etag, counts, status="applied", reason=None, clock=clock
    )
    started = time.perf_counter()
    if typed:
        named = await snapshots.apply_typed_changes(conn, snapshot_id)
    else:
        named = await snapshots.apply_staged_changes(conn, snapshot_id)
    applied = time.perf_counter()
    positions = await recompute_stores(
        conn, named.named, policy=policy, now=clock(), snapshot_id=snapshot_id,
        changes=named.changes,
    )  # fmt: skip
    timings |= {"apply_ms": _ms(started, applied), "positions_ms": _ms(applied)}
    await feed_state.save_etag(conn, feed.name, etag)
    log.info(
        "snapshot.applied",
        feed=feed.name,
        snapshot_id=snapshot_id,
        etag=etag,
        rows=rows,
        locations=locations,
        positions=positions,
        typed=typed,
        **timings,
    )
    return PullOutcome(
        outcome="applied",
        rows=rows,
        positions=positions,
        detail=f"snapshot {snapshot_id}: {rows} rows, {locations} locations",
    )


# -- release of a quarantined snapshot (admin API) -------------------------------------


class ReleaseRefused(Exception):
    """The snapshot cannot be released; ``status`` is the HTTP status that fits."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


async def release_snapshot(
    pool: asyncpg.Pool, snapshot_id: int, *, policy: Policy, clock: Clock
) -> PullOutcome:
    """Apply a quarantined snapshot's kept rows through the same apply path as a pull.

    Under the feed's pull lock, in one transaction: refused (``ReleaseRefused``) when
    the snapshot is unknown, not quarantined, kept no rows (it did not parse), a later
    snapshot of its feed was applied since, or a location it names holds newer stock.
    """
    from app.db import admin

    async with pool.acquire() as conn, conn.transaction():
        info = await admin.snapshot_for_update(conn, snapshot_id)
        if info is None:
            raise ReleaseRefused(f"no snapshot {snapshot_id}", status=404)
        await snapshots.begin_pull(conn, info.feed)
        if info.status != "quarantined":
            raise ReleaseRefused(
                f"snapshot {snapshot_id} is {info.status}, not quarantined", status=409
            )
        if info.rows_kept == 0:
            raise ReleaseRefused(
                f"snapshot {snapshot_id} kept no rows (it could not be parsed: {info.reason});"
                " nothing to release",
                status=409,
            )
        later = await admin.applied_since(conn, info.feed, snapshot_id)
        if later is not None:
            raise ReleaseRefused(
                f"snapshot {snapshot_id} is older than snapshot {later} of feed {info.feed},"
                " applied since; releasing it would move stock back",
                status=409,
            )
        await snapshots.hold_locations(conn, await admin.kept_locations(conn, snapshot_id))
        newer = await admin.newer_in_force(conn, snapshot_id)
        if newer:
            names = ", ".join(
                f"{n.location_id} (in force as of {n.in_force_as_of.isoformat()}, "
                f"snapshot as of {n.snapshot_as_of.isoformat()})"
                for n in newer
            )
            raise ReleaseRefused(
                f"snapshot {snapshot_id} is older than the stock in force at: {names}",
                status=409,
            )
        await snapshots.create_staging(conn)
        await admin.stage_kept_rows(conn, snapshot_id)
        await admin.mark_released(conn, snapshot_id, at=clock())
        from app.db.positions import recompute_stores

        applied = await snapshots.apply_staged_changes(conn, snapshot_id)
        named = applied.named
        positions = await recompute_stores(
            conn, named, policy=policy, now=clock(), snapshot_id=snapshot_id,
            changes=applied.changes,
        )  # fmt: skip
        await feed_state.save_etag(conn, info.feed, info.etag)
    log.warning(
        "snapshot.released",
        feed=info.feed,
        snapshot_id=snapshot_id,
        rows=info.rows_kept,
        locations=len(named),
        positions=positions,
        was=info.reason,
    )
    return PullOutcome(
        outcome="applied",
        rows=info.rows_kept,
        positions=positions,
        detail=f"snapshot {snapshot_id} released: {info.rows_kept} rows, {len(named)} locations",
    )

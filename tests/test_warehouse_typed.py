"""The typed fast path of a warehouse pull answers exactly as the text path.

``reconcilers.warehouse._judge_typed`` COPYs a plain file into typed columns and judges
it on its distinct locations and as_of values and on the rows that differ from the
stock in force; anything it cannot vouch for is judged again by the text path (the
line-numbered reasons). For any file, valid or not, plain or not, both paths must give
the same outcome, the same reason or detail, and the same stock in force.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, event, given, note
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from app.db import snapshots
from app.db.feeds import upsert_feeds
from app.domain.policy import Policy
from app.settings import Settings, load_settings
from reconcilers import warehouse
from reconcilers.feeds_config import FeedConfig
from reconcilers.outcome import PullOutcome
from tests.conftest import stock_in_force

NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
POLICY = Policy()
FEED = FeedConfig(name="wh", kind="warehouse", url="http://x/s", max_drop=0.5)
HEADER = "location_id,sku,on_hand,reserved,in_transit,as_of"
BASE = [f"{loc},K{k},{k},0,1,2026-11-23T05:00:00Z" for loc in ("S1", "S2") for k in range(1, 5)]

GOOD_LOCATIONS = ["S1", "S2", "S3"]
GOOD_SKUS = ["K1", "K2", "K3", "K4", "K5", "k.5:x", "K-6", "K" * 64]
GOOD_COUNTS = ["0", "1", "3", "05", "40", "2147483647"]
GOOD_AS_OFS = ["2026-11-23T06:00:00Z", "2026-11-23T05:00:00+01:00", "2026-11-23T06:15:00.5Z",
               "2026-11-23t06:00:00z", "2026-11-23T05:00:00Z"]  # fmt: skip
# Valid but not plain (the text path takes them; an underscore in an id is plain), and
# invalid in every way a row can be.
ODD_IDS = ["S_1", "K_1", "-K7", "0x8", '"K1"', "", "K+9", "K 1", "K" * 65, "K/1", "K\\1", "Kü"]
ODD_COUNTS = ["+5", "-0", "-3", "0x10", "0o7", "0b1", "1_0", "", "x", "99999999999", " 5",
              "2147483648", '"5"', "5.0"]  # fmt: skip
ODD_AS_OFS = ["2026-11-23T06:00:00", "2026-11-23", "epoch", "2026-13-23T06:00:00Z",
              "2026-11-23 06:00:00Z", "", "2026-11-23T06:00:00+01", "2026-11-23T24:00:00Z",
              "20261123T060000Z", "2026-11-23T06:00:00UTC", '"2026-11-23T06:00:00Z"']  # fmt: skip


KEYS = [(loc, sku) for loc in GOOD_LOCATIONS for sku in GOOD_SKUS]
# A row cut short and one with a field too many (each fault alone in a file).
SHORT_ROW = ["S1", "K1", "1", "0"]
LONG_ROW = ["S1", "K9", "1", "0", "1", "2026-11-23T06:00:00Z", "x"]


def csv_file(rows: list[list[str]], end: str = "\n", header: str = HEADER) -> str:
    """The header and ``rows``, each line ended by ``end``."""
    return "".join(line + end for line in [header, *(",".join(r) for r in rows)])


QUOTED_HEADER = ",".join(f'"{name}"' for name in HEADER.split(","))


def quoted(rows: list[list[str]], which: list[bool] | None = None) -> list[list[str]]:
    """``rows`` with every field in CSV quotes (or those ``which`` says, in row order)."""
    flags = iter(which) if which is not None else None
    return [[f'"{f}"' if flags is None or next(flags) else f for f in r] for r in rows]


@st.composite
def files(draw: Any) -> str:
    """A valid plain file (usually enough rows to pass the drop check), and in half of
    them one fault: an odd value in one field, a duplicate, a short or long row, CRLF
    line ends (each alone, so the fast path's every check is put to the test); in a
    third of them, fields in CSV quotes (all of them, header too, or some)."""
    keys = draw(st.lists(st.sampled_from(KEYS), min_size=0, max_size=12, unique=True))
    rows = [[loc, sku, draw(st.sampled_from(GOOD_COUNTS)), draw(st.sampled_from(GOOD_COUNTS)),
             draw(st.sampled_from(GOOD_COUNTS)), draw(st.sampled_from(GOOD_AS_OFS))]
            for loc, sku in keys]  # fmt: skip
    fault = draw(st.sampled_from(["none", "none", "id", "count", "as_of", "duplicate",
                                  "short", "long", "crlf"]))  # fmt: skip
    end = "\n"
    if rows and fault in ("id", "count", "as_of"):
        row = draw(st.integers(0, len(rows) - 1))
        if fault == "id":
            rows[row][draw(st.integers(0, 1))] = draw(st.sampled_from(ODD_IDS))
        elif fault == "count":
            rows[row][draw(st.integers(2, 4))] = draw(st.sampled_from(ODD_COUNTS))
        else:
            rows[row][5] = draw(st.sampled_from(ODD_AS_OFS))
    elif rows and fault == "duplicate":
        copy = list(rows[draw(st.integers(0, len(rows) - 1))])
        if draw(st.booleans()):
            copy[2] = "7"
        rows.insert(draw(st.integers(0, len(rows))), copy)
    elif fault == "short":
        rows.append(SHORT_ROW)
    elif fault == "long":
        rows.append(LONG_ROW)
    elif fault == "crlf":
        end = "\r\n"
    quoting = draw(st.sampled_from(["none", "none", "none", "none", "all", "some"]))
    if quoting == "all":
        return csv_file(quoted(rows), end, QUOTED_HEADER)
    if quoting == "some":
        which = draw(st.lists(st.booleans(), min_size=sum(map(len, rows)),
                              max_size=sum(map(len, rows))))  # fmt: skip
        return csv_file(quoted(rows, which), end)
    return csv_file(rows, end)


async def _pull(
    conn: asyncpg.Connection, text: str, settings: Settings, *, fast: bool,
    in_memory: int = warehouse.SPOOL_IN_MEMORY,
) -> tuple[Any, bool]:  # fmt: skip
    """Seed the stock in force, pull ``text`` by one path, and read what is in force;
    everything is rolled back. Also whether the typed path applied it (its log line)."""

    async def chunks(data: bytes) -> AsyncIterator[bytes]:
        for i in range(0, len(data), 7):  # odd chunk sizes: sequences straddle chunks
            yield data[i : i + 7]

    async def judge(data: bytes, etag: str, *, fast: bool) -> PullOutcome:
        body = warehouse.SnapshotBody(chunks(data), max_bytes=settings.max_feed_bytes,
                                      in_memory=in_memory)  # fmt: skip
        try:
            return await warehouse._judge(conn, FEED, body, etag, settings=settings,
                                          policy=POLICY, clock=lambda: NOW, fast=fast)  # fmt: skip
        finally:
            body.close()

    tx = conn.transaction()
    await tx.start()
    try:
        await upsert_feeds(conn, [FEED])
        await snapshots.begin_pull(conn, FEED.name)
        seeded = await judge(("\n".join([HEADER, *BASE]) + "\n").encode(), "base", fast=False)
        assert seeded.outcome == "applied"
        await conn.execute("DISCARD TEMP")  # one pull per transaction: its temp tables go
        with capture_logs() as logs:
            outcome = await judge(text.encode(), "next", fast=fast)
        typed = any(e["event"] == "snapshot.applied" and e["typed"] for e in logs)
        stock = await stock_in_force(conn)
        positions = await conn.fetch(
            "SELECT store_id, sku, book, base_source, in_transit, badge_state"
            " FROM book_position ORDER BY 1, 2"
        )
    finally:
        await tx.rollback()
    detail = re.sub(r"snapshot \d+", "snapshot N", outcome.detail or "")
    return (outcome.outcome, outcome.rows, outcome.positions, detail,
            [tuple(r) for r in stock], [tuple(r) for r in positions]), typed  # fmt: skip


@hsettings(max_examples=150, deadline=None,
           suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(text=files())
def test_the_typed_path_answers_as_the_text_path(db_dsn: str, text: str) -> None:
    note(text)
    settings = load_settings({}, scheduler=False)

    async def run() -> tuple[Any, Any]:
        conn = await asyncpg.connect(db_dsn, server_settings={"timezone": "UTC"})
        try:
            return (await _pull(conn, text, settings, fast=True),
                    await _pull(conn, text, settings, fast=False))  # fmt: skip
        finally:
            await conn.close()

    (fast, typed), (slow, slow_typed) = asyncio.run(run())
    event(f"typed path applied it: {typed}")
    assert fast == slow
    assert not slow_typed


# A valid plain next snapshot (two rows changed, one removed, one new), then each fault
# alone at each place it can be: the fast path must hand every one to the text path.
NEXT = [r.split(",") for r in BASE[:-1]] + [["S2", "K5", "2", "0", "0", "2026-11-23T06:00:00Z"]]
NEXT[0][2], NEXT[5][3] = "9", "1"
FAULTS: list[tuple[str, int, int, str]] = (
    [("field", row, col, odd) for row in (0, 7) for col in (0, 1) for odd in ODD_IDS]
    + [("field", row, col, odd) for row in (0, 7) for col in (2, 3, 4) for odd in ODD_COUNTS]
    + [("field", row, 5, odd) for row in (0, 7) for odd in ODD_AS_OFS]
    + [("duplicate", row, col, value) for row in (0, 1, 7) for col, value in ((2, ""), (2, "7"))]
    + [("short", 0, 0, ""), ("long", 0, 0, ""), ("crlf", 0, 0, ""), ("none", 0, 0, ""),
       ("empty", 0, 0, ""), ("quoted", 0, 0, "")]
    # quotes that are not a whole field's: read by COPY all the same ('S"1"' is S1),
    # but not plain; and quoted fields holding what no contract field may
    + [("field", row, col, odd) for row in (0, 7) for col in (0, 1)
       for odd in ('S"1"', '"K""1"', '""', '"K,1"', '"K 1"', '"K1" ')]
)  # fmt: skip


def _faulty(kind: str, row: int, col: int, value: str) -> str:
    rows = [list(r) for r in NEXT]
    end = "\n"
    if kind == "field":
        rows[row][col] = value
    elif kind == "duplicate":  # row 7 is a new pair, rows 0 and 1 stored ones
        copy = list(rows[row])
        copy[col] = value or copy[col]
        rows.append(copy)
    elif kind == "short":
        rows.append(SHORT_ROW)
    elif kind == "long":
        rows.append(LONG_ROW)
    elif kind == "crlf":
        end = "\r\n"
    elif kind == "empty":
        rows = []
    elif kind == "quoted":  # every field in quotes, header too: as plain as without
        return csv_file(quoted(rows), end, QUOTED_HEADER)
    return csv_file(rows, end)


async def _each_judged_as_by_the_text_path(
    conn: asyncpg.Connection, faults: list[tuple[str, int, int, str]], settings: Settings
) -> None:
    """Each fault's file alone, by both paths: the same answers; and the typed path
    applies what it should (plain valid files, an id holding '_') and leaves to the text
    path what is valid but not plain."""
    for fault in faults:
        text = _faulty(*fault)
        fast, typed = await _pull(conn, text, settings, fast=True)
        slow, _ = await _pull(conn, text, settings, fast=False)
        assert fast == slow, (fault, fast[:4], slow[:4])
        if fault[0] in ("none", "quoted"):  # a plain valid file: the typed path applies it
            assert fast[0] == "applied" and typed, fault
        if fault[3] == 'S"1"' and fault[1:3] == (7, 0):  # COPY reads S1: valid, not plain
            assert fast[0] == "applied" and not typed, fault
        if fault[3] in ("S_1", "K_1") and fault[1] == 7:  # an id may hold '_'
            assert fast[0] == "applied" and typed, fault
        if fault[3] in ("-K7", "0x8") and fault[1:3] == (7, 1):  # valid, not plain
            assert fast[0] == "applied" and not typed, fault


def test_each_fault_alone_is_judged_as_by_the_text_path(db_dsn: str) -> None:
    settings = load_settings({}, scheduler=False)

    async def run() -> None:
        conn = await asyncpg.connect(db_dsn, server_settings={"timezone": "UTC"})
        try:
            await _each_judged_as_by_the_text_path(conn, FAULTS, settings)
        finally:
            await conn.close()

    asyncio.run(run())


# Every plan that may go to a parallel worker goes (one worker, even for a few rows).
IN_WORKERS = {"timezone": "UTC", "debug_parallel_query": "on"}


def test_parallel_workers_read_the_staging_and_judge_as_the_text_path(db_dsn: str) -> None:
    """At 1M rows the typed staging is read by parallel workers (``judge_in_parallel``);
    a test's few rows never would be. With every parallel-safe plan forced into a
    worker, the workers read the unlogged staging the pull's own (sub)transaction
    created and filled, and every answer still equals the text path's."""
    settings = load_settings({}, scheduler=False)
    picked = [f for f in FAULTS if f[0] != "field" or f[3] in ("", "K_1", "-3", "epoch")]

    async def run() -> None:
        conn = await asyncpg.connect(db_dsn, server_settings=IN_WORKERS)
        try:
            plan = await conn.fetch("EXPLAIN (ANALYZE, COSTS OFF) SELECT count(*) FROM feed")
            assert any("Workers Launched: 1" in r[0] for r in plan)  # the setting is in force
            await _each_judged_as_by_the_text_path(conn, picked, settings)
        finally:
            await conn.close()

    asyncio.run(run())


def test_a_body_spooled_to_disk_is_judged_again_whole(db_dsn: str) -> None:
    """Past its in-memory size the spool is a temporary file; the text path reads the
    whole body back from it (a fault near the end, far past the memory part)."""
    settings = load_settings({}, scheduler=False)
    rows = [list(r) for r in NEXT] + [["S3", f"K{i}", "1", "0", "0", "2026-11-23T06:00:00Z"]
                                      for i in range(40)]  # fmt: skip
    rows[-1][2] = "1_0"  # not plain: the text path judges it
    text = csv_file(rows)

    async def run() -> tuple[Any, Any]:
        conn = await asyncpg.connect(db_dsn, server_settings={"timezone": "UTC"})
        try:
            return (await _pull(conn, text, settings, fast=True, in_memory=64),
                    await _pull(conn, text, settings, fast=False, in_memory=64))  # fmt: skip
        finally:
            await conn.close()

    (fast, _), (slow, _) = asyncio.run(run())
    assert fast == slow
    assert fast[0] == "quarantined" and fast[3] == (
        f"line {len(rows) + 1}: on_hand '1_0' is not a non-negative integer"
    )


@hsettings(max_examples=500, deadline=None)
@given(window=st.binary(max_size=24) | st.text(alphabet=",+-0xXoObB_aZ9.:\r\n \"", max_size=24)
       .map(str.encode))  # fmt: skip
def test_is_plain_is_the_rule_it_states(window: bytes) -> None:
    expected = all(b in warehouse.PLAIN_BYTES for b in window) and not any(
        seq in window for seq in warehouse.NOT_PLAIN
    )
    assert warehouse.is_plain(window) is expected


@given(text=st.text(alphabet=",+-0xb_a9\n", min_size=1, max_size=16), data=st.data())
def test_plain_holds_across_any_chunking(text: str, data: Any) -> None:
    """A sequence split between two chunks is seen as in one, and so is a line (an
    underscore is plain in an id, the first two fields, not in a count)."""
    body_bytes = text.encode()
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, len(body_bytes) - 1)), max_size=6)))
    pieces = [body_bytes[a:b] for a, b in zip([0, *cuts], [*cuts, len(body_bytes)], strict=True)]

    counts = [f for line in body_bytes.split(b"\n") for f in line.split(b",")[2:5]]
    expected = warehouse.is_plain(body_bytes) and not any(b"_" in f for f in counts)
    assert _plain(pieces) is expected


def test_an_underscore_in_a_count_of_the_last_line_without_a_line_end_is_seen() -> None:
    assert _plain([b"S_1,K_1,1,0,0,2026-11-23T06:00:00Z"]) is True
    assert _plain([b"S1,K1,1,0,0,2026-11-23T06:00:00Z\nS2,K2,1,0,2_"]) is False
    assert _plain([b"S1,K1,1_0"]) is False


def test_a_sequence_over_three_one_byte_chunks_is_not_plain() -> None:
    """Found by the property above (a fresh clone's CI run): the tail carried between
    chunks was the last chunk's, one byte when the chunk was."""
    assert _plain([b",", b"0", b"b"]) is False
    assert _plain([b"1", b",", b"0", b"x", b"1"]) is False
    assert _plain([b",", b"0", b"9"]) is True


def _plain(pieces: list[bytes]) -> bool:
    """``SnapshotBody.plain`` after reading a header and then ``pieces`` as chunks."""

    async def chunks() -> AsyncIterator[bytes]:
        yield HEADER.encode() + b"\n"
        for piece in pieces:
            if piece:
                yield piece

    async def read() -> bool:
        body = warehouse.SnapshotBody(chunks(), max_bytes=1 << 20)
        try:
            await body.read_header()
            async for _ in body:
                pass
            return body.plain
        finally:
            body.close()

    return asyncio.run(read())


async def test_two_feeds_stage_at_once_and_leave_no_staging_behind(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """The typed staging is a table of the database (unlogged, so parallel workers may
    scan it), private to its pull by name: two feeds' pulls stage side by side (each
    body waits, mid-COPY, until the other's COPY is under way too; one shared name
    would block the second pull's CREATE until the first committed), both apply by the
    typed path, and nothing of either staging outlives its transaction, nor of a pull
    whose body fails mid-COPY."""
    feeds = [FeedConfig(name=f"wh{i}", kind="warehouse", url="http://x/s", max_drop=0.5)
             for i in (1, 2)]  # fmt: skip
    async with pool.acquire() as conn:
        await upsert_feeds(conn, feeds)
    copying = [asyncio.Event(), asyncio.Event()]

    async def body(i: int, *, fail: bool = False) -> AsyncIterator[bytes]:
        yield (HEADER + "\n").encode()
        copying[i].set()
        if fail:
            raise OSError("connection reset mid-body")
        await asyncio.wait_for(copying[1 - i].wait(), 10)
        yield "".join(f"L{i},K{k},{k},0,1,2026-11-23T05:00:00Z\n" for k in range(50)).encode()

    async def pull(i: int, *, fail: bool = False) -> PullOutcome:
        return await warehouse.apply_snapshot_stream(
            pool, feeds[i], body(i, fail=fail), None, settings=settings, policy=POLICY,
            clock=lambda: NOW,
        )  # fmt: skip

    with capture_logs() as logs:
        outcomes = await asyncio.gather(pull(0), pull(1))
    assert [(o.outcome, o.rows) for o in outcomes] == [("applied", 50), ("applied", 50)]
    assert [e["typed"] for e in logs if e["event"] == "snapshot.applied"] == [True, True]
    stock = await stock_in_force(pool)
    assert {(r[0], r[1], r[2]) for r in stock} == {
        (f"L{i}", f"K{k}", k) for i in (0, 1) for k in range(50)
    }
    copying[1].set()
    with pytest.raises(OSError, match="mid-body"):  # a body failing mid-COPY fails the pull
        await pull(0, fail=True)
    left = await pool.fetchval(
        "SELECT count(*) FROM pg_class WHERE relname LIKE $1", snapshots.TYPED_TABLE + "%"
    )
    assert left == 0
    assert await stock_in_force(pool) == stock


@pytest.mark.parametrize("quoted", [False, True], ids=["typed", "text"])
async def test_two_feeds_naming_one_location_apply_one_after_the_other(
    pool: asyncpg.Pool, settings: Settings, quoted: bool
) -> None:
    """Two feeds may name the same location; their pulls hold different feed locks, so
    the location itself must serialize them. Feed 1's pull is held after its swap (the
    test holds the recompute's store lock) while feed 2's pull of the same location
    runs: feed 2 must judge and diff against feed 1's rows once they commit, not against
    the rows in force before. Diffed against those, the rows feed 2 leaves as they were
    (K5-K9 at 5) would not be written and feed 1's 7s would stay: a stock neither file
    sent. A quote inside the location's field (``S"X"``, read as ``SX``) sends feed 2's
    file through the text path."""
    feeds = [FeedConfig(name=f"wh{i}", kind="warehouse", url="http://x/s", max_drop=0.5)
             for i in (1, 2)]  # fmt: skip
    async with pool.acquire() as conn:
        await upsert_feeds(conn, feeds)

    def lines(qty: list[int], as_of: str, quote: bool = False) -> list[bytes]:
        rows = [['S"X"' if quote else "SX", f"K{k}", str(q), "0", "0", as_of]
                for k, q in enumerate(qty)]  # fmt: skip
        return [line.encode() for line in csv_file(rows).splitlines(keepends=True)]

    async def body(chunks: list[bytes]) -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    def pull(i: int, chunks: list[bytes]) -> asyncio.Task[PullOutcome]:
        return asyncio.create_task(warehouse.apply_snapshot_stream(
            pool, feeds[i], body(chunks), None, settings=settings, policy=POLICY,
            clock=lambda: NOW,
        ))  # fmt: skip

    assert (await pull(0, lines([5] * 10, "2026-11-23T05:00:00Z"))).outcome == "applied"

    async def waiting(n: int) -> None:
        for _ in range(200):
            if await pool.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted") >= n:
                return
            await asyncio.sleep(0.025)
        raise AssertionError(f"fewer than {n} backends came to wait on a lock")

    async with pool.acquire() as holder:
        await holder.execute("SELECT pg_advisory_lock(24245, hashtext('SX'))")  # lock_stores'
        try:
            with capture_logs() as logs:
                first = pull(0, lines([7] * 10, "2026-11-23T06:00:00Z"))
                await waiting(1)  # feed 1 swapped its rows and waits to recompute
                second = pull(1, lines([9] * 5 + [5] * 5, "2026-11-23T06:30:00Z", quoted))
                await waiting(2)
                await holder.execute("SELECT pg_advisory_unlock(24245, hashtext('SX'))")
                outcomes = await asyncio.gather(first, second)
        finally:
            await holder.execute("SELECT pg_advisory_unlock_all()")
    assert [o.outcome for o in outcomes] == ["applied", "applied"]
    applied = [e for e in logs if e["event"] == "snapshot.applied"]
    assert [(e["feed"], e["typed"]) for e in applied] == [("wh1", True), ("wh2", not quoted)]
    stock = await stock_in_force(pool, ("on_hand",))
    assert [(r[1], r[2]) for r in stock] == [(f"K{k}", 9 if k < 5 else 5) for k in range(10)]
    positions = await pool.fetch("SELECT sku, book FROM book_position WHERE store_id = 'SX'"
                                 " ORDER BY sku")  # fmt: skip
    assert [(r["sku"], r["book"]) for r in positions] == [
        (f"K{k}", 9 if k < 5 else 5) for k in range(10)
    ]


async def test_a_load_of_many_positions_is_followed_by_fresh_planner_statistics(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """After a snapshot that wrote ``analyze_after`` positions or more the tables are
    analyzed (committed first: the statistics see the rows); a smaller one is not."""
    feed = FeedConfig(name="wh-analyze", kind="warehouse", url="http://127.0.0.1:1/s")
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [feed])

    async def body(location: str) -> AsyncIterator[bytes]:
        yield (HEADER + "\n").encode()
        yield "".join(f"{location},K{k},{k},0,1,2026-11-23T05:00:00Z\n" for k in range(40)).encode()

    async def analyzed() -> int:
        n: int = await pool.fetchval(
            "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'book_position'"
        )
        return n

    async def pull(location: str, analyze_after: int) -> list[dict[str, Any]]:
        with capture_logs() as logs:
            outcome = await warehouse.apply_snapshot_stream(
                pool, feed, body(location), None, settings=settings, policy=POLICY,
                clock=lambda: NOW, analyze_after=analyze_after,
            )  # fmt: skip
        assert (outcome.outcome, outcome.positions) == ("applied", 40)
        return [e for e in logs if e["event"] == "snapshot.analyzed"]

    before = await analyzed()
    assert await pull("LA", warehouse.ANALYZE_AFTER) == []  # 40 positions: no
    [line] = await pull("LB", 40)
    assert line["positions"] == 40 and line["analyze_ms"] >= 0
    for _ in range(50):  # the statistics collector reports a moment later
        if await analyzed() > before:
            break
        await asyncio.sleep(0.1)
    assert await analyzed() == before + 1


async def test_feeds_with_overlapping_locations_and_store_recomputes_never_deadlock(
    pool: asyncpg.Pool, settings: Settings
) -> None:
    """Three feeds name overlapping locations, each file listing them in its own order,
    pulled at once round after round while recomputes of the same stores run (the
    store locks a POS page takes). Every pull applies (no deadlock, which PostgreSQL
    would break by failing one), and each location holds exactly the rows of the last
    snapshot that named it: the one with the highest id, since a snapshot is recorded
    under the location locks."""
    from app.db.positions import recompute_stores

    names = {"wh1": ["LA", "LB"], "wh2": ["LB", "LC", "LA"], "wh3": ["LC", "LB"]}
    feeds = {n: FeedConfig(name=n, kind="warehouse", url="http://x/s", max_drop=0.9)
             for n in names}  # fmt: skip
    async with pool.acquire() as conn:
        await upsert_feeds(conn, list(feeds.values()))
    sent: dict[int, dict[str, list[tuple[str, int]]]] = {}  # snapshot id -> its rows

    async def body(rows: list[str]) -> AsyncIterator[bytes]:
        yield (HEADER + "\n").encode()
        await asyncio.sleep(0)  # let the other pulls stage too
        yield "".join(r + "\n" for r in rows).encode()

    async def pull(name: str, round_no: int) -> None:
        rows = {loc: [(f"K{k}", 10 * round_no + k + len(name)) for k in range(6)]
                for loc in names[name]}  # fmt: skip
        lines = [f"{loc},{sku},{qty},0,0,2026-11-23T0{5 + round_no % 2}:00:00Z"
                 for loc in names[name] for sku, qty in rows[loc]]  # fmt: skip
        outcome = await warehouse.apply_snapshot_stream(
            pool, feeds[name], body(lines), None, settings=settings, policy=POLICY,
            clock=lambda: NOW,
        )  # fmt: skip
        assert outcome.outcome == "applied", (name, round_no, outcome.detail)
        found = re.match(r"snapshot (\d+): ", outcome.detail or "")
        assert found is not None, outcome.detail
        sent[int(found[1])] = rows

    async def recompute(stores: list[str]) -> None:
        async with pool.acquire() as conn:
            await recompute_stores(conn, stores, policy=POLICY, now=NOW)

    for round_no in range(4):
        await asyncio.gather(*(pull(name, round_no) for name in names),
                             recompute(["LC", "LA"]), recompute(["LB"]))  # fmt: skip
    stock = await stock_in_force(pool, ("on_hand",), then="wl.snapshot_id")
    for loc in ("LA", "LB", "LC"):
        last = max(i for i, rows in sent.items() if loc in rows)
        held = [(r[1], r[2], r[4]) for r in stock if r[0] == loc]
        assert held == [(sku, qty, last) for sku, qty in sent[last][loc]], loc

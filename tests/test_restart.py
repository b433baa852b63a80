"""Restarts: PostgreSQL restarted under a running service, and the service killed
(SIGKILL) in the middle of a POS page or a snapshot swap.

No sleeps decide anything: the kill tests hold the store's recompute lock so the
puller's transaction is provably in the middle (it has written its rows and waits
inside the transaction), wait for PostgreSQL to show that wait, and only then kill.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import threading
import warnings
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.api.app import create_app
from app.db.feeds import upsert_feeds
from app.db.migrate import migrate
from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.feeds_config import FeedConfig
from reconcilers.jobs import run_feed
from tests.conftest import serve_in_loop, with_feeds_file
from tests.feedserver import FeedServer, PagedFeed, Reply, Request, text_reply

NOW = datetime.now(UTC).replace(microsecond=0)
HEADER = "location_id,sku,on_hand,reserved,in_transit,as_of"
RECOMPUTE_LOCK_CLASS = 24245  # app/db/sql/positions.sql: lock_stores
ROOT = Path(__file__).resolve().parent.parent


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def sale(event_id: str, minutes_ago: int, store: str = "S1") -> dict[str, Any]:
    return {"event_id": event_id, "type": "sale", "store_id": store, "sku": "SKU-A", "qty": 1,
            "occurred_at": iso(NOW - timedelta(minutes=minutes_ago))}  # fmt: skip


async def wait_for(predicate: Any, what: str, *, limit: int = 600) -> None:
    """Poll an async predicate (every 50 ms, at most ``limit`` times) until it holds."""
    for _ in range(limit):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"gave up waiting for {what}")


# -- PostgreSQL restarted while the service runs -------------------------------------------


@pytest.fixture
def private_pg() -> Iterator[Any]:
    """A PostgreSQL server of this test's own (so restarting it disturbs no other test)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver
    tmp = Path(tempfile.mkdtemp(prefix="availability-restart-"))
    server = pgserver.get_server(tmp / "pg", cleanup_mode="delete")
    try:
        yield server
    finally:
        server.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def restart(server: Any) -> None:
    from pgserver.postgres_server import pg_ctl

    pg_ctl(["-w", "-m", "fast", "restart"], pgdata=server.pgdata, user=server.system_user,
           timeout=30)  # fmt: skip


async def test_postgres_restart_under_a_running_service_loses_and_doubles_nothing(
    private_pg: Any, settings: Settings, tmp_path: Path, feed_server: FeedServer
) -> None:
    dsn = private_pg.get_uri()
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    feeds = with_feeds_file(
        settings, tmp_path, {"name": "pos", "kind": "pos", "url": feed_server.url("/events")}
    )
    events = PagedFeed([[sale("E1", 30), sale("E2", 29)], [sale("E3", 28)]])
    gate = threading.Event()

    def responder(request: Request) -> Reply:
        if request.param("cursor") == "c3":  # the third run: held until PostgreSQL restarted
            gate.wait(30)
        return events(request)

    feed_server.route("/events", responder)
    app = create_app(feeds, dsn=dsn)
    async with serve_in_loop(app) as client:
        reconcilers = app.state.reconcilers
        assert (await reconcilers.run_now("pos")).events_new == 3

        restart(private_pg)  # between runs: the pool's connections are all dead now
        events.pages.append([sale("E4", 27)])
        outcome = await reconcilers.run_now("pos")
        if outcome.outcome == "failed":  # a dead pooled connection may cost one run
            assert "database unavailable" in (outcome.detail or ""), outcome.detail
            outcome = await reconcilers.run_now("pos")
        assert (outcome.outcome, outcome.events_new) == ("applied", 1), outcome.detail
        assert (await client.get("/ready")).status_code == 200

        # during a run: the page is fetched while PostgreSQL restarts, then stored (or the
        # run fails and the next one stores it) -- never lost, never twice
        events.pages.append([sale("E5", 26), sale("E6", 25)])
        run = asyncio.create_task(reconcilers.run_now("pos"))
        await wait_for(
            lambda: asyncio.sleep(0, result=any(r.param("cursor") == "c3"
                                                for r in feed_server.requests_to("/events"))),
            "the run to ask for page c3",
        )  # fmt: skip
        restart(private_pg)
        gate.set()
        first = await run
        for _ in range(3):
            if first.outcome != "failed":
                break
            first = await reconcilers.run_now("pos")
        assert first.outcome in ("applied", "unchanged"), first.detail
        assert (await reconcilers.run_now("pos")).events_new == 0

        r = await client.get("/ready")
        assert r.status_code == 200, r.text
    conn = await asyncpg.connect(dsn)
    try:
        ids = [r["event_id"] for r in await conn.fetch("SELECT event_id FROM pos_event ORDER BY 1")]
        book = await conn.fetchval("SELECT book FROM book_position WHERE sku = 'SKU-A'")
        cursor = await conn.fetchval("SELECT cursor FROM feed WHERE name = 'pos'")
    finally:
        await conn.close()
    assert ids == ["E1", "E2", "E3", "E4", "E5", "E6"]
    assert book is None  # no snapshot base for S1: the events alone make no book
    assert cursor == "c4"


# -- the service killed in the middle of a write -------------------------------------------

PULL_SCRIPT = """
import asyncio, sys
from datetime import timedelta
import asyncpg, httpx
from app.domain.policy import Policy
from app.settings import load_settings
from reconcilers.feeds_config import FeedConfig
from reconcilers.jobs import run_feed

async def main(dsn, kind, url):
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=3,
        server_settings={"timezone": "UTC", "application_name": "doomed-puller"})
    feed = FeedConfig(name=kind, kind=kind, url=url, timeout=timedelta(seconds=30))
    settings = load_settings({}, retry_attempts=1, log_format="json")
    async with httpx.AsyncClient() as client:
        outcome = await run_feed(pool, feed, client, settings=settings, policy=Policy(),
                                 clock=__import__("app.clock", fromlist=["utc_now"]).utc_now)
    print("FINISHED", outcome.outcome, flush=True)

asyncio.run(main(*sys.argv[1:]))
"""


async def run_at_now(
    pool: asyncpg.Pool, feed: FeedConfig, client: httpx.AsyncClient, settings: Settings
) -> Any:
    """One run of ``feed`` (its job, as the scheduler would run it) at NOW."""
    return await run_feed(pool, feed, client, settings=settings, policy=Policy(), clock=lambda: NOW)


async def stored(pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    queries = {
        "events": "SELECT feed, event_id FROM pos_event ORDER BY 1, 2",
        "stock": "SELECT * FROM warehouse_stock ORDER BY 1, 2",
        "locations": "SELECT * FROM warehouse_location ORDER BY 1",
        "snapshots": "SELECT snapshot_id, status FROM warehouse_snapshot ORDER BY 1",
        "freshness": "SELECT * FROM store_freshness ORDER BY 1",
        "positions": "SELECT store_id, sku, book, badge_state FROM book_position ORDER BY 1, 2",
        "resume": "SELECT name, cursor, etag FROM feed ORDER BY 1",
    }
    return {k: [tuple(r) for r in await pool.fetch(q)] for k, q in queries.items()}


Procs = list[asyncio.subprocess.Process]


@pytest.fixture
async def killable() -> AsyncIterator[Procs]:
    """Processes this test starts; any still running at the end are killed (by pid)."""
    procs: Procs = []
    yield procs
    for p in procs:
        if p.returncode is None:
            os.kill(p.pid, signal.SIGKILL)
        await p.wait()


async def kill_mid_write(
    pool: asyncpg.Pool, db_dsn: str, kind: str, url: str, procs: Procs
) -> None:
    """Run a pull in a child process, hold it inside its write transaction, SIGKILL it."""
    async with pool.acquire() as holder:
        tx = holder.transaction()
        await tx.start()
        await holder.execute("SELECT pg_advisory_xact_lock($1, hashtext('S1'))",
                             RECOMPUTE_LOCK_CLASS)  # fmt: skip
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PULL_SCRIPT, db_dsn, kind, url,
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        procs.append(proc)

        async def waiting_in_its_transaction() -> bool:
            assert proc.returncode is None, "the puller ended before it was killed"
            return bool(await pool.fetchval(
                """SELECT count(*) FROM pg_stat_activity
                   WHERE application_name = 'doomed-puller' AND wait_event_type = 'Lock'
                     AND state = 'active' AND backend_xid IS NOT NULL"""))  # fmt: skip

        await wait_for(waiting_in_its_transaction, "the puller to wait inside its transaction")
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        await tx.rollback()  # let the orphaned backend run on: it finds no client, rolls back

    async def gone() -> bool:
        return not await pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'doomed-puller'"
        )

    await wait_for(gone, "the killed puller's sessions to end")
    assert proc.stdout is not None and b"FINISHED" not in await proc.stdout.read()


async def test_killed_in_the_middle_of_a_pos_page_leaves_nothing_half_way(
    pool: asyncpg.Pool,
    db_dsn: str,
    feed_server: FeedServer,
    client: httpx.AsyncClient,
    settings: Settings,
    killable: Procs,
) -> None:
    feed = FeedConfig(name="pos", kind="pos", url=feed_server.url("/events"))
    events = PagedFeed([[sale("E1", 30)], [sale("E2", 20), sale("E3", 10, store="S2")]])
    feed_server.route("/events", events)
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [feed])
        await conn.execute("UPDATE feed SET cursor = 'c1' WHERE name = 'pos'")  # page 0 done
    before = await stored(pool)

    await kill_mid_write(pool, db_dsn, "pos", feed.url, killable)

    assert await stored(pool) == before  # no events, no freshness, cursor still c1
    outcome = await run_at_now(pool, feed, client, settings)
    assert (outcome.outcome, outcome.events_new) == ("applied", 2)
    after = await stored(pool)
    assert after["events"] == [("pos", "E2"), ("pos", "E3")]
    assert after["resume"] == [("pos", "c2", None)]


async def test_killed_in_the_middle_of_a_snapshot_swap_leaves_the_old_one_in_force(
    pool: asyncpg.Pool,
    db_dsn: str,
    feed_server: FeedServer,
    client: httpx.AsyncClient,
    settings: Settings,
    killable: Procs,
) -> None:
    feed = FeedConfig(name="warehouse", kind="warehouse", url=feed_server.url("/snap.csv"))
    old, new = NOW - timedelta(hours=2), NOW - timedelta(hours=1)
    feed_server.always("/snap.csv", text_reply(
        f"{HEADER}\nS1,SKU-A,5,0,0,{iso(old)}\nS1,SKU-B,6,0,0,{iso(old)}\n",
        headers={"ETag": '"old"'}))  # fmt: skip
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [feed])
    first = await run_at_now(pool, feed, client, settings)
    assert first.outcome == "applied"
    feed_server.always("/snap.csv", text_reply(
        f"{HEADER}\nS1,SKU-A,9,0,0,{iso(new)}\nS1,SKU-C,3,0,0,{iso(new)}\n",
        headers={"ETag": '"new"'}))  # fmt: skip
    before = await stored(pool)

    await kill_mid_write(pool, db_dsn, "warehouse", feed.url, killable)

    assert await stored(pool) == before  # the old snapshot in force, ETag "old"
    outcome = await run_at_now(pool, feed, client, settings)
    assert outcome.outcome == "applied", outcome.detail
    after = await stored(pool)
    assert [(r[1], r[2]) for r in after["stock"]] == [("SKU-A", 9), ("SKU-C", 3)]
    assert after["resume"] == [("warehouse", None, '"new"')]
    assert [s[1] for s in after["snapshots"]] == ["applied", "applied"]

"""Reconcile at scale: a 1,000,000-row warehouse snapshot and a 10,000-event POS pull.

Measured in one run, side by side:

* ``copy``: a plain ``COPY`` of the snapshot's CSV into an unlogged table (the
  reference the ratios use);
* ``first``: the service pulls the snapshot over HTTP from 127.0.0.1 into an empty
  database: streamed COPY to staging, validation, swap, and every badge computed
  with the live confidence engine (200 stores x 5,000 skus, 20 categories);
* ``next``: the next snapshots, ``--snapshots`` of them in a row (each a new ETag,
  2% of the previous one's rows changed, as_of 15 min later), each timed, and their
  median (one run on a shared box swings with its load);
* ``pos``: one POS pull of 10,000 sales in 10 pages, badges recomputed; then
  ``--pulls`` − 1 more right after (new events each: the steady state of a busy
  feed, each run's first catch-up looking 5 minutes back);
* ``floor``: the stock rows and positions the service stored, COPYed again into
  empty tables like theirs (logged, with their keys, indexes and checks): what
  storing a first load costs PostgreSQL alone, nothing computed or compared.

The service runs in a child process (as in production: its own pool, reconcilers
and engine, warm-started from the database); its peak RSS is read after each step.
PostgreSQL comes from pgserver (or ``BENCH_DATABASE_URL``'s server).

    .venv/bin/python scripts/bench_reconcile.py [--stores 200] [--skus 5000]

``BENCH_PROFILE=file`` runs the service under cProfile and writes its stats there;
with ``BENCH_PROFILE_STEPS=pos`` (or ``wh``; comma-separated) only those steps are
profiled (``wh`` names both snapshots).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import io
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from reconcilers.warehouse import EXPECTED_HEADER
from scripts.scratch_db import Scratch, scratch_database

CATEGORIES = 20


class Stock:
    """The warehouse's stock, row by row (store-major), for successive snapshots."""

    def __init__(self, stores: int, skus: int) -> None:
        base = random.Random(0)
        self.keys = [(f"S{s:04d}", f"SKU-{k:06d}") for s in range(stores) for k in range(skus)]
        self.rows = [[base.randint(0, 40), base.randint(0, 2), base.randint(0, 5)]
                     for _ in self.keys]  # fmt: skip

    def change(self, share: float, seed: int) -> None:
        """Draw a new on_hand for ``share`` of the rows (1 in 41 draws the same value)."""
        rng = random.Random(seed)
        for row in self.rows:
            if rng.random() < share:
                row[0] = rng.randint(0, 40)

    def csv(self, as_of: datetime, *, quoted: bool = False) -> bytes:
        """The snapshot's body (``quoted``: every field in CSV quotes, header too)."""
        q = '"' if quoted else ""
        sep = f"{q},{q}"
        stamp = as_of.strftime("%Y-%m-%dT%H:%M:%SZ")
        out = io.StringIO()
        out.write(q + sep.join(EXPECTED_HEADER.split(",")) + q + "\n")
        for (location, sku), (on_hand, reserved, in_transit) in zip(
            self.keys, self.rows, strict=True
        ):
            fields = (location, sku, on_hand, reserved, in_transit, stamp)
            out.write(q + sep.join(map(str, fields)) + q + "\n")
        return out.getvalue().encode()


def pos_pages(
    stores: int, skus: int, start: datetime, events: int, pages: int, pulls: int = 1
) -> list[bytes]:
    """``pulls`` pulls' pages: each pull's last page says no more, and the next pull
    starts from its cursor (pull k's pages are ``c{k * pages}`` on). Pull k's sales
    have new event ids at the same times as the first pull's."""
    rng = random.Random(7)
    per = events // pages
    out = []
    for n in range(pulls * pages):
        p = n % pages
        batch = [
            {"event_id": f"E{n}-{i}", "type": "sale", "store_id": f"S{rng.randrange(stores):04d}",
             "sku": f"SKU-{rng.randrange(skus):06d}", "qty": 1,
             "occurred_at": (start + timedelta(seconds=p * per + i)).strftime("%Y-%m-%dT%H:%M:%SZ")}
            for i in range(per)
        ]  # fmt: skip
        out.append(json.dumps({"events": batch, "next_cursor": f"c{n + 1}",
                               "has_more": p + 1 < pages}).encode())  # fmt: skip
    return out


class Feeds:
    """A feed server on 127.0.0.1: /stock.csv (current version, ETag) and /events pages."""

    def __init__(self) -> None:
        self.snapshot = b""
        self.etag = ""
        self.pages: list[bytes] = []
        feeds = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/stock.csv":
                    if self.headers.get("If-None-Match") == feeds.etag:
                        self.send_response(304)
                        self.end_headers()
                        return
                    body, kind = feeds.snapshot, "text/csv"
                    extra = {"ETag": feeds.etag}
                else:
                    cursor = parse_qs(url.query).get("cursor", ["c0"])[0]
                    body, kind, extra = feeds.pages[int(cursor[1:])], "application/json", {}
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                view = memoryview(body)
                for i in range(0, len(body), 1 << 20):
                    self.wfile.write(view[i : i + (1 << 20)])

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"


# -- the service (child process) ---------------------------------------------------


async def service(dsn: str, feeds_file: str) -> None:
    """Run the steps the parent asks for (one per stdin line); answer one JSON line each."""
    import logging

    import asyncpg
    import structlog

    structlog.configure(  # logs to stderr: stdout carries the answers
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
    )
    from app.clock import utc_now
    from app.db.migrate import migrate
    from app.domain.policy import Policy
    from app.settings import load_settings
    from reconcilers.scheduler import start_reconcilers

    gc.callbacks.append(_gc_timer)
    tmp = Path(feeds_file).parent / "data"  # in the parent's work directory, removed with it
    settings = load_settings({}, data_dir=tmp, scheduler=False, feeds_file=Path(feeds_file),
                             max_feed_bytes=1 << 30, log_level="warning")  # fmt: skip
    pool = await asyncpg.create_pool(
        dsn, min_size=2, max_size=4, server_settings={"timezone": "UTC"}
    )
    assert pool is not None
    async with pool.acquire() as conn:
        await migrate(conn)
    started = time.perf_counter()
    recs = await start_reconcilers(pool, settings, Policy(), utc_now)
    warm = time.perf_counter() - started
    looked = [0.0]  # seconds of the step's run-start catch-up (LiveEngine.catch_up)
    live = recs.live
    assert live is not None
    catch_up = live.catch_up

    async def timed_catch_up(pool: asyncpg.Pool) -> None:
        t = time.perf_counter()
        try:
            await catch_up(pool)
        finally:
            looked[0] += time.perf_counter() - t

    live.catch_up = timed_catch_up  # type: ignore[method-assign]
    print(json.dumps({"step": "start", "s": warm, "rss_mb": _rss_mb()}), flush=True)
    loop = asyncio.get_running_loop()
    profiled = set(filter(None, os.environ.get("BENCH_PROFILE_STEPS", "").split(",")))
    profiler = None
    if profiled and os.environ.get("BENCH_PROFILE"):
        import cProfile

        profiler = cProfile.Profile()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)).strip():
        t, gc_before, looked[0] = time.perf_counter(), _GC_SECONDS[0], 0.0
        if profiler is not None and line in profiled:
            profiler.enable()
        outcome = await recs.run_now(line)
        if profiler is not None and line in profiled:
            profiler.disable()
        print(json.dumps({"step": line, "s": time.perf_counter() - t, "rss_mb": _rss_mb(),
                          "gc_s": _GC_SECONDS[0] - gc_before, "outcome": outcome.outcome,
                          "positions": outcome.positions, "detail": outcome.detail,
                          "catch_up_s": looked[0]}),
              flush=True)  # fmt: skip
    await recs.shutdown()
    await pool.close()
    if profiler is not None:
        profiler.dump_stats(os.environ["BENCH_PROFILE"])


_GC_SECONDS = [0.0, 0.0]  # total, start of the collection under way


def _gc_timer(phase: str, info: dict[str, Any]) -> None:
    """Time spent in the cyclic garbage collector (``gc.callbacks``)."""
    if phase == "start":
        _GC_SECONDS[1] = time.perf_counter()
    else:
        _GC_SECONDS[0] += time.perf_counter() - _GC_SECONDS[1]


def _rss_mb() -> float:
    """This process's peak RSS in MB: ``VmHWM`` (the peak of this program's own memory).
    Not ``getrusage``'s ``ru_maxrss``: Linux keeps that across ``execve``, so a child
    started by ``subprocess`` (fork, then exec) starts from the parent's RSS at the fork,
    here the snapshots the parent holds to serve (~550 MB with three of them)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the bench (parent) ------------------------------------------------------------


async def copy_baseline(dsn: str, body: bytes) -> float:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS copy_baseline; CREATE UNLOGGED TABLE copy_baseline "
            "(location_id text, sku text, on_hand integer, reserved integer, in_transit integer, "
            "as_of timestamptz)"
        )
        t = time.perf_counter()
        await conn.copy_to_table(
            "copy_baseline", source=io.BytesIO(body), format="csv", header=True
        )
        return time.perf_counter() - t
    finally:
        await conn.close()


async def storage_floor(dsn: str) -> tuple[int, float, float]:
    """The rows the service stored (stock and positions) COPYed again, as they are, into
    empty tables shaped like theirs (logged, their keys, indexes and checks): what
    storing a first load costs PostgreSQL before anything is computed or compared.
    Returns (positions, stock seconds, positions seconds)."""
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        times = []
        for table in ("warehouse_stock", "book_position"):
            rows = io.BytesIO()
            await conn.copy_from_table(table, output=rows, format="binary")
            await conn.execute(
                f"DROP TABLE IF EXISTS floor_{table}; CREATE TABLE floor_{table} "
                f"(LIKE {table} INCLUDING ALL) WITH (fillfactor = 90)"
            )
            rows.seek(0)
            t = time.perf_counter()
            await conn.copy_to_table(f"floor_{table}", source=rows, format="binary")
            times.append(time.perf_counter() - t)
            await conn.execute(f"DROP TABLE floor_{table}")
        positions = await conn.fetchval("SELECT count(*) FROM book_position")
        return int(positions), times[0], times[1]
    finally:
        await conn.close()


async def load_products(dsn: str, skus: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.copy_records_to_table(
            "product", records=[(f"SKU-{k:06d}", None, f"cat-{k % CATEGORIES:02d}") for k in range(skus)],
            columns=["sku", "name", "category"],
        )  # fmt: skip
    finally:
        await conn.close()


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--stores", type=int, default=200)
    p.add_argument("--skus", type=int, default=5000)
    p.add_argument("--events", type=int, default=10_000)
    p.add_argument(
        "--pulls", type=int, default=3,
        help="POS pulls in a row (each --events new events; the first is the target's)",
    )  # fmt: skip
    p.add_argument(
        "--snapshots", type=int, default=3, choices=range(1, 13), metavar="1..12",
        help="next snapshots in a row, each with 2%% of the previous one's rows changed",
    )  # fmt: skip
    p.add_argument(
        "--quoted", action="store_true",
        help="every field of the snapshots in CSV quotes, header too (the COPY baseline too)",
    )  # fmt: skip
    p.add_argument("--service", nargs=2, metavar=("DSN", "FEEDS"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.service:
        profile = os.environ.get("BENCH_PROFILE")  # a file: cProfile the service into it
        if profile and not os.environ.get("BENCH_PROFILE_STEPS"):
            import cProfile

            cProfile.runctx("asyncio.run(service(*args.service))", globals(), locals(), profile)
            return 0
        asyncio.run(service(*args.service))
        return 0

    with scratch_database() as db:
        return bench(args, db)


def bench(args: argparse.Namespace, db: Scratch) -> int:
    dsn = db.dsn
    # BENCH_PG_SETTINGS="max_wal_size=8GB,checkpoint_timeout=30min": server settings a
    # reload applies (ALTER SYSTEM), to see what the server's configuration costs.
    # (Settings that need a restart: EMBEDDED_PG_SETTINGS, see app/db/embedded.py and
    # scripts/scratch_db.py.)
    for setting in filter(None, os.environ.get("BENCH_PG_SETTINGS", "").split(",")):
        key, value = setting.split("=", 1)
        db.admin(f"ALTER SYSTEM SET {key} = '{value}'")
        db.admin("SELECT pg_reload_conf()")
    now = datetime.now(UTC)
    rows = args.stores * args.skus
    print(
        f"{rows:,} rows ({args.stores} stores x {args.skus} skus), {args.events:,} POS events",
        flush=True,
    )
    stock = Stock(args.stores, args.skus)
    first = stock.csv(now - timedelta(hours=4), quoted=args.quoted)
    again = []
    for k in range(1, args.snapshots + 1):
        stock.change(0.02, k)
        again.append(stock.csv(now - timedelta(hours=4) + timedelta(minutes=15 * k),
                               quoted=args.quoted))  # fmt: skip
    del stock
    feeds = Feeds()
    # one event a second, ending before now (the service refuses events from the future)
    feeds.pages = pos_pages(
        args.stores, args.skus, now - timedelta(seconds=args.events + 600), args.events, 10,
        pulls=max(1, args.pulls),
    )  # fmt: skip
    work = tempfile.TemporaryDirectory(prefix="bench-reconcile-")
    feeds_file = Path(work.name) / "feeds.toml"
    child = None
    try:
        feeds_file.write_text(
            f'[[feeds]]\nname = "wh"\nkind = "warehouse"\nurl = "{feeds.url("/stock.csv")}"\ntimeout = "600s"\n'
            f'max_drop = 0.5\n\n[[feeds]]\nname = "pos"\nkind = "pos"\nurl = "{feeds.url("/events")}"\n',
            encoding="utf-8",
        )
        db.migrate()
        asyncio.run(load_products(dsn, args.skus))
        copy_before = asyncio.run(copy_baseline(dsn, first))
        child = subprocess.Popen(
            [sys.executable, __file__, "--service", dsn, str(feeds_file)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdin is not None and child.stdout is not None

        def step(name: str | None) -> dict[str, Any]:
            assert child is not None and child.stdin is not None and child.stdout is not None
            if name is not None:
                child.stdin.write(name + "\n")
                child.stdin.flush()
            answer: dict[str, Any] = json.loads(child.stdout.readline())
            return answer

        results = {"start": step(None)}
        feeds.snapshot, feeds.etag = first, '"v1"'
        results["first"] = step("wh")
        nexts = []
        for k, body in enumerate(again, start=2):
            feeds.snapshot, feeds.etag = body, f'"v{k}"'
            nexts.append(step("wh"))
        results["pos"] = step("pos")
        more = [step("pos") for _ in range(args.pulls - 1)]
        child.stdin.close()
        child.wait(60)
        copy_after = asyncio.run(copy_baseline(dsn, first))
        floor = asyncio.run(storage_floor(dsn))
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        work.cleanup()
    copy_s = min(copy_before, copy_after)
    print(f"plain COPY of the same rows into an unlogged table: {copy_before:.2f} s before, "
          f"{copy_after:.2f} s after (ratios use {copy_s:.2f} s)")  # fmt: skip
    for label, r in (("first snapshot, empty database", results["first"]),
                     *((f"next snapshot {k}, 2% of rows changed", r)
                       for k, r in enumerate(nexts, start=1))):  # fmt: skip
        print(f"{label:36s} {r['s']:7.2f} s  = {r['s'] / copy_s:5.1f} x COPY   "
              f"positions {r['positions']:>9,}  peak RSS {r['rss_mb']:6.0f} MB  "
              f"gc {r['gc_s']:.2f} s  ({r['outcome']})")  # fmt: skip
    if len(nexts) > 1:
        times = sorted(r["s"] for r in nexts)
        median = statistics.median(times)
        print(f"{'next snapshots, median of ' + str(len(times)):36s} {median:7.2f} s  = "
              f"{median / copy_s:5.1f} x COPY   (fastest {times[0] / copy_s:.1f} x, "
              f"slowest {times[-1] / copy_s:.1f} x)")  # fmt: skip
    r = results["pos"]
    print(f"{'POS pull, ' + format(args.events, ',') + ' events':36s} {r['s']:7.2f} s"
          f"                  positions {r['positions']:>9,}  peak RSS {r['rss_mb']:6.0f} MB  "
          f"gc {r['gc_s']:.2f} s  ({r['outcome']})")  # fmt: skip
    if more:
        print(f"{'next POS pulls, right after':36s} "
              + ", ".join(f"{r['s']:.2f} ({r['catch_up_s'] * 1000:.0f} ms)" for r in more)
              + f" s  (each {args.events:,} new events; in brackets the run's first"
              " catch-up, which looks 5 minutes back)")  # fmt: skip
    print(f"service start-up (warm start on an empty database): {results['start']['s']:.2f} s")
    positions, stock_s, positions_s = floor
    print(f"floor of a first load: the {rows:,} stock rows and {positions:,} positions stored, "
          f"COPYed again into empty tables like theirs (logged, indexed): {stock_s:.2f} s + "
          f"{positions_s:.2f} s = {(stock_s + positions_s) / copy_s:.1f} x COPY")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

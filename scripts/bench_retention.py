"""What retention buys a POS pull's recompute once months of events have piled up.

    PYTHONPATH=$PWD .venv/bin/python scripts/bench_retention.py [--stores 25] [--skus 200]
        [--days 180] [--per-day 3] [--pairs 2000] [--rounds 3]

A scratch database (``scratch_db.py``) gets ``stores × skus`` pairs, each with a
snapshot row a day old and ``per-day`` sales a day for ``days`` days (generated in
SQL), and their positions. Then, side by side in one run: the recompute of ``pairs``
random pairs (a POS page's named pairs: the book query, the badges, the write),
``rounds`` times, before and after one retention run (90 days, ``app/db/retention.py``),
the run's own time and what it deleted, and the table's size before and after. The
ratio is what the book query's reading of each pair's whole history cost.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.db import retention
from app.db.migrate import migrate
from app.db.positions import recompute_pairs
from app.domain.policy import Policy
from scripts.scratch_db import scratch_database

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = Policy()


async def build(conn: asyncpg.Connection, a: argparse.Namespace) -> None:
    await conn.execute("INSERT INTO feed (name, kind, url) VALUES ('pos', 'pos', 'http://x')")
    await conn.execute(
        """INSERT INTO warehouse_location (location_id, as_of, snapshot_id)
           SELECT 'S' || s, $1, 1 FROM generate_series(1, $2) s""",
        NOW - timedelta(days=1), a.stores,
    )  # fmt: skip
    await conn.execute(
        """INSERT INTO warehouse_stock (location_id, sku, on_hand, reserved, in_transit, snapshot_id)
           SELECT 'S' || s, 'K' || k, 20, 0, 0, 1
           FROM generate_series(1, $1) s, generate_series(1, $2) k""",
        a.stores, a.skus,
    )  # fmt: skip
    await conn.execute(
        """INSERT INTO pos_event (feed, event_id, type, store_id, sku, qty, occurred_at, received_at)
           SELECT 'pos', s || '-' || k || '-' || n, 'sale', 'S' || s, 'K' || k, 1, t, t
           FROM generate_series(1, $1) s, generate_series(1, $2) k,
                generate_series(1, $3) n,
                LATERAL (SELECT $4::timestamptz - n * ($5::float8 / $3) * interval '1 day'
                         - (s * 7 + k) * interval '1 second' AS t) AS at""",
        a.stores, a.skus, a.days * a.per_day, NOW, float(a.days),
    )  # fmt: skip
    await conn.execute("VACUUM ANALYZE")


async def recompute_rounds(
    conn: asyncpg.Connection, pairs: list[tuple[str, str]], rounds: int
) -> list[float]:
    took = []
    for _ in range(rounds):
        began = time.perf_counter()
        async with conn.transaction():
            await recompute_pairs(conn, pairs, policy=POLICY, now=NOW)
        took.append(time.perf_counter() - began)
    return took


async def size(conn: asyncpg.Connection) -> str:
    got: str = await conn.fetchval("SELECT pg_size_pretty(pg_total_relation_size('pos_event'))")
    return got


async def run(dsn: str, a: argparse.Namespace) -> None:
    conn = await asyncpg.connect(dsn, server_settings={"timezone": "UTC"})
    try:
        await migrate(conn)
        began = time.perf_counter()
        await build(conn, a)
        events = await conn.fetchval("SELECT count(*) FROM pos_event")
        print(f"built {a.stores * a.skus:,} pairs, {events:,} events over {a.days} days "
              f"({await size(conn)}) in {time.perf_counter() - began:.0f} s")  # fmt: skip
        every = [(f"S{s}", f"K{k}") for s in range(1, a.stores + 1) for k in range(1, a.skus + 1)]
        for start in range(0, len(every), 5000):  # positions for all: the bases
            await recompute_pairs(conn, every[start : start + 5000], policy=POLICY, now=NOW)
        pairs = random.Random(1).sample(every, min(a.pairs, len(every)))
        before = await recompute_rounds(conn, pairs, a.rounds)
        pruned = retention.Pruned()
        began = time.perf_counter()
        await retention.prune_events(conn, now=NOW, keep=timedelta(days=90), into=pruned)
        prune_s = time.perf_counter() - began
        await conn.execute("VACUUM ANALYZE pos_event")
        left = await conn.fetchval("SELECT count(*) FROM pos_event")
        after = await recompute_rounds(conn, pairs, a.rounds)
    finally:
        await conn.close()
    b, f = statistics.median(before), statistics.median(after)
    print(f"retention (90 d): {prune_s:.1f} s, {pruned.batches} batches, "
          f"{pruned.events_deleted:,} of {pruned.events_scanned:,} old events deleted; "
          f"{left:,} left")  # fmt: skip
    print(f"recompute of {len(pairs):,} pairs, median of {a.rounds}: before {b * 1000:.0f} ms "
          f"({', '.join(f'{x * 1000:.0f}' for x in before)}), after {f * 1000:.0f} ms "
          f"({', '.join(f'{x * 1000:.0f}' for x in after)}): {b / f:.2f} x")  # fmt: skip


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stores", type=int, default=25)
    ap.add_argument("--skus", type=int, default=200)
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--per-day", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with scratch_database() as db:  # (its own event loop: outside ours)
        asyncio.run(run(db.dsn, args))

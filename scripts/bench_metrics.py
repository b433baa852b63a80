"""What a ``/metrics`` scrape costs the database at scale.

    PYTHONPATH=$PWD .venv/bin/python scripts/bench_metrics.py [--stores 200] [--skus 5000]
        [--picks 500000] [--rounds 3]

A scratch database (``scratch_db.py``) gets ``stores × skus`` stock rows and their
positions (recomputed as a first load would) and ``picks`` stored pick outcomes; then
the three queries behind the scrape's database gauges (``app/db/metrics.py``) are
timed, ``rounds`` times each, as a scrape runs them.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.db import metrics
from app.db.migrate import migrate
from app.db.positions import recompute_pairs
from app.domain.policy import Policy
from scripts.scratch_db import scratch_database

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


async def build(conn: asyncpg.Connection, a: argparse.Namespace) -> None:
    await conn.execute(
        """INSERT INTO warehouse_location (location_id, as_of, snapshot_id)
           SELECT 'S' || s, $1, 1 FROM generate_series(1, $2) s""",
        NOW - timedelta(days=1), a.stores,
    )  # fmt: skip
    await conn.execute(
        """INSERT INTO warehouse_stock (location_id, sku, on_hand, reserved, in_transit, snapshot_id)
           SELECT 'S' || s, 'K' || k, k % 7, 0, 0, 1
           FROM generate_series(1, $1) s, generate_series(1, $2) k""",
        a.stores, a.skus,
    )  # fmt: skip
    pairs = [(f"S{s}", f"K{k}") for s in range(1, a.stores + 1) for k in range(1, a.skus + 1)]
    for start in range(0, len(pairs), 20_000):
        await recompute_pairs(conn, pairs[start : start + 20_000], policy=Policy(), now=NOW)
    await conn.execute(
        """INSERT INTO feedback (store_id, sku, kind, observed_at, qty, received_at)
           SELECT 'S' || (n % $2 + 1), 'K' || (n % $3 + 1),
                  CASE WHEN n % 10 = 0 THEN 'pick_short' ELSE 'pick_found' END,
                  $4::timestamptz - n * interval '1 minute', 1, $4
           FROM generate_series(1, $1) n""",
        a.picks, a.stores, a.skus, NOW,
    )  # fmt: skip
    await conn.execute("VACUUM ANALYZE")


async def run(dsn: str, a: argparse.Namespace) -> None:
    conn = await asyncpg.connect(dsn, server_settings={"timezone": "UTC"})
    try:
        await migrate(conn)
        await build(conn, a)
        queries: dict[str, Callable[[], Awaitable[Any]]] = {
            "badges by state and reason": lambda: metrics.badge_counts(conn),
            "pick outcomes": lambda: metrics.pick_outcomes(conn, since=NOW - timedelta(hours=24)),
        }
        took: dict[str, list[float]] = {name: [] for name in queries}
        for _ in range(a.rounds):
            for name, query in queries.items():
                began = time.perf_counter()
                await query()
                took[name].append((time.perf_counter() - began) * 1000)
    finally:
        await conn.close()
    print(f"{a.stores * a.skus:,} positions, {a.picks:,} picks")
    for name, ms in took.items():
        print(f"{name}: {', '.join(f'{x:.0f}' for x in ms)} ms")
    print(f"a scrape: ~{sum(min(ms) for ms in took.values()):.0f} ms of database time")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--stores", type=int, default=200)
    ap.add_argument("--skus", type=int, default=5000)
    ap.add_argument("--picks", type=int, default=500_000)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with scratch_database() as db:  # (its own event loop: outside ours)
        asyncio.run(run(db.dsn, args))

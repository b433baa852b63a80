"""What months of events cost a recompute, and what retention buys.

    PYTHONPATH=$PWD .venv/bin/python scripts/bench_retention.py [--stores 25] [--skus 200]
        [--days 180] [--per-day 3] [--pairs 2000] [--rounds 3]

A scratch database (``scratch_db.py``) gets ``stores × skus`` pairs, each with a
snapshot row a day old and ``per-day`` sales a day for ``days`` days (generated in
SQL), and their positions. Then, side by side in one run: the recompute of ``pairs``
random pairs (as a POS page's named pairs, every one written, and as a snapshot's
candidates, compared with the stored positions: the book query, the badges, the
write), ``rounds`` times each, before and after one retention run (90 days,
``app/db/retention.py``), and the run's own time and what it deleted; and a snapshot's
candidates' book query in its two forms (``positions.sql``: movements by index probes
per pair, or set-wise over each pair's every event). The ratios are what reading each
pair's older history costs.
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
from app.db.positions import Q, _book_of, _kept, recompute_pairs
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
    conn: asyncpg.Connection, pairs: list[tuple[str, str]], rounds: int, *, only_changed: bool
) -> list[float]:
    """``rounds`` recomputes of ``pairs``: as a POS page does (every pair written), or
    as a snapshot's candidates are (``only_changed``: compared with the stored ones)."""
    took = []
    for _ in range(rounds):
        began = time.perf_counter()
        async with conn.transaction():
            await recompute_pairs(conn, pairs, policy=POLICY, now=NOW, only_changed=only_changed)
        took.append(time.perf_counter() - began)
    return took


async def candidate_queries(
    conn: asyncpg.Connection, pairs: list[tuple[str, str]], rounds: int
) -> dict[str, list[float]]:
    """A snapshot's candidates' book query (kept on the server, as positions.py runs it)
    in its two forms, alternated: movements by index probes per pair, or set-wise."""
    forms = {
        "per pair": _kept(_book_of(Q.pairs_named, scoped=False, per_pair=True)),
        "set-wise": _kept(_book_of(Q.pairs_named, scoped=False, per_pair=False)),
    }
    args = ([p[0] for p in pairs], NOW, True, False, [p[1] for p in pairs])
    took: dict[str, list[float]] = {name: [] for name in forms}
    for _ in range(rounds):
        for name, query in forms.items():
            tr = conn.transaction()
            await tr.start()
            await conn.execute(Q.create_book_batch)
            began = time.perf_counter()
            await conn.fetch(query, *args)
            took[name].append(time.perf_counter() - began)
            await tr.rollback()
    return took


def line(what: str, before: list[float], after: list[float]) -> str:
    b, f = statistics.median(before), statistics.median(after)
    return (
        f"{what}, median of {len(before)}: before {b * 1000:.0f} ms "
        f"({', '.join(f'{x * 1000:.0f}' for x in before)}), after {f * 1000:.0f} ms "
        f"({', '.join(f'{x * 1000:.0f}' for x in after)}): {b / f:.2f} x"
    )


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
        page = await recompute_rounds(conn, pairs, a.rounds, only_changed=False)
        candidates = await recompute_rounds(conn, pairs, a.rounds, only_changed=True)
        forms = await candidate_queries(conn, pairs, a.rounds)
        pruned = retention.Pruned()
        began = time.perf_counter()
        await retention.prune_events(conn, now=NOW, keep=timedelta(days=90), into=pruned)
        prune_s = time.perf_counter() - began
        await conn.execute("VACUUM ANALYZE pos_event")
        left = await conn.fetchval("SELECT count(*) FROM pos_event")
        page_after = await recompute_rounds(conn, pairs, a.rounds, only_changed=False)
        candidates_after = await recompute_rounds(conn, pairs, a.rounds, only_changed=True)
        forms_after = await candidate_queries(conn, pairs, a.rounds)
    finally:
        await conn.close()
    print(f"retention (90 d): {prune_s:.1f} s, {pruned.batches} batches, "
          f"{pruned.events_deleted:,} of {pruned.events_scanned:,} old events deleted; "
          f"{left:,} left")  # fmt: skip
    print(line(f"recompute of {len(pairs):,} pairs as a POS page", page, page_after))
    print(line(f"recompute of {len(pairs):,} pairs as a snapshot's candidates", candidates,
               candidates_after))  # fmt: skip
    for name in forms:
        print(line(f"a snapshot's candidates' book query, {name}", forms[name], forms_after[name]))
    per_pair, set_wise = statistics.median(forms["per pair"]), statistics.median(forms["set-wise"])
    print(f"  before retention, set-wise / per pair: {set_wise / per_pair:.2f} x")


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

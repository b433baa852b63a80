"""API speed: nearby lookups and batches against a bare endpoint, side by side, in one run.

    .venv/bin/python scripts/bench_api.py [--duration 10] [--connections 32] [--rounds 3]

Loads 200 stores x 5,000 skus (1,000,000 positions) into a scratch database (a private
PostgreSQL from pgserver, or BENCH_DATABASE_URL's server), runs the service under uvicorn
(production settings: no reload, access log off, no rate limit) on 127.0.0.1 in a
subprocess, with one hidden extra route returning a constant, and drives it with wrk
(apt-get install wrk). Prints throughputs, the ratio, p99 latencies and the targets:
nearby/constant >= 60%, nearby p99 <= 25 ms, batch of 48 skus >= 1,000 req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from litestar import get

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from scripts.scratch_db import scratch_database

STORES, SKUS = 200, 5_000
CENTRE = (45.75, 4.85)
SPACING_KM = 2.0
RADIUS_KM = 3.6  # ~10 stores on a 2 km grid: pi * 3.6^2 / 4 = 10.2
BATCH = 48


class Constant(msgspec.Struct, frozen=True):
    status: str


@get("/__bench/constant", include_in_schema=False, sync_to_thread=False)
def constant() -> Constant:
    """The hidden baseline route: a constant through the same framework and middleware."""
    return Constant(status="ok")


def _grid() -> list[tuple[str, float, float]]:
    """20 x 10 stores, SPACING_KM apart, centred on CENTRE."""
    dlat = math.degrees(SPACING_KM / 6371.0088)
    dlon = dlat / math.cos(math.radians(CENTRE[0]))
    return [
        (f"S{i * 10 + j:03d}", CENTRE[0] + (j - 4.5) * dlat, CENTRE[1] + (i - 9.5) * dlon)
        for i in range(20)
        for j in range(10)
    ]


async def load(dsn: str) -> None:
    import asyncpg

    from app.db.migrate import migrate

    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        now = datetime.now(UTC)
        stores = _grid()
        await conn.copy_records_to_table(
            "store",
            records=[
                (s, f"Store {s}", la, lo, f"{69000 + k // 4}")
                for k, (s, la, lo) in enumerate(stores)
            ],
            columns=["store_id", "name", "lat", "lon", "postal_code"],
        )
        await conn.copy_records_to_table(
            "product",
            records=[(f"SKU-{k:04d}", f"Item {k}") for k in range(SKUS)],
            columns=["sku", "name"],
        )
        as_of = now - timedelta(minutes=10)
        await conn.copy_records_to_table(
            "store_freshness",
            records=[(s, as_of, as_of) for s, _, _ in stores],
            columns=["store_id", "last_pos_event_at", "snapshot_as_of"],
        )

        def rows() -> Iterator[tuple[object, ...]]:
            for s, _, _ in stores:
                for k in range(SKUS):
                    book = (k * 7 + int(s[1:])) % 15
                    state = (
                        "unavailable" if book <= 2 else ("low_stock" if book < 6 else "in_stock")
                    )
                    reason = {
                        "unavailable": "out_of_stock",
                        "low_stock": "few_left",
                        "in_stock": "margin_ok",
                    }[state]
                    yield (
                        s,
                        f"SKU-{k:04d}",
                        book,
                        "snapshot",
                        as_of,
                        as_of,
                        as_of,
                        state,
                        2,
                        [reason],
                        as_of,
                        as_of,
                    )

        await conn.copy_records_to_table(
            "book_position",
            records=rows(),
            columns=[
                "store_id",
                "sku",
                "book",
                "base_source",
                "base_at",
                "snapshot_as_of",
                "last_event_at",
                "badge_state",
                "safety_buffer",
                "reasons",
                "badge_as_of",
                "computed_at",
            ],
        )
        await conn.execute("ANALYZE")
        n = await conn.fetchval("SELECT count(*) FROM book_position")
        print(f"loaded {n:,} positions ({STORES} stores x {SKUS:,} skus)", flush=True)
    finally:
        await conn.close()


def serve(dsn: str, port: int) -> None:
    """The benchmark server: the real app plus one hidden constant route."""
    import uvicorn

    from app.api.app import create_app
    from app.settings import load_settings

    settings = load_settings(
        {}, scheduler=False, rate_limit_per_minute=0, log_level="warning", log_format="json"
    )
    app = create_app(settings, dsn=dsn)
    app.register(constant)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_config=None,
        access_log=False,
        log_level="warning",
    )


_LUA_NEARBY = """
math.randomseed(os.time())
request = function()
  return wrk.format("GET", "/v1/availability/SKU-" .. string.format("%04d", math.random(0, 4999))
    .. "?lat=LAT&lon=LON&radius_km=RADIUS")
end
"""
_LUA_BATCH = """
math.randomseed(os.time())
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local skus = {}
  for i = 1, N do skus[i] = string.format('"SKU-%04d"', math.random(0, 4999)) end
  local body = '{"skus":[' .. table.concat(skus, ",") .. '],"lat":LAT,"lon":LON,"radius_km":RADIUS,"limit":10}'
  return wrk.format(nil, "/v1/availability:batch", nil, body)
end
"""


def _notifier(dsn: str, every: float, stop: threading.Event) -> None:
    """Every ``every`` seconds, what a POS page of 200 sales publishes: the touched stores'
    freshness advanced and NOTIFY availability_changed naming the 200 (store, sku) pairs,
    in one transaction (the positions themselves are left as they are)."""
    import random

    import asyncpg

    from app.db.availability import notify_badges_changed

    async def run() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            ids = [s for s, _, _ in _grid()]
            while not stop.is_set():
                pairs = [
                    (random.choice(ids), f"SKU-{random.randrange(SKUS):04d}") for _ in range(200)
                ]
                async with conn.transaction():
                    await conn.execute(
                        "UPDATE store_freshness SET last_pos_event_at = now()"
                        " WHERE store_id = ANY($1::text[])",
                        sorted({s for s, _ in pairs}),
                    )
                    await notify_badges_changed(conn, pairs=pairs)
                await asyncio.sleep(every)
        finally:
            await conn.close()

    asyncio.run(run())


def wrk(url: str, lua: str | None, seconds: int, connections: int) -> tuple[float, float, int]:
    """(requests/s, p99 ms, non-2xx count) from one wrk run."""
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    script = None
    if lua:
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(lua)
        script = f.name
        cmd += ["-s", script]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    if script:
        os.unlink(script)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert m, out
    p99 = float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, p99, int(bad.group(1)) if bad else 0


def main() -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--duration", type=int, default=10, help="seconds per wrk run (default 10)")
    p.add_argument("--connections", type=int, default=32)
    p.add_argument(
        "--rounds", type=int, default=3, help="constant/nearby/batch rounds; medians (default 3)"
    )
    p.add_argument(
        "--notify-every",
        type=float,
        default=0.0,
        help="also run nearby while a POS page of 200 sales is published every this many s",
    )
    p.add_argument("--serve", nargs=2, metavar=("DSN", "PORT"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.serve:
        serve(args.serve[0], int(args.serve[1]))
        return 0
    if not shutil.which("wrk"):
        print("wrk not found: apt-get install wrk", file=sys.stderr)
        return 2

    with scratch_database() as db:
        return bench(args, db.dsn)


def bench(args: argparse.Namespace, dsn: str) -> int:
    proc = None
    try:
        t0 = time.monotonic()
        asyncio.run(load(dsn))
        print(f"load took {time.monotonic() - t0:.1f} s", flush=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen([sys.executable, __file__, "--serve", dsn, str(port)])
        origin = f"http://127.0.0.1:{port}"
        import httpx

        for _ in range(300):
            if proc.poll() is not None:
                raise SystemExit("the benchmark server exited")
            try:
                if httpx.get(f"{origin}/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        near = httpx.get(
            f"{origin}/v1/availability/SKU-0001",
            params={"lat": CENTRE[0], "lon": CENTRE[1], "radius_km": RADIUS_KM},
        ).json()
        print(f"nearby lookup: {len(near['stores'])} stores within {RADIUS_KM} km", flush=True)
        sub = {
            "LAT": str(CENTRE[0]),
            "LON": str(CENTRE[1]),
            "RADIUS": str(RADIUS_KM),
            "N": str(BATCH),
        }

        def lua(text: str) -> str:
            for k, v in sub.items():
                text = text.replace(k, v)
            return text

        # Warm-up: every sku once (in batches of 48), so the runs measure the steady state
        # of a long-running replica (its read model holds what shoppers ask for), not the
        # first request for each sku after a restart.
        t0 = time.monotonic()
        with httpx.Client(base_url=origin, timeout=30) as client:
            for k in range(0, SKUS, BATCH):
                client.post(
                    "/v1/availability:batch",
                    json={
                        "skus": [f"SKU-{i:04d}" for i in range(k, min(k + BATCH, SKUS))],
                        "lat": CENTRE[0],
                        "lon": CENTRE[1],
                        "radius_km": RADIUS_KM,
                        "limit": 10,
                    },
                ).raise_for_status()
        print(f"warm-up (every sku once) took {time.monotonic() - t0:.1f} s", flush=True)
        wrk(f"{origin}/__bench/constant", None, 2, args.connections)  # warm-up
        wrk(origin, lua(_LUA_NEARBY), 2, args.connections)
        # Rounds: constant, nearby, batch back to back, so each round's ratio compares runs
        # made under the same load from whatever else shares the machine; medians reported.
        runs: list[tuple[tuple[float, float, int], ...]] = []
        for r in range(args.rounds):
            c = wrk(f"{origin}/__bench/constant", None, args.duration, args.connections)
            n = wrk(origin, lua(_LUA_NEARBY), args.duration, args.connections)
            b = wrk(origin, lua(_LUA_BATCH), args.duration, args.connections)
            runs.append((c, n, b))
            print(
                f"round {r + 1}: constant {c[0]:.0f} req/s (p99 {c[1]:.1f} ms), "
                f"nearby {n[0]:.0f} req/s (p99 {n[1]:.1f} ms) = {n[0] / c[0]:.0%}, "
                f"batch {b[0]:.0f} req/s (p99 {b[1]:.1f} ms)",
                flush=True,
            )

        def med(values: list[float]) -> float:
            return statistics.median(values)

        c_rps, c_p99 = med([x[0][0] for x in runs]), med([x[0][1] for x in runs])
        n_rps, n_p99 = med([x[1][0] for x in runs]), med([x[1][1] for x in runs])
        b_rps, b_p99 = med([x[2][0] for x in runs]), med([x[2][1] for x in runs])
        c_bad, n_bad, b_bad = (sum(x[i][2] for x in runs) for i in range(3))
        ratio = med([x[1][0] / x[0][0] for x in runs])
        print(
            f"\nwrk -t2 -c{args.connections} -d{args.duration}s, same server process, "
            f"{os.cpu_count()} CPUs, median of {args.rounds} rounds"
        )
        print(f"{'endpoint':<34}{'req/s':>10}{'p99 ms':>10}{'non-2xx':>9}")
        print(f"{'constant (bare Litestar route)':<34}{c_rps:>10.0f}{c_p99:>10.2f}{c_bad:>9}")
        print(f"{'nearby lookup (GET, ~10 stores)':<34}{n_rps:>10.0f}{n_p99:>10.2f}{n_bad:>9}")
        print(f"{f'batch of {BATCH} skus (POST)':<34}{b_rps:>10.0f}{b_p99:>10.2f}{b_bad:>9}")
        print(
            f"\nnearby / constant = {ratio:.0%} (median of the rounds' ratios)   "
            f"(target >= 60%: {'met' if ratio >= 0.6 else 'NOT met'})"
        )
        print(
            f"nearby p99 = {n_p99:.2f} ms   (target <= 25 ms: {'met' if n_p99 <= 25 else 'NOT met'})"
        )
        print(
            f"batch = {b_rps:.0f} req/s   (target >= 1,000: {'met' if b_rps >= 1000 else 'NOT met'})"
        )
        if args.notify_every > 0:
            # Reconciler churn: a POS page of 200 sales published every --notify-every seconds
            # while nearby runs (answers resting on a touched store are made again, from the
            # rows still cached unless their pair was named), then the bare route again.
            stop = threading.Event()
            thread = threading.Thread(
                target=_notifier, args=(dsn, args.notify_every, stop), daemon=True
            )
            thread.start()
            try:
                churn = wrk(origin, lua(_LUA_NEARBY), args.duration, args.connections)
            finally:
                stop.set()
                thread.join()
            bare = wrk(f"{origin}/__bench/constant", None, args.duration, args.connections)
            print(
                f"\nwith a POS page of 200 sales published every {args.notify_every:g} s: nearby "
                f"{churn[0]:.0f} req/s (p99 {churn[1]:.1f} ms, non-2xx {churn[2]}), "
                f"constant after it {bare[0]:.0f} req/s: {churn[0] / bare[0]:.0%}"
            )
    finally:
        if proc:
            proc.terminate()
            proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())

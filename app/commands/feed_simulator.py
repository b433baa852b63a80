"""``availability feed-simulator``: only the demo's feed simulator, until stopped.

For running the simulator beside a service elsewhere (docker-compose): it can
also write the demo folder, with feed URLs as the service will reach them.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "feed-simulator",
        help="serve the demo's simulated POS and warehouse feeds",
        description="Serve the simulated store chain's feeds: /pos/events, /warehouse/snapshot.csv, "
        "/stores.csv, /products.csv, /shelf/{store_id}/{sku}, /health. Runs until Ctrl-C or SIGTERM.",
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    add_simulation_arguments(p, starts="at start")
    p.add_argument(
        "--write-to",
        type=Path,
        metavar="DIR",
        help="also write stores.csv, products.csv, feeds.toml and policy.toml into DIR",
    )
    p.add_argument(
        "--public-url",
        metavar="URL",
        help="base URL the service will use to reach this simulator, for feeds.toml "
        "(default http://HOST:PORT)",
    )
    p.set_defaults(func=run)


def add_simulation_arguments(p: argparse.ArgumentParser, *, starts: str) -> None:
    """``--seed``, ``--history`` and ``--tick``: the simulated story, asked for alike by
    this command and ``availability demo``; ``starts`` says when the history ends."""
    p.add_argument(
        "--seed", type=int, default=7, help="simulation seed: same seed, same story (default 7)"
    )
    p.add_argument(
        "--history",
        type=float,
        default=60.0,
        metavar="MINUTES",
        help=f"minutes of trading already in the feed {starts} (default 60)",
    )
    p.add_argument(
        "--tick",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="how often the simulator moves stock (default 2)",
    )


def simulation_refused(args: argparse.Namespace, command: str) -> bool:
    """True, once stderr says why, when ``--history`` or ``--tick`` cannot run a simulation."""
    if args.history < 0 or args.tick <= 0:
        print(f"availability {command}: --history must be ≥ 0 and --tick > 0", file=sys.stderr)
        return True
    return False


def run(args: argparse.Namespace, settings: Settings) -> int:
    from app.demo.catalog import demo_products
    from app.demo.feed import FeedSimulator
    from app.demo.files import write_demo_folder
    from app.demo.server import SimulatorServer

    if simulation_refused(args, "feed-simulator"):
        return 2
    feed = FeedSimulator.create(
        seed=args.seed, start=datetime.now(UTC) - timedelta(minutes=args.history)
    )
    try:
        simulator = SimulatorServer(feed, host=args.host, port=args.port, tick_seconds=args.tick)
    except OSError as exc:
        print(
            f"availability feed-simulator: cannot listen on {args.host}:{args.port} ({exc.strerror})",
            file=sys.stderr,
        )
        return 1
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.write_to is not None:  # before serving: a healthy simulator has its files written
        write_demo_folder(
            args.write_to,
            feed_base_url=args.public_url or simulator.url(),
            products=demo_products(args.seed),
        )
    with simulator:
        print(f"feed simulator on {simulator.url()}  (Ctrl-C stops it)", flush=True)
        stop.wait()
    return 0

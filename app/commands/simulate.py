"""``availability simulate``: write a simulated backtest dataset (contract format)."""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import msgspec

from app.settings import Settings


def register(sub: Any) -> None:
    from app.backtest.params import PROFILES

    p = sub.add_parser(
        "simulate",
        help="write a simulated backtest dataset",
        description="Simulate stores, shelves, back rooms, loss, replenishment and lagging feeds, "
        "and write the result as a backtest dataset directory (manifest, POS events, warehouse "
        "snapshots, feedback, visits). Deterministic for a seed.",
    )
    p.add_argument("out_dir", type=Path, metavar="OUT_DIR")
    p.add_argument("--stores", type=_positive, default=20, help="number of stores (default 20)")
    p.add_argument("--skus", type=_positive, default=200, help="number of skus (default 200)")
    p.add_argument(
        "--days", type=_positive, default=14, help="days in the dataset window (default 14)"
    )
    p.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    p.add_argument(
        "--start",
        type=date.fromisoformat,
        default=date(2026, 11, 1),
        help="first day, UTC (default 2026-11-01)",
    )
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="default",
        help="world profile (default: default)",
    )
    p.set_defaults(func=run)


def _positive(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


def run(args: argparse.Namespace, settings: Settings) -> int:
    from app.backtest.params import profile
    from app.backtest.simulator import simulate
    from app.backtest.writer import write_dataset

    began = time.perf_counter()
    start = datetime(args.start.year, args.start.month, args.start.day, tzinfo=UTC)
    ds = simulate(
        stores=args.stores,
        skus=args.skus,
        days=args.days,
        seed=args.seed,
        start=start,
        params=profile(args.profile),
    )
    write_dataset(
        ds,
        args.out_dir,
        generator={"name": "availability simulate", "profile": args.profile, "seed": args.seed},
    )
    elapsed = time.perf_counter() - began
    summary = msgspec.to_builtins(ds.summary)
    summary["seconds"] = round(elapsed, 2)
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(summary), indent=2).decode() + "\n")
    return 0

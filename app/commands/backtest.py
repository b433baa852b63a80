"""``availability backtest``: replay a dataset through the engine and write the report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "backtest",
        help="replay a backtest dataset and write the contract report",
        description="Replay a backtest dataset in publication order through the confidence "
        "engine, answering each visit as the live API would, and write the backtest report "
        "(service, naive and static_buffer) as JSON.",
    )
    p.add_argument("dataset_dir", type=Path, metavar="DATASET_DIR")
    p.add_argument("--out", type=Path, required=True, metavar="REPORT.json")
    p.add_argument("--policy", type=Path, default=None, help="policy TOML (default: built-in)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from app.backtest.dataset import DatasetError
    from app.backtest.replay import replay, terminal_progress
    from app.backtest.report import encode_report
    from app.domain.policy import Policy

    policy = Policy()
    if args.policy is not None:
        from app.policy_file import load_policy

        policy = load_policy(args.policy)
    try:
        report, stats = replay(args.dataset_dir, policy=policy, progress=terminal_progress())
    except DatasetError as exc:
        sys.stderr.write(f"backtest: {exc}\n")
        return 2
    args.out.write_bytes(encode_report(report))
    if stats.pos_ahead:
        from app.domain.model import MAX_AHEAD

        lines = ", ".join(map(str, stats.pos_ahead_lines))
        sys.stderr.write(
            f"backtest: {stats.pos_ahead} POS event(s) dated more than {MAX_AHEAD} after their "
            f"published_at left out, as the live pull rejects them (pos_events lines {lines}"
            f"{', …' if stats.pos_ahead > len(stats.pos_ahead_lines) else ''})\n"
        )
    if stats.feedback_ahead:
        from app.domain.model import OBSERVATION_MAX_AHEAD

        sys.stderr.write(
            f"backtest: {stats.feedback_ahead} feedback row(s) observed more than "
            f"{OBSERVATION_MAX_AHEAD} after their published_at left out, as the API refuses them\n"
        )
    s = report.policies["service"]
    sys.stderr.write(
        f"{stats.visits} visits, {stats.pos_events} POS events in {stats.seconds:.1f}s; "
        f"service FPR {s.false_promise_rate:.2%} coverage {s.coverage:.2%} brier {s.brier:.4f}\n"
    )
    return 0

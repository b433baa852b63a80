"""``availability tune``: choose the policy with the most coverage under a false-promise target."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

from app.settings import Settings


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if math.isnan(value) or not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(
            f"must be a rate between 0 and 1 (exclusive), e.g. 0.01 for 1%; got {text}"
        )
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def register(sub: Any) -> None:
    from app.backtest.tune import FIT_FRACTION, MAX_BUFFER, MIN_CATEGORY_VISITS

    p = sub.add_parser(
        "tune",
        help="choose a promise policy from a backtest dataset",
        description="Replay a backtest dataset once, then choose the confidence threshold and "
        "minimum safety buffers (default, and per category where there are enough visits) "
        "with the most coverage whose false-promise rate on the earlier part of the window "
        "(the fit slice) stays within the target; report how that choice does on the later "
        "part (the validation slice). Exit 1 when no candidate meets the target.",
    )
    p.add_argument("dataset_dir", type=Path, metavar="DATASET_DIR")
    p.add_argument(
        "--max-false-promise-rate", type=_rate, required=True, metavar="RATE",
        help="target false-promise rate, e.g. 0.01",
    )  # fmt: skip
    p.add_argument("--out", type=Path, default=None, metavar="POLICY.toml",
                   help="write the chosen policy here (loadable by AVAILABILITY_POLICY_FILE)")  # fmt: skip
    p.add_argument("--report", type=Path, default=None, metavar="TUNE.json",
                   help="every candidate's fit and validation scores as JSON")  # fmt: skip
    p.add_argument("--policy", type=Path, default=None, metavar="BASE.toml",
                   help="base policy: its other settings are kept and the replay uses it "
                   "(its buffer rules are replaced)")  # fmt: skip
    p.add_argument("--fit-fraction", type=_rate, default=FIT_FRACTION,
                   help=f"share of the window to fit on (default {FIT_FRACTION})")  # fmt: skip
    p.add_argument("--max-buffer", type=_count, default=MAX_BUFFER,
                   help=f"largest minimum safety buffer tried (default {MAX_BUFFER})")  # fmt: skip
    p.add_argument("--min-category-visits", type=_count, default=MIN_CATEGORY_VISITS,
                   help="fit-slice visits a category needs for its own buffer "
                   f"(default {MIN_CATEGORY_VISITS})")  # fmt: skip
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from app.backtest.dataset import DatasetError
    from app.backtest.replay import terminal_progress
    from app.backtest.tune import (
        TuneError,
        encode_tune_report,
        policy_toml,
        summary,
        table,
        to_policy,
        tune,
        why_none,
    )
    from app.backtest.tune_record import RecordingMismatch, record_visits
    from app.domain.policy import Policy
    from app.policy_file import load_policy
    from app.settings import SettingsError

    def fail(message: str) -> int:
        sys.stderr.write(f"tune: {message}\n")
        return 2

    if not args.dataset_dir.is_dir():
        return fail(f"dataset directory {args.dataset_dir} does not exist")
    for path in (args.out, args.report):
        if path is not None and not path.parent.is_dir():
            return fail(f"cannot write {path}: directory {path.parent} does not exist")
    try:
        base = Policy() if args.policy is None else load_policy(args.policy)
        recording = record_visits(args.dataset_dir, policy=base, progress=terminal_progress())
        result = tune(
            recording,
            args.max_false_promise_rate,
            fit_fraction=args.fit_fraction,
            max_buffer=args.max_buffer,
            min_category_visits=args.min_category_visits,
        )
    except (DatasetError, SettingsError, TuneError, RecordingMismatch) as exc:
        return fail(str(exc))
    print(table(result))
    print(summary(result, replay_seconds=recording.seconds))
    if args.report is not None:
        args.report.write_bytes(encode_tune_report(result))
    if result.chosen is None:
        sys.stderr.write(f"tune: {why_none(result)}; no policy written\n")
        return 1
    if args.out is not None:
        policy = to_policy(result.chosen.candidate, base)
        args.out.write_text(policy_toml(policy, result, str(args.dataset_dir)), encoding="utf-8")
        print(f"policy written to {args.out}")
    return 0

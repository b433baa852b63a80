"""Accuracy on several simulated datasets: service vs the book-only baselines.

    .venv/bin/python scripts/bench_accuracy.py [--work DIR] [--threshold 0.9] [--buffer 2]
        [--no-feedback]

Simulates (or reuses, in DIR: the directory name carries a hash of the world's
parameters, so a changed world is simulated afresh) three default-profile datasets
with different seeds, and the harsher shelf_gap (the default world before it was
checked against published out-of-stock causes), high_shrink and slow_shelf ones,
and lean_stock (slow sellers on little cover: many books within a 2-unit buffer)
(20 stores × 200 skus × 14 days), replays
each and prints false-promise rate, coverage, Brier and the worst calibration gap
over bins with ≥ 500 visits, and whether the service beats static_buffer on false-promise
rate and coverage at once (``--threshold 0.3 --buffer 0``: a coverage-first policy).
``--toy`` adds the second world (``scripts/toy_world.py``, written from the contract
alone: theft 3% seed 1 and theft 0.5% seed 2, same size) to the same run.
Targets: service FPR ≤ 2%, coverage ≥ 80%, better than
static_buffer on both, every big bin within 0.03, Brier below both baselines.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import msgspec

from app.backtest.params import profile
from app.backtest.replay import replay
from app.domain.policy import Policy

RUNS = (
    ("default", 1),
    ("default", 2),
    ("default", 3),
    ("shelf_gap", 1),
    ("high_shrink", 4),
    ("slow_shelf", 5),
    ("lean_stock", 6),
)


def ensure(work: Path, name: str, seed: int) -> Path:
    tag = hashlib.sha256(msgspec.json.encode(profile(name))).hexdigest()[:8]
    root = work / f"{name}-{seed}-{tag}"
    if not (root / "manifest.json").exists():
        from app.backtest.simulator import simulate
        from app.backtest.writer import write_dataset

        ds = simulate(stores=20, skus=200, days=14, seed=seed,
                      start=datetime(2026, 11, 1, tzinfo=UTC), params=profile(name))  # fmt: skip
        write_dataset(ds, root, generator={"name": "bench_accuracy", "profile": name, "seed": seed})
    return root


TOY_RUNS = (("toy-theft3", 1, 0.03), ("toy-theft0.5", 2, 0.005))


def ensure_toy(work: Path, name: str, seed: int, theft: float) -> Path:
    """A second-world dataset (``scripts/toy_world.py``), made once per work dir; the
    name carries a hash of the script, so a changed world is written afresh."""
    script = Path(__file__).with_name("toy_world.py")
    tag = hashlib.sha256(script.read_bytes()).hexdigest()[:8]
    root = work / f"{name}-{seed}-{tag}"
    if not (root / "manifest.json").exists():
        subprocess.run(
            [sys.executable, str(script), str(root), "--seed", str(seed), "--theft", str(theft)],
            check=True, capture_output=True,
        )  # fmt: skip
    return root


def without_feedback(root: Path, work: Path) -> Path:
    """``root`` as a dataset without feedback (the contract makes it optional): a
    directory in ``work`` with links to its files but ``feedback.csv``, and its
    manifest without the ``feedback`` key."""
    out = work / "no-feedback" / root.name
    out.mkdir(parents=True, exist_ok=True)
    manifest = msgspec.json.decode((root / "manifest.json").read_bytes())
    feedback = manifest.pop("feedback", None)
    for item in root.iterdir():
        link = out / item.name
        if item.name not in ("manifest.json", feedback) and not link.exists():
            link.symlink_to(item.resolve())
    (out / "manifest.json").write_bytes(msgspec.json.encode(manifest))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_accuracy"))
    ap.add_argument("--threshold", type=float, default=Policy().confidence_threshold)
    ap.add_argument("--buffer", type=int, default=Policy().safety_buffer, help="minimum buffer")
    ap.add_argument("--no-feedback", action="store_true",
                    help="replay each dataset as if it had no feedback.csv")  # fmt: skip
    ap.add_argument("--toy", action="store_true",
                    help="also the second world (scripts/toy_world.py), two datasets")  # fmt: skip
    args = ap.parse_args()
    policy = Policy(confidence_threshold=args.threshold, safety_buffer=args.buffer)
    print(f"confidence_threshold {args.threshold} safety_buffer {args.buffer}")
    print(
        f"{'dataset':<15} {'policy':<14} {'FPR':>7} {'coverage':>9} {'brier':>7} {'worst gap':>10}"
        "  beats static_buffer on both"
    )
    datasets: list[tuple[str, Callable[[], Path]]] = [
        (f"{name}-{seed}", partial(ensure, args.work, name, seed)) for name, seed in RUNS
    ]
    if args.toy:
        datasets += [
            (name, partial(ensure_toy, args.work, name, seed, theft))
            for name, seed, theft in TOY_RUNS
        ]
    for label, make in datasets:
        root = make()
        if args.no_feedback:
            root = without_feedback(root, args.work)
        report, _ = replay(root, policy=policy)
        static = report.policies["static_buffer"]
        for pname, p in report.policies.items():
            gap = beats = ""
            if p.calibration is not None:
                gaps = [abs(b.mean_confidence - b.observed) for b in p.calibration if b.n >= 500]
                gap = f"{max(gaps, default=0.0):.3f}"
            if pname == "service":
                won = (p.false_promise_rate < static.false_promise_rate
                       and p.coverage > static.coverage)  # fmt: skip
                beats = "yes" if won else "no"
            print(f"{label:<15} {pname:<14} {p.false_promise_rate:7.2%} "
                  f"{p.coverage:9.2%} {p.brier:7.4f} {gap:>10}  {beats}")  # fmt: skip


if __name__ == "__main__":
    main()

"""What the run-out learner learns, and the replay with and without it (diagnosis).

    .venv/bin/python scripts/runout_probe.py DATASET_DIR [DATASET_DIR ...] [--off]

One replay per dataset (``--off``: a second one with the engine's ``runout_factor`` off, the
engine as it was before the learner) prints the service's false-promise rate, coverage,
Brier and worst calibration gap over bins of 500+ visits, then the learner at the end:
stretches and dry stretches per bin of units sold today (chain), the chain's factors and
the stores' factors that differ from them. docs/engine.md ("Issue 3, fourth pass") has
the numbers.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from app.backtest.replay import replay
from app.domain.engine import Engine
from app.domain.policy import Policy
from app.domain.runout import RUN_EDGES, RunOut


def run(root: Path, on: bool) -> RunOut:
    """Replay ``root`` with the factor on or off; print the scores; return the learner."""
    learners: list[RunOut] = []

    def make(policy: Policy, categories: Mapping[str, str | None]) -> Engine:
        engine = Engine(policy, categories, runout_factor=on)
        learners.append(engine.runout)
        return engine

    report, _ = replay(root, make_engine=make)
    p = report.policies["service"]
    gaps = [abs(b.mean_confidence - b.observed) for b in p.calibration or () if b.n >= 500]
    print(f"{root.name} run-out {'on ' if on else 'off'}: FPR {p.false_promise_rate:.3%} "
          f"coverage {p.coverage:.2%} Brier {p.brier:.4f} "
          f"worst gap {max(gaps, default=0.0):.3f}")  # fmt: skip
    return learners[0]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("datasets", type=Path, nargs="+")
    ap.add_argument("--off", action="store_true", help="also replay with the factor off")
    args = ap.parse_args()
    for root in args.datasets:
        if args.off:
            run(root, False)
        learner = run(root, True)
        edges = ["≤" + f"{RUN_EDGES[0]:g}", *(f">{e:g}" for e in RUN_EDGES)]
        print("  units sold today ", " ".join(f"{e:>6}" for e in edges))
        print("  stretches        ", " ".join(f"{n:6.0f}" for n in learner.bin_n))
        print("  dry              ", " ".join(f"{d:6.0f}" for d in learner.bin_dry))
        chain = learner.factors()
        print("  factor, chain    ", " ".join(f"{f:6.2f}" for f in chain))
        for store in sorted(learner.stores):
            f = learner.factors(store)
            if f != chain:
                print(f"  factor, {store:<9}", " ".join(f"{x:6.2f}" for x in f))


if __name__ == "__main__":
    main()

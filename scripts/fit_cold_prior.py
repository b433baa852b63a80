"""Fit the cold-start calibration (``app.domain.calibration.COLD_PRIOR``) on simulated worlds.

    .venv/bin/python scripts/fit_cold_prior.py [--work DIR] [--seeds 11 12]

Until the engine has ``MIN_LABELS`` labelled outcomes of its own (and for good, where
no feedback comes in), its confidence is the raw model's probability mapped by a
fixed table; the raw model alone is under-confident in the middle of the scale
(each of loss, phantom prior and silence is pessimistic on its own, docs/engine.md).
This script simulates every world of ``app.backtest.params`` with seeds that
``bench_accuracy.py`` does not use (20 stores x 200 skus x 14 days each), replays each
without its feedback (no labels: the cold start), records each visit's raw confidence
and whether the units were on the shelf, and fits the table as ``Calibration`` builds
its map (pool adjacent violators over ``BINS`` bins, each shrunk toward its mean raw
confidence by 20 visits: ``PRIOR_N`` when the table was fitted; over ~700,000 visits
the number hardly matters). Prints the table to paste and each world's share.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from accuracy_probe import VisitRec, record
from bench_accuracy import ensure

from app.backtest.params import PROFILES
from app.domain import calibration as C


def fit(visits: list[VisitRec]) -> list[float]:
    """``Calibration._build`` over the visits (raw confidence -> units on the shelf)."""
    n, hits, raw = [0.0] * C.BINS, [0.0] * C.BINS, [0.0] * C.BINS
    for v in visits:
        if v.ev is None or v.book is None:
            continue
        i = min(C.BINS - 1, max(0, math.floor(v.raw * C.BINS)))
        n[i] += 1
        hits[i] += v.available
        raw[i] += v.raw
    return C.isotonic_map(n, hits, raw, 20.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", type=Path, default=Path("/tmp/fit_cold_prior"))
    ap.add_argument("--seeds", type=int, nargs="+", default=[11, 12])
    args = ap.parse_args()
    visits: list[VisitRec] = []
    for name in sorted(PROFILES):
        for seed in args.seeds:
            recorded, _, _ = record(ensure(args.work, name, seed), feedback=False)
            assessed = [v for v in recorded if v.ev is not None and v.book is not None]
            found = sum(v.available for v in assessed) / max(1, len(assessed))
            print(f"{name}-{seed}: {len(assessed)} visits assessed, {found:.1%} found the units",
                  flush=True)  # fmt: skip
            visits += recorded
    table = fit(visits)
    print(f"COLD_PRIOR = (  # {len(visits)} visits, {len(PROFILES)} worlds, seeds {args.seeds}")
    for i in range(0, C.BINS, 8):
        print("    " + " ".join(f"{x:.3f}," for x in table[i : i + 8]))
    print(")")


if __name__ == "__main__":
    main()

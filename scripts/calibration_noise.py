"""How much a calibration bin's gap moves with which pairs the shoppers happened to look up.

    .venv/bin/python scripts/calibration_noise.py DATASET_DIR [DATASET_DIR ...]

Replays each dataset through the engine (as ``availability backtest`` does), bins the
visits by confidence as the report does, and for every bin of 500 or more visits
prints its gap (observed − mean confidence) with a bootstrap standard error over the
bin's (store, sku) pairs: a pair's visits are drawn together, since they look at the
same shelf within hours of each other and are not independent outcomes. Also the
pairs in the bin and their Kish effective number (how many equally looked-up pairs
would carry as much information). A bin whose error is near 0.03 cannot be held to
0.03 on one dataset whatever the model, so its gap says little alone; a gap of three
errors or more is the model's. docs/engine.md ("stop 22") has the numbers.
``on_shelf_qty`` is read only to score.
"""

from __future__ import annotations

import argparse
import math
import random
from collections import defaultdict
from pathlib import Path

from app.backtest.dataset import open_dataset
from app.backtest.replay import fed_visits
from app.domain.engine import Engine
from app.domain.policy import Policy

Tally = list[float]  # [visits, summed confidence, visits that found the units]
MIN_VISITS = 500


def bins_by_pair(root: Path) -> dict[int, dict[tuple[str, str], Tally]]:
    """Per confidence bin (0-9, as the report's), per pair, its visits' tally."""
    ds = open_dataset(root)
    engine = Engine(Policy(), {p.sku: p.category for p in ds.products})
    bins: dict[int, dict[tuple[str, str], Tally]] = defaultdict(dict)
    for at, visit in fed_visits(engine, ds.ordered()):
        badge = engine.answer(visit.store_id, visit.sku, visit.qty_wanted, at, reasons=False)
        conf = 0.0 if badge.confidence is None else badge.confidence
        b = min(9, math.floor(conf * 10 + 1e-9))
        t = bins[b].setdefault((visit.store_id, visit.sku), [0.0, 0.0, 0.0])
        t[0] += 1
        t[1] += conf
        t[2] += 1.0 if visit.on_shelf_qty >= visit.qty_wanted else 0.0
    return bins


def gap(tallies: list[Tally]) -> float:
    n = sum(t[0] for t in tallies)
    return (sum(t[2] for t in tallies) - sum(t[1] for t in tallies)) / n


def clustered_error(tallies: list[Tally], draws: int, rng: random.Random) -> float:
    """Bootstrap standard error of ``gap`` drawing whole pairs."""
    k = len(tallies)
    gaps = [gap([tallies[rng.randrange(k)] for _ in range(k)]) for _ in range(draws)]
    mean = sum(gaps) / draws
    return math.sqrt(sum((g - mean) ** 2 for g in gaps) / (draws - 1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("datasets", type=Path, nargs="+")
    ap.add_argument("--draws", type=int, default=400, help="bootstrap draws a bin")
    args = ap.parse_args()
    rng = random.Random(1)
    for root in args.datasets:
        print(root.name)
        for b, pairs in sorted(bins_by_pair(root).items()):
            tallies = list(pairs.values())
            n = sum(t[0] for t in tallies)
            if n < MIN_VISITS:
                continue
            kish = n * n / sum(t[0] * t[0] for t in tallies)
            err = clustered_error(tallies, args.draws, rng)
            print(f"  {b / 10:.1f}-{(b + 1) / 10:.1f}  visits {int(n):6d}  pairs {len(tallies):5d}"
                  f"  effective {kish:6.0f}  gap {gap(tallies):+.3f}  error {err:.3f}",
                  flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

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

``--ideal``: instead, how often a perfectly calibrated model with these very
confidences would miss the target: each visit's outcome drawn with probability its
confidence (visits independent, which flatters it: a pair's visits are not), and the
share of draws whose worst 500+-visit bin is beyond 0.03 (docs/engine.md, "stop 25").
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


def _bin(conf: float) -> int:
    return min(9, math.floor(conf * 10 + 1e-9))


def visit_confidences(root: Path) -> list[tuple[str, str, float, bool]]:
    """Each visit's (store, sku, confidence, found), in replay order."""
    ds = open_dataset(root)
    engine = Engine(Policy(), {p.sku: p.category for p in ds.products})
    out = []
    for at, visit in fed_visits(engine, ds.ordered()):
        badge = engine.answer(visit.store_id, visit.sku, visit.qty_wanted, at, reasons=False)
        conf = 0.0 if badge.confidence is None else badge.confidence
        out.append((visit.store_id, visit.sku, conf, visit.on_shelf_qty >= visit.qty_wanted))
    return out


def bins_by_pair(root: Path) -> dict[int, dict[tuple[str, str], Tally]]:
    """Per confidence bin (0-9, as the report's), per pair, its visits' tally."""
    bins: dict[int, dict[tuple[str, str], Tally]] = defaultdict(dict)
    for store_id, sku, conf, found in visit_confidences(root):
        b = _bin(conf)
        t = bins[b].setdefault((store_id, sku), [0.0, 0.0, 0.0])
        t[0] += 1
        t[1] += conf
        t[2] += 1.0 if found else 0.0
    return bins


def ideal_misses(confidences: list[float], draws: int, rng: random.Random) -> list[float]:
    """Worst gap over 500+-visit bins in each of ``draws`` worlds whose outcomes are drawn
    from the confidences themselves."""
    binned = [(_bin(c), c) for c in confidences]  # once, not once a draw
    n, total = [0] * 10, [0.0] * 10
    for b, c in binned:
        n[b] += 1
        total[b] += c
    big = [b for b in range(10) if n[b] >= MIN_VISITS]
    worst = []
    for _ in range(draws):
        hits = [0] * 10
        for b, c in binned:
            hits[b] += rng.random() < c
        worst.append(max((abs(hits[b] - total[b]) / n[b] for b in big), default=0.0))
    return worst


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
    ap.add_argument("--ideal", action="store_true",
                    help="how often a perfectly calibrated model would miss 0.03")  # fmt: skip
    args = ap.parse_args()
    rng = random.Random(1)
    for root in args.datasets:
        if args.ideal:
            worst = sorted(ideal_misses([c for _, _, c, _ in visit_confidences(root)],
                                        args.draws, rng))  # fmt: skip
            beyond = sum(w > 0.03 for w in worst) / len(worst)
            print(f"{root.name}: a perfectly calibrated model misses 0.03 in {beyond:.0%} of "
                  f"{len(worst)} draws (worst gap: median {worst[len(worst) // 2]:.3f}, "
                  f"90th percentile {worst[int(0.9 * len(worst))]:.3f})", flush=True)  # fmt: skip
            continue
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

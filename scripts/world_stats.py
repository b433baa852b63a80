"""The simulated world's hidden statistics, next to the published retail numbers they should match.

    .venv/bin/python scripts/world_stats.py [--profile default] [--seed 1] [--stores 20]

Simulates one dataset in memory (nothing is written) and prints, from the hidden
truth: the shelf out-of-stock rate seen by shoppers (Gruen, Corsten & Bharadwaj
2002: ~8.3% worldwide average), the share of those out-of-stocks with enough
units in the back room (the same study: ~25% are "in the store, not on the
shelf"), the share that fall in or just after a distribution-centre outage of the
sku (upstream: ~28%), and the share of (store, sku) records that differ from the
units physically in the store at the daily snapshot times (DeHoratius & Raman
2008: ~65% inaccurate). See docs/simulator.md, "Checked against published numbers".
Diagnosis only: nothing here is read by the engine.
"""

from __future__ import annotations

import argparse
import random
from datetime import UTC, datetime

from app.backtest import simulator, world
from app.backtest.calendar import DAY
from app.backtest.params import profile

UPSTREAM_TAIL = 3 * DAY  # an out-of-stock this soon after the DC's outage ended is still upstream


RECORDS: list[tuple[int, int]] = []  # (book incl. reserved, shelf + back room) per snapshot


class _Watched(world._Pair):
    """A pair whose hidden state is sampled at each in-window snapshot time."""

    def snapshot(self, t: int, payload: int) -> None:
        super().snapshot(t, payload)
        if self.s.start <= t < self.s.end:
            RECORDS.append((self.book + self.reserved, self.shelf + self.back))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="default")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stores", type=int, default=20)
    ap.add_argument("--skus", type=int, default=200)
    ap.add_argument("--days", type=int, default=14)
    args = ap.parse_args()
    visits: list[tuple[int, int, int, bool]] = []  # (wanted, shelf, back room, DC out)

    def run(
        setup: world.PairSetup, rng: random.Random, *, trace: bool = False
    ) -> world.PairOutcome:
        out = _Watched(setup, rng, trace).run()
        dc = setup.dc_outage
        for (_, arrived, want, shelf), back in zip(out.visits, out.back_at_arrival, strict=True):
            upstream = dc is not None and dc[0] <= arrived < dc[1] + UPSTREAM_TAIL
            visits.append((want, shelf, back, upstream))
        return out

    setattr(simulator, "simulate_pair", run)  # noqa: B010 (watch every pair)
    ds = simulator.simulate(
        stores=args.stores, skus=args.skus, days=args.days, seed=args.seed,
        start=datetime(2026, 11, 1, tzinfo=UTC), params=profile(args.profile),
    )  # fmt: skip
    oos = [v for v in visits if v[1] < v[0]]
    n_oos = max(1, len(oos))
    in_back = sum(1 for want, shelf, back, _ in oos if shelf + back >= want) / n_oos
    upstream = sum(1 for want, shelf, back, up in oos if up and shelf + back < want) / n_oos
    recs = RECORDS
    wrong = sum(1 for book, physical in recs if book != physical) / max(1, len(recs))
    print(f"world {args.profile} seed {args.seed}: {len(visits)} visits, {len(recs)} records")
    print(f"{'':44} {'simulated':>9}  published")
    print(f"{'shelf out-of-stock (visits short)':44} {len(oos) / max(1, len(visits)):9.1%}  ~8.3%")
    print(f"{'  of those, enough in the back room':44} {in_back:9.1%}  ~25%")
    print(f"{'  of those, upstream (DC outage, store empty)':44} {upstream:9.1%}  ~28%")
    print(f"{'records != units in the store':44} {wrong:9.1%}  ~65%")
    if ds.summary is not None:
        print(
            f"naive false-promise rate (book as recorded): {ds.summary.naive_false_promise_rate:.2%}"
        )


if __name__ == "__main__":
    main()

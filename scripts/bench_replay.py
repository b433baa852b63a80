"""Replay speed: POS events and visits per second through the engine, on one core.

    .venv/bin/python scripts/bench_replay.py [DATASET_DIR]

Without a dataset it simulates one (20 stores × 200 skus × 14 days, seed 1) into a
temporary directory first. Prints one measured run: reading is timed separately so
the events/s figure is the engine's (target ≥ 50,000 POS events/s).
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from app.backtest.dataset import Feedback, PublishedEvent, Visit, WarehouseSnapshot, open_dataset
from app.domain.engine import Engine
from app.domain.policy import Policy


def main(root: Path) -> None:
    t0 = time.perf_counter()
    ds = open_dataset(root)
    items = list(ds.stream())
    read = time.perf_counter() - t0
    engine = Engine(Policy(), {p.sku: p.category for p in ds.products})
    events = [i for _, i in items if isinstance(i, PublishedEvent)]
    n_visits = sum(1 for _, i in items if isinstance(i, Visit))
    t_events = t_visits = 0.0
    clock = time.process_time
    for at, item in items:
        if isinstance(item, PublishedEvent):
            s = clock()
            engine.observe_event(item.event)
            t_events += clock() - s
        elif isinstance(item, Visit):
            s = clock()
            engine.answer(item.store_id, item.sku, item.qty_wanted, at)
            t_visits += clock() - s
        elif isinstance(item, Feedback):
            engine.observe_feedback(kind=item.kind, store_id=item.store_id, sku=item.sku,
                                    qty=item.qty, observed_at=item.observed_at, now=at)  # fmt: skip
        elif isinstance(item, WarehouseSnapshot) and item.rows is not None:
            engine.observe_snapshot(item.as_of, item.rows)
    total = read + t_events + t_visits
    print(f"dataset            {root}")
    print(f"read + order       {read:.2f} s ({len(items)} items)")
    print(
        f"POS events         {len(events)} in {t_events:.2f} s CPU = {len(events) / t_events:,.0f} /s"
    )
    print(f"visits answered    {n_visits} in {t_visits:.2f} s CPU = {n_visits / t_visits:,.0f} /s")
    print(
        f"whole replay       {len(events) / total:,.0f} POS events/s including reading and visits"
    )


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        from app.backtest.params import profile
        from app.backtest.simulator import simulate
        from app.backtest.writer import write_dataset

        with tempfile.TemporaryDirectory() as tmp:
            ds = simulate(stores=20, skus=200, days=14, seed=1,
                          start=datetime(2026, 11, 1, tzinfo=UTC), params=profile("default"))  # fmt: skip
            write_dataset(ds, Path(tmp), generator={"name": "bench_replay"})
            main(Path(tmp))

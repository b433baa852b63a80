"""Replay speed: POS events per second through the whole backtest replay, on one core.

    .venv/bin/python scripts/bench_replay.py [DATASET_DIR] [--repeat 3]

Without a dataset it simulates one (20 stores × 200 skus × 14 days, seed 1) into a
temporary directory first. Target: the whole replay (``app.backtest.replay.replay``:
reading, ordering, engine, scoring) at ≥ 50,000 POS events a second. Prints, best
of ``--repeat`` runs each, CPU time (``time.process_time``; the box is shared, so
wall time would measure the neighbours) of:

- reading and ordering the dataset (``list(open_dataset(dir).stream())``);
- the engine fed the POS events alone (no visits, no feedback);
- the engine fed everything (events, snapshots, feedback, and visits answered);
- the whole ``replay()``, which is what the target is about.

Stages are timed as whole loops, never per item (a clock read per item costs
about as much as the item).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from app.backtest.dataset import (
    Feedback,
    PublishedEvent,
    StreamItem,
    Visit,
    WarehouseSnapshot,
    open_dataset,
)
from app.backtest.replay import replay
from app.domain.engine import Engine
from app.domain.policy import Policy


def best(repeat: int, run: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.process_time()
        run()
        times.append(time.process_time() - start)
    return min(times)


def feed(items: list[tuple[datetime, StreamItem]], categories: dict[str, str | None],
         events_only: bool) -> None:  # fmt: skip
    engine = Engine(Policy(), categories)
    observe = engine.observe_event
    for at, item in items:
        if isinstance(item, PublishedEvent):
            observe(item.event)
        elif events_only:
            continue
        elif isinstance(item, Visit):
            engine.answer(item.store_id, item.sku, item.qty_wanted, at)
        elif isinstance(item, Feedback):
            engine.observe_feedback(kind=item.kind, store_id=item.store_id, sku=item.sku,
                                    qty=item.qty, observed_at=item.observed_at, now=at)  # fmt: skip
        elif isinstance(item, WarehouseSnapshot) and item.rows is not None:
            engine.observe_snapshot(item.as_of, item.rows)


def main(root: Path, repeat: int) -> None:
    ds = open_dataset(root)
    items = list(ds.stream())
    categories = {p.sku: p.category for p in ds.products}
    n_pos = sum(1 for _, i in items if isinstance(i, PublishedEvent))
    n_visits = sum(1 for _, i in items if isinstance(i, Visit))
    t_read = best(repeat, lambda: list(open_dataset(root).stream()))
    t_events = best(repeat, lambda: feed(items, categories, events_only=True))
    t_engine = best(repeat, lambda: feed(items, categories, events_only=False))
    t_whole = best(repeat, lambda: replay(root))
    print(f"dataset             {root}: {n_pos} POS lines, {n_visits} visits, {len(items)} items")
    print(f"read + order        {t_read:6.2f} s CPU")
    print(f"engine, POS only    {t_events:6.2f} s CPU = {n_pos / t_events:8,.0f} POS events/s")
    print(f"engine, everything  {t_engine:6.2f} s CPU (visits and feedback "
          f"{t_engine - t_events:.2f} s: {1e6 * (t_engine - t_events) / n_visits:.0f} µs a visit)")  # fmt: skip
    print(f"whole replay()      {t_whole:6.2f} s CPU = {n_pos / t_whole:8,.0f} POS events/s "
          f"(target 50,000)")  # fmt: skip


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", nargs="?", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    if args.dataset is not None:
        main(args.dataset, args.repeat)
    else:
        from app.backtest.params import profile
        from app.backtest.simulator import simulate
        from app.backtest.writer import write_dataset

        with tempfile.TemporaryDirectory() as tmp:
            sim = simulate(stores=20, skus=200, days=14, seed=1,
                           start=datetime(2026, 11, 1, tzinfo=UTC), params=profile("default"))  # fmt: skip
            write_dataset(sim, Path(tmp), generator={"name": "bench_replay"})
            main(Path(tmp), args.repeat)

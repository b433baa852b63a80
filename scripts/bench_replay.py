"""Replay speed: POS events per second through the whole backtest replay, on one core.

    .venv/bin/python scripts/bench_replay.py [DATASET_DIR] [--repeat 3] [--where]
    .venv/bin/python scripts/bench_replay.py --memory

Without a dataset it simulates one (20 stores × 200 skus × 14 days, seed 1) into a
temporary directory first. Target: the whole replay (``app.backtest.replay.replay``:
reading, ordering, engine, scoring) at ≥ 50,000 POS events a second. Prints, best
of ``--repeat`` runs each, CPU time (``time.process_time``; the box is shared, so
wall time would measure the neighbours) of:

- reading and ordering the dataset (``list(open_dataset(dir).stream())``);
- the engine fed the POS events alone (no visits, no feedback);
- the engine fed everything (events, snapshots, feedback, and visits answered);
- the whole ``replay()``, which is what the target is about;
- when the engine runs compiled (``app.domain.NATIVE``, ``make`` builds it), the whole
  ``replay()`` again in a process with ``AVAILABILITY_PURE=1`` (plain Python), and
  the ratio.

Stages are timed as whole loops, never per item (a clock read per item costs
about as much as the item). ``--where`` instead runs ``replay()`` once under a
sampling profiler (a CPU-time timer signal every 0.5 ms recording the stack) and
prints each function's share of the samples, itself and below it: cProfile's per-call
overhead inflates the many small calls a replay makes, the sampler does not.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.backtest.dataset import (
    Feedback,
    PublishedEvent,
    StreamItem,
    Visit,
    WarehouseSnapshot,
    open_dataset,
)
from app.backtest.replay import observe_snapshot, replay
from app.domain import NATIVE_IN_USE
from app.domain.engine import Engine
from app.domain.policy import Policy
from scripts.synthetic_chain import catalogue, fill


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
    in_force: dict[str, int] = {}
    for at, item in items:
        if isinstance(item, PublishedEvent):
            observe(item.event)
        elif events_only:
            continue
        elif isinstance(item, Visit):
            # without reasons, as replay() asks
            engine.answer(item.store_id, item.sku, item.qty_wanted, at, reasons=False)
        elif isinstance(item, Feedback):
            engine.observe_feedback(kind=item.kind, store_id=item.store_id, sku=item.sku,
                                    qty=item.qty, observed_at=item.observed_at, now=at)  # fmt: skip
        elif isinstance(item, WarehouseSnapshot):
            observe_snapshot(engine, item, in_force)


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
          f"(target 50,000), engine {'compiled' if NATIVE_IN_USE else 'plain Python'}")  # fmt: skip
    if NATIVE_IN_USE:  # the same replay in plain Python, side by side
        t_pure = plain_whole(root, repeat)
        print(f"  plain Python      {t_pure:6.2f} s CPU = {n_pos / t_pure:8,.0f} POS events/s "
              f"(AVAILABILITY_PURE=1): compiled is {t_pure / t_whole:.2f}× as fast")  # fmt: skip


def plain_whole(root: Path, repeat: int) -> float:
    """``best(repeat, replay)`` in a process that runs the engine as plain Python."""
    run = subprocess.run(
        [sys.executable, __file__, str(root), "--repeat", str(repeat), "--whole-only"],
        env={**os.environ, "AVAILABILITY_PURE": "1"}, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(run.stdout.split()[-1])


def where(root: Path, top: int = 40) -> None:
    """Share of CPU-time samples per function (inclusive, then self) over one ``replay()``."""
    inclusive: Counter[str] = Counter()
    itself: Counter[str] = Counter()

    def name(f: FrameType) -> str:
        return f"{Path(f.f_code.co_filename).name}:{f.f_code.co_name}"

    def sample(_signum: int, frame: FrameType | None) -> None:
        if frame is None:
            return
        itself[name(frame)] += 1
        on_stack = set()
        f: FrameType | None = frame
        while f is not None:
            on_stack.add(name(f))
            f = f.f_back
        inclusive.update(on_stack)

    signal.signal(signal.SIGPROF, sample)
    signal.setitimer(signal.ITIMER_PROF, 0.0005, 0.0005)
    try:
        replay(root)
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
    n = max(1, sum(itself.values()))
    print(f"{n} samples; share with the function on the stack (inclusive) / running (self)")
    for key, count in inclusive.most_common(top):
        print(f"{100 * count / n:5.1f}% {100 * itself[key] / n:5.1f}%  {key}")


def memory(stores: int = 200, skus: int = 5000) -> None:
    """RSS and tracemalloc growth of a fresh Engine fed one snapshot of stores × skus rows
    (the live engine's pairs are mostly seen only in snapshots: they must stay cheap)."""

    def rss_mb() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
        return float("nan")

    categories = catalogue(skus)
    names = list(categories)
    for traced in (False, True):
        gc.collect()
        before = rss_mb()
        if traced:
            tracemalloc.start()
        engine = Engine(Policy(), categories)
        fill(engine, stores, names)
        gc.collect()
        if traced:
            current, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            print(f"tracemalloc: {current / 2**20:.0f} MB held, peak {peak / 2**20:.0f} MB")
        else:
            print(f"{stores * skus:,} snapshot rows: RSS +{rss_mb() - before:.0f} MB")
        del engine


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("dataset", nargs="?", type=Path)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--where", action="store_true", help="sample where replay() spends its time")
    ap.add_argument("--memory", action="store_true",
                    help="memory of a fresh engine fed 1M snapshot rows (no dataset)")  # fmt: skip
    ap.add_argument("--whole-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory:
        memory()
    elif args.dataset is not None and args.whole_only:
        print(best(args.repeat, lambda: replay(args.dataset)))
    elif args.dataset is not None and args.where:
        where(args.dataset)
    elif args.dataset is not None:
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

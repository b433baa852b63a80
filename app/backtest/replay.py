"""Replay a backtest dataset through the confidence engine, as the live service would.

A simulated clock walks the dataset's one publication-ordered stream: each POS
event, snapshot and feedback row reaches the engine at its ``published_at``, and
each visit is answered at its ``viewed_at`` from only what came before. A visit's
``on_shelf_qty`` and ``arrived_at`` are read only to score the answer. Snapshots
that did not parse, or that look truncated by the live pull's rule
(``app.domain.truncation``), are quarantined: the previous rows stay in force.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TextIO

import msgspec

from app.backtest.dataset import (
    Feedback,
    PublishedEvent,
    StreamItem,
    Visit,
    WarehouseSnapshot,
    open_dataset,
)
from app.backtest.report import BacktestReport, ReportBuilder
from app.collector import collector_paused
from app.domain.badge import PROMISES
from app.domain.engine import Engine
from app.domain.model import OBSERVATION_MAX_AHEAD
from app.domain.policy import Policy
from app.domain.truncation import DEFAULT_MAX_DROP, rows_by_location, truncation_problem


class ReplayStats(msgspec.Struct, kw_only=True):
    """What the replay went through, and how fast."""

    pos_lines: int = 0
    pos_events: int = 0  # unique (redeliveries not counted)
    # Events left out: dated more than MAX_AHEAD after their publication (a wrong till
    # clock, whose page the live pull rejects), the first few line numbers of them.
    pos_ahead: int = 0
    pos_ahead_lines: tuple[int, ...] = ()
    snapshots: int = 0
    quarantined: int = 0
    feedback: int = 0
    feedback_ahead: int = 0  # left out: observed more than OBSERVATION_MAX_AHEAD after it
    visits: int = 0
    seconds: float = 0.0


Progress = Callable[[int, int], None]


def observe_snapshot(engine: Engine, item: WarehouseSnapshot, in_force: dict[str, int]) -> bool:
    """Apply a snapshot as the live pull would, or quarantine it (False): when it did not
    parse, or when a location it names lost more than half the rows it has in force
    (``in_force``: rows per location, kept up to date here). One call for the replay
    and the callers of ``fed_visits``, which must feed the engine identically."""
    if item.rows is None:
        return False
    staged = rows_by_location(item.rows)
    if truncation_problem(staged, in_force, DEFAULT_MAX_DROP) is not None:
        return False
    in_force.update(staged)
    engine.observe_snapshot(item.as_of, item.rows)
    return True


def observe_feedback(engine: Engine, item: Feedback, at: datetime) -> bool:
    """A feedback row reaches the engine at ``at``, its publication time, or is left out
    (False) when dated more than ``OBSERVATION_MAX_AHEAD`` after it, as the API refuses
    it. One call for the replay and the tuning recorder, which must feed the engine
    identically."""
    if item.observed_at - at > OBSERVATION_MAX_AHEAD:
        return False
    engine.observe_feedback(
        kind=item.kind,
        store_id=item.store_id,
        sku=item.sku,
        qty=item.qty,
        observed_at=item.observed_at,
        now=at,
    )
    return True


def fed_visits(
    engine: Engine, items: Sequence[tuple[datetime, StreamItem]], progress: Progress | None = None
) -> Iterator[tuple[datetime, Visit]]:
    """Each visit of ``items`` (publication order) with its time, the engine fed every POS
    event, feedback row and parsed snapshot before it, as ``replay`` feeds it: for
    callers that answer the visits their own way (the tuning recorder, the diagnosis
    scripts). ``replay`` keeps its own loop, inlined for speed."""
    total = len(items)
    step = max(1, total // 200)
    in_force: dict[str, int] = {}  # rows per location of the snapshots applied
    for n, (at, item) in enumerate(items):
        if isinstance(item, PublishedEvent):
            engine.observe_event(item.event)
        elif isinstance(item, Visit):
            yield at, item
        elif isinstance(item, Feedback):
            observe_feedback(engine, item, at)
        elif isinstance(item, WarehouseSnapshot):
            observe_snapshot(engine, item, in_force)
        if progress is not None and n % step == 0:
            progress(n, total)
    if progress is not None:
        progress(total, total)


def replay(
    root: Path | str,
    *,
    policy: Policy | None = None,
    progress: Progress | None = None,
    make_engine: Callable[[Policy, Mapping[str, str | None]], Engine] = Engine,
) -> tuple[BacktestReport, ReplayStats]:
    """Score the engine's badges (and the book baselines) on one dataset. ``make_engine``
    builds the engine from the policy and the catalogue (diagnosis scripts pass a variant
    or keep a reference to it). The cyclic garbage collector is paused meanwhile."""
    with collector_paused():  # the engine's records hold no cycles: ~10 % of a replay
        return _replay(root, policy, progress, make_engine)


def _replay(
    root: Path | str,
    policy: Policy | None,
    progress: Progress | None,
    make_engine: Callable[[Policy, Mapping[str, str | None]], Engine],
) -> tuple[BacktestReport, ReplayStats]:
    began = time.perf_counter()
    ds = open_dataset(root)
    engine = make_engine(policy or Policy(), {p.sku: p.category for p in ds.products})
    report = ReportBuilder()
    items = ds.ordered()
    total = len(items)
    step = max(1, total // 200)
    observe_event = engine.observe_event
    answer = engine.answer
    add = report.add
    pos_lines = pos_events = visits = feedback = snapshots = quarantined = 0  # locals in the loop
    feedback_ahead = 0
    in_force: dict[str, int] = {}  # rows per location of the snapshots applied
    # Dispatch on the exact type (the reader builds these four): ``isinstance`` against a
    # msgspec Struct class that fails goes through ``__instancecheck__`` (~4x a match).
    for i, (at, item) in enumerate(items):
        if type(item) is PublishedEvent:  # (type(x) is a specialised, cheap call)
            pos_lines += 1
            if observe_event(item.event):
                pos_events += 1
        elif type(item) is Visit:
            wanted = item.qty_wanted
            badge = answer(item.store_id, item.sku, wanted, at, reasons=False)  # scored: no reasons
            conf = badge.confidence
            # add(qty_wanted, on_shelf_qty, book, promise, confidence), positional: hot loop
            add(wanted, item.on_shelf_qty, badge.book, badge.state in PROMISES,
                0.0 if conf is None else conf)  # fmt: skip
            visits += 1
        elif type(item) is Feedback:
            if observe_feedback(engine, item, at):
                feedback += 1
            else:
                feedback_ahead += 1
        elif type(item) is WarehouseSnapshot:
            snapshots += 1
            if not observe_snapshot(engine, item, in_force):
                quarantined += 1
        if progress is not None and i % step == 0:
            progress(i, total)
    if progress is not None:
        progress(total, total)
    stats = ReplayStats(
        pos_lines=pos_lines,
        pos_events=pos_events,
        pos_ahead=len(ds.ahead),
        pos_ahead_lines=tuple(ds.ahead[:5]),
        snapshots=snapshots,
        quarantined=quarantined,
        feedback=feedback,
        feedback_ahead=feedback_ahead,
        visits=visits,
    )
    stats.seconds = time.perf_counter() - began
    return report.finish(), stats


def terminal_progress(stream: TextIO = sys.stderr) -> Progress | None:
    """A one-line bar on ``stream`` when it is a terminal; ``None`` otherwise (logs stay clean)."""
    if not stream.isatty():
        return None
    began = time.perf_counter()

    def show(done: int, total: int) -> None:
        frac = done / total if total else 1.0
        bar = "#" * int(frac * 30)
        elapsed = time.perf_counter() - began
        stream.write(f"\rreplay [{bar:<30}] {frac:6.1%} {elapsed:5.0f}s")
        if done >= total:
            stream.write("\n")
        stream.flush()

    return show

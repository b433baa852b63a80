"""One replay pass that records, per visit, everything needed to re-score any tuning candidate.

Tuning searches confidence thresholds and minimum safety buffers. Replaying the
dataset once per candidate would cost a full replay each (seconds per dataset);
but what the engine *learns* does not depend on those two knobs (only the
answer does), so one pass can record per visit: the outcome, the book, whether
the store's data was fresh, the engine's confidence, and the engine's
``Evidence`` (the units held back depend on the threshold: ``held_back(ev, t)``
is the depletion quantile at ``t``, recomputed offline for any ``t``). A
candidate's badge is then

    promise = fresh and confidence ≥ t and book − (minimum buffer + held(ev, t)) ≥ wanted

which is exactly ``badge_for``'s rule. The pass checks that claim on every visit
against the engine's own badge under the base policy and stops with
``RecordingMismatch`` if it ever fails (the engine changed in a way this module
does not model), so a tuning result is never silently computed from a wrong rule.

The feeding loop mirrors ``app.backtest.replay.replay`` (same stream, same calls);
``tests/test_tune_record.py`` holds the two equal.
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

import msgspec

from app.backtest.dataset import Visit, open_dataset
from app.backtest.replay import Progress, fed_visits
from app.domain.confidence import Evidence, held_back
from app.domain.engine import Engine
from app.domain.policy import Policy


class RecordingMismatch(RuntimeError):
    """The engine's badge disagrees with the offline re-scoring rule: tuning would be wrong."""


class VisitRecord(msgspec.Struct, frozen=True, array_like=True):
    """One visit as the tuner needs it; ``evidence`` is ``None`` when no promise was possible."""

    viewed_at: datetime
    category: str | None
    wanted: int
    available: bool  # on_shelf_qty ≥ wanted (scoring only)
    book: int | None
    fresh: bool  # a book and store data within max_data_age: a promise is possible
    confidence: float  # 0.0 when the engine gave none
    evidence: Evidence | None  # what the engine held back from, at the base arrival horizon
    promise: bool  # the engine's own answer under the base policy


class Recording(msgspec.Struct, frozen=True):
    """Everything one pass produced: the dataset window, the grid and the visits."""

    dataset: str
    start: datetime
    end: datetime
    base_policy: Policy
    visits: list[VisitRecord]
    seconds: float


def held(rec: VisitRecord, threshold: float) -> int:
    """Units the engine holds back for sales and their uncertainty at ``threshold``."""
    return 0 if rec.evidence is None else sum(held_back(rec.evidence, threshold))


def rescored_promise(rec: VisitRecord, threshold: float, min_buffer: int) -> bool:
    """The badge rule of ``badge_for`` at a threshold and a minimum buffer."""
    return (
        rec.fresh
        and rec.book is not None
        and rec.confidence >= threshold
        and rec.book - min_buffer - held(rec, threshold) >= rec.wanted
    )


def record_visits(
    root: Path | str,
    *,
    policy: Policy | None = None,
    progress: Progress | None = None,
) -> Recording:
    """Replay ``root`` once under ``policy`` and record every visit for re-scoring."""
    began = time.perf_counter()
    base = policy or Policy()
    ds = open_dataset(root)
    categories = {p.sku: p.category for p in ds.products}
    engine = Engine(base, categories)
    out: list[VisitRecord] = []
    items = list(ds.stream())
    for at, visit in fed_visits(engine, items, progress):
        out.append(_record(engine, base, visit, at, categories.get(visit.sku)))
    return Recording(
        dataset=str(root),
        start=ds.start,
        end=ds.end,
        base_policy=base,
        visits=out,
        seconds=time.perf_counter() - began,
    )


def _record(
    engine: Engine,
    base: Policy,
    visit: Visit,
    at: datetime,
    category: str | None,
) -> VisitRecord:
    badge = engine.answer(visit.store_id, visit.sku, visit.qty_wanted, at)
    ev: Evidence | None = None
    fresh = badge.state != "unknown"  # unknown = no book, or stale store data
    if fresh:
        pos = engine.ledger.position(visit.store_id, visit.sku, at)
        assert pos is not None  # a badge other than unknown has a book
        # Engine has no public hook for the evidence; the check below guards this use.
        ev = engine._evidence(pos, visit.qty_wanted, at, base.arrival_horizon)
        minimum = base.buffer_for(visit.store_id, visit.sku, category)
        computed = sum(held_back(ev, base.confidence_threshold))
        if badge.safety_buffer != minimum + computed:
            raise RecordingMismatch(
                f"visit {visit.store_id}/{visit.sku} at {at.isoformat()}: engine held back "
                f"{badge.safety_buffer - minimum} units, re-scoring computes {computed}"
            )
    rec = VisitRecord(
        viewed_at=visit.viewed_at,
        category=category,
        wanted=visit.qty_wanted,
        available=visit.available,
        book=badge.book,
        fresh=fresh,
        confidence=0.0 if badge.confidence is None else badge.confidence,
        evidence=ev,
        promise=badge.promise,
    )
    if fresh:
        minimum = base.buffer_for(visit.store_id, visit.sku, category)
        if rescored_promise(rec, base.confidence_threshold, minimum) != badge.promise:
            raise RecordingMismatch(
                f"visit {visit.store_id}/{visit.sku} at {at.isoformat()}: engine said "
                f"{badge.state}, re-scoring disagrees"
            )
    elif badge.promise:
        raise RecordingMismatch(f"visit {visit.store_id}/{visit.sku}: a promise without data")
    return rec

"""Score the book-only baselines on a dataset: a reference replay, not the service.

It applies the contract's book position to exactly what was published before
each visit (snapshots whole, later ones only, bad ones quarantined; redelivered
events once) and scores the ``naive`` badge as if it were the service. That gives
every dataset a floor the real policy must beat, and checks the reader, the
stream order and the scorer end to end.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path

from app.backtest.dataset import PublishedEvent, Visit, WarehouseSnapshot, open_dataset
from app.backtest.report import BacktestReport, ReportBuilder, naive_promise
from app.domain.book import book_position
from app.domain.model import PosEvent, SnapshotRow


def score_baselines(root: Path | str) -> BacktestReport:
    """The report with the naive badge standing in for the service."""
    ds = open_dataset(root)
    rows: dict[tuple[str, str], SnapshotRow] = {}
    location_as_of: dict[str, datetime] = {}
    events: dict[tuple[str, str], list[PosEvent]] = defaultdict(list)
    seen: set[str] = set()
    report = ReportBuilder()
    for _, item in ds.stream():
        if isinstance(item, PublishedEvent):
            e = item.event
            if e.event_id not in seen:
                seen.add(e.event_id)
                events[(e.store_id, e.sku)].append(e)
        elif isinstance(item, Visit):
            pair = (item.store_id, item.sku)
            pos = book_position(
                item.store_id,
                item.sku,
                snapshot_row=rows.get(pair),
                location_as_of=location_as_of.get(item.store_id),
                events=events.get(pair, ()),
                at=item.viewed_at,
            )
            book = pos.book if pos is not None else None
            promise = naive_promise(book, item.qty_wanted)
            report.add(
                qty_wanted=item.qty_wanted,
                on_shelf_qty=item.on_shelf_qty,
                book=book,
                promise=promise,
                confidence=1.0 if promise else 0.0,
            )
        elif isinstance(item, WarehouseSnapshot):
            _apply_snapshot(item, rows, location_as_of)
    return report.finish()


def _apply_snapshot(
    snap: WarehouseSnapshot,
    rows: dict[tuple[str, str], SnapshotRow],
    location_as_of: dict[str, datetime],
) -> None:
    """Apply whole or not at all; a location keeps its rows unless the file names it."""
    if snap.rows is None:
        return  # quarantined
    named: dict[str, list[SnapshotRow]] = defaultdict(list)
    for r in snap.rows:
        named[r.location_id].append(r)
    for location, new_rows in named.items():
        if location in location_as_of and location_as_of[location] >= snap.as_of:
            continue  # an older snapshot published late does not roll the book back
        for key in [k for k in rows if k[0] == location]:
            del rows[key]
        for r in new_rows:
            rows[(r.location_id, r.sku)] = r
        location_as_of[location] = snap.as_of

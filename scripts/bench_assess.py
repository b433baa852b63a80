"""The live recompute's per-pair cost: a POS page's badges derived as ``app.db.positions`` does.

    .venv/bin/python scripts/bench_assess.py [--stores 200] [--skus 5000] [--pages 10]

An engine is fed one snapshot of stores × skus rows (20 categories) and then, page by
page, 1,000 sales on random pairs (the shape of ``scripts/bench_reconcile.py``'s POS
pull); after each page the touched pairs' rows go through ``positions._Deriver`` with
a fresh ``Assessor`` (evidence record, stored assessment, badge), without the database.
Prints CPU µs per pair for each page (the box is shared: compare runs side by side,
with ``PYTHONHASHSEED`` fixed, or count instructions under ``valgrind --tool=callgrind``)
and a digest of every derived row, which must not move when only speed changes.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from app.db.positions import _Deriver
from app.domain.engine import Engine
from app.domain.live import Assessor, frozen_calibration
from app.domain.model import Sale
from app.domain.policy import Policy
from scripts.synthetic_chain import AS_OF, catalogue, fill


def main(stores: int, skus: int, pages: int, per_page: int = 1000) -> None:
    categories = catalogue(skus, digits=6)
    as_of = AS_OF
    engine = Engine(Policy(), categories)
    fill(engine, stores, list(categories))
    rng = random.Random(7)
    start = as_of + timedelta(hours=6)
    digest = hashlib.sha256()
    micros = []
    for page in range(pages):
        events = [
            Sale(event_id=f"E{page}-{i}", store_id=f"S{rng.randrange(stores):04d}",
                 sku=f"SKU-{rng.randrange(skus):06d}", qty=1,
                 occurred_at=start + timedelta(seconds=page * per_page + i))
            for i in range(per_page)
        ]  # fmt: skip
        for e in events:
            engine.observe_event(e)
        now = events[-1].occurred_at + timedelta(seconds=5)
        rows = []
        for store, sku in sorted({(e.store_id, e.sku) for e in events}):
            pos = engine.ledger.position(store, sku, now)
            assert pos is not None
            rows.append({"store_id": store, "sku": sku, "book": pos.book,
                         "base_source": pos.base_source, "base_at": pos.base_at,
                         "snapshot_as_of": pos.snapshot_as_of, "last_event_at": pos.last_event_at,
                         "in_transit": pos.in_transit, "category": categories[sku],
                         "store_newest_at": now})  # fmt: skip
        began = time.process_time()
        derive = _Deriver(engine.policy, now, Assessor(engine, now, frozen_calibration(engine, 1)))
        values = [derive(row) for row in rows]  # type: ignore[arg-type]
        micros.append((time.process_time() - began) * 1e6 / len(rows))
        digest.update(repr(values).encode())
    print(f"{stores * skus:,} snapshot pairs, {pages} pages of {per_page:,} sales")
    print("CPU µs per pair, by page: " + " ".join(f"{m:.1f}" for m in micros))
    print(f"best {min(micros):.1f} µs, digest {digest.hexdigest()[:16]}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--stores", type=int, default=200)
    ap.add_argument("--skus", type=int, default=5000)
    ap.add_argument("--pages", type=int, default=10)
    args = ap.parse_args()
    main(args.stores, args.skus, args.pages)

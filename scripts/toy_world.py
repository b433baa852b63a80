"""A second, independent retail world: a contract backtest dataset made without
``app.backtest`` (diagnosis only; docs/engine.md, "stop 29").

The scorer of issue 3 runs on datasets made elsewhere. This world is written from the
contract alone, with a structure the project's simulator does not share, so the
engine's numbers on it say how far they carry:

* no back room: every unit on the record is on the shelf or stolen;
* shoppers arrive as a Poisson stream in opening hours (08:00-21:00 UTC), want 1 unit
  (85%) or 2-3, take what is there; a share of them looked the item up 20-120 min
  before (the visits);
* theft in opening hours, unrecorded, at ``--theft`` × the pair's demand (× 3 in a
  fifth of the stores);
* a shelf count now and then (``--counts-per-day`` a pair), sent as feedback and as a
  POS ``count`` (the record is set to it);
* reorders on the record at close, below 30% of the shelf's capacity (~6 days of
  demand), delivered at 06:00 one or two days later (a POS ``receipt``);
* a daily snapshot of the record at 02:00, published 30-90 min later; POS events
  published ~2 min after they happen.

    .venv/bin/python scripts/toy_world.py OUT_DIR [--seed 1] [--theft 0.03]
        [--stores 20] [--skus 200] [--days 14] [--no-feedback]
    .venv/bin/availability backtest OUT_DIR --out report.json
"""

from __future__ import annotations

import argparse
import json
import math
import random
from datetime import UTC, datetime
from pathlib import Path

DAY = 86400
OPEN, CLOSE = 8 * 3600, 21 * 3600  # opening hours, seconds into the UTC day
SNAPSHOT_AT = 2 * 3600
DELIVERY_AT = 6 * 3600
WARM_DAYS = 10  # simulated before the window, so the window starts mid-life


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class World:
    def __init__(self, seed: int) -> None:
        self.rnd = random.Random(seed)
        self.events: list[dict[str, object]] = []
        self.visits: list[tuple[float, float, str, str, int, int]] = []
        self.feedback: list[tuple[float, str, str, int, float]] = []
        self.snapshots: dict[int, list[tuple[str, str, int]]] = {}

    def event(self, kind: str, store: str, sku: str, at: float, pub: float, **kw: int) -> None:
        self.events.append({
            "event_id": f"E{len(self.events) + 1}", "type": kind, "store_id": store,
            "sku": sku, **kw, "occurred_at": iso(at), "published_at": iso(pub),
        })  # fmt: skip

    def pair(
        self, store: str, sku: str, demand: float, bad: float, t0: int, days: int,
        theft: float, counts_per_day: float, feedback: bool,
    ) -> None:  # fmt: skip
        """One (store, sku) from ``WARM_DAYS`` before ``t0`` to the window's end."""
        rnd = self.rnd
        per_s = demand / (CLOSE - OPEN)  # shoppers per open second
        theft_per_s = theft * bad * demand / (CLOSE - OPEN)
        cap = max(2, int(rnd.gauss(6, 2) * max(1.0, demand)))
        shelf = record = cap
        reorder_at = max(1, int(cap * 0.3))
        pending: tuple[int, int] | None = None  # (arrives, units)
        for d in range(-WARM_DAYS, days):
            d0 = t0 + d * DAY
            if d >= 0:
                self.snapshots.setdefault(d0 + SNAPSHOT_AT, []).append((store, sku, record))
            if pending is not None and pending[0] <= d0 + DELIVERY_AT:
                shelf, record, at = shelf + pending[1], record + pending[1], d0 + DELIVERY_AT
                if d >= 0:
                    self.event("receipt", store, sku, at, at + rnd.randint(60, 900), qty=pending[1])
                pending = None
            happen: list[tuple[float, str]] = []
            for rate, what in ((per_s, "shop"), (theft_per_s, "theft")):
                now = float(d0 + OPEN)
                while rate > 0:
                    now += rnd.expovariate(rate)
                    if now >= d0 + CLOSE:
                        break
                    happen.append((now, what))
            if d >= 0 and rnd.random() < counts_per_day:
                happen.append((d0 + rnd.randint(OPEN, CLOSE - 1), "count"))
            for now, what in sorted(happen):
                if what == "theft":
                    shelf = max(0, shelf - 1)
                elif what == "count":
                    if feedback:
                        self.feedback.append((now, store, sku, shelf, now + rnd.randint(30, 600)))
                    record = shelf
                    self.event("count", store, sku, now, now + rnd.randint(30, 600), on_hand=shelf)
                else:
                    want = 1 if rnd.random() < 0.85 else rnd.randint(2, 3)
                    viewed = now - rnd.randint(20, 120) * 60
                    if viewed >= t0 and rnd.random() < 0.3:
                        self.visits.append((viewed, now, store, sku, want, shelf))
                    take = min(want, shelf)
                    if take > 0:
                        shelf, record = shelf - take, record - take
                        if d >= 0:
                            pub = now + rnd.expovariate(1 / 120)
                            self.event("sale", store, sku, now, pub, qty=take)
            if pending is None and record <= reorder_at:
                pending = (d0 + DAY * rnd.randint(1, 2), cap - max(0, record))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--stores", type=int, default=20)
    ap.add_argument("--skus", type=int, default=200)
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--theft", type=float, default=0.03, help="theft per unit of demand")
    ap.add_argument("--counts-per-day", type=float, default=1 / 20)
    ap.add_argument("--no-feedback", action="store_true", help="counts as POS events only")
    args = ap.parse_args()
    out: Path = args.out
    (out / "warehouse").mkdir(parents=True, exist_ok=True)
    world = World(args.seed)
    rnd = world.rnd
    t0 = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp())
    stores = [f"ST{i:03d}" for i in range(args.stores)]
    skus = [f"P{k:05d}" for k in range(args.skus)]
    cats = ("food", "home", "toys", "tech")
    (out / "stores.csv").write_text("store_id,name,lat,lon,postal_code,timezone\n" + "".join(
        f"{s},Store {s},{45 + rnd.random():.4f},{4 + rnd.random():.4f},,\n" for s in stores))  # fmt: skip
    (out / "products.csv").write_text("sku,name,category\n" + "".join(
        f"{k},Item {k},{cats[i % 4]}\n" for i, k in enumerate(skus)))  # fmt: skip
    demand = {k: math.exp(rnd.gauss(math.log(0.8), 1.3)) for k in skus}  # shoppers a day
    size = {s: math.exp(rnd.gauss(0.0, 0.3)) for s in stores}
    bad = {s: 3.0 if rnd.random() < 0.2 else 1.0 for s in stores}
    for s in stores:
        for k in skus:
            world.pair(s, k, demand[k] * size[s], bad[s], t0, args.days, args.theft,
                       args.counts_per_day, not args.no_feedback)  # fmt: skip
    manifest: dict[str, object] = {
        "format": "availability-backtest/1", "start": iso(t0), "end": iso(t0 + args.days * DAY),
        "stores": "stores.csv", "products": "products.csv", "pos_events": "pos_events.jsonl",
        "visits": "visits.csv", "warehouse_snapshots": [],
    }  # fmt: skip
    refs = []
    for at, rows in sorted(world.snapshots.items()):
        path = f"warehouse/{iso(at)[:13]}.csv"
        (out / path).write_text("location_id,sku,on_hand,reserved,in_transit,as_of\n" + "".join(
            f"{s},{k},{max(0, q)},0,0,{iso(at)}\n" for s, k, q in rows))  # fmt: skip
        refs.append(
            {"path": path, "as_of": iso(at), "published_at": iso(at + rnd.randint(1800, 5400))}
        )
    manifest["warehouse_snapshots"] = refs
    world.events.sort(key=lambda e: str(e["published_at"]))
    (out / "pos_events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in world.events))
    (out / "visits.csv").write_text("viewed_at,arrived_at,store_id,sku,qty_wanted,on_shelf_qty\n" + "".join(
        f"{iso(v)},{iso(a)},{s},{k},{w},{q}\n" for v, a, s, k, w, q in sorted(world.visits)))  # fmt: skip
    if not args.no_feedback:
        (out / "feedback.csv").write_text("observed_at,store_id,sku,kind,qty,published_at\n" + "".join(
            f"{iso(o)},{s},{k},shelf_count,{q},{iso(p)}\n" for o, s, k, q, p in sorted(world.feedback)))  # fmt: skip
        manifest["feedback"] = "feedback.csv"
    (out / "manifest.json").write_text(json.dumps(manifest))
    print(f"{out}: {len(world.events)} POS events, {len(world.visits)} visits, "
          f"{len(world.feedback)} shelf counts, {len(refs)} snapshots")  # fmt: skip


if __name__ == "__main__":
    main()

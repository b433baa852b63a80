"""Offline probe of shelf-state signals for the ranking (diagnosis only).

    .venv/bin/python scripts/shelf_probe.py DATASET_DIR [DATASET_DIR ...]

One replay per dataset records each visit's evidence (as ``accuracy_probe`` does) and
a few pair features the engine does not use: units the pair sold since its store's
trading day began (the rhythm's ``into_day``), clock hours since its last sale and
days since it was last verified. Prints the false-promise rate of the promised
visits by bins of each feature, and the ranking (false-promise rate at 78 / 80 / 82%
coverage, margin-passing visits promised by raw confidence) when the empty-shelf
prior is multiplied by 1 + k·max(0, s − T)/T for s units sold today. docs/engine.md
("Issue 3, third pass") has the numbers. ``on_shelf_qty`` is read only to score.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import msgspec
from accuracy_probe import _Recorder  # scripts/ is on sys.path when run as a script

from app.backtest.dataset import open_dataset
from app.backtest.replay import fed_visits
from app.domain.confidence import Evidence, held_back, raw_confidence
from app.domain.engine import Engine
from app.domain.loss import days_unverified
from app.domain.model import Sale
from app.domain.policy import Policy


@dataclass
class Rec:
    available: bool
    promised: bool
    candidate: bool  # passes the margin rule (buffer 2, quantile at 0.9)
    ev: Evidence
    raw: float
    sold_today: int
    idle_h: float  # clock hours since the last sale (1000 if none)
    days: float


def features(eng: Engine, store: str, sku: str, now: datetime) -> tuple[int, float, float]:
    """(units sold since the store's trading day began, hours since the last sale, days unverified)."""
    p = eng.pairs.get((store, sku))
    rhythm = eng.sales.store_rhythm(store)
    x_now = now.timestamp() / 3600
    c_now = rhythm.clocks_h(x_now)[0]
    into = rhythm.into_day_h(x_now)
    sold, idle = 0, 1000.0
    if p is not None and p.book is not None:
        for occurred, _, e, _ in reversed(p.book.events):
            if occurred > now or not isinstance(e, Sale):
                continue
            if idle == 1000.0:
                idle = (now - occurred).total_seconds() / 3600
            if c_now - rhythm.clocks_h(occurred.timestamp() / 3600)[0] > into:
                break
            sold += e.qty
    verified = None if p is None else p.verified
    return sold, idle, days_unverified(verified, eng.first_seen(store, sku), now)


def record(root: Path) -> tuple[list[Rec], int]:
    ds = open_dataset(root)
    policy = Policy()
    eng = _Recorder(policy, {p.sku: p.category for p in ds.products})
    out: list[Rec] = []
    available = 0
    for at, item in fed_visits(eng, ds.ordered()):
        ok = item.on_shelf_qty >= item.qty_wanted
        available += ok
        badge = eng.answer(item.store_id, item.sku, item.qty_wanted, at)
        pos = eng.ledger.position(item.store_id, item.sku, at)
        if pos is None or badge.state == "unknown" or pos.book <= 0:
            continue
        ev = eng._evidence(pos, item.qty_wanted, at, policy.arrival_horizon)
        margin = pos.book - 2 - sum(held_back(ev, 0.9)) >= item.qty_wanted
        sold, idle, days = features(eng, item.store_id, item.sku, at)
        out.append(Rec(ok, badge.promise, margin, ev, raw_confidence(ev), sold, idle, days))
    return out, available


def by_bins(recs: list[Rec], key: Callable[[Rec], float], edges: tuple[float, ...]) -> str:
    cells = [[0, 0] for _ in range(len(edges) + 1)]
    for r in recs:
        if r.promised:
            cell = cells[sum(key(r) > e for e in edges)]
            cell[0] += 1
            cell[1] += not r.available
    labels = ["≤" + f"{edges[0]:g}", *(f">{e:g}" for e in edges)]
    return "  ".join(
        f"{lab}: {f / n:.1%} of {n}" for lab, (n, f) in zip(labels, cells, strict=True) if n
    )


def ranking(recs: list[Rec], available: int, score: Callable[[Rec], float]) -> str:
    out, kept, false, covs = [], 0, 0, [0.78, 0.80, 0.82]
    for r in sorted((r for r in recs if r.candidate), key=lambda r: -score(r)):
        kept, false = kept + r.available, false + (not r.available)
        while covs and kept / available >= covs[0]:
            out.append(f"{covs.pop(0):.0%}: {false / (kept + false):.2%}")
    return "  ".join(out)


def drained(t: float, k: float) -> Callable[[Rec], float]:
    def score(r: Rec) -> float:
        factor = 1.0 + k * max(0.0, r.sold_today - t) / t
        prior = min(0.95, r.ev.phantom_prior * factor)
        return raw_confidence(msgspec.structs.replace(r.ev, phantom_prior=prior))

    return score


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("datasets", type=Path, nargs="+")
    args = ap.parse_args()
    for root in args.datasets:
        recs, available = record(root)
        print(f"{root.name}: {len(recs)} visits with a position")
        print(
            "  sold today  ", by_bins(recs, lambda r: r.sold_today, (10, 20, 40, 60, 80, 100, 130))
        )
        print("  hours idle  ", by_bins(recs, lambda r: r.idle_h, (1, 3, 6, 12, 24, 48, 96)))
        print("  days unverif", by_bins(recs, lambda r: r.days, (1, 3, 7, 14, 30, 35, 40)))
        print(f"  ranking by raw: {ranking(recs, available, lambda r: r.raw)}")
        for t in (20.0, 40.0, 60.0):
            for k in (0.5, 1.0, 2.0):
                print(f"  prior x (1 + {k:g}·(s − {t:g})+/{t:g}): "
                      f"{ranking(recs, available, drained(t, k))}")  # fmt: skip


if __name__ == "__main__":
    main()

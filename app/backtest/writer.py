"""Write a simulated dataset as a contract backtest directory.

Lines are formatted by hand (identifiers are pattern-safe, so no escaping is
needed): a default dataset has ~10⁵ events and msgspec-encoding dicts one by one
would cost more than the simulation's bookkeeping.
"""

from __future__ import annotations

import csv
import time
from pathlib import Path

import msgspec

from app.backtest.simulator import SimulatedDataset

FORMAT = "availability-backtest/1"


class _Timestamps:
    """RFC 3339 UTC for epoch seconds, with the date part cached per day."""

    def __init__(self) -> None:
        self._days: dict[int, str] = {}

    def __call__(self, t: int) -> str:
        day, rest = divmod(t, 86400)
        prefix = self._days.get(day)
        if prefix is None:
            prefix = self._days[day] = time.strftime("%Y-%m-%d", time.gmtime(day * 86400))
        h, rest = divmod(rest, 3600)
        m, s = divmod(rest, 60)
        return f"{prefix}T{h:02d}:{m:02d}:{s:02d}Z"


class SnapshotRef(msgspec.Struct, frozen=True):
    path: str
    as_of: str
    published_at: str


class ManifestOut(msgspec.Struct, frozen=True):
    format: str
    start: str
    end: str
    stores: str
    products: str
    pos_events: str
    feedback: str
    visits: str
    warehouse_snapshots: list[SnapshotRef]
    generator: dict[str, object]


def write_dataset(
    ds: SimulatedDataset, out_dir: Path, *, generator: dict[str, object] | None = None
) -> None:
    """Write every file of the dataset under ``out_dir`` (created if missing)."""
    ts = _Timestamps()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "warehouse").mkdir(exist_ok=True)

    with (out_dir / "stores.csv").open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("store_id", "name", "lat", "lon", "postal_code", "timezone"))
        for s in ds.stores:
            w.writerow((s.store_id, s.name, s.lat, s.lon, s.postal_code, ds.params.timezone))
    with (out_dir / "products.csv").open("w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(("sku", "name", "category"))
        for k in ds.skus:
            w.writerow((k.sku, k.name, k.category.name))

    with (out_dir / "pos_events.jsonl").open("w") as f:
        lines = []
        for published, event_id, kind, store_id, sku, qty, occurred in ds.pos:
            field = "on_hand" if kind == "count" else "qty"
            lines.append(
                f'{{"event_id":"{event_id}","type":"{kind}","store_id":"{store_id}","sku":"{sku}",'
                f'"{field}":{qty},"occurred_at":"{ts(occurred)}","published_at":"{ts(published)}"}}\n'
            )
        f.writelines(lines)

    refs: list[SnapshotRef] = []
    for snap in ds.snapshots:
        name = f"warehouse/{time.strftime('%Y-%m-%dT%H', time.gmtime(snap.as_of))}.csv"
        as_of = ts(snap.as_of)
        with (out_dir / name).open("w") as f:
            f.write("location_id,sku,on_hand,reserved,in_transit,as_of\n")
            f.writelines(
                f"{loc},{sku},{oh},{res},{tr},{as_of}\n" for loc, sku, oh, res, tr in snap.rows
            )
        refs.append(SnapshotRef(path=name, as_of=as_of, published_at=ts(snap.published_at)))

    with (out_dir / "feedback.csv").open("w") as f:
        f.write("observed_at,store_id,sku,kind,qty,published_at\n")
        f.writelines(
            f"{ts(obs)},{store_id},{sku},{kind},{qty},{ts(pub)}\n"
            for obs, store_id, sku, kind, qty, pub in ds.feedback
        )
    with (out_dir / "visits.csv").open("w") as f:
        f.write("viewed_at,arrived_at,store_id,sku,qty_wanted,on_shelf_qty\n")
        f.writelines(
            f"{ts(v)},{ts(a)},{store_id},{sku},{want},{shelf}\n"
            for v, a, store_id, sku, want, shelf in ds.visits
        )

    manifest = ManifestOut(
        format=FORMAT,
        start=ts(ds.start),
        end=ts(ds.end),
        stores="stores.csv",
        products="products.csv",
        pos_events="pos_events.jsonl",
        feedback="feedback.csv",
        visits="visits.csv",
        warehouse_snapshots=refs,
        generator=generator or {},
    )
    (out_dir / "manifest.json").write_bytes(
        msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"
    )

"""The simulated world: deterministic, contract-valid, internally consistent, varied."""

from __future__ import annotations

import functools
import json
import re
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import msgspec
import pytest

from app.backtest.calendar import HOURS_TEMPLATES
from app.backtest.params import PROFILES, WorldParams, profile
from app.backtest.simulator import SimulatedDataset, simulate
from app.backtest.writer import write_dataset
from app.cli import main
from app.domain.book import book_position
from app.domain.model import ID_PATTERN, PosEvent, SnapshotRow

START = datetime(2026, 11, 2, tzinfo=UTC)  # a Monday
RFC3339_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
IDENT = re.compile(ID_PATTERN)


@functools.cache
def small_world(
    profile_name: str = "default", seed: int = 7, trace: bool = False
) -> SimulatedDataset:
    return simulate(
        stores=4, skus=30, days=5, seed=seed, start=START, params=profile(profile_name), trace=trace
    )


@functools.cache
def mid_world(profile_name: str) -> SimulatedDataset:
    return simulate(stores=8, skus=60, days=7, seed=3, start=START, params=profile(profile_name))


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_same_seed_writes_identical_files_and_another_seed_does_not(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    kw = {"stores": 3, "skus": 15, "days": 3, "start": START, "params": WorldParams()}
    write_dataset(simulate(seed=11, **kw), a)  # type: ignore[arg-type]
    write_dataset(simulate(seed=11, **kw), b)  # type: ignore[arg-type]
    write_dataset(simulate(seed=12, **kw), c)  # type: ignore[arg-type]
    assert _files(a) == _files(b)
    assert _files(a)["pos_events.jsonl"] != _files(c)["pos_events.jsonl"]


def test_a_pair_does_not_depend_on_how_many_other_pairs_exist() -> None:
    """Seeds are per store/sku/pair, so growing the chain keeps existing pairs' worlds."""
    small = simulate(stores=2, skus=5, days=3, seed=5, start=START, params=WorldParams())
    large = simulate(stores=3, skus=9, days=3, seed=5, start=START, params=WorldParams())

    def pair_visits(ds: SimulatedDataset) -> list[tuple[int, int, str, str, int, int]]:
        return [v for v in ds.visits if v[2] == "S001" and v[3] == "SKU-00002"]

    assert pair_visits(small)
    assert pair_visits(small) == pair_visits(large)


def test_written_files_follow_the_contract(tmp_path: Path) -> None:
    ds = small_world()
    write_dataset(ds, tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["format"] == "availability-backtest/1"
    assert RFC3339_Z.match(manifest["start"]) and RFC3339_Z.match(manifest["end"])
    for ref in manifest["warehouse_snapshots"]:
        assert (tmp_path / ref["path"]).is_file()
        assert ref["published_at"] >= ref["as_of"]
        header, *rows = (tmp_path / ref["path"]).read_text().splitlines()
        assert header == "location_id,sku,on_hand,reserved,in_transit,as_of"
        for row in rows:
            loc, sku, on_hand, reserved, in_transit, as_of = row.split(",")
            msgspec.convert(
                {"location_id": loc, "sku": sku, "on_hand": on_hand, "reserved": reserved,
                 "in_transit": in_transit, "as_of": as_of},
                SnapshotRow,
                strict=False,
            )  # fmt: skip
            assert as_of == ref["as_of"]

    lines = (tmp_path / "pos_events.jsonl").read_bytes().splitlines()
    assert len(lines) == len(ds.pos) > 100
    types = set()
    for line in lines:
        event = msgspec.json.decode(line, type=PosEvent)  # raises on anything off-contract
        raw = json.loads(line)
        assert RFC3339_Z.match(raw["occurred_at"]) and RFC3339_Z.match(raw["published_at"])
        assert raw["published_at"] >= raw["occurred_at"]
        assert all(IDENT.match(getattr(event, f)) for f in ("event_id", "store_id", "sku"))
        types.add(raw["type"])
    assert types == {"sale", "return", "receipt", "adjustment", "count"}

    assert (tmp_path / "visits.csv").read_text().splitlines()[0] == (
        "viewed_at,arrived_at,store_id,sku,qty_wanted,on_shelf_qty"
    )
    assert (tmp_path / "feedback.csv").read_text().splitlines()[0] == (
        "observed_at,store_id,sku,kind,qty,published_at"
    )
    kinds = {row.split(",")[3] for row in (tmp_path / "feedback.csv").read_text().splitlines()[1:]}
    assert kinds == {"shelf_count", "pick_found", "pick_short"}


def test_published_after_occurred_and_redeliveries_repeat_the_same_event() -> None:
    ds = mid_world("laggy_pos")
    by_id: dict[str, list[tuple[int, str, str, str, int, int]]] = defaultdict(list)
    for published, event_id, kind, store_id, sku, qty, occurred in ds.pos:
        assert published >= occurred
        by_id[event_id].append((occurred, kind, store_id, sku, qty, published))
    repeated = [v for v in by_id.values() if len(v) > 1]
    assert repeated, "laggy_pos should redeliver some events"
    for copies in repeated:
        assert len({c[:5] for c in copies}) == 1  # identical content, only published_at differs
        assert len({c[5] for c in copies}) == len(copies)


def _events_by_pair(ds: SimulatedDataset) -> dict[tuple[str, str], list[PosEvent]]:
    seen: set[str] = set()
    out: dict[tuple[str, str], list[PosEvent]] = defaultdict(list)
    for _, event_id, kind, store_id, sku, qty, occurred in ds.pos:
        if event_id in seen:
            continue
        seen.add(event_id)
        field = "on_hand" if kind == "count" else "qty"
        raw = {"event_id": event_id, "type": kind, "store_id": store_id, "sku": sku, field: qty,
               "occurred_at": datetime.fromtimestamp(occurred, UTC).isoformat()}  # fmt: skip
        out[(store_id, sku)].append(msgspec.convert(raw, PosEvent))
    return out


def test_every_snapshot_equals_the_book_of_all_recorded_movements_up_to_as_of() -> None:
    ds = small_world()
    first, later = ds.snapshots[0], ds.snapshots[1:]
    assert first.as_of == ds.start and len(later) >= 3
    events = _events_by_pair(ds)
    pairs = [(s.store_id, k.sku) for s in ds.stores for k in ds.skus]
    start = datetime.fromtimestamp(ds.start, UTC)
    base = {(r[0], r[1]): r for r in first.rows}
    checked = counted = 0
    for snap in later:
        as_of = datetime.fromtimestamp(snap.as_of, UTC)
        rows = {(r[0], r[1]): r for r in snap.rows}
        for pair in pairs:
            b = base.get(pair)
            row = None if b is None else SnapshotRow(b[0], b[1], b[2], b[3], b[4], start)
            pos = book_position(
                *pair, snapshot_row=row, location_as_of=start, events=events[pair], at=as_of
            )
            assert pos is not None
            r = rows.get(pair)
            assert (r[2] - r[3] if r else 0) == pos.book, (pair, snap.as_of)
            checked += 1
            counted += pos.base_source == "count"
    assert checked == len(pairs) * len(later)
    assert counted > 0  # counts were part of what was checked


def test_visits_see_the_hidden_shelf_and_an_empty_shelf_sells_nothing() -> None:
    params = msgspec.structs.replace(WorldParams(), scan_error_share=0.0)
    ds = simulate(stores=3, skus=20, days=4, seed=9, start=START, params=params, trace=True)
    sales_at: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    for _, _, kind, store_id, sku, qty, occurred in ds.pos:
        if kind == "sale":
            sales_at[(store_id, sku, occurred)].append(qty)
    empty = full = 0
    for viewed, arrived, store_id, sku, want, shelf in ds.visits:
        assert shelf >= 0 and want >= 1 and arrived > viewed
        trace = ds.shelf_traces[(store_id, sku)]
        before = [v for t, v in trace if t < arrived]
        same_second = {v for t, v in trace if t == arrived}
        assert shelf == before[-1] or shelf in same_second
        if shelf == 0:
            assert not sales_at.get((store_id, sku, arrived)), (
                "a shopper bought from an empty shelf"
            )
            empty += 1
        elif shelf >= want:
            assert want in sales_at[(store_id, sku, arrived)]
            full += 1
    assert empty > 0 and full > 0
    assert all(v >= 0 for tr in ds.shelf_traces.values() for _, v in tr)


def test_shoppers_arrive_only_in_store_hours_and_saturday_is_busier() -> None:
    ds = mid_world("default")
    tz = ZoneInfo(ds.params.timezone)
    hours = {s.store_id: s.hours for s in ds.stores}
    per_weekday: dict[int, int] = defaultdict(int)
    for _, arrived, store_id, *_ in ds.visits:
        local = datetime.fromtimestamp(arrived, tz)
        window = hours[store_id].hours_on(local.weekday())
        assert window is not None and window[0] <= local.hour < window[1]
        per_weekday[local.weekday()] += 1
    assert per_weekday[5] > 1.2 * per_weekday[1]  # Saturday vs Tuesday
    assert {s.hours for s in ds.stores} <= set(HOURS_TEMPLATES)


def test_default_world_has_a_realistic_availability_and_a_visible_naive_false_promise_rate() -> (
    None
):
    s = mid_world("default").summary
    assert s is not None
    assert s.visits > 1500
    assert 0.84 <= s.available_share <= 0.96
    assert 0.03 <= s.naive_false_promise_rate <= 0.14
    assert 0.2 <= s.false_promise_back_room_share <= 0.8  # both shelf-fill gaps and phantom stock


def test_profiles_differ_as_intended() -> None:
    default, shrink, slow, tidy = (
        mid_world(p).summary for p in ("default", "high_shrink", "slow_shelf", "tidy")
    )
    assert default and shrink and slow and tidy
    assert shrink.book_yes_shelf_no_share > 1.3 * default.book_yes_shelf_no_share
    assert (
        shrink.false_promise_back_room_share < default.false_promise_back_room_share
    )  # phantom, not back room
    assert slow.false_promise_back_room_share > default.false_promise_back_room_share
    assert tidy.book_yes_shelf_no_share < 0.6 * default.book_yes_shelf_no_share
    assert tidy.available_share > default.available_share

    def lag_stats(ds: SimulatedDataset) -> tuple[float, int]:
        lags = sorted(p - o for p, *_, o in ds.pos)
        return lags[int(0.95 * len(lags))], len(ds.pos) - len({e[1] for e in ds.pos})

    p95_default, dup_default = lag_stats(mid_world("default"))
    p95_laggy, dup_laggy = lag_stats(mid_world("laggy_pos"))
    assert p95_laggy > 3 * p95_default
    assert dup_laggy > 3 * dup_default


def test_every_profile_is_named_and_unknown_ones_are_refused() -> None:
    assert {"default", "high_shrink", "laggy_pos"} <= set(PROFILES)
    with pytest.raises(KeyError, match="known: "):
        profile("nope")


def test_cli_writes_a_dataset_and_prints_its_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "ds"
    args = ["simulate", str(out), "--stores", "2", "--skus", "6", "--days", "2", "--seed", "4"]
    assert main([*args, "--profile", "tidy", "--start", "2026-03-28"]) == 0
    summary = json.loads(capsys.readouterr().out)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["start"] == "2026-03-28T00:00:00Z" and manifest["end"] == "2026-03-30T00:00:00Z"
    assert manifest["generator"] == {"name": "availability simulate", "profile": "tidy", "seed": 4}
    assert summary["visits"] == len((out / "visits.csv").read_text().splitlines()) - 1


def test_a_distribution_centre_outage_ships_nothing_to_any_store_while_it_lasts() -> None:
    params = WorldParams(dc_outage_share=1.0, dc_outage_days_min=4, dc_outage_days_max=6)
    ds = simulate(stores=3, skus=12, days=10, seed=5, start=START, params=params)
    t0 = int(START.timestamp()) - params.warmup_days * 86400
    outage = {s.sku: s.dc_outage for s in ds.skus}
    assert all(o is not None and 4 <= o[1] - o[0] <= 6 for o in outage.values())
    receipts = [(sku, occurred) for _, _, kind, _, sku, _, occurred in ds.pos if kind == "receipt"]
    assert receipts  # deliveries still land outside the outages
    for sku, occurred in receipts:
        first, end = outage[sku]  # type: ignore[misc]
        assert not t0 + first * 86400 <= occurred < t0 + end * 86400


def test_the_shelf_gap_world_is_the_default_before_it_was_checked_against_published_numbers() -> (
    None
):
    old = profile("shelf_gap")
    assert msgspec.structs.replace(
        old,
        shelf_max=120,
        restock_hours_median=1.5,
        forget_restock_share=0.03,
        dc_outage_share=0.22,
    ) == profile("default")
    assert (old.shelf_max, old.restock_hours_median, old.forget_restock_share) == (40, 2.0, 0.05)
    s_old, s_new = mid_world("shelf_gap").summary, mid_world("default").summary
    assert s_old and s_new
    assert s_new.false_promise_back_room_share < s_old.false_promise_back_room_share


def test_lean_stock_is_the_default_world_on_little_cover() -> None:
    lean, default = profile("lean_stock"), profile("default")
    changed = {
        f.name for f in msgspec.structs.fields(WorldParams)
        if getattr(lean, f.name) != getattr(default, f.name)
    }  # fmt: skip
    assert changed == {"sale_rate_median", "safety_days", "cover_days"}
    s_lean, s_default = mid_world("lean_stock").summary, mid_world("default").summary
    assert s_lean and s_default
    assert s_lean.available_share < s_default.available_share  # less stock, more empty shelves

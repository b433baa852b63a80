"""Reading a backtest dataset back: validation with file:line errors, and the merged stream."""

from __future__ import annotations

import functools
import itertools
import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.backtest.dataset import (
    DatasetError,
    Feedback,
    PublishedEvent,
    Visit,
    WarehouseSnapshot,
    open_dataset,
)
from app.backtest.params import profile
from app.backtest.simulator import SimulatedDataset, simulate
from app.backtest.writer import write_dataset
from app.domain.model import Count, PosEvent

START = datetime(2026, 11, 2, tzinfo=UTC)


@functools.cache
def world() -> SimulatedDataset:
    return simulate(stores=3, skus=20, days=4, seed=21, start=START, params=profile("laggy_pos"))


@pytest.fixture
def dataset_dir(tmp_path: Path) -> Path:
    write_dataset(world(), tmp_path / "ds")
    return tmp_path / "ds"


def test_reads_back_everything_that_was_written(dataset_dir: Path) -> None:
    sim = world()
    ds = open_dataset(dataset_dir)
    assert ds.start == START and (ds.end - ds.start).days == 4
    assert [s.store_id for s in ds.stores] == ["S001", "S002", "S003"]
    assert ds.stores[0].timezone == "Europe/Amsterdam"
    assert len(ds.products) == 20 and all(p.category for p in ds.products)
    events = list(ds.pos_events())
    assert len(events) == len(sim.pos)
    assert any(isinstance(e.event, Count) for e in events)
    first = events[0]
    assert isinstance(first, PublishedEvent) and first.event.event_id == sim.pos[0][1]
    assert first.published_at == datetime.fromtimestamp(sim.pos[0][0], UTC)
    snaps = ds.snapshots()
    assert len(snaps) == len(sim.snapshots)
    assert all(s.rows is not None and s.error is None for s in snaps)
    assert sum(len(s.rows or []) for s in snaps) == sum(len(s.rows) for s in sim.snapshots)
    assert len(ds.feedback()) == len(sim.feedback)
    visits = ds.visits()
    assert len(visits) == len(sim.visits)
    assert [v.available for v in visits] == [v[5] >= v[4] for v in sim.visits]


def test_stream_is_in_time_order_with_visits_after_what_was_published_with_them(
    dataset_dir: Path,
) -> None:
    ds = open_dataset(dataset_dir)
    items = list(ds.stream())
    kinds = {type(i) for _, i in items}
    assert kinds == {WarehouseSnapshot, PublishedEvent, Feedback, Visit}
    times = [t for t, _ in items]
    assert times == sorted(times)
    rank = {WarehouseSnapshot: 0, PublishedEvent: 1, Feedback: 2, Visit: 3}
    for (t1, a), (t2, b) in itertools.pairwise(items):
        if t1 == t2:
            assert rank[type(a)] <= rank[type(b)]
    for t, item in items:
        expected = item.viewed_at if isinstance(item, Visit) else item.published_at
        assert t == expected
    # Nothing is dropped or duplicated by the merge.
    assert sum(isinstance(i, PublishedEvent) for _, i in items) == len(world().pos)
    assert sum(isinstance(i, Visit) for _, i in items) == len(world().visits)


def test_stream_sorts_a_pos_file_that_is_not_in_publication_order(dataset_dir: Path) -> None:
    path = dataset_dir / "pos_events.jsonl"
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(reversed(lines)))
    pos_times = [t for t, i in open_dataset(dataset_dir).stream() if isinstance(i, PublishedEvent)]
    assert len(pos_times) == len(lines) and pos_times == sorted(pos_times)


def _replace_line(path: Path, line_no: int, text: str) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[line_no - 1] = text + "\n"
    path.write_text("".join(lines))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"event_id":"P-1","type":"sale","store_id":"S001","sku":"K","qty":0,'
         '"occurred_at":"2026-11-02T10:00:00Z","published_at":"2026-11-02T10:01:00Z"}', "qty"),
        ('{"event_id":"P 1","type":"sale","store_id":"S001","sku":"K","qty":1,'
         '"occurred_at":"2026-11-02T10:00:00Z","published_at":"2026-11-02T10:01:00Z"}', "event_id"),
        ('{"event_id":"P-1","type":"sale","store_id":"S001","sku":"K","qty":1,'
         '"occurred_at":"2026-11-02T10:00:00Z"}', "published_at"),
        ('{"event_id":"P-1","type":"sale","store_id":"S 001","sku":"K","qty":1,'
         '"occurred_at":"2026-11-02T10:00:00Z","published_at":"2026-11-02T10:01:00Z"}', "store_id"),
        ('{"event_id":"P-1","type":"count","store_id":"S001","sku":"' + "K" * 65 + '",'
         '"on_hand":1,"occurred_at":"2026-11-02T10:00:00Z","published_at":"2026-11-02T10:01:00Z"}',
         "sku"),
        ('{"event_id":"P-1","type":"theft","store_id":"S001","sku":"K","qty":1}', "theft"),
        ('{"event_id": "P-1", "type": "sale",', "truncated"),
    ],
)  # fmt: skip
def test_a_bad_pos_line_is_reported_with_file_and_line(
    dataset_dir: Path, bad: str, message: str
) -> None:
    _replace_line(dataset_dir / "pos_events.jsonl", 57, bad)
    with pytest.raises(DatasetError, match=rf"^pos_events\.jsonl:57: .*{message}"):
        list(open_dataset(dataset_dir).pos_events())


def test_a_pos_line_dated_far_after_its_publication_is_left_out_with_its_line(
    dataset_dir: Path,
) -> None:
    """A wrong till clock (the live pull's ``MAX_AHEAD``): not a refused dataset."""
    before = list(open_dataset(dataset_dir).pos_events())
    _replace_line(
        dataset_dir / "pos_events.jsonl", 57,
        '{"event_id":"P-X","type":"sale","store_id":"S001","sku":"K","qty":1,'
        '"occurred_at":"2026-11-02T10:00:00Z","published_at":"2026-11-02T09:00:00Z"}',
    )  # fmt: skip
    ds = open_dataset(dataset_dir)
    after = list(ds.pos_events())
    assert ds.ahead == [57]
    assert [e.event.event_id for e in after] == [
        e.event.event_id for i, e in enumerate(before) if i != 56
    ]


def test_blank_pos_lines_are_skipped_and_later_lines_keep_their_numbers(dataset_dir: Path) -> None:
    path = dataset_dir / "pos_events.jsonl"
    before = list(open_dataset(dataset_dir).pos_events())
    _replace_line(path, 10, "   ")
    after = list(open_dataset(dataset_dir).pos_events())
    assert len(after) == len(before) - 1
    assert [e.event.event_id for e in after] == [
        e.event.event_id for i, e in enumerate(before) if i != 9
    ]
    assert all(isinstance(e.event, PosEvent) for e in after)  # contract types, for the engine
    _replace_line(path, 20, '{"event_id": "P-1"')
    with pytest.raises(DatasetError, match=r"^pos_events\.jsonl:20: "):
        list(open_dataset(dataset_dir).pos_events())


def test_a_bad_visit_row_is_reported_with_file_and_line(dataset_dir: Path) -> None:
    _replace_line(
        dataset_dir / "visits.csv",
        4,
        "2026-11-02T10:00:00Z,2026-11-02T09:00:00Z,S001,SKU-00001,1,3",
    )
    with pytest.raises(DatasetError, match=r"^visits\.csv:4: .*arrived_at is before viewed_at"):
        open_dataset(dataset_dir).visits()
    _replace_line(
        dataset_dir / "visits.csv",
        6,
        "2026-11-02T10:00:00Z,2026-11-02T11:00:00Z,S001,SKU-00001,0,3",
    )
    _replace_line(
        dataset_dir / "visits.csv",
        4,
        "2026-11-02T10:00:00Z,2026-11-02T11:00:00Z,S001,SKU-00001,1,3",
    )
    with pytest.raises(DatasetError, match=r"^visits\.csv:6: .*qty_wanted"):
        open_dataset(dataset_dir).visits()


def test_a_short_feedback_row_and_a_missing_column_are_reported(dataset_dir: Path) -> None:
    _replace_line(dataset_dir / "feedback.csv", 3, "2026-11-02T10:00:00Z,S001,SKU-00001,pick_found")
    with pytest.raises(DatasetError, match=r"^feedback\.csv:3: expected 6 fields, found 4"):
        open_dataset(dataset_dir).feedback()
    _replace_line(dataset_dir / "feedback.csv", 1, "observed_at,store_id,sku,kind,qty")
    with pytest.raises(DatasetError, match=r"^feedback\.csv:1: missing column\(s\) published_at"):
        open_dataset(dataset_dir).feedback()


def test_a_bad_snapshot_is_handed_over_for_quarantine_not_raised(dataset_dir: Path) -> None:
    ref = json.loads((dataset_dir / "manifest.json").read_text())["warehouse_snapshots"][2]
    _replace_line(dataset_dir / ref["path"], 3, "S001,SKU-00002,-4,0,0,2026-11-03T05:00:00Z")
    snaps = open_dataset(dataset_dir).snapshots()
    assert snaps[2].rows is None and snaps[2].error is not None
    assert (
        snaps[2].error.startswith(f"{Path(ref['path']).name}:3: ") and "on_hand" in snaps[2].error
    )
    assert all(s.rows is not None for i, s in enumerate(snaps) if i != 2)


def test_manifest_problems_are_named(dataset_dir: Path) -> None:
    manifest = json.loads((dataset_dir / "manifest.json").read_text())
    (dataset_dir / "manifest.json").write_text(json.dumps({**manifest, "format": "other/9"}))
    with pytest.raises(DatasetError, match=r"^manifest\.json: .*format"):
        open_dataset(dataset_dir)
    (dataset_dir / "manifest.json").write_text(json.dumps({**manifest, "visits": "../visits.csv"}))
    with pytest.raises(DatasetError, match="must be relative, inside the dataset"):
        open_dataset(dataset_dir)
    (dataset_dir / "manifest.json").write_text(json.dumps({**manifest, "end": manifest["start"]}))
    with pytest.raises(DatasetError, match="end must be after start"):
        open_dataset(dataset_dir)
    (dataset_dir / "visits.csv").unlink()
    (dataset_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match=r"visits file 'visits\.csv' does not exist"):
        open_dataset(dataset_dir)
    shutil.rmtree(dataset_dir)
    with pytest.raises(DatasetError, match=r"no manifest\.json"):
        open_dataset(dataset_dir)


def test_optional_files_may_be_absent_and_optional_cells_empty(dataset_dir: Path) -> None:
    manifest = json.loads((dataset_dir / "manifest.json").read_text())
    del manifest["products"], manifest["feedback"], manifest["generator"]
    (dataset_dir / "manifest.json").write_text(json.dumps(manifest))
    (dataset_dir / "stores.csv").write_text(
        "store_id,name,lat,lon,postal_code,timezone\nS001,One,52.1,4.3,,\n"
    )
    ds = open_dataset(dataset_dir)
    assert ds.products == [] and ds.feedback() == []
    assert ds.stores[0].postal_code is None and ds.stores[0].timezone is None


def test_baseline_replay_scores_the_naive_badge_from_published_data_only(dataset_dir: Path) -> None:
    from app.backtest.baseline import score_baselines

    sim = world()
    assert sim.summary is not None
    report = score_baselines(dataset_dir)
    naive, buffer = report.policies["naive"], report.policies["static_buffer"]
    assert report.visits == len(sim.visits)
    assert report.policies["service"].promises == naive.promises
    # Lagged feeds change a few answers, not the picture, versus the no-lag book.
    assert abs(naive.false_promise_rate - sim.summary.naive_false_promise_rate) < 0.03
    assert naive.false_promises > 0 and buffer.promises < naive.promises


def test_csv_rows_read_the_same_in_any_column_order_quoted_or_with_crlf(dataset_dir: Path) -> None:
    plain = open_dataset(dataset_dir).visits()
    path = dataset_dir / "visits.csv"
    lines = path.read_text().splitlines()
    order = [5, 2, 0, 4, 1, 3]
    cells = [ln.split(",") for ln in lines]
    path.write_text("\n".join(",".join(c[i] for i in order) for c in cells) + "\n")
    assert open_dataset(dataset_dir).visits() == plain
    path.write_text("\r\n".join(",".join(f'"{x}"' for x in c) for c in cells) + "\r\n")
    assert open_dataset(dataset_dir).visits() == plain
    path.write_text("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n")
    with pytest.raises(DatasetError, match=r"^visits\.csv:4: empty line"):
        open_dataset(dataset_dir).visits()

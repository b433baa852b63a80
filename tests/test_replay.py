"""The backtest replay: answers from published data only, scores every visit, writes the report."""

from __future__ import annotations

import csv
import json
import shutil
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import msgspec
import pytest

from app.backtest.params import profile
from app.backtest.replay import replay
from app.backtest.writer import write_dataset
from app.cli import main as cli_main
from app.domain.badge import Badge
from app.domain.engine import Engine

START = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from app.backtest.simulator import simulate

    root = tmp_path_factory.mktemp("bt") / "ds"
    ds = simulate(stores=3, skus=25, days=4, seed=7, start=START, params=profile("laggy_pos"))
    write_dataset(ds, root, generator={"name": "test"})
    return root


def test_every_visit_is_scored_and_redeliveries_count_once(dataset: Path) -> None:
    report, stats = replay(dataset)
    with (dataset / "visits.csv").open() as f:
        visits = sum(1 for _ in f) - 1
    lines = sum(1 for _ in (dataset / "pos_events.jsonl").open())
    ids = {json.loads(ln)["event_id"] for ln in (dataset / "pos_events.jsonl").open()}
    assert report.visits == stats.visits == visits > 0
    assert stats.pos_lines == lines and stats.pos_events == len(ids) < lines
    service = report.policies["service"]
    assert sum(b.n for b in service.calibration or []) == visits
    assert 0.0 <= service.brier <= 1.0


def test_the_answer_never_depends_on_the_truth(dataset: Path, tmp_path: Path) -> None:
    """Rewrite every visit's on_shelf_qty and arrived_at: the service's answers must not move."""
    other = tmp_path / "other"
    shutil.copytree(dataset, other)
    rows = list(csv.DictReader((dataset / "visits.csv").open()))
    for r in rows:
        r["on_shelf_qty"] = "0"
        r["arrived_at"] = r["viewed_at"]
    with (other / "visits.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    a, _ = replay(dataset)
    b, _ = replay(other)
    sa, sb = a.policies["service"], b.policies["service"]
    assert sa.promises == sb.promises
    assert [c.mean_confidence for c in sa.calibration or []] == [
        c.mean_confidence for c in sb.calibration or []
    ]
    assert sb.false_promises == sb.promises  # nothing was on the shelf in the rewritten truth


def test_answers_without_reasons_are_the_same_badges(dataset: Path) -> None:
    """The replay asks for badges without reasons (it scores state, book and confidence):
    each is the full badge less its reasons, and scoring the full ones gives the same report."""
    answers: list[tuple[Badge, Badge]] = []

    class Both(Engine):
        def answer(
            self, store_id: str, sku: str, wanted: int, now: datetime, *, reasons: bool = True
        ) -> Badge:
            bare = super().answer(store_id, sku, wanted, now, reasons=False)
            full = super().answer(store_id, sku, wanted, now)
            answers.append((bare, full))
            return full

    scored_full, _ = replay(dataset, make_engine=Both)
    assert scored_full == replay(dataset)[0]
    assert answers and all(f.reasons for _, f in answers)
    assert all(b == msgspec.structs.replace(f, reasons=()) for b, f in answers)
    assert {f.state for _, f in answers} >= {"in_stock", "unavailable"}


def test_the_command_writes_the_contract_report(dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    assert cli_main(["backtest", str(dataset), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["format"] == "availability-backtest-report/1"
    assert set(doc["policies"]) == {"service", "naive", "static_buffer"}
    assert len(doc["policies"]["service"]["calibration"]) == 10
    assert "calibration" not in doc["policies"]["naive"]


def _rewrite_csv(path: Path, shift: timedelta) -> None:
    """The same rows as another tool might write them: a BOM, CRLF, every field quoted,
    columns in another order, timestamps at +05:30 with fractions of a second."""
    rows = list(csv.reader(path.read_text(encoding="utf-8").splitlines()))
    header, order = rows[0], list(range(len(rows[0])))[::-1]
    stamped = {"observed_at", "published_at", "viewed_at", "arrived_at", "as_of"}

    def cell(name: str, value: str) -> str:
        if name not in stamped:
            return value
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return at.astimezone(timezone(shift)).isoformat(timespec="microseconds")

    with path.open("w", encoding="utf-8-sig", newline="") as f:
        out = csv.writer(f, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
        out.writerow([header[i] for i in order])
        for r in rows[1:]:
            out.writerow([cell(header[i], r[i]) for i in order])


def test_other_encodings_of_the_same_dataset_give_the_same_report(
    dataset: Path, tmp_path: Path
) -> None:
    """A dataset made elsewhere: BOMs, CRLF, quoting, column order, offsets, key order and
    unknown keys in the JSON lines are all within the contract and change nothing."""
    other = tmp_path / "other"
    shutil.copytree(dataset, other)
    shift = timedelta(hours=5, minutes=30)
    for path in other.rglob("*.csv"):
        _rewrite_csv(path, shift)
    lines = []
    for line in (other / "pos_events.jsonl").read_text().splitlines():
        event = json.loads(line)
        event["register"] = 7  # a field the contract does not name
        lines.append(json.dumps(dict(reversed(event.items()))))
    (other / "pos_events.jsonl").write_text("\ufeff" + "\r\n".join(lines) + "\r\n", "utf-8")
    manifest = (other / "manifest.json").read_text()
    (other / "manifest.json").write_text("\ufeff" + manifest, encoding="utf-8")
    first = (other / "visits.csv").read_bytes()
    assert first.startswith(b"\xef\xbb\xbf") and b"\r\n" in first and b"+05:30" in first
    assert replay(other)[0] == replay(dataset)[0]


def _with_extra_snapshot(dataset: Path, out: Path, body: str) -> Path:
    """``dataset`` with one more snapshot file, ``body``, published in the middle of the
    window (docs/contract-extensions.md: dataset snapshots in the replay)."""
    shutil.copytree(dataset, out)
    manifest = json.loads((out / "manifest.json").read_text())
    at = (START + timedelta(days=2, hours=3)).isoformat().replace("+00:00", "Z")
    (out / "warehouse" / "extra.csv").write_text(body)
    manifest["warehouse_snapshots"].append(
        {"path": "warehouse/extra.csv", "as_of": at, "published_at": at}
    )
    (out / "manifest.json").write_text(json.dumps(manifest))
    return out


def test_a_header_only_snapshot_changes_nothing_and_a_broken_one_is_quarantined(
    dataset: Path, tmp_path: Path
) -> None:
    header = "location_id,sku,on_hand,reserved,in_transit,as_of\n"
    base, base_stats = replay(dataset)
    empty, empty_stats = replay(_with_extra_snapshot(dataset, tmp_path / "empty", header))
    broken, broken_stats = replay(
        _with_extra_snapshot(dataset, tmp_path / "broken", header + "S1,SKU-1,3,0\n")
    )
    # Both quarantined, as the live pull quarantines them; the header-only one names no
    # location, so applying it would have changed nothing either.
    assert empty == base and empty_stats.quarantined == base_stats.quarantined + 1
    assert broken == base and broken_stats.quarantined == base_stats.quarantined + 1
    assert empty_stats.snapshots == broken_stats.snapshots == base_stats.snapshots + 1


def test_a_snapshot_cut_inside_a_location_is_quarantined_one_location_alone_is_not(
    dataset: Path, tmp_path: Path
) -> None:
    """The live pull's truncation rule (``app.domain.truncation``), per location."""
    manifest = json.loads((dataset / "manifest.json").read_text())
    first = (dataset / manifest["warehouse_snapshots"][0]["path"]).read_text().splitlines()
    header, rows = first[0], first[1:]
    location = rows[0].split(",")[0]
    own = [r for r in rows if r.startswith(location + ",")]
    assert len(own) >= 10 and len(own) < len(rows)  # the dataset has several locations
    base, base_stats = replay(dataset)

    _, alone_stats = replay(
        _with_extra_snapshot(dataset, tmp_path / "alone", "\n".join([header, *own]) + "\n")
    )
    cut, cut_stats = replay(
        _with_extra_snapshot(dataset, tmp_path / "cut", "\n".join([header, *own[:3]]) + "\n")
    )

    assert alone_stats.quarantined == base_stats.quarantined
    assert cut == base and cut_stats.quarantined == base_stats.quarantined + 1


def _with_events(dataset: Path, out: Path, *events: dict[str, object]) -> Path:
    shutil.copytree(dataset, out)
    with (out / "pos_events.jsonl").open("a") as f:
        f.writelines(json.dumps(e) + "\n" for e in events)
    return out


def test_an_event_a_little_ahead_of_its_publication_is_taken_one_far_ahead_left_out(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """As the live pull: a till's clock a few minutes fast is taken (up to MAX_AHEAD),
    one hours out is a wrong clock, left out and said so, not a refused dataset."""
    published = START + timedelta(days=1, hours=12)
    first = json.loads((dataset / "pos_events.jsonl").read_text().splitlines()[0])
    store, sku = first["store_id"], first["sku"]

    def sale(event_id: str, ahead: timedelta) -> dict[str, object]:
        return {"event_id": event_id, "type": "sale", "store_id": store, "sku": sku, "qty": 1,
                "occurred_at": (published + ahead).isoformat(),
                "published_at": published.isoformat()}  # fmt: skip

    lines = len((dataset / "pos_events.jsonl").read_text().splitlines())
    fast = _with_events(dataset, tmp_path / "fast", sale("FAST", timedelta(minutes=5)))
    both = _with_events(
        dataset,
        tmp_path / "both",
        sale("FAST", timedelta(minutes=5)),
        sale("WRONG", timedelta(hours=3)),
    )
    _, base = replay(dataset)
    fast_report, fast_stats = replay(fast)
    both_report, both_stats = replay(both)
    assert (fast_stats.pos_events, fast_stats.pos_ahead) == (base.pos_events + 1, 0)
    assert (both_stats.pos_events, both_stats.pos_ahead) == (base.pos_events + 1, 1)
    assert both_stats.pos_ahead_lines == (lines + 2,)
    assert both_report == fast_report  # the wrong clock's event changed nothing

    assert cli_main(["backtest", str(both), "--out", str(tmp_path / "r.json")]) == 0
    err = capsys.readouterr().err
    assert "1 POS event(s) dated more than 0:15:00 after their published_at left out" in err
    assert f"lines {lines + 2})" in err


def test_feedback_observed_far_after_its_publication_is_left_out(
    dataset: Path, tmp_path: Path
) -> None:
    """The API's rule for a device clock (``OBSERVATION_MAX_AHEAD``): a shelf count a
    minute ahead is taken, one three hours ahead left out, the same report as without it."""
    published = START + timedelta(days=1, hours=12)
    first = (dataset / "visits.csv").read_text().splitlines()[1].split(",")
    store, sku = first[2], first[3]

    def row(ahead: timedelta, qty: int) -> str:
        observed = (published + ahead).isoformat()
        return f"{observed},{store},{sku},shelf_count,{qty},{published.isoformat()}\n"

    def with_rows(name: str, *rows: str) -> Path:
        out = tmp_path / name
        shutil.copytree(dataset, out)
        with (out / "feedback.csv").open("a") as f:
            f.writelines(rows)
        return out

    _, base = replay(dataset)
    near_report, near = replay(with_rows("near", row(timedelta(minutes=1), 4)))
    both_report, both = replay(
        with_rows("both", row(timedelta(minutes=1), 4), row(timedelta(hours=3), 0))
    )
    assert (near.feedback, near.feedback_ahead) == (base.feedback + 1, 0)
    assert (both.feedback, both.feedback_ahead) == (base.feedback + 1, 1)
    assert both_report == near_report

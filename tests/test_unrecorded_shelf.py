"""A pair with no record still gets a confidence: the chance that a shelf of the chain
holds the wanted units (``app.domain.calibration.unrecorded_rates``), learned from every
shelf count. Before, such a badge had none and the backtest scored it 0: a dataset whose
first snapshot comes a few hours into its window put every visit of those hours in the
bottom calibration bin, found ~90 % of the time."""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import asyncpg
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import Litestar

from app.backtest.dataset import open_dataset
from app.backtest.params import profile
from app.backtest.replay import fed_visits, replay
from app.backtest.simulator import simulate
from app.backtest.writer import write_dataset
from app.db.stores import upsert_stores
from app.domain.badge import PROMISES, badge_for
from app.domain.calibration import (
    UNRECORDED_PRIOR,
    UNRECORDED_PRIOR_N,
    Calibration,
    unrecorded_of,
    unrecorded_rates,
)
from app.domain.engine import Engine
from app.domain.model import Sale, SnapshotRow, Store
from app.domain.policy import Policy
from reconcilers.outcome import PullOutcome
from reconcilers.pos import store_page
from tests.conftest import serve_in_loop

T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)
counts = st.lists(st.integers(min_value=0, max_value=40), max_size=300)


def counted(found: list[int]) -> Calibration:
    cal = Calibration()
    for qty in found:
        cal.observe_shelf(qty)
    return cal


def test_the_prior_is_retail_on_shelf_availability_and_falls_with_units() -> None:
    rates = Calibration().unrecorded()
    assert rates == unrecorded_rates(0.0, [0.0] * len(UNRECORDED_PRIOR))
    assert unrecorded_of(rates, 1) == pytest.approx(0.92)
    assert unrecorded_of(rates, 2) == pytest.approx(0.92 * 0.8)
    assert unrecorded_of((), 1) == unrecorded_of(rates, 1)  # a map saved before: the prior
    assert unrecorded_of(rates, len(UNRECORDED_PRIOR) + 1) == 0.0


def test_the_rates_follow_the_counts_rebuilt_as_the_map_is() -> None:
    cal = Calibration()
    assert cal.unrecorded()[0] == pytest.approx(0.92)  # built before any count: the prior
    for _ in range(19):
        cal.observe_shelf(0)
    assert cal.unrecorded()[0] == pytest.approx(0.92)  # not rebuilt before 20 counts
    cal.observe_shelf(0)
    assert cal.unrecorded()[0] == pytest.approx(20 * 0.92 / 40, rel=1e-3)  # (the memory)
    for _ in range(2000):
        cal.observe_shelf(3)
    rates = cal.unrecorded()
    assert rates[2] > 0.95 > 0.05 > rates[3]  # three on every shelf counted, never four


@given(counts)
def test_rates_are_probabilities_and_never_rise_with_more_units(found: list[int]) -> None:
    rates = counted(found).unrecorded()
    assert all(0.0 <= r <= 1.0 for r in rates)
    assert all(b <= a for a, b in pairwise(rates))
    assert all(
        unrecorded_of(rates, q + 1) <= unrecorded_of(rates, q) for q in range(1, len(rates) + 2)
    )


@given(counts, st.integers(min_value=1, max_value=30))
def test_a_badge_without_a_record_is_never_a_promise(found: list[int], wanted: int) -> None:
    rates = counted(found).unrecorded()
    badge = badge_for(
        None, policy=Policy(), category=None, store_newest_at=None,
        now=T0, wanted=wanted, unrecorded=rates,
    )  # fmt: skip
    assert badge.state == "unknown" and badge.state not in PROMISES
    assert badge.book is None and badge.confidence == unrecorded_of(rates, wanted)
    # Without the engine (book-only callers) there is no confidence to give.
    book_only = badge_for(None, policy=Policy(), category=None, store_newest_at=None, now=T0)
    assert book_only.confidence is None


def test_the_engine_answers_a_store_it_has_no_record_of_with_the_chains_shelves() -> None:
    engine = Engine(Policy(), {})
    engine.observe_snapshot(T0, [SnapshotRow("S1", f"K{i}", 9, 0, 0, T0) for i in range(60)])
    first = engine.answer("S9", "K1", 1, T0 + timedelta(hours=1))
    assert (first.state, first.book, first.confidence) == ("unknown", None, pytest.approx(0.92))
    # S1's shelves are counted empty, one after another: the chain's shelves are emptier
    # than the prior says, and a store the service knows nothing of reads that.
    for i in range(60):
        at = T0 + timedelta(hours=2, minutes=i)
        engine.observe_feedback(
            kind="shelf_count", store_id="S1", sku=f"K{i}", qty=0, observed_at=at, now=at
        )
    later = engine.answer("S9", "K1", 1, T0 + timedelta(hours=4))
    assert later.state == "unknown" and later.confidence is not None
    assert later.confidence == pytest.approx(20 * 0.92 / (60 + UNRECORDED_PRIOR_N), rel=1e-2)
    assert engine.answer("S9", "K1", 2, T0 + timedelta(hours=4)).confidence == pytest.approx(
        20 * 0.92 * 0.8 / (60 + UNRECORDED_PRIOR_N), rel=1e-2
    )


def _blind_start(src: Path, out: Path) -> Path:
    """``src`` without the snapshots published on its first day, nor POS counts of that
    day: the service has no record of any pair until the second day's snapshot."""
    shutil.copytree(src, out)
    manifest = json.loads((out / "manifest.json").read_text())
    first_day = manifest["start"][:10]
    manifest["warehouse_snapshots"] = [
        s for s in manifest["warehouse_snapshots"] if s["published_at"][:10] != first_day
    ]
    (out / "manifest.json").write_text(json.dumps(manifest))
    events = (out / "pos_events.jsonl").read_text().splitlines()
    kept = [e for e in events if not ('"count"' in e and f'"occurred_at":"{first_day}' in e)]
    (out / "pos_events.jsonl").write_text("\n".join(kept) + "\n")
    return out


def test_a_dataset_whose_first_snapshot_comes_late_scores_its_blind_visits_fairly(
    tmp_path: Path,
) -> None:
    world = simulate(stores=4, skus=30, days=3, seed=5, start=datetime(2026, 11, 1, tzinfo=UTC),
                     params=profile("default"))  # fmt: skip
    write_dataset(world, tmp_path / "world", generator={"name": "test"})
    blind = _blind_start(tmp_path / "world", tmp_path / "blind")
    ds = open_dataset(blind)
    engine = Engine(Policy(), {p.sku: p.category for p in ds.products})
    unknown = found = 0
    for at, visit in fed_visits(engine, ds.ordered()):
        badge = engine.answer(visit.store_id, visit.sku, visit.qty_wanted, at, reasons=False)
        if badge.book is None:
            unknown += 1
            found += visit.on_shelf_qty >= visit.qty_wanted
            assert badge.state == "unknown"
            rates = engine.calibration.unrecorded()
            assert badge.confidence == unrecorded_of(rates, visit.qty_wanted)
            assert visit.qty_wanted > 1 or badge.confidence > 0.5
    assert unknown >= 30  # the first day's visits
    assert found / unknown > 0.5  # what the shelves really held: far from 0
    report, _ = replay(blind)
    bottom = report.policies["service"].calibration[0]
    assert bottom.n < unknown  # the blind visits are not scored as "surely empty"


async def test_the_api_answers_a_pair_without_a_position_with_the_engines_shelf_rate(
    pool: asyncpg.Pool, make_app: Callable[..., Litestar], admin_auth: dict[str, str]
) -> None:
    """Through the service's own engine: shelf counts posted, the recompute that stores
    them saves the map with its unrecorded shelf, the read model reloads on its
    notification, and a store with no record answers with the learned rate."""
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    async with pool.acquire() as conn:
        await upsert_stores(conn, [Store("S1", "One", 48.0, 2.0), Store("S3", "New", 48.1, 2.0)])
        await conn.execute("INSERT INTO product (sku, name) VALUES ('SKU-A', 'A')")
        await conn.execute(
            "INSERT INTO feed (name, kind, url, created_at) VALUES ('pos', 'pos', 'x', $1)", now
        )
    app = make_app(clock=lambda: now, policy=Policy())
    async with serve_in_loop(app, headers=admin_auth) as client:

        async def confidence(qty: int) -> float:
            r = await client.get(f"/v1/stores/S3/availability/SKU-A?qty={qty}")
            assert r.status_code == 200, r.text
            body = r.json()
            assert (body["state"], body["book"], body["reasons"]) == (
                "unknown", None, ["no_data"],
            )  # fmt: skip
            return body["confidence"]

        async def nearby_confidence(sku: str) -> float:
            """S3's, through the nearby read, which reuses encoded answers."""
            r = await client.get(f"/v1/availability/{sku}?lat=48.1&lon=2.0&radius_km=1")
            assert r.status_code == 200, r.text
            (s3,) = r.json()["stores"]
            assert (s3["store"]["store_id"], s3["book"], s3["reasons"]) == ("S3", None, ["no_data"])
            return s3["confidence"]

        # SKU-B at S3: a position stored without a base (a sale, no snapshot, no count).
        await store_page(
            pool, "pos", [Sale(event_id="E1", store_id="S3", sku="SKU-B", qty=1,
                               occurred_at=now - timedelta(hours=1))],
            cursor=None, policy=Policy(), clock=lambda: now, outcome=PullOutcome(outcome="applied"),
        )  # fmt: skip
        assert await confidence(1) == pytest.approx(0.92)  # no map saved yet: the prior
        assert await confidence(2) == pytest.approx(0.92 * 0.8)
        assert await nearby_confidence("SKU-B") == pytest.approx(0.92)  # its answer now cached
        # Forty of S1's shelves counted empty.
        batch = [
            {"observed_at": (now - timedelta(minutes=i)).isoformat(), "store_id": "S1",
             "sku": f"SKU-{i}", "kind": "shelf_count", "qty": 0}
            for i in range(40)
        ]  # fmt: skip
        r = await client.post("/v1/feedback", json={"feedback": batch})
        assert r.status_code == 200, r.text
        expected = {q: 20 * 0.92 * 0.8 ** (q - 1) / (40 + UNRECORDED_PRIOR_N) for q in (1, 2)}
        seen: dict[int, float] = {}
        for _ in range(250):  # the read model reloads on the recompute's notification
            seen = {q: await confidence(q) for q in expected}
            if seen == pytest.approx(expected, rel=1e-2):
                break
            await asyncio.sleep(0.02)
        assert seen == pytest.approx(expected, rel=1e-2)
        # The stored position without a base answers with the new rates too, although
        # nothing notified its store: its cached answer was not kept past them.
        assert await nearby_confidence("SKU-B") == pytest.approx(expected[1], rel=1e-2)

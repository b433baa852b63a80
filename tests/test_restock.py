"""A delivery restocks the shelf: shelf counts after receipts teach how much less often
such a shelf is empty than the empty-shelf prior says (``RestockEmptiness``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.engine import BACK_ROOM_WINDOW, Engine
from app.domain.model import Receipt, SnapshotRow
from app.domain.policy import Policy
from app.domain.shelf import RESTOCK_FACTOR, RESTOCK_PRIOR_N, RestockEmptiness

T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_nothing_learnt_changes_nothing_and_full_shelves_lower_the_factor() -> None:
    assert RestockEmptiness().factor() == 1.0
    restock = RestockEmptiness()
    for _ in range(100):  # the model expected 10 empties in 100 counts; staff found 2
        restock.observe(0.1, False)
    restock.observe(0.0, True)
    restock.observe(0.0, True)
    assert restock.factor() == pytest.approx((2 + RESTOCK_PRIOR_N) / (10 + RESTOCK_PRIOR_N))
    at_rate = RestockEmptiness()
    for i in range(100):  # empties as often as the model said: no change
        at_rate.observe(0.1, i % 10 == 0)
    assert at_rate.factor() == 1.0


@given(st.lists(st.tuples(st.floats(0.0, 0.95), st.booleans()), max_size=300))
def test_the_factor_is_bounded_and_never_makes_an_empty_shelf_likelier(
    seen: list[tuple[float, bool]],
) -> None:
    restock = RestockEmptiness()
    for expected, empty in seen:
        restock.observe(expected, empty)
    assert RESTOCK_FACTOR[0] <= restock.factor() <= RESTOCK_FACTOR[1] == 1.0


def _shelf_count(engine: Engine, sku: str, qty: int, at: datetime) -> None:
    engine.observe_feedback(kind="shelf_count", store_id="S1", sku=sku, qty=qty,
                            observed_at=at, now=at)  # fmt: skip


def _delivered(engine: Engine, sku: str, at: datetime) -> None:
    """A book of 4 on the snapshot, then a delivery of 6 an hour later."""
    engine.observe_snapshot(at, [SnapshotRow("S1", sku, 4, 0, 0, at)])
    engine.observe_event(Receipt(event_id=f"r-{sku}", store_id="S1", sku=sku,
                                 occurred_at=at + HOUR, qty=6))  # fmt: skip


def test_counts_after_deliveries_that_find_the_shelf_stocked_lift_a_fresh_delivery() -> None:
    engine = Engine(Policy(), {})
    at = T0
    for i in range(60):
        # Shelves without a delivery are counted empty half the time (the prior learns
        # that); every shelf counted 3 hours after its delivery held units.
        engine.observe_snapshot(at, [SnapshotRow("S1", f"N{i}", 4, 0, 0, at)])
        _shelf_count(engine, f"N{i}", (i % 2) * 4, at + HOUR)
        _delivered(engine, f"K{i}", at)
        _shelf_count(engine, f"K{i}", 8, at + 4 * HOUR)
        at += timedelta(minutes=10)
    learned = engine.restock
    assert learned.expected > 0.0 and learned.empty == 0.0
    assert learned.factor() < 0.5

    _delivered(engine, "Z", at)
    fresh, stale = at + 3 * HOUR, at + HOUR + BACK_ROOM_WINDOW + HOUR
    pos_fresh = engine.ledger.position("S1", "Z", fresh)
    pos_stale = engine.ledger.position("S1", "Z", stale)
    assert pos_fresh is not None and pos_stale is not None
    horizon = engine.policy.arrival_horizon
    with_fresh = engine._evidence(pos_fresh, 1, fresh, horizon)
    with_stale = engine._evidence(pos_stale, 1, stale, horizon)
    conf_fresh = engine.assess(pos_fresh, 1, fresh).confidence
    engine.restock = RestockEmptiness()  # the same engine, nothing learnt of deliveries
    without_fresh = engine._evidence(pos_fresh, 1, fresh, horizon)
    assert with_fresh.phantom_prior == pytest.approx(without_fresh.phantom_prior * learned.factor())
    assert with_fresh.phantom_prior < without_fresh.phantom_prior
    assert conf_fresh > engine.assess(pos_fresh, 1, fresh).confidence
    # Past the back-room window the delivery says nothing of the shelf any more.
    assert engine._evidence(pos_stale, 1, stale, horizon).phantom_prior == with_stale.phantom_prior


def test_picks_after_a_delivery_teach_nothing() -> None:
    """A pick may take a fresh delivery from the back room: it says nothing of the shelf."""
    engine = Engine(Policy(), {})
    _delivered(engine, "A", T0)
    engine.observe_feedback(kind="pick_found", store_id="S1", sku="A", qty=2,
                            observed_at=T0 + 3 * HOUR, now=T0 + 3 * HOUR)  # fmt: skip
    engine.observe_feedback(kind="pick_short", store_id="S1", sku="A", qty=0,
                            observed_at=T0 + 4 * HOUR, now=T0 + 4 * HOUR)  # fmt: skip
    assert engine.restock.expected == 0.0 and engine.restock.factor() == 1.0
    _shelf_count(engine, "A", 0, T0 + 5 * HOUR)
    assert engine.restock.expected > 0.0 and engine.restock.empty == 1.0

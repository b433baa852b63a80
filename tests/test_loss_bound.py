"""Unrecorded loss takes only units that were there: the loss before a receipt is at
most the book before it (``app.domain.loss.expected_loss``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.confidence import confidence
from app.domain.engine import Engine
from app.domain.loss import MAX_DAYS, expected_loss
from app.domain.model import Count, Receipt, SnapshotRow
from app.domain.policy import Policy

T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)
rates = st.floats(min_value=0.0, max_value=5.0)
days = st.floats(min_value=0.0, max_value=200.0)
since = st.none() | st.floats(min_value=-1.0, max_value=200.0)
books = st.none() | st.integers(min_value=-50, max_value=500)


def test_without_a_receipt_the_loss_is_rate_times_days_capped() -> None:
    assert expected_loss(0.5, 10.0) == 5.0
    assert expected_loss(0.5, 200.0) == 0.5 * MAX_DAYS


def test_a_receipt_into_a_small_book_caps_what_came_before_it() -> None:
    # 40 days at 1 a day, a receipt 1 day ago into a book of 3: 3 before, 1 since.
    assert expected_loss(1.0, 40.0, 1.0, 3) == 4.0
    # The book before was big enough to lose 39 units: no cap.
    assert expected_loss(1.0, 40.0, 1.0, 100) == 40.0
    # A receipt before the pair was last verified changes nothing.
    assert expected_loss(1.0, 40.0, 50.0, 0) == 40.0
    # A receipt into a negative book: nothing was there to lose before it.
    assert expected_loss(1.0, 40.0, 2.0, -5) == 2.0


@given(rates, days, since, books)
def test_the_bound_never_adds_loss(rate: float, d: float, s: float | None, b: int | None) -> None:
    assert 0.0 <= expected_loss(rate, d, s, b) <= rate * min(d, MAX_DAYS) + 1e-9


@given(rates, rates, days, days, since, books)
def test_more_loss_rate_or_older_data_never_lowers_the_loss(
    r1: float, r2: float, d1: float, d2: float, s: float | None, b: int | None
) -> None:
    lo_r, hi_r = sorted((r1, r2))
    lo_d, hi_d = sorted((d1, d2))
    assert expected_loss(lo_r, lo_d, s, b) <= expected_loss(hi_r, lo_d, s, b) + 1e-9
    assert expected_loss(lo_r, lo_d, s, b) <= expected_loss(lo_r, hi_d, s, b) + 1e-9


@given(
    rates,
    days,
    st.floats(min_value=0.0, max_value=200.0),
    st.floats(min_value=0.0, max_value=5.0),
    books,
)
def test_time_passing_after_a_receipt_never_lowers_the_loss(
    rate: float, d: float, s: float, later: float, b: int | None
) -> None:
    """``days`` and the days since the receipt move together as the clock runs."""
    assert expected_loss(rate, d, s, b) <= expected_loss(rate, d + later, s + later, b) + 1e-9


def _lossy_store(receipt_qty: int) -> tuple[Engine, datetime]:
    """A store whose count teaches a loss of ~0.45 units a day; pair B, never counted, had 2
    units on the book for 40 days, then ``receipt_qty`` units came an hour ago."""
    engine = Engine(Policy(), {"A": "food", "B": "food"})
    engine.observe_snapshot(T0, [SnapshotRow("S1", "A", 200, 0, 0, T0),
                                 SnapshotRow("S1", "B", 2, 0, 0, T0)])  # fmt: skip
    t = T0 + timedelta(days=40)
    engine.observe_event(Count(event_id="cA", store_id="S1", sku="A", occurred_at=t, on_hand=160))
    engine.observe_event(
        Receipt(event_id="rB", store_id="S1", sku="B", occurred_at=t, qty=receipt_qty)
    )
    return engine, t + timedelta(hours=1)


def test_a_fresh_delivery_does_not_carry_the_weeks_of_loss_before_it() -> None:
    engine, now = _lossy_store(30)
    rate = engine.loss.rate("S1", "food")
    assert rate > 0.3  # the count taught a real loss rate
    pos = engine.ledger.position("S1", "B", now)
    assert pos is not None and pos.book == 32
    ev = engine._evidence(pos, 1, now, engine.policy.arrival_horizon)
    # Unbounded, ~70 days unverified (30 before first seen + 40) would be ~70 × rate units.
    assert ev.unrecorded_loss <= 2 + rate / 24 + 1e-9
    assert confidence(ev) > 0.5


def test_while_a_delivery_is_fresh_only_the_loss_since_it_is_charged() -> None:
    """Within the back-room window the loss before the receipt is left out; once the
    window has passed it is charged again, up to the book before the receipt (2)."""
    engine, now = _lossy_store(30)
    rate = engine.loss.rate("S1", "food")
    pos = engine.ledger.position("S1", "B", now)
    assert pos is not None
    fresh = engine._evidence(pos, 1, now, engine.policy.arrival_horizon).unrecorded_loss
    assert fresh == pytest.approx(rate / 24)  # one hour since the receipt
    later = now + timedelta(days=3)
    pos = engine.ledger.position("S1", "B", later)
    assert pos is not None
    old = engine._evidence(pos, 1, later, engine.policy.arrival_horizon).unrecorded_loss
    assert old == pytest.approx(2 + rate * (3 + 1 / 24))

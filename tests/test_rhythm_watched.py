"""The store's rhythm learns from the hours it watched: an hour or a day not watched yet
trades as the average watched one (not as closed), a watched hour without sales reads
closed, and a store watched for whole weeks gets the plain counts' shares."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.engine import Engine
from app.domain.model import Sale, SnapshotRow
from app.domain.policy import Policy
from app.domain.rhythm import HOUR_PRIOR, QUIET_SHARE, WEEK_HOURS, Rhythm, watched_cells

MONDAY = datetime(2026, 11, 23, tzinfo=UTC)


def sell(r: Rhythm, start: datetime, hours: int, per_hour: int, open_h: range) -> None:
    """``per_hour`` units in each hour of ``open_h`` (hours of the day), ``hours`` from ``start``."""
    for k in range(hours):
        at = start + timedelta(hours=k)
        if at.hour in open_h:
            r.add(at + timedelta(minutes=30), per_hour)


def test_a_store_watched_one_evening_expects_trade_tomorrow_morning() -> None:
    r = Rhythm()
    sell(r, MONDAY + timedelta(hours=18), 5, 10, range(24))  # 18:00-23:00, 10 an hour
    morning = r.hours(MONDAY + timedelta(days=1, hours=9), MONDAY + timedelta(days=1, hours=12))
    assert 2.0 < morning < 4.0  # three average hours, give or take the prior
    evening = r.hours(MONDAY + timedelta(hours=18), MONDAY + timedelta(hours=23))
    assert 4.0 < evening < 6.0  # a watched hour is about one average hour, not ~30


def test_a_first_days_hours_weigh_about_one_average_hour_each() -> None:
    """30 hours of even trade: the trade clock over them is ~30 hours (it was ~4x that when
    the week's trade was spread over the hours seen), so a speed per clock hour and the
    trade clock agree."""
    r = Rhythm()
    sell(r, MONDAY, 30, 12, range(24))
    assert r.hours(MONDAY, MONDAY + timedelta(hours=30)) == pytest.approx(30.0, rel=0.15)
    tuesday_noon = MONDAY + timedelta(days=1, hours=12)
    assert r.weight(tuesday_noon) == pytest.approx(1.0, rel=0.15)  # not watched yet: average


def test_watched_hours_without_sales_read_closed() -> None:
    r = Rhythm()
    sell(r, MONDAY, 72, 20, range(8, 20))  # three days, open 08:00-20:00
    night = MONDAY + timedelta(days=3, hours=2)
    assert r.weight(night) < QUIET_SHARE
    assert r.hours(night, night + timedelta(hours=3)) < 0.3
    noon = MONDAY + timedelta(days=3, hours=11)
    assert r.hours(noon, noon + timedelta(hours=3)) > 3.0


def test_whole_weeks_watched_give_the_plain_counts_shares() -> None:
    r = Rhythm()
    sell(r, MONDAY, 3 * 168, 5, range(7, 22))
    sell(r, MONDAY, 3 * 168, 7, range(12, 14))  # a lunch peak: 12 an hour
    lunch, morning = MONDAY + timedelta(days=2, hours=12), MONDAY + timedelta(days=2, hours=8)
    expected = (3 * 7 * 12 + HOUR_PRIOR) / (3 * 7 * 5 + HOUR_PRIOR)
    assert r.weight(lunch) / r.weight(morning) == pytest.approx(expected)


def test_a_sale_from_a_reset_till_clock_does_not_stretch_the_watched_hours() -> None:
    plain, reset = Rhythm(), Rhythm()
    sell(plain, MONDAY, 30, 12, range(24))
    sell(reset, MONDAY, 30, 12, range(24))
    reset.add(datetime(2000, 1, 1, 10, tzinfo=UTC), 1)  # a till whose clock went back
    assert (reset.first_h, reset.last_h) == (plain.first_h, plain.last_h)
    assert reset.last_h - reset.first_h == 29


@given(st.integers(0, 10**6), st.integers(1, 3 * WEEK_HOURS))
def test_watched_cells_count_each_hour_of_the_span_once(first: int, span: int) -> None:
    counted = [0] * WEEK_HOURS
    for h in range(first, first + span):
        counted[h % WEEK_HOURS] += 1
    assert watched_cells(first, first + span - 1) == counted


def test_a_young_stores_expected_sales_and_silence_are_its_own_rate() -> None:
    """Five items selling 2.4 an hour each for 30 hours: two hours ahead (on a day the
    store has not traded yet) hold two hours of each item's speed, and an hour without a
    sale of one is an hour of it: a watched hour and a new one are each about one trade
    hour. (The speed itself, ~1.5 here, is held down by its prior for the first days.)
    Before stop 33 the speed was per clock hour and each watched hour ~4 trade hours."""
    skus = ("A", "B", "C", "D", "E")
    engine = Engine(Policy(), dict.fromkeys(skus, "food"))
    engine.observe_snapshot(MONDAY, [SnapshotRow("S1", s, 500, 0, 0, MONDAY) for s in skus])
    at, n = MONDAY, 0
    while at < MONDAY + timedelta(hours=30):
        sku = skus[n % len(skus)]
        if not (sku == "A" and at >= MONDAY + timedelta(hours=29)):  # A quiet for the last hour
            engine.observe_event(
                Sale(event_id=f"s{n}", store_id="S1", sku=sku, occurred_at=at, qty=1)
            )
        at += timedelta(minutes=5)
        n += 1
    now = MONDAY + timedelta(hours=30)
    for sku in skus:
        pos = engine.ledger.position("S1", sku, now)
        assert pos is not None
        ev = engine._evidence(pos, 1, now, timedelta(hours=2))
        speed = engine.speed("S1", sku, now)  # units per clock hour
        assert 1.0 < speed < 2.4
        assert ev.expected_sales == pytest.approx(2 * speed, rel=0.2)
        if sku == "A":
            assert ev.silence == pytest.approx(speed, rel=0.3)

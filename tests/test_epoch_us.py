"""Epoch microseconds give the datetime readings' floats: timestamps, sums and differences."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from app.domain.engine import _delta_us, _epoch_us, _x_of

ZONES = st.sampled_from(
    [UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))]
)
MOMENTS = st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2200, 1, 1), timezones=ZONES
)


@given(MOMENTS, MOMENTS, st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=30)))
def test_epoch_microseconds_give_the_same_floats(a: datetime, b: datetime, d: timedelta) -> None:
    ua, ub = _epoch_us(a), _epoch_us(b)
    assert ua is not None and ub is not None
    assert _x_of(a, ua) == a.timestamp() / 3600
    assert (ua + _delta_us(d)) / 1_000_000 / 3600 == (a + d).timestamp() / 3600
    assert (ua - ub) / 1_000_000 / 3600 == (a - b).total_seconds() / 3600
    assert (ua - ub) / 1_000_000 / 86400 == (a - b).total_seconds() / 86400


def test_naive_moments_keep_the_datetime_readings() -> None:
    naive = datetime(2026, 11, 1, 12, 30)
    assert _epoch_us(naive) is None
    assert _x_of(naive, None) == naive.timestamp() / 3600

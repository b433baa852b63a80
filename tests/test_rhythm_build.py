"""The rhythm's quietest cell found from its lowest hour and day is the lowest of all 168."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.domain.rhythm import DAY_PRIOR_SHARE, HOUR_PRIOR, WEEK_HOURS, _quietest

COUNTS = st.floats(0.0, 1e6, allow_nan=False)


@given(st.lists(COUNTS, min_size=24, max_size=24), st.lists(COUNTS, min_size=7, max_size=7))
def test_the_quietest_cell_is_the_first_lowest(hour: list[float], day: list[float]) -> None:
    n = sum(hour)
    hs = [c + HOUR_PRIOR for c in hour]
    day_prior = DAY_PRIOR_SHARE * n / 7 + 1.0
    ds = [c + day_prior for c in day]
    w = [h * d for d in ds for h in hs]
    scale = WEEK_HOURS / sum(w)
    ws = [x * scale for x in w]
    assert _quietest(ws, ds, hs.index(min(hs))) == ws.index(min(ws))


def test_ties_keep_the_first_cell() -> None:
    hs = [1.0] * 24
    ds = [2.0, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0]
    ws = [h * d for d in ds for h in hs]
    assert _quietest(ws, ds, 0) == ws.index(min(ws)) == 24

"""The run-out learner (``app.domain.runout``) and the store's trading day it counts in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from app.domain.rhythm import WEEK_HOURS, Rhythm, _day_tables
from app.domain.runout import DRY_EXPECTED, STRETCHES_PER_DAY, DayTally, RunOut

MONDAY = datetime(2026, 11, 2, tzinfo=UTC)


def _hours(at: datetime) -> float:
    return at.timestamp() / 3600


def _store(open_hour: int, close_hour: int) -> Rhythm:
    """A store that trades from ``open_hour`` to ``close_hour`` (UTC) every day."""
    r = Rhythm()
    for day in range(14):
        for h in range(open_hour, close_hour):
            r.add(MONDAY + timedelta(days=day, hours=h), 10)
    r.clock(MONDAY)  # build the profile
    return r


def test_the_trading_day_begins_at_the_first_trading_hour_after_a_quiet_one() -> None:
    r = _store(8, 20)
    day = int(_hours(MONDAY + timedelta(days=3, hours=8)))
    for h in (8.0, 12.5, 19.9, 22.0, 31.5):  # evening and night belong to the day that ended
        assert r.day_start_h(_hours(MONDAY + timedelta(days=3, hours=h))) == day
    assert r.day_start_h(_hours(MONDAY + timedelta(days=4, hours=8))) == day + 24
    for h in (8.0, 19.9, 31.5):  # the next trading day begins at the next opening
        start, end, _ = r.built_day_clock_h(_hours(MONDAY + timedelta(days=3, hours=h)))
        assert (start, end) == (day, day + 24)


def test_a_store_that_never_goes_quiet_starts_a_day_at_its_quietest_hour() -> None:
    r = Rhythm()
    for day in range(14):
        for h in range(24):
            r.add(MONDAY + timedelta(days=day, hours=h), 3 if h == 4 else 10)
    r.clock(MONDAY)
    day = int(_hours(MONDAY + timedelta(days=3, hours=4)))
    assert r.day_start_h(_hours(MONDAY + timedelta(days=3, hours=4, minutes=30))) == day
    assert r.day_start_h(_hours(MONDAY + timedelta(days=4, hours=3))) == day


def _walked_day_tables(quiet: bytes, start: int, quiet_hour: int) -> tuple[list[int], list[int]]:
    """The day tables as first written: a walk twice round the week from ``start + 1``."""
    back = [0] * WEEK_HOURS
    run, was_quiet = WEEK_HOURS, quiet[start] == 1
    week = [*range(start + 1, WEEK_HOURS), *range(start + 1)]
    for i in week + week:
        q = quiet[i] == 1
        if not q and (was_quiet or (run >= 23 and i % 24 == quiet_hour)):
            run = 0
        else:
            run += 1
        back[i] = run
        was_quiet = q
    fwd = [WEEK_HOURS] * WEEK_HOURS
    nxt = -1
    for j in range(2 * WEEK_HOURS - 1, -1, -1):
        i = j % WEEK_HOURS
        if nxt >= 0:
            fwd[i] = nxt - j
        if back[i] == 0:
            nxt = j
    return back, fwd


@given(
    st.lists(st.booleans(), min_size=WEEK_HOURS, max_size=WEEK_HOURS).filter(
        lambda quiet: not all(quiet)
    ),
    st.integers(0, 23),
    st.integers(0, WEEK_HOURS - 1),
)
def test_the_day_tables_equal_the_walk_round_the_week_from_any_cell(
    quiet: list[bool], quiet_hour: int, start: int
) -> None:
    # ``Rhythm._build`` keeps the tables while the quiet cells and hour hold, whatever
    # its quietest cell (where the walk started) has become.
    cells = bytes(quiet)
    assert _day_tables(cells, quiet_hour) == _walked_day_tables(cells, start, quiet_hour)


def test_a_flat_dry_rate_changes_nothing_and_a_rising_one_raises_late_bins() -> None:
    flat = RunOut()
    for i in range(20_000):
        flat.observe("S1", float(i % 200), i % 50 == 0)
    assert flat.factors() == [1.0] * len(flat.factors())
    rising = RunOut()
    for i in range(20_000):
        units = float(i % 200)
        rising.observe(
            "S1" if (i // 200) % 2 else "S2", units, i % (10 if units > 100 else 200) == 0
        )
    for store in ("S1", "S2", None):
        assert rising.factor(5.0, store) == 1.0
        assert rising.factor(150.0, store) > 1.5  # twice the chain's (half the stretches are late)


def test_sales_count_per_trading_day_and_a_long_silence_is_a_dry_stretch() -> None:
    r = _store(8, 20)
    learner, tally = RunOut(), DayTally()
    per_day = STRETCHES_PER_DAY * DRY_EXPECTED * 2  # fast: a dry stretch is ~1.5 h of trade

    def sale(at: datetime, qty: int) -> None:
        assert learner.sold("S1", tally, r, _hours(at), qty) is tally
        if tally.per_day < 0.0:  # a new trading day: the engine reads the pair's speed
            tally.per_day = per_day

    start = MONDAY + timedelta(days=3, hours=8)
    for minute in range(0, 120, 6):  # 20 sales in the first two hours
        sale(start + timedelta(minutes=minute), 1)
    assert tally.units == 20 and sum(learner.bin_n) == 19 and sum(learner.bin_dry) == 0
    assert RunOut.today(tally, _hours(start + timedelta(hours=5))) == 20
    # No sale for six trading hours, then one: the stretch that began at 20 units ran dry.
    sale(start + timedelta(hours=8), 1)
    assert sum(learner.bin_dry) == 1 and tally.units == 21
    assert RunOut.today(tally, _hours(start + timedelta(days=1, hours=1))) == 0
    sale(start + timedelta(days=1, hours=1), 2)
    assert tally.units == 2

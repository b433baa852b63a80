"""The record behind the shelf: a book that says none is not certainty that the shelf
is empty. Shelf counts where the book said none teach the calibration's floors
(``app.domain.calibration.short_floors``), the least confidence a badge gets."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

import asyncpg
from hypothesis import given
from hypothesis import strategies as st

from app.db.engine_state import load_calibration
from app.domain.calibration import (
    FLOOR_MAX,
    FLOOR_PRIOR,
    FLOOR_PRIOR_N,
    Calibration,
    floor_of,
    short_floors,
)
from app.domain.engine import Engine
from app.domain.model import SnapshotRow
from app.domain.policy import Policy
from app.domain.reassess import CalibrationMap

T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)
counts = st.lists(st.integers(min_value=0, max_value=6), max_size=400)


def learned(found: list[int]) -> Calibration:
    cal = Calibration()
    for counted in found:
        cal.observe_short(counted)
    return cal


def test_floors_start_at_the_prior_and_follow_the_counts() -> None:
    assert Calibration().floors() == FLOOR_PRIOR
    # 200 counts behind books that said none: 20 found one unit, 10 found two.
    cal = learned([1] * 10 + [2] * 10 + [0] * 180)
    one, two, three = cal.floors()
    assert one == (20 + FLOOR_PRIOR_N * FLOOR_PRIOR[0]) / (200 + FLOOR_PRIOR_N)
    assert two == (10 + FLOOR_PRIOR_N * FLOOR_PRIOR[1]) / (200 + FLOOR_PRIOR_N)
    assert three == FLOOR_PRIOR_N * FLOOR_PRIOR[2] / (200 + FLOOR_PRIOR_N)
    # Counts that never find anything take the floor below the prior.
    assert learned([0] * 500).floors()[0] < FLOOR_PRIOR[0] / 5


@given(counts)
def test_floors_are_capped_probabilities_that_fall_with_the_units_short(found: list[int]) -> None:
    floors = learned(found).floors()
    assert len(floors) == len(FLOOR_PRIOR)
    assert all(0.0 <= f <= FLOOR_MAX for f in floors)
    assert all(a >= b for a, b in pairwise(floors))
    assert floors == short_floors(len(found), [sum(c > d for c in found) for d in range(3)])


@given(counts, st.integers(-20, 40), st.integers(1, 8), st.integers(1, 20))
def test_more_book_never_lowers_the_floor_and_more_wanted_never_raises_it(
    found: list[int], book: int, wanted: int, more: int
) -> None:
    floors = learned(found).floors()
    assert floor_of(floors, book + more, wanted) >= floor_of(floors, book, wanted)
    assert floor_of(floors, book, wanted + more) <= floor_of(floors, book, wanted)
    if wanted - max(book, 0) > len(floors):
        assert floor_of(floors, book, wanted) == 0.0  # too many units short: no floor
    if book >= wanted:
        assert floor_of(floors, book, wanted) == floors[0]
    assert floor_of((), book, wanted) == 0.0  # a map saved before floors: none


def _empty_books(pairs: int) -> Engine:
    """A store whose snapshot books every sku at zero."""
    engine = Engine(Policy(), {f"K{i}": "food" for i in range(pairs)})
    rows = [SnapshotRow(location_id="S1", sku=f"K{i}", on_hand=0, reserved=0, in_transit=0,
                        as_of=T0) for i in range(pairs)]  # fmt: skip
    engine.observe_snapshot(T0, rows)
    return engine


def test_counts_finding_units_behind_empty_books_lift_confidence_but_never_to_a_promise() -> None:
    engine = _empty_books(101)
    now = T0 + timedelta(hours=1)
    before = engine.answer("S1", "K100", 1, now)
    assert before.book == 0 and not before.promise
    assert before.confidence == FLOOR_PRIOR[0]  # not a certainty: the prior's floor
    for i in range(100):  # staff count 100 of the empty books: a third hold units
        engine.observe_feedback(kind="shelf_count", store_id="S1", sku=f"K{i}",
                                qty=1 if i % 3 == 0 else 0, observed_at=now, now=now)  # fmt: skip
    after = engine.answer("S1", "K100", 1, now)  # a book still at zero
    assert after.book == 0 and not after.promise and after.state == "unavailable"
    assert after.confidence == engine.calibration.floors()[0]
    assert FLOOR_PRIOR[0] < after.confidence <= FLOOR_MAX
    assert engine.answer("S1", "K100", 5, now).confidence == 0.0  # five short: no floor


def test_counts_finding_nothing_behind_empty_books_lower_the_floor() -> None:
    engine = _empty_books(201)
    now = T0 + timedelta(hours=1)
    for i in range(200):
        engine.observe_feedback(kind="shelf_count", store_id="S1", sku=f"K{i}", qty=0,
                                observed_at=now, now=now)  # fmt: skip
    low = engine.answer("S1", "K200", 1, now).confidence
    assert low is not None and 0.0 < low < FLOOR_PRIOR[0] / 2


async def test_a_map_keeps_its_floors_in_the_database_and_an_older_map_has_none(
    pool: asyncpg.Pool,
) -> None:
    floors = learned([1] * 30 + [0] * 70).floors()
    async with pool.acquire() as conn:
        new = await conn.fetchval(
            "INSERT INTO engine_calibration (digest, labels, weights, bins, floors)"
            " VALUES ('new', 0, '{1}', '{0.5}', $1) RETURNING calibration_id",
            list(floors),
        )
        old = await conn.fetchval(  # as saved before migration 0013
            "INSERT INTO engine_calibration (digest, labels, weights, bins)"
            " VALUES ('old', 0, '{1}', '{0.5}') RETURNING calibration_id"
        )
        kept = await load_calibration(conn, new)
        older = await load_calibration(conn, old)
    assert isinstance(kept, CalibrationMap) and kept.floors == floors
    assert kept.floor(0, 1) == floors[0]
    assert isinstance(older, CalibrationMap) and older.floors == ()
    assert older.floor(0, 1) == 0.0

"""The per-location truncation rule (``app.domain.truncation``) the pull and the replay share."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.domain.truncation import HEADER_ONLY, truncation_problem

locations = st.sampled_from(["S1", "S2", "S3", "S4", "S5"])
counts = st.dictionaries(locations, st.integers(0, 200), max_size=5)
# A file lists at least one row for each location it names.
named = st.dictionaries(locations, st.integers(1, 200), max_size=5)
shares = st.floats(0.0, 1.0)


def test_a_location_may_lose_up_to_max_drop_of_its_rows() -> None:
    assert truncation_problem({"S1": 50}, {"S1": 100}, 0.5) is None
    assert truncation_problem({"S1": 49}, {"S1": 100}, 0.5) == (
        "row count fell by more than the allowed 50% against the rows in force: "
        "location S1: 100 -> 49 rows (51%); it looks truncated"
    )
    assert truncation_problem({"S1": 99}, {"S1": 100}, 0.0) is not None
    assert truncation_problem({"S1": 0}, {"S1": 100}, 1.0) is None


def test_an_empty_file_and_new_locations() -> None:
    assert truncation_problem({}, {"S1": 10}, 0.5) == HEADER_ONLY
    assert truncation_problem({}, {}, 1.0) == HEADER_ONLY
    assert truncation_problem({"S9": 1}, {"S1": 100}, 0.5) is None  # S1 is not named
    assert truncation_problem({"S1": 1}, {"S1": 0}, 0.0) is None  # nothing to fall from


def test_the_steepest_falls_are_named_first_and_the_rest_counted() -> None:
    in_force = {f"S{i}": 100 for i in range(6)}
    staged = {f"S{i}": 10 * i for i in range(6)}  # S0..S4 fell by 100..60%, S5 by 50%
    reason = truncation_problem(staged, in_force, 0.5)
    assert reason is not None
    assert "location S0: 100 -> 0 rows (100%); location S1: 100 -> 10 rows (90%); " in reason
    assert "location S2: 100 -> 20 rows (80%) and 2 more locations;" in reason
    assert "S5" not in reason


@given(named, counts, shares)
def test_locations_the_file_does_not_name_never_make_it_truncated(
    staged: dict[str, int], in_force: dict[str, int], max_drop: float
) -> None:
    others = {f"X{k}": n for k, n in in_force.items()}
    assert truncation_problem(staged, {**in_force, **others}, max_drop) == truncation_problem(
        staged, in_force, max_drop
    )


@given(named, counts, shares, st.data())
def test_more_rows_at_a_named_location_never_make_a_file_look_truncated(
    staged: dict[str, int], in_force: dict[str, int], max_drop: float, data: st.DataObject
) -> None:
    if staged and truncation_problem(staged, in_force, max_drop) is None:
        where = data.draw(st.sampled_from(sorted(staged)))
        grown = {**staged, where: staged[where] + data.draw(st.integers(1, 50))}
        assert truncation_problem(grown, in_force, max_drop) is None


@given(counts, shares)
def test_a_file_that_keeps_every_locations_rows_is_applied(
    in_force: dict[str, int], max_drop: float
) -> None:
    staged = {k: n for k, n in in_force.items() if n > 0} or {"S1": 1}
    assert truncation_problem(staged, in_force, max_drop) is None

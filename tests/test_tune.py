"""The tuner's pure core: re-scoring, the fit/validation split, the choice, the policy file."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.backtest.tune import (
    Candidate,
    Scored,
    SliceName,
    SliceScore,
    Tally,
    TuneError,
    category_candidates,
    check_target,
    choose,
    cut_time,
    policy_toml,
    table,
    to_policy,
    tune,
    why_none,
)
from app.backtest.tune_record import Recording, VisitRecord, rescored_promise
from app.domain.confidence import Evidence
from app.domain.policy import Policy
from app.policy_file import load_policy

START = datetime(2026, 11, 1, tzinfo=UTC)
END = START + timedelta(days=10)
CATEGORIES = ("grocery", "toys", None)


def visit(
    hour: float,
    *,
    book: int | None = 5,
    wanted: int = 1,
    confidence: float = 0.95,
    available: bool = True,
    category: str | None = "grocery",
    fresh: bool = True,
    sales: float = 0.0,
) -> VisitRecord:
    ev = None
    if fresh and book is not None:
        ev = Evidence(book=book, wanted=wanted, expected_sales=sales)
    return VisitRecord(
        viewed_at=START + timedelta(hours=hour),
        category=category,
        wanted=wanted,
        available=available,
        book=book,
        fresh=fresh and book is not None,
        confidence=confidence,
        evidence=ev,
        promise=False,
    )


def recording(visits: list[VisitRecord], policy: Policy | None = None) -> Recording:
    return Recording(
        dataset="mem",
        start=START,
        end=END,
        base_policy=policy or Policy(),
        visits=visits,
        seconds=0.0,
    )


visit_st = st.builds(
    visit,
    st.floats(0, 239),
    book=st.one_of(st.none(), st.integers(-2, 12)),
    wanted=st.integers(1, 3),
    confidence=st.sampled_from([0.0, 0.3, 0.6, 0.8, 0.9, 0.95, 0.97, 0.99]),
    available=st.booleans(),
    category=st.sampled_from(CATEGORIES),
    fresh=st.booleans(),
    sales=st.sampled_from([0.0, 0.4, 2.5]),
)
visits_st = st.lists(visit_st, min_size=1, max_size=80)


@settings(max_examples=60, deadline=None)
@given(visits_st, st.sampled_from([0.5, 0.9, 0.97]), st.integers(0, 3), st.integers(0, 3))
def test_tally_scores_equal_visit_by_visit_rescoring(
    visits: list[VisitRecord], t: float, b: int, toys: int
) -> None:
    """The histogram arithmetic gives the same counts as applying the badge rule per visit."""
    rec = recording(visits)
    cut = START + timedelta(hours=120)
    tally = Tally(rec, cut, [0.5, 0.9, 0.97], max_buffer=3)
    cand = Candidate(t, b, (("toys", toys),))
    slices: tuple[tuple[SliceName, bool], ...] = (("fit", True), ("validation", False))
    for name, early in slices:
        mine = [v for v in visits if (v.viewed_at < cut) == early]
        promised = [v for v in mine if rescored_promise(v, t, cand.buffer(v.category))]
        got = tally.score(name, cand)
        assert got.visits == len(mine)
        assert got.available == sum(v.available for v in mine)
        assert got.promises == len(promised)
        assert got.false_promises == sum(not v.available for v in promised)
    with pytest.raises(ValueError, match="outside the tallied"):
        tally.score("fit", Candidate(t, 4))


def test_held_back_units_count_against_the_book() -> None:
    """Expected sales before arrival are held back, so a thin book stops promising."""
    thin = visit(1, book=2, sales=2.5)
    assert rescored_promise(visit(1, book=2), 0.9, 0) is True
    assert rescored_promise(thin, 0.9, 0) is False
    assert rescored_promise(visit(1, book=2, fresh=False), 0.5, 0) is False
    assert rescored_promise(visit(1, confidence=0.89), 0.9, 0) is False


def test_fit_and_validation_are_split_at_the_cut() -> None:
    cut = cut_time(START, END, 0.6)
    assert cut == START + timedelta(days=6)
    rec = recording([visit(1), visit(143.9), visit(144), visit(200, available=False)])
    res = tune(rec, 0.5, fit_fraction=0.6, max_buffer=2)
    assert res.window.cut == cut
    base = res.base
    assert base is not None
    assert (base.fit.visits, base.validation.visits) == (2, 2)
    assert base.validation.available == 1


@settings(max_examples=60, deadline=None)
@given(visits_st, st.floats(0.0, 0.5))
def test_the_chosen_policy_keeps_the_target_on_the_fit_slice(
    visits: list[VisitRecord], target: float
) -> None:
    res = tune(recording(visits), target, max_buffer=3, min_category_visits=5)
    c = res.chosen
    if c is not None:
        assert c.fit.false_promise_rate <= target
        assert c.fit.promises > c.fit.false_promises  # it keeps at least one promise
        best = max(
            (s.fit.coverage for s in res.scored if s.fit.false_promise_rate <= target),
            default=0.0,
        )
        assert c.fit.coverage == best


@settings(max_examples=60, deadline=None)
@given(visits_st, st.floats(0.0, 0.5), st.floats(0.0, 0.5))
def test_a_stricter_target_never_gives_more_coverage(
    visits: list[VisitRecord], a: float, b: float
) -> None:
    strict, loose = sorted((a, b))
    rec = recording(visits)
    s = tune(rec, strict, max_buffer=3, min_category_visits=5).chosen
    lo = tune(rec, loose, max_buffer=3, min_category_visits=5).chosen
    cov_s = 0.0 if s is None else s.fit.coverage
    cov_l = 0.0 if lo is None else lo.fit.coverage
    assert cov_s <= cov_l


@settings(max_examples=60, deadline=None)
@given(visits_st)
def test_a_zero_target_promises_nothing_or_only_perfect_promises(
    visits: list[VisitRecord],
) -> None:
    c = tune(recording(visits), 0.0, max_buffer=3, min_category_visits=5).chosen
    assert c is None or c.fit.false_promises == 0


def test_a_zero_target_with_every_promise_failing_chooses_nothing() -> None:
    rec = recording([visit(h, available=False) for h in range(0, 200, 5)] + [visit(1, book=0)])
    res = tune(rec, 0.0)
    assert res.chosen is None
    text = table(res)
    assert "none meets the target" in text and "*" not in text


def test_the_choice_trades_coverage_for_the_target() -> None:
    """Confidence 0.8 visits fail a third of the time; 0.97 ones never: a 5% target needs 0.97."""
    vs = [visit(h, confidence=0.97) for h in range(0, 100)]
    vs += [visit(h, confidence=0.8, available=h % 3 != 0) for h in range(0, 100)]
    res = tune(recording(vs), 0.05, max_buffer=2)
    assert res.chosen is not None
    assert res.chosen.candidate.confidence_threshold > 0.8
    assert res.chosen.fit.false_promises == 0
    loose = tune(recording(vs), 0.4, max_buffer=2).chosen
    assert loose is not None and loose.fit.coverage > res.chosen.fit.coverage


def test_a_category_gets_its_own_buffer_only_with_enough_visits() -> None:
    # toys: thin books (2) fail, thick ones (6) hold; grocery always holds.
    vs = [visit(h / 10, book=2, category="toys", available=False) for h in range(300)]
    vs += [visit(h / 10, book=6, category="toys") for h in range(300)]
    vs += [visit(h / 10, book=2, category="grocery") for h in range(600)]
    rec = recording(vs)
    tally = Tally(rec, END, [0.9], max_buffer=4)
    cands = category_candidates(tally, [1.0, 10.0, 100.0], min_category_visits=500)
    assert any(c.safety_buffer <= 1 and c.buffer("toys") >= 2 for c in cands)
    assert category_candidates(tally, [1.0, 10.0, 100.0], min_category_visits=601) == []
    chosen = tune(rec, 0.01, fit_fraction=0.5, max_buffer=4, min_category_visits=500).chosen
    assert chosen is not None
    assert chosen.candidate.buffer("toys") >= 2 and chosen.candidate.buffer("grocery") <= 1
    assert chosen.fit.false_promises == 0 and chosen.fit.coverage == 1.0


@pytest.mark.parametrize("bad", [-0.01, 1.0, 1.5, math.nan])
def test_targets_outside_the_unit_interval_are_refused(bad: float) -> None:
    with pytest.raises(TuneError, match="target"):
        check_target(bad)
    with pytest.raises(TuneError):
        choose([], bad)


@pytest.mark.parametrize("bad", [0.0, 1.0, -0.2])
def test_fit_fractions_outside_the_unit_interval_are_refused(bad: float) -> None:
    with pytest.raises(TuneError, match="fit fraction"):
        cut_time(START, END, bad)


def _scored(t: float, b: int, rules: tuple[tuple[str, int], ...] = ()) -> Scored:
    fit = SliceScore(visits=100, available=90, promises=80, false_promises=1)
    val = SliceScore(visits=50, available=45, promises=40, false_promises=2)
    return Scored(Candidate(t, b, rules), fit, val)


def test_the_policy_file_round_trips_with_its_header(tmp_path: Path) -> None:
    base = Policy(max_data_age=timedelta(minutes=90), low_stock_below=4)
    chosen = _scored(0.955, 3, (("electronics", 5), ("grocery", 1)))
    res = tune(recording([visit(1)]), 0.01)
    res = type(res)(res.target, res.window, [chosen], chosen, None)
    policy = to_policy(chosen.candidate, base)
    path = tmp_path / "policy.toml"
    path.write_text(policy_toml(policy, res, "/data/my set"), encoding="utf-8")
    loaded = load_policy(path)
    assert loaded == policy
    assert loaded.confidence_threshold == 0.955 and loaded.safety_buffer == 3
    assert loaded.buffer_for("S1", "X", "electronics") == 5
    assert loaded.buffer_for("S1", "X", "toys") == 3
    assert loaded.max_data_age == timedelta(minutes=90) and loaded.low_stock_below == 4
    text = path.read_text()
    assert "# dataset: /data/my set" in text
    assert "<= 1.00%" in text
    assert "FPR 1.25% (1 false)" in text  # fit: 1 of 80
    assert "FPR 5.00% (2 false)" in text  # validation: 2 of 40
    assert "WARNING: the validation FPR is above the target" in text


def test_no_policy_file_without_a_choice() -> None:
    res = tune(recording([visit(1, available=False)]), 0.0)
    assert res.chosen is None
    with pytest.raises(TuneError, match="nothing to write"):
        policy_toml(Policy(), res, "mem")


def test_without_a_choice_the_reason_names_what_the_fit_slice_lacks() -> None:
    empty = tune(recording([]), 0.01)
    assert empty.chosen is None
    assert why_none(empty).endswith("has no visits: nothing to fit a policy on")
    unknown = tune(recording([visit(1, book=None), visit(2, book=0)]), 0.01)
    assert unknown.chosen is None
    assert "has 2 visits and no candidate promises any of them" in why_none(unknown)
    failing = tune(recording([visit(1, available=False)]), 0.0)
    assert why_none(failing) == "no candidate keeps its fit-slice false-promise rate within 0.00%"

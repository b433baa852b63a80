"""A stored badge asked about for ``qty`` units within ``pickup_within``: never a promise
unless the stored badge is one, the record beyond the stored buffer covers ``qty``, and
the window is no longer than the one the badge was computed for."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain.badge import Badge, badge_for, gate_staleness
from app.domain.model import BookPosition
from app.domain.policy import Policy
from app.domain.reasons import Reason
from app.domain.wanted import for_wanted

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
HORIZON = timedelta(hours=2)
RANK = {"unknown": 0, "unavailable": 1, "low_stock": 2, "in_stock": 3}

minutes = st.integers(0, 48 * 60).map(lambda m: timedelta(minutes=m))


@st.composite
def stored_badges(draw: st.DrawFn) -> Badge:
    """Badges as the reconcilers store them (wanted 1), of every state, with and
    without a confidence, and some arbitrary ones a newer writer might store."""
    policy = Policy(
        safety_buffer=draw(st.integers(0, 6)),
        low_stock_below=draw(st.integers(1, 6)),
        max_data_age=timedelta(hours=6),
    )
    if draw(st.booleans()):
        position = draw(
            st.none()
            | st.builds(
                BookPosition,
                store_id=st.just("S1"),
                sku=st.just("SKU-1"),
                book=st.integers(-3, 40),
                base_source=st.sampled_from(["snapshot", "count"]),
                base_at=st.integers(0, 10 * 3600).map(lambda s: T0 - timedelta(seconds=s)),
                last_event_at=st.none(),
            )
        )
        stored = badge_for(
            position,
            policy=policy,
            category=None,
            store_newest_at=T0 - timedelta(minutes=draw(st.integers(0, 600))),
            now=T0,
        )
        confidence = draw(st.none() | st.floats(0, 1))
        return Badge(
            state=stored.state,
            book=stored.book,
            safety_buffer=stored.safety_buffer,
            wanted=1,
            confidence=confidence,
            as_of=stored.as_of,
            reasons=stored.reasons,
        )
    return Badge(
        state=draw(st.sampled_from(["in_stock", "low_stock", "unavailable", "unknown"])),
        book=draw(st.none() | st.integers(-3, 40)),
        safety_buffer=draw(st.integers(0, 10)),
        wanted=1,
        confidence=draw(st.none() | st.floats(0, 1)),
        as_of=T0,
        reasons=tuple(draw(st.lists(st.sampled_from(list(Reason)), max_size=3, unique=True))),
    )


@given(stored_badges(), st.integers(1, 100), minutes)
def test_never_a_promise_without_the_stored_promise_the_units_and_the_window(
    stored: Badge, qty: int, pickup_within: timedelta
) -> None:
    answer = for_wanted(stored, wanted=qty, horizon=pickup_within, computed_for=HORIZON)
    assert answer.wanted == qty
    if answer.promise:
        assert stored.promise
        assert stored.book is not None and stored.book - stored.safety_buffer >= qty
        assert pickup_within <= HORIZON
    # never more of a promise than stored, and the record itself is not rewritten
    assert RANK[answer.state] <= RANK[stored.state]
    assert (answer.book, answer.safety_buffer, answer.as_of) == (
        stored.book,
        stored.safety_buffer,
        stored.as_of,
    )
    # a confidence is shown only where the stored one still bounds the answer from below
    if answer.confidence is not None:
        assert answer.confidence == stored.confidence
        assert qty <= stored.wanted and pickup_within <= HORIZON


@given(stored_badges(), st.integers(1, 100), st.integers(1, 100), minutes, minutes)
def test_more_units_or_a_longer_window_never_make_a_promise(
    stored: Badge, q1: int, q2: int, h1: timedelta, h2: timedelta
) -> None:
    (qa, qb), (ha, hb) = sorted((q1, q2)), sorted((h1, h2))
    fewer = for_wanted(stored, wanted=qa, horizon=ha, computed_for=HORIZON)
    more = for_wanted(stored, wanted=qb, horizon=hb, computed_for=HORIZON)
    assert RANK[more.state] <= RANK[fewer.state]


@given(stored_badges(), st.integers(1, 100), minutes, st.integers(0, 48 * 3600))
def test_the_staleness_gate_still_withdraws_after_it(
    stored: Badge, qty: int, pickup_within: timedelta, age_s: int
) -> None:
    policy = Policy(max_data_age=timedelta(hours=6))
    now = T0 + timedelta(seconds=age_s)
    answer = gate_staleness(
        for_wanted(stored, wanted=qty, horizon=pickup_within, computed_for=HORIZON),
        T0,
        now,
        policy,
    )
    if now - T0 > policy.max_data_age:
        assert not answer.promise


def test_the_stored_question_gets_the_stored_badge() -> None:
    stored = Badge(
        state="in_stock",
        book=9,
        safety_buffer=2,
        wanted=1,
        confidence=0.93,
        as_of=T0,
        reasons=(Reason.MARGIN_OK, Reason.CONFIDENT),
    )
    assert for_wanted(stored, wanted=1, horizon=HORIZON, computed_for=HORIZON) is stored
    # 7 units beyond the buffer: 7 wanted is a promise (no confidence for 7), 8 is not
    seven = for_wanted(stored, wanted=7, horizon=HORIZON, computed_for=HORIZON)
    assert (seven.state, seven.confidence) == ("in_stock", None)
    eight = for_wanted(stored, wanted=8, horizon=HORIZON, computed_for=HORIZON)
    assert (eight.state, eight.reasons, eight.confidence) == (
        "unavailable",
        (Reason.BELOW_WANTED,),
        None,
    )
    # a shorter window keeps the promise and the confidence (a lower bound for it)
    sooner = for_wanted(stored, wanted=1, horizon=timedelta(minutes=30), computed_for=HORIZON)
    assert (sooner.state, sooner.confidence) == ("in_stock", 0.93)
    later = for_wanted(
        stored, wanted=1, horizon=HORIZON + timedelta(minutes=1), computed_for=HORIZON
    )
    assert (later.state, later.reasons) == ("unavailable", (Reason.LOW_CONFIDENCE,))


@pytest.mark.parametrize(
    ("qty", "horizon"), [(0, HORIZON), (-1, HORIZON), (1, timedelta(minutes=-1))]
)
def test_bad_questions_are_refused(qty: int, horizon: timedelta) -> None:
    stored = badge_for(None, policy=Policy(), category=None, store_newest_at=T0, now=T0)
    with pytest.raises(ValueError):
        for_wanted(stored, wanted=qty, horizon=horizon, computed_for=HORIZON)

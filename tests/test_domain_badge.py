"""Invariants of the badge: never a promise without margin, and time, doubt and
missing data never make a promise more likely."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from app.domain.badge import Badge, badge_for, gate_staleness
from app.domain.model import BookPosition
from app.domain.policy import BufferRule, Policy
from app.domain.reasons import Reason

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
RANK = {"unknown": 0, "unavailable": 1, "low_stock": 2, "in_stock": 3}

policies = st.builds(
    Policy,
    safety_buffer=st.integers(0, 10),
    low_stock_below=st.integers(1, 10),
    max_data_age=st.integers(60, 48 * 3600).map(lambda s: timedelta(seconds=s)),
    buffers=st.lists(
        st.builds(
            BufferRule,
            units=st.integers(0, 10),
            store_id=st.sampled_from(["S1", "S2"]),
            category=st.none() | st.sampled_from(["food", "toys"]),
        ),
        max_size=3,
    ).map(tuple),
)
ages = st.integers(0, 72 * 3600).map(lambda s: timedelta(seconds=s))


@st.composite
def positions(draw: st.DrawFn) -> BookPosition:
    base_age = draw(ages)
    event_age = draw(st.none() | st.integers(0, int(base_age.total_seconds())))
    return BookPosition(
        store_id=draw(st.sampled_from(["S1", "S2", "S3"])),
        sku="SKU-1",
        book=draw(st.integers(-5, 60)),
        base_source=draw(st.sampled_from(["snapshot", "count"])),
        base_at=T0 - base_age,
        last_event_at=None if event_age is None else T0 - timedelta(seconds=event_age),
    )


def badge(
    pos: BookPosition | None,
    policy: Policy,
    newest_age: timedelta | None,
    *,
    wanted: int = 1,
    category: str | None = "food",
    now: datetime = T0,
) -> Badge:
    newest = None if newest_age is None else T0 - newest_age
    return badge_for(
        pos, policy=policy, category=category, store_newest_at=newest, now=now, wanted=wanted
    )


@given(positions(), policies, st.none() | ages, st.integers(1, 5))
def test_a_promise_always_has_margin(
    pos: BookPosition, policy: Policy, age: timedelta | None, wanted: int
) -> None:
    b = badge(pos, policy, age, wanted=wanted)
    assert b.safety_buffer == policy.buffer_for(pos.store_id, pos.sku, "food")
    if b.promise:
        assert b.book is not None and b.book - b.safety_buffer >= wanted
        assert Reason.STALE_DATA not in b.reasons


@given(positions(), policies, st.none() | ages, st.integers(1, 20))
def test_more_book_never_lowers_the_badge(
    pos: BookPosition, policy: Policy, age: timedelta | None, extra: int
) -> None:
    more = BookPosition(
        **{**{f: getattr(pos, f) for f in pos.__struct_fields__}, "book": pos.book + extra}
    )
    assert RANK[badge(more, policy, age).state] >= RANK[badge(pos, policy, age).state]


@given(positions(), policies, ages, ages)
def test_older_data_never_raises_the_badge(
    pos: BookPosition, policy: Policy, age: timedelta, later: timedelta
) -> None:
    now_badge = badge(pos, policy, age)
    after = badge(pos, policy, age, now=T0 + later)
    assert RANK[after.state] <= RANK[now_badge.state]


@given(positions(), policies, st.none() | ages)
def test_stale_data_is_never_a_promise(
    pos: BookPosition, policy: Policy, age: timedelta | None
) -> None:
    b = badge(pos, policy, age, now=T0 + policy.max_data_age + timedelta(days=3))
    assert b.state == "unknown" and not b.promise
    assert b.reasons[0] is Reason.STALE_DATA


@given(positions(), policies, ages, ages)
def test_read_time_gate_only_withdraws(
    pos: BookPosition, policy: Policy, age: timedelta, later: timedelta
) -> None:
    stored = badge(pos, policy, age)
    newest = T0 - age
    gated = gate_staleness(stored, newest, T0 + later, policy)
    assert RANK[gated.state] <= RANK[stored.state]
    assert gate_staleness(gated, newest, T0 + later, policy) == gated
    fresh_again = badge(pos, policy, age, now=T0 + later)
    assert gated.promise == fresh_again.promise


def test_no_position_is_unknown_with_reason() -> None:
    b = badge(None, Policy(), timedelta(0))
    assert (b.state, b.reasons, b.book) == ("unknown", (Reason.NO_DATA,), None)


def test_worked_examples_with_default_policy() -> None:
    def at(book: int, wanted: int = 1) -> str:
        pos = BookPosition(store_id="S1", sku="A", book=book, base_source="snapshot", base_at=T0)
        return badge(pos, Policy(), timedelta(minutes=5), wanted=wanted).state

    assert [at(b) for b in (0, 1, 2, 3, 4, 5, 20)] == [
        "unavailable",
        "unavailable",
        "unavailable",
        "low_stock",
        "low_stock",
        "in_stock",
        "in_stock",
    ]
    assert at(4, wanted=2) == "low_stock" and at(4, wanted=3) == "unavailable"


def test_most_specific_buffer_rule_wins() -> None:
    policy = Policy(
        safety_buffer=2,
        buffers=(
            BufferRule(units=5, category="toys"),
            BufferRule(units=1, store_id="S1"),
            BufferRule(units=7, store_id="S1", category="toys"),
            BufferRule(units=0, sku="A"),
        ),
    )
    assert policy.buffer_for("S2", "B", "food") == 2
    assert policy.buffer_for("S1", "B", "food") == 1
    assert policy.buffer_for("S2", "B", "toys") == 5
    assert policy.buffer_for("S1", "B", "toys") == 7
    assert policy.buffer_for("S1", "A", "toys") == 0

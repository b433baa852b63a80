"""The shelf's usual share of the book, learned from shelf counts, for multi-unit requests."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from app.domain.confidence import confidence
from app.domain.engine import Engine
from app.domain.model import SnapshotRow
from app.domain.policy import Policy
from app.domain.reasons import Reason
from app.domain.shelf import SHARE_MIN_COUNTS, ShelfShare

T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)


def test_nothing_is_assumed_before_enough_counts() -> None:
    share = ShelfShare()
    for i in range(SHARE_MIN_COUNTS - 1):
        share.observe(20, 5 + i % 3)
    assert share.typical(20) == (0.0, 0.0)
    share.observe(20, 6)
    typical, spread = share.typical(20)
    # between what the counts found (~6) and the prior's "the shelf holds the book" (20),
    # near the counts: 50 of them against SHARE_PRIOR_N pseudo-counts
    assert 6.0 < typical < 10.0 and spread > 0.0


def test_learns_a_shelf_of_a_few_days_in_front_of_a_bigger_book() -> None:
    share = ShelfShare()
    for i in range(400):  # the shelf holds book ** 0.6 units, give or take one
        book = 2 + i % 60
        share.observe(book, max(1, round(book**0.6) + (i % 3) - 1))
    a, b, spread = share.fit() or (0.0, 0.0, 0.0)
    assert 0.5 < b < 0.7 and abs(a) < 0.3 and 0.05 < spread < 0.4
    typicals = [share.typical(book)[0] for book in range(1, 80)]
    assert all(x <= y for x, y in itertools.pairwise(typicals))
    assert all(t <= book for t, book in zip(typicals, range(1, 80), strict=True))
    assert abs(share.typical(40)[0] - 40**0.6) < 1.5


@given(st.lists(st.tuples(st.integers(-3, 80), st.integers(-3, 80)), max_size=300))
def test_a_bigger_book_never_means_a_smaller_shelf_nor_more_than_the_book(
    counts: list[tuple[int, int]],
) -> None:
    share = ShelfShare()
    for book, shelf in counts:
        share.observe(book, shelf)
    typicals = [share.typical(book)[0] for book in range(1, 100)]
    assert all(x <= y for x, y in itertools.pairwise(typicals))
    assert all(0.0 <= t <= book for t, book in zip(typicals, range(1, 100), strict=True))
    fit = share.fit()
    used = sum(1 for book, shelf in counts if book >= 1 and shelf >= 1)
    assert (fit is None) == (used < SHARE_MIN_COUNTS)
    if fit is not None:
        assert 0.0 <= fit[1] <= 1.0 and math.isfinite(fit[0]) and fit[2] >= 0.1


def _engine_with_counted_shelves() -> tuple[Engine, datetime]:
    """60 pairs with a book of 24, whose shelf counts find 6 units; pair Z never counted."""
    engine = Engine(Policy(), {})
    skus = [f"K{i}" for i in range(60)]
    engine.observe_snapshot(T0, [SnapshotRow("S1", k, 24, 0, 0, T0) for k in [*skus, "Z"]])
    at = T0
    for k in skus:
        at += timedelta(minutes=5)
        engine.observe_feedback(
            kind="shelf_count", store_id="S1", sku=k, qty=6, observed_at=at, now=at
        )
    return engine, at + timedelta(minutes=5)


def test_many_units_from_a_big_book_are_doubted_one_unit_is_not() -> None:
    engine, now = _engine_with_counted_shelves()
    pos = engine.ledger.position("S1", "Z", now)
    assert pos is not None and pos.book == 24
    fresh, _ = _engine_with_counted_shelves()
    fresh.shelf_share = ShelfShare()  # the same engine without the share it learnt
    one, fresh_one = engine.assess(pos, 1, now), fresh.assess(pos, 1, now)
    # one unit: only the sales expected before arrival count against the shelf of ~6,
    # and this item sells a fraction of a unit in that time
    assert fresh_one.confidence - 1e-3 < one.confidence <= fresh_one.confidence
    many = engine.assess(pos, 12, now)
    assert many.confidence < fresh.assess(pos, 12, now).confidence - 0.3
    horizon = engine.policy.arrival_horizon
    assert confidence(engine._evidence(pos, 12, now, horizon)) < 0.4
    assert confidence(fresh._evidence(pos, 12, now, horizon)) > 0.9
    assert Reason.SHELF_HOLDS_FEWER in many.reasons
    assert Reason.SHELF_HOLDS_FEWER not in engine.assess(pos, 4, now).reasons


def test_a_book_that_is_a_shelf_count_is_not_shared_again() -> None:
    engine, now = _engine_with_counted_shelves()
    before = engine.shelf_share.n
    pos = engine.ledger.position("S1", "K0", now)
    assert pos is not None and pos.book == 6 and pos.base_source == "count"
    ev = engine._evidence(pos, 5, now, engine.policy.arrival_horizon)
    assert ev.shelf_typical == 0.0  # the book is the shelf's own units
    engine.observe_feedback(kind="shelf_count", store_id="S1", sku="K0", qty=5, observed_at=now,
                            now=now)  # fmt: skip
    assert engine.shelf_share.n == before  # a shelf count against a shelf count teaches nothing

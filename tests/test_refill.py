"""A shelf seen short is refilled from the back room: learned from the next looks at it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from msgspec.structs import replace

from app.domain.calibration import FLOOR_PRIOR
from app.domain.confidence import Evidence, confidence, empty_given_quiet
from app.domain.engine import Engine
from app.domain.model import Sale, SnapshotRow
from app.domain.policy import Policy
from app.domain.shelf import REFILL_EDGES, Refill, not_refilled_after_sales

T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_nothing_learnt_means_the_short_shelf_stays_short() -> None:
    assert all(Refill().p_refilled(h) == 0.0 for h in (0.0, 3.0, 100.0))


@given(st.lists(st.tuples(st.floats(0.0, 200.0), st.booleans()), max_size=200))
def test_a_refill_never_gets_less_likely_with_time(seen: list[tuple[float, bool]]) -> None:
    refill = Refill()
    for hours, refilled in seen:
        refill.observe(hours, refilled)
    curve = [refill.p_refilled(h) for h in (0.0, *REFILL_EDGES, 500.0)]
    assert all(0.0 <= p <= 1.0 for p in curve)
    assert all(a <= b for a, b in pairwise(curve))


def _counted_empty(engine: Engine, sku: str, at: datetime) -> None:
    """A book of 10 on the snapshot; staff count the shelf empty (the count sets the book)."""
    engine.observe_snapshot(at, [SnapshotRow("S1", sku, 10, 0, 0, at)])
    engine.observe_feedback(kind="shelf_count", store_id="S1", sku=sku, qty=0,
                            observed_at=at + HOUR, now=at + HOUR)  # fmt: skip


def test_a_shelf_counted_empty_keeps_its_back_room_units_in_view() -> None:
    engine = Engine(Policy(), {})
    _counted_empty(engine, "A", T0)
    now = T0 + 6 * HOUR
    pos = engine.ledger.position("S1", "A", now)
    assert pos is not None and pos.book == 0  # the contract: a shelf count is a count
    ev = engine._evidence(pos, 1, now, engine.policy.arrival_horizon)
    assert ev.refilled_units == 10 and ev.not_refilled == 1.0
    # Nothing learnt: no refill assumed, only the floor's prior (a record may be behind).
    assert engine.assess(pos, 1, now).confidence == FLOOR_PRIOR[0]


def test_later_looks_at_short_shelves_teach_the_refill_and_lift_confidence() -> None:
    engine = Engine(Policy(), {})
    at = T0
    for i in range(40):  # shelves counted empty, then found stocked 8 hours later
        sku = f"K{i}"
        _counted_empty(engine, sku, at)
        seen = at + 9 * HOUR
        engine.observe_feedback(kind="shelf_count", store_id="S1", sku=sku, qty=4,
                                observed_at=seen, now=seen)  # fmt: skip
        at += timedelta(minutes=10)
    assert engine.refill.p_refilled(8.5) > 0.8
    assert engine.refill.p_refilled(0.5) == 0.0  # nothing seen that soon: the bound holds
    _counted_empty(engine, "Z", at)
    pos = engine.ledger.position("S1", "Z", at + 10 * HOUR)
    assert pos is not None and pos.book == 0
    assert engine.assess(pos, 1, at + 10 * HOUR).confidence > 0.3
    # Too soon for a refill: the floor alone, which the refills did not teach.
    assert engine.calibration.floors() == FLOOR_PRIOR
    assert engine.assess(pos, 1, at + 2 * HOUR).confidence == FLOOR_PRIOR[0]


def test_a_found_pick_of_no_more_than_was_seen_teaches_nothing() -> None:
    engine = Engine(Policy(), {})
    engine.observe_snapshot(T0, [SnapshotRow("S1", "A", 10, 0, 0, T0)])
    engine.observe_feedback(kind="shelf_count", store_id="S1", sku="A", qty=2,
                            observed_at=T0 + HOUR, now=T0 + HOUR)  # fmt: skip
    engine.observe_feedback(kind="pick_found", store_id="S1", sku="A", qty=2,
                            observed_at=T0 + 3 * HOUR, now=T0 + 3 * HOUR)  # fmt: skip
    assert sum(engine.refill.n) == 0
    engine.observe_feedback(kind="pick_found", store_id="S1", sku="A", qty=3,
                            observed_at=T0 + 4 * HOUR, now=T0 + 4 * HOUR)  # fmt: skip
    assert sum(engine.refill.n) == 1 and sum(engine.refill.refilled) == 1


def test_a_second_shelf_count_keeps_the_units_the_first_took_out_of_the_book() -> None:
    engine = Engine(Policy(), {})
    _counted_empty(engine, "A", T0)  # book 10 -> 0: 10 units out of the book
    engine.observe_feedback(kind="shelf_count", store_id="S1", sku="A", qty=1,
                            observed_at=T0 + 3 * HOUR, now=T0 + 3 * HOUR)  # fmt: skip
    pos = engine.ledger.position("S1", "A", T0 + 4 * HOUR)
    assert pos is not None and pos.book == 1
    ev = engine._evidence(pos, 1, T0 + 4 * HOUR, engine.policy.arrival_horizon)
    assert ev.refilled_units == 10  # the shelf's 1 and the 9 still behind it


def _a_posterior(
    update: Callable[[float, Any], float],
    priors: tuple[float, float],
    evidence: tuple[Any, Any],
    *,
    evidence_raises: bool,
) -> None:
    """``update(prior, evidence)`` is a probability, non-decreasing in the prior, moves
    with the evidence in the one direction, and is the prior without evidence."""
    lo_p, hi_p = sorted(priors)
    lo_x, hi_x = sorted(evidence)
    at = update(lo_p, lo_x)
    assert 0.0 <= at <= 1.0
    assert at <= update(hi_p, lo_x)
    assert (at <= update(lo_p, hi_x)) if evidence_raises else (update(lo_p, hi_x) <= at)
    assert update(lo_p, type(lo_x)(0)) == lo_p  # no evidence: the prior


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 50.0), st.floats(0.0, 50.0))
def test_more_quiet_or_a_likelier_empty_shelf_never_makes_a_stocked_one_likelier(
    p1: float, p2: float, q1: float, q2: float
) -> None:
    _a_posterior(empty_given_quiet, (p1, p2), (q1, q2), evidence_raises=True)


def _picked_empty_while_the_store_sells(sell_after: bool) -> tuple[Engine, list[float]]:
    """Pair A sold hourly for two days, then a pick found its shelf empty; pair B keeps
    the store's POS feed going. Returns the engine and A's ``not_refilled`` 1, 3 and 6
    hours after the pick (A sells once more an hour after the pick if ``sell_after``)."""
    engine = Engine(Policy(), {"A": "food", "B": "food"})
    engine.observe_snapshot(T0, [SnapshotRow("S1", "A", 200, 0, 0, T0),
                                 SnapshotRow("S1", "B", 500, 0, 0, T0)])  # fmt: skip
    for h in range(1, 20):  # a refill learned: found stocked in about half the looks
        engine.refill.observe(float(h % 10), h % 2 == 0)
    n = 0
    for i in range(48 * 2):
        at = T0 + i * HOUR / 2
        for sku in ("A", "B") if i % 2 == 0 else ("B",):
            n += 1
            engine.observe_event(Sale(event_id=f"s{n}", store_id="S1", sku=sku,
                                      occurred_at=at, qty=1))  # fmt: skip
    picked = T0 + 48 * HOUR
    engine.observe_feedback(kind="pick_short", store_id="S1", sku="A", qty=0,
                            observed_at=picked, now=picked)  # fmt: skip
    out = []
    for i in range(1, 13):
        at = picked + i * HOUR / 2
        n += 1
        engine.observe_event(Sale(event_id=f"s{n}", store_id="S1", sku="B", occurred_at=at, qty=1))
        if sell_after and i == 2:
            n += 1
            engine.observe_event(Sale(event_id=f"s{n}", store_id="S1", sku="A",
                                      occurred_at=at, qty=1))  # fmt: skip
        if i in (2, 6, 12):
            now = at + timedelta(minutes=1)
            pos = engine.ledger.position("S1", "A", now)
            assert pos is not None
            out.append(engine._evidence(pos, 1, now, engine.policy.arrival_horizon).not_refilled)
    return engine, out


def test_no_sale_since_a_shelf_was_seen_empty_counts_against_its_refill() -> None:
    engine, stays = _picked_empty_while_the_store_sells(sell_after=False)
    prior = [1.0 - engine.refill.p_refilled(h) for h in (1.0, 3.0, 6.0)]
    assert all(0.0 < p < 1.0 for p in prior)
    # A seller of ~1 unit an hour, quiet while its store sells: likelier still empty
    # than the refill's chance by the hours alone.
    assert all(s > p for s, p in zip(stays, prior, strict=True))
    # six quiet hours of a unit-an-hour seller: ~6 units it would have sold, a quiet that
    # long ~9% likely from a stocked shelf (SILENCE_SIZE 1.5), so ~0.5 becomes > 0.9
    assert stays[2] > 0.9
    # A sale after the pick: no quiet to read, and a unit sold beyond the none seen
    # makes a refill likelier than the hours alone say.
    engine, stays = _picked_empty_while_the_store_sells(sell_after=True)
    assert stays[1:] == [not_refilled_after_sales(p, 1) for p in prior[1:]]
    assert all(s < p for s, p in zip(stays[1:], prior[1:], strict=True))


@given(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.integers(0, 50), st.integers(0, 50))
def test_more_sold_beyond_what_was_seen_never_makes_an_unrefilled_shelf_likelier(
    p1: float, p2: float, k1: int, k2: int
) -> None:
    _a_posterior(not_refilled_after_sales, (p1, p2), (k1, k2), evidence_raises=False)


def test_the_map_lifts_a_refilled_shelf_not_the_chance_of_one() -> None:
    """Seen empty, 90% likely still so: the map (here lifting every raw value by 0.4)
    applies to the refilled case only, so confidence stays near P(refilled); the mix
    mapped whole would have been lifted as a lone quiet shelf's low value is."""
    ev = Evidence(book=10, wanted=1, shelf_bound=0, refilled_units=10, not_refilled=0.9)

    def lift(_: Evidence, raw: float) -> float:
        return min(1.0, 0.4 + raw)

    assert confidence(ev) == pytest.approx(0.1)
    assert confidence(ev, lift) == pytest.approx(0.1)  # 0.9 × 0 + 0.1 × lift(1.0)
    assert confidence(replace(ev, not_refilled=0.5), lift) == pytest.approx(0.5)

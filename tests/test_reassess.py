"""reassess: the stored record answers as the engine would, and never promises without margin."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.badge import badge_for
from app.domain.calibration import BINS, COLD_PRIOR, MIN_LABELS, SIGNS, START
from app.domain.confidence import Evidence
from app.domain.engine import Engine
from app.domain.live import Assessor, calibration_state, frozen_calibration
from app.domain.model import BookPosition, Count, Receipt, Sale, SnapshotRow
from app.domain.policy import Policy
from app.domain.reassess import (
    KNOTS,
    MAX_HORIZON,
    RECORD_VERSION,
    CalibrationMap,
    badge_from_record,
    decode_record,
    reassess,
)
from app.domain.shelf import SHARE_MIN_COUNTS

T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)
STORES = ("S1", "S2")
SKUS = ("A", "B", "C", "D")
CATEGORIES = {"A": "x", "B": "x", "C": "y", "D": None}


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Engine, datetime]:
    """An engine fed a random stream: a snapshot, sales, receipts, counts, feedback."""
    policy = Policy(confidence_threshold=draw(st.sampled_from([0.5, 0.8, 0.9])))
    engine = Engine(policy, CATEGORIES)
    rows = [
        SnapshotRow(s, k, draw(st.integers(0, 30)), draw(st.integers(0, 2)), 0, T0)
        for s in STORES
        for k in SKUS
        if draw(st.booleans()) or k == "A"
    ]
    engine.observe_snapshot(T0, rows)
    if draw(st.booleans()):  # a chain whose shelves hold about a third of the book
        for book in range(SHARE_MIN_COUNTS):
            engine.shelf_share.observe(3 + book % 20, 1 + (3 + book % 20) // 3)
    at = T0
    for i in range(draw(st.integers(0, 60))):
        at += timedelta(minutes=draw(st.integers(1, 90)))
        store, sku = draw(st.sampled_from(STORES)), draw(st.sampled_from(SKUS))
        kind = draw(st.sampled_from(["sale", "sale", "sale", "receipt", "count", "feedback"]))
        event: dict[str, Any] = {
            "event_id": f"e{i}", "store_id": store, "sku": sku, "occurred_at": at,
        }  # fmt: skip
        if kind == "sale":
            engine.observe_event(Sale(qty=draw(st.integers(1, 3)), **event))
        elif kind == "receipt":
            engine.observe_event(Receipt(qty=draw(st.integers(1, 12)), **event))
        elif kind == "count":
            engine.observe_event(Count(on_hand=draw(st.integers(0, 20)), **event))
        else:
            engine.observe_feedback(
                kind=draw(st.sampled_from(["shelf_count", "pick_found", "pick_short"])),
                store_id=store, sku=sku, qty=draw(st.integers(1, 5)), observed_at=at, now=at,
            )  # fmt: skip
    now = at + timedelta(minutes=draw(st.integers(0, 600)))
    return engine, now


def positions(engine: Engine, now: datetime) -> list[BookPosition]:
    found = [engine.ledger.position(s, k, now) for s in STORES for k in SKUS]
    return [p for p in found if p is not None]


def assessor_of(engine: Engine, now: datetime) -> Assessor:
    """An assessor with the engine's map in use (the shell would give it a stored id)."""
    return Assessor(engine, now, frozen_calibration(engine, 1))


@contextmanager
def arriving_in(engine: Engine, horizon: timedelta) -> Iterator[Engine]:
    """The same engine, its policy's arrival horizon ``horizon`` for the block (an engine
    compiled by mypyc has no ``__dict__`` to copy into a second one)."""
    policy = engine.policy
    engine.policy = msgspec.structs.replace(policy, arrival_horizon=horizon)
    try:
        yield engine
    finally:
        engine.policy = policy


@settings(max_examples=60, deadline=None)
@given(worlds())
def test_the_stored_assessment_is_the_engines(world: tuple[Engine, datetime]) -> None:
    engine, now = world
    assessor = assessor_of(engine, now)
    for pos in positions(engine, now):
        raw, stored = assessor.assess(pos)
        assert stored == engine.assess(pos, 1, now)
        again = reassess(decode_record(raw), wanted=1, horizon=engine.policy.arrival_horizon,
                         policy=engine.policy, calibration=assessor.calibration)  # fmt: skip
        assert again == stored


@settings(max_examples=40, deadline=None)
@given(worlds(), st.integers(1, 6), st.sampled_from(KNOTS))
def test_other_quantities_and_knot_horizons_are_the_engines(
    world: tuple[Engine, datetime], wanted: int, minutes: int
) -> None:
    engine, now = world
    policy = engine.policy
    assessor = assessor_of(engine, now)
    horizon = timedelta(minutes=minutes)
    for pos in positions(engine, now):
        raw, _ = assessor.assess(pos)
        got = reassess(decode_record(raw), wanted=wanted, horizon=horizon, policy=policy,
                       calibration=assessor.calibration)  # fmt: skip
        with arriving_in(engine, horizon) as other:
            assert got == other.assess(pos, wanted, now)


@settings(max_examples=40, deadline=None)
@given(worlds(), st.integers(1, 8), st.integers(0, KNOTS[-1]))
def test_between_knots_never_more_optimistic_and_no_promise_without_margin(
    world: tuple[Engine, datetime], wanted: int, minutes: int
) -> None:
    engine, now = world
    policy = engine.policy
    horizon = timedelta(minutes=minutes)
    assessor = assessor_of(engine, now)
    cal = assessor.calibration
    for pos in positions(engine, now):
        record = decode_record(assessor.assess(pos)[0])
        got = reassess(record, wanted=wanted, horizon=horizon, policy=policy, calibration=cal)
        with arriving_in(engine, horizon) as other:
            exact = other.assess(pos, wanted, now)
        assert got.confidence <= exact.confidence + 1e-12
        assert got.held_for_sales + got.held_for_uncertainty >= (
            exact.held_for_sales + exact.held_for_uncertainty
        )
        badge = badge_from_record(pos, record, policy=policy, category=CATEGORIES[pos.sku],
                                  store_newest_at=now, now=now, wanted=wanted, horizon=horizon,
                                  calibration=cal)  # fmt: skip
        if badge.promise:
            assert pos.book - badge.safety_buffer >= wanted
            assert badge.confidence is not None
            assert badge.confidence >= policy.confidence_threshold


@settings(max_examples=30, deadline=None)
@given(worlds(), st.integers(1, 6))
def test_defaults_reproduce_the_stored_badge(world: tuple[Engine, datetime], wanted: int) -> None:
    """badge_from_record at one unit and the default horizon is badge_for with the engine."""
    engine, now = world
    assessor = assessor_of(engine, now)
    for pos in positions(engine, now):
        record = decode_record(assessor.assess(pos)[0])
        kwargs: dict[str, Any] = {"policy": engine.policy, "category": CATEGORIES[pos.sku],
                  "store_newest_at": now, "now": now}  # fmt: skip
        kwargs_cal = {**kwargs, "calibration": assessor.calibration}
        assert badge_from_record(pos, record, **kwargs_cal) == badge_for(
            pos, assessment=engine.assess(pos, 1, now), **kwargs
        )
        assert badge_from_record(pos, record, wanted=wanted, **kwargs_cal) == badge_for(
            pos, wanted=wanted, assessment=engine.assess(pos, wanted, now), **kwargs
        )


def test_a_learned_calibration_is_applied_and_required() -> None:
    engine = Engine(Policy(), CATEGORIES)
    engine.observe_snapshot(T0, [SnapshotRow("S1", "A", 9, 0, 0, T0)])
    at = T0
    for i in range(260):  # picks: no labels for the map (a pick searches the back room too)
        at += timedelta(minutes=5)
        engine.observe_feedback(kind="pick_short" if i % 3 == 0 else "pick_found",
                                store_id="S1", sku="A", qty=1, observed_at=at, now=at)  # fmt: skip
    assert engine.calibration.labels == 0
    for i in range(400):  # enough shelf counts (on a book of 1 or more) to replace the cold map
        at += timedelta(minutes=5)
        engine.observe_feedback(kind="shelf_count", store_id="S1", sku="A",
                                qty=0 if i % 3 == 0 else 4, observed_at=at, now=at)  # fmt: skip
    cal = CalibrationMap(7, *calibration_state(engine))
    assert engine.calibration.labels >= MIN_LABELS and list(cal.table) != list(COLD_PRIOR)
    pos = engine.ledger.position("S1", "A", at)
    assert pos is not None
    raw, stored = Assessor(engine, at, cal).assess(pos)
    assert stored == engine.assess(pos, 1, at)
    record = decode_record(raw)
    assert record.calibration_id == 7
    with pytest.raises(ValueError, match="assessed with calibration 7, given None"):
        reassess(record, wanted=1, horizon=timedelta(hours=2), policy=engine.policy)


def test_a_map_with_learned_weights_reads_the_evidence_beyond_raw() -> None:
    """The identity stage skips the features; weights off the identity still use them."""
    table = tuple((i + 0.5) / BINS for i in range(BINS))
    silent = Evidence(book=5, wanted=1, expected_sales=0.5, silence=12.0)
    loud = Evidence(book=5, wanted=1, expected_sales=0.5, silence=0.0)
    identity = CalibrationMap(1, START, table)
    assert identity(silent, 0.8) == identity(loud, 0.8) == pytest.approx(0.8)  # (the identity)
    k = 3  # the silence feature, log1p(silence): its weight may only lower confidence
    assert SIGNS[k] == -1
    learned = CalibrationMap(2, tuple(-0.5 if i == k else w for i, w in enumerate(START)), table)
    assert learned(silent, 0.8) < identity(silent, 0.8)
    assert learned(loud, 0.8) == identity(loud, 0.8)


def test_bad_records_and_horizons_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match=r"book_position\.evidence: unreadable"):
        decode_record(b"\x93garbage")
    engine = Engine(Policy(), CATEGORIES)
    engine.observe_snapshot(T0, [SnapshotRow("S1", "A", 9, 0, 0, T0)])
    pos = engine.ledger.position("S1", "A", T0)
    assert pos is not None
    assessor = assessor_of(engine, T0)
    record, cal = decode_record(assessor.assess(pos)[0]), assessor.calibration
    with pytest.raises(ValueError, match="beyond the longest supported"):
        reassess(record, wanted=1, horizon=MAX_HORIZON + timedelta(minutes=1), policy=Policy(),
                 calibration=cal)  # fmt: skip
    with pytest.raises(ValueError, match="wanted 0 must be at least 1"):
        reassess(record, wanted=0, horizon=timedelta(hours=1), policy=Policy(), calibration=cal)


def test_snapshot_only_pairs_share_records_without_losing_exactness() -> None:
    engine = Engine(Policy(), CATEGORIES)
    rows = [SnapshotRow(s, k, n, 0, 0, T0) for s in STORES for n, k in enumerate(SKUS)]
    rows += [SnapshotRow(s, f"Z{i}", i % 5, 0, 0, T0) for s in STORES for i in range(200)]
    engine.observe_snapshot(T0, rows)
    for book in range(SHARE_MIN_COUNTS):  # shelves hold about a third of the book
        engine.shelf_share.observe(3 + book % 20, 1 + (3 + book % 20) // 3)
    now = T0 + timedelta(hours=3)
    assessor = assessor_of(engine, now)
    for r in rows:
        pos = engine.ledger.position(r.location_id, r.sku, now)
        assert pos is not None
        raw, stored = assessor.assess(pos)
        assert stored == engine.assess(pos, 1, now)
        again = reassess(decode_record(raw), wanted=3, horizon=engine.policy.arrival_horizon,
                         policy=engine.policy, calibration=assessor.calibration)  # fmt: skip
        assert again == engine.assess(pos, 3, now)  # the share is the record's own book's
    assert assessor.engine_calls <= 2 * 4  # one template per store and category group


def test_a_record_stored_before_the_shelf_fields_reads_as_the_engine_then_assessed() -> None:
    """Records written before the shelf share and the refill (an upgrade keeps them in
    ``book_position.evidence`` until the next recompute) decode with neither."""
    old = msgspec.msgpack.encode(
        [RECORD_VERSION, 9, None, 0.1, 7200, 0.2, [0.0] * len(KNOTS), 0.0, 0.5, 0, 1.0,
         0.0, 0.05, 3.0, False, False, None]
    )  # fmt: skip
    record = decode_record(old)
    assert (record.shelf_typical, record.shelf_spread) == (0.0, 0.0)
    assert (record.refilled_units, record.not_refilled) == (None, 1.0)
    policy = Policy()
    one = reassess(record, wanted=1, horizon=policy.arrival_horizon, policy=policy)
    four = reassess(record, wanted=4, horizon=policy.arrival_horizon, policy=policy)
    assert one.confidence > four.confidence > 0.0  # no share: only depletion tells them apart

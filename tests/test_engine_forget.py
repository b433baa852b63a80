"""Forgetting old raw events (``Engine.forget``) changes no answer from the cut-off on.

A running service forgets the events that no question at or after its cut-off reads
(memory would otherwise grow with every event ever taken in). Two engines take the
same stream; one forgets part-way; from then on both must give the same books, the
same newest events and the same assessments at any moment from the cut-off on.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.engine import Engine
from app.domain.model import Adjustment, Count, Receipt, Return, Sale, SnapshotRow
from app.domain.policy import Policy

T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)
STORES = ("S1", "S2")
SKUS = ("A", "B", "C")
CATEGORIES = {"A": "x", "B": "x", "C": None}
POLICY = Policy()

Item = tuple[datetime, str, Any]  # (when it is fed, what, its payload)


@st.composite
def streams(draw: st.DrawFn) -> list[Item]:
    """Snapshots, sales (some late), returns, adjustments, receipts, counts, feedback."""
    items: list[Item] = []
    at = T0
    for i in range(draw(st.integers(1, 70))):
        if i:
            at += timedelta(minutes=draw(st.integers(1, 300)))
        kind = "snapshot" if i == 0 else draw(st.sampled_from(
            ["sale", "sale", "sale", "late_sale", "return", "adjustment", "receipt", "count",
             "count", "feedback", "snapshot"]
        ))  # fmt: skip
        if kind == "snapshot":  # some rows dated before the snapshot (their own as_of)
            stale = st.sampled_from([0, 0, 0, 30, 600, 3000])
            rows = [SnapshotRow(s, k, draw(st.integers(0, 30)), draw(st.integers(0, 2)), 0,
                                at - timedelta(minutes=draw(stale)))
                    for s in STORES for k in SKUS if k == "A" or draw(st.booleans())]  # fmt: skip
            items.append((at, "snapshot", rows))
            continue
        store, sku = draw(st.sampled_from(STORES)), draw(st.sampled_from(SKUS))
        if kind == "feedback":
            items.append((at, "feedback", {
                "kind": draw(st.sampled_from(["shelf_count", "pick_found", "pick_short"])),
                "store_id": store, "sku": sku, "qty": draw(st.integers(0, 5)),
                "observed_at": at, "now": at,
            }))  # fmt: skip
            continue
        occurred = at
        if kind == "late_sale":  # published late, dated before earlier items
            occurred = at - timedelta(minutes=draw(st.integers(1, 4000)))
        common: dict[str, Any] = {
            "event_id": f"e{i}", "store_id": store, "sku": sku, "occurred_at": occurred,
        }  # fmt: skip
        qty = draw(st.integers(1, 6))
        event = {
            "sale": Sale(qty=qty, **common), "late_sale": Sale(qty=qty, **common),
            "return": Return(qty=qty, **common),
            "adjustment": Adjustment(qty=draw(st.sampled_from([-2, -1, 1, 3])), **common),
            "receipt": Receipt(qty=qty, **common),
            "count": Count(on_hand=draw(st.integers(0, 20)), **common),
        }[kind]  # fmt: skip
        items.append((at, "event", event))
    return items


def feed(engine: Engine, items: list[Item]) -> None:
    for at, what, payload in items:
        if what == "snapshot":
            engine.observe_snapshot(at, payload)
        elif what == "event":
            engine.observe_event(payload)
        else:
            engine.observe_feedback(**payload)


def assert_same_answers(a: Engine, b: Engine, moments: list[datetime]) -> None:
    for t in moments:
        for s in STORES:
            for k in SKUS:
                pa, pb = a.ledger.position(s, k, t), b.ledger.position(s, k, t)
                assert pa == pb, (s, k, t)
                if pa is None or pb is None:
                    continue
                for wanted in (1, 4):
                    assert a.assess(pa, wanted, t) == b.assess(pb, wanted, t), (s, k, t, wanted)


@settings(max_examples=150, deadline=None)
@given(streams(), st.floats(0, 1), st.floats(0, 1))
def test_forgetting_changes_no_answer_from_the_cut_off_on(
    items: list[Item], split_at: float, cut_at: float
) -> None:
    split = int(len(items) * split_at)
    done = items[split - 1][0] if split else T0
    before = T0 + (done - T0) * cut_at
    # After the cut-off, only a sale may be dated before it (a late count, receipt or
    # feedback learns from the book at its own moment: the cut-off is days back), and no
    # snapshot row (its book would start from movements gone; the live engine forgets
    # what is older than its warm window, as a restarted one never had it).
    later = [
        (at, what, [r if r.as_of > before else msgspec.structs.replace(r, as_of=at) for r in x]
         if what == "snapshot" else x)
        for at, what, x in items[split:]
        if (what == "event" and isinstance(x, Sale)) or at >= before
    ]  # fmt: skip
    kept, forgetful = Engine(POLICY, CATEGORIES), Engine(POLICY, CATEGORIES)
    for engine in (kept, forgetful):
        feed(engine, items[:split])
    forgetful.forget(before)
    middle = before + (done - before) / 2
    assert_same_answers(kept, forgetful, [before, middle, done])
    for engine in (kept, forgetful):
        feed(engine, later)
    end = later[-1][0] if later else done
    assert_same_answers(kept, forgetful, [before, middle, done, end, end + timedelta(hours=3)])


def test_a_pairs_events_before_its_snapshot_base_go_but_the_newest_of_each_kind() -> None:
    engine = Engine(POLICY, CATEGORIES)
    engine.observe_snapshot(T0, [SnapshotRow("S1", "A", 500, 0, 0, T0)])
    at = T0
    for i in range(300):  # three days of sales, a receipt on the way
        at += timedelta(minutes=15)
        engine.observe_event(Sale(event_id=f"s{i}", store_id="S1", sku="A", qty=1, occurred_at=at))
        if i == 100:
            engine.observe_event(Receipt(event_id="r", store_id="S1", sku="A", qty=40,
                                         occurred_at=at))  # fmt: skip
    base = at + timedelta(minutes=5)  # the next snapshot: the book's base moves past them
    engine.observe_snapshot(base, [SnapshotRow("S1", "A", 230, 0, 0, base)])
    engine.observe_event(Sale(event_id="s-new", store_id="S1", sku="A", qty=2,
                              occurred_at=base + timedelta(minutes=1)))  # fmt: skip
    pb = engine.ledger.pairs[("S1", "A")]
    assert len(pb.events) == 302
    now = base + timedelta(hours=1)
    pos = engine.ledger.position("S1", "A", now)
    assert pos is not None and pos.book == 228
    assessed = engine.assess(pos, 1, now)
    assert engine.forget(T0) == 0  # nothing that old
    assert engine.forget(now) == 299  # all before the base but the newest sale and receipt
    assert [e.event_id for _, _, e, _ in pb.events] == ["r", "s299", "s-new"]
    assert engine.ledger.position("S1", "A", now) == pos
    assert engine.assess(pos, 1, now) == assessed

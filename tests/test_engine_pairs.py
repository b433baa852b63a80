"""The engine's per-pair state: snapshot-only pairs stay cheap and read like the reference."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.domain.book import book_position
from app.domain.engine import Engine
from app.domain.live import Assessor, frozen_calibration
from app.domain.model import Count, Receipt, Sale, SnapshotRow
from app.domain.policy import Policy

T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)


def test_snapshot_rows_alone_give_no_pair_state_and_the_reference_book() -> None:
    engine = Engine(Policy(), {"A": "food", "B": "food", "C": None})
    rows = [
        SnapshotRow("S1", "A", 7, 2, 1, T0),
        SnapshotRow("S1", "B", 3, 0, 0, T0),
        SnapshotRow("S1", "A", 9, 1, 0, T0),  # a later row for the same sku wins
        SnapshotRow("S2", "C", 4, 0, 0, T0 + timedelta(minutes=5)),
    ]
    engine.observe_snapshot(T0, rows)
    assert engine.pairs == {}
    assert engine.sales.group_items == {("S1", "food"): 2, ("S2", None): 1}
    assert engine.first_seen("S1", "A") == T0 and engine.first_seen("S1", "Z") is None
    now = T0 + timedelta(hours=1)
    for store, sku, row in [("S1", "A", rows[2]), ("S1", "B", rows[1]), ("S2", "C", rows[3]),
                            ("S1", "Z", None)]:  # fmt: skip
        assert engine.ledger.position(store, sku, now) == book_position(
            store, sku, snapshot_row=row, location_as_of=T0, events=(), at=now
        )
    assessor = Assessor(engine, now, frozen_calibration(engine, 1))
    assert assessor.shared_key("S1", "A", T0, "snapshot", 8) is not None
    sale = Sale(event_id="e1", store_id="S1", sku="A", occurred_at=now, qty=2)
    assert engine.observe_event(sale) and not engine.observe_event(sale)
    assert set(engine.pairs) == {("S1", "A")} and engine.pairs["S1", "A"].units == 2.0
    assert assessor.shared_key("S1", "A", T0, "snapshot", 6) is None  # now particular
    pos = engine.ledger.position("S1", "A", now)
    assert pos is not None and pos.book == 6 and pos.last_event_at == now
    # A question about an earlier moment goes through the reference rules.
    assert engine.ledger.position("S1", "A", now - timedelta(minutes=1)) == book_position(
        "S1", "A", snapshot_row=rows[2], location_as_of=T0, events=[sale],
        at=now - timedelta(minutes=1),
    )  # fmt: skip


def _short_picked() -> tuple[Engine, datetime]:
    """A pair with a book of 10 whose pick an hour later found the shelf empty; and T0 + 2 h."""
    engine = Engine(Policy(), {"A": "food"})
    engine.observe_snapshot(T0, [SnapshotRow("S1", "A", 10, 0, 0, T0)])
    t1 = T0 + timedelta(hours=1)
    engine.observe_feedback(
        kind="pick_short", store_id="S1", sku="A", qty=0, observed_at=t1, now=t1
    )
    return engine, T0 + timedelta(hours=2)


def test_a_short_picks_shelf_bound_outlives_a_later_count_until_a_refill_shows() -> None:
    """A count finds shelf + back room: it does not show the empty shelf was refilled."""
    engine, t2 = _short_picked()
    engine.observe_event(Count(event_id="c1", store_id="S1", sku="A", occurred_at=t2, on_hand=8))

    def bound(now: datetime) -> int | None:
        pos = engine.ledger.position("S1", "A", now)
        assert pos is not None and pos.base_at == t2
        return engine._evidence(pos, 1, now, timedelta(hours=2)).shelf_bound

    assert bound(t2 + timedelta(minutes=5)) == 0
    t3 = t2 + timedelta(hours=1)
    engine.observe_event(Sale(event_id="s1", store_id="S1", sku="A", occurred_at=t3, qty=1))
    assert bound(t3 + timedelta(minutes=5)) is None  # sold more than the pick saw: refilled


def test_a_shelf_count_ends_a_short_picks_bound() -> None:
    engine, t2 = _short_picked()
    engine.observe_feedback(
        kind="shelf_count", store_id="S1", sku="A", qty=6, observed_at=t2, now=t2
    )
    pos = engine.ledger.position("S1", "A", t2 + timedelta(minutes=5))
    assert pos is not None and pos.book == 6
    assert (
        engine._evidence(pos, 1, t2 + timedelta(minutes=5), timedelta(hours=2)).shelf_bound is None
    )


def _delivered(sold: int) -> Engine:
    """A pair with an empty book that received 6 units at T0 + 1 h and sold ``sold`` of
    them; a shelf count 3 h after the receipt then finds the shelf empty."""
    engine = Engine(Policy(), {"A": "food"})
    engine.observe_snapshot(T0, [SnapshotRow("S1", "A", 0, 0, 0, T0)])
    t1 = T0 + timedelta(hours=1)
    engine.observe_event(Receipt(event_id="r", store_id="S1", sku="A", occurred_at=t1, qty=6))
    for i in range(sold):
        at = t1 + timedelta(minutes=10 * (i + 1))
        engine.observe_event(Sale(event_id=f"s{i}", store_id="S1", sku="A", occurred_at=at, qty=1))
    t2 = t1 + timedelta(hours=3)
    engine.observe_feedback(
        kind="shelf_count", store_id="S1", sku="A", qty=0, observed_at=t2, now=t2
    )
    return engine


def test_an_empty_shelf_after_a_receipt_says_the_units_wait_only_while_the_book_holds_them() -> (
    None
):
    """Book 6 and an empty shelf: the delivery is not out yet (a "not filled" observation).
    Book 0 after selling the 6: the shelf is empty because they sold, nothing is learned."""
    waiting, sold_through = _delivered(0), _delivered(6)
    assert sum(waiting.fill.n) == 1 and sum(waiting.fill.filled) == 0
    assert sum(sold_through.fill.n) == 0
    assert sold_through.fill.curve() == Engine(Policy(), {}).fill.curve()


def _store_with_a_glitch(qty: int) -> Engine:
    """Two pairs of one store selling through a week; on day 3 pair B's till sends one
    sale of ``qty`` units."""
    engine = Engine(Policy(), {"A": "food", "B": "food"})
    engine.observe_snapshot(T0, [SnapshotRow("S1", "A", 500, 0, 0, T0),
                                 SnapshotRow("S1", "B", 500, 0, 0, T0)])  # fmt: skip
    n = 0
    for day in range(7):
        for hour in (9, 11, 13, 15, 17):
            for sku in ("A", "B"):
                at = T0 + timedelta(days=day, hours=hour - 6)
                n += 1
                engine.observe_event(
                    Sale(event_id=f"s{n}", store_id="S1", sku=sku, occurred_at=at, qty=2)
                )
    at = T0 + timedelta(days=3, hours=2)  # 08:00, an hour the store otherwise sells nothing
    engine.observe_event(Sale(event_id="glitch", store_id="S1", sku="B", occurred_at=at, qty=qty))
    return engine


def test_one_absurd_sale_line_teaches_the_store_no_more_than_two_dozen_units() -> None:
    """A till's qty 1,000,000,000 reaches the other items of its store as a 24-unit sale
    would (the store's week and category speed); its own book takes every unit."""
    glitch, bulk = _store_with_a_glitch(1_000_000_000), _store_with_a_glitch(24)
    now = T0 + timedelta(days=7, hours=2)
    for wanted in (1, 40, 120):
        assert glitch.answer("S1", "A", wanted, now) == bulk.answer("S1", "A", wanted, now)
    book = glitch.ledger.position("S1", "B", now)
    assert book is not None and book.book == 500 - 70 - 1_000_000_000


def _store_counted(on_hand_b: int) -> Engine:
    """Pairs A and B of one store, with books of 100 and 20 from a snapshot; a week later
    A is counted 50 short (a loss to learn from) and B's count says ``on_hand_b``."""
    engine = Engine(Policy(), {"A": "food", "B": "food"})
    engine.observe_snapshot(T0, [SnapshotRow("S1", "A", 100, 0, 0, T0),
                                 SnapshotRow("S1", "B", 20, 0, 0, T0)])  # fmt: skip
    t1 = T0 + timedelta(days=7)
    engine.observe_event(Count(event_id="cA", store_id="S1", sku="A", occurred_at=t1, on_hand=50))
    engine.observe_event(
        Count(event_id="cB", store_id="S1", sku="B", occurred_at=t1, on_hand=on_hand_b)
    )
    return engine


def test_a_count_far_above_the_book_teaches_the_loss_rates_two_dozen_units_found() -> None:
    """A count keyed as 2,000,000,000 cancels the store's and the chain's losses no more
    than one finding 24 units over the book would; the count itself is B's new base."""
    typo, found = _store_counted(2_000_000_000), _store_counted(20 + 24)
    assert typo.loss.rate("S1", "food") == found.loss.rate("S1", "food") > 0.0
    later = T0 + timedelta(days=20)
    for wanted in (1, 30, 50):
        assert typo.answer("S1", "A", wanted, later) == found.answer("S1", "A", wanted, later)
    book = typo.ledger.position("S1", "B", later)
    assert book is not None and book.book == 2_000_000_000 and book.base_source == "count"


def _store_with_a_sale_dated(at: datetime | None) -> Engine:
    """A store of six items selling for a week; a new item's first sale dated ``at``
    (a till whose clock was reset) arrives on day 3, or none."""
    skus = ["A", "B", "C", "D", "E", "F"]
    engine = Engine(Policy(), dict.fromkeys([*skus, "NEW"], "food"))
    engine.observe_snapshot(T0, [SnapshotRow("S1", s, 50, 0, 0, T0) for s in skus])
    n = 0
    for day in range(7):
        for hour in (9, 12, 15):
            for sku in skus:
                n += 1
                when = T0 + timedelta(days=day, hours=hour - 6)
                engine.observe_event(
                    Sale(event_id=f"s{n}", store_id="S1", sku=sku, occurred_at=when, qty=1)
                )
            if day == 3 and hour == 9 and at is not None:
                engine.observe_event(
                    Sale(event_id="old", store_id="S1", sku="NEW", occurred_at=at, qty=1)
                )
    return engine


def test_one_event_from_a_reset_till_clock_does_not_date_the_store_back() -> None:
    """A sale dated 2000 is booked, but the store still trades from its items' sightings
    of this week: its answers are those of the same sale dated nine days before the week
    (the same weekday and hour, so the store's rhythm learns the same from both; a week
    or more from the other sales, so neither stretches the hours the rhythm watched)."""
    reset = _store_with_a_sale_dated(datetime(2000, 1, 1, 10, tzinfo=UTC))  # a Saturday
    recent = _store_with_a_sale_dated(datetime(2026, 10, 24, 10, tzinfo=UTC))  # a Saturday
    assert reset.sales.opened["S1"] == recent.sales.opened["S1"] == T0
    now = T0 + timedelta(days=6, hours=3)
    for sku in ("A", "NEW"):
        for wanted in (1, 5, 20):
            assert reset.answer("S1", sku, wanted, now) == recent.answer("S1", sku, wanted, now)

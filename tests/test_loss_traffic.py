"""Loss follows the traffic where the counts say so (``app.domain.loss``): a loss per
unit sold since the pair was verified, beside the loss per day unverified, both learned
from count gaps; with gaps that do not follow sales the rates are the per-day ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.confidence import confidence
from app.domain.engine import Engine
from app.domain.loss import LossRate, chain_split
from app.domain.model import Count, Sale, SnapshotRow
from app.domain.policy import Policy

T0 = datetime(2026, 11, 2, 6, tzinfo=UTC)

counts = st.lists(
    st.tuples(
        st.sampled_from(["S1", "S2", "S3"]),
        st.sampled_from(["food", "toys", None]),
        st.floats(min_value=0.0, max_value=90.0),
        st.integers(min_value=-40, max_value=60),
    ),
    min_size=1,
    max_size=40,
)


@given(counts)
def test_without_units_sold_the_rates_are_the_per_day_ones(
    seen: list[tuple[str, str | None, float, int]],
) -> None:
    """Counts that carry no units sold teach no loss per unit, and each group's day
    rate is the ratio it always was: units gone over days unverified, shrunk toward the
    chain's by ``PRIOR_DAYS``."""
    loss = LossRate()
    for store, category, days, gap in seen:
        loss.counted(store, category, days, gap, 0.0)
    for group in loss.groups.values():
        per_day, per_unit = loss.group_rates(group)
        assert per_unit == 0.0
        assert per_day == pytest.approx(loss._rate(group), rel=1e-9, abs=1e-12)


def test_gaps_that_follow_sales_teach_a_loss_per_unit() -> None:
    """Half the pairs sell 10 a day, half 1 a week, all counted after 20 days; 2% of
    what sold went missing. The split puts the loss on the units, not on the days
    (1,000 counts: the per-unit rate's prior of ``UNIT_PRIOR`` counts weighs 5%)."""
    loss = LossRate()
    for i in range(1000):
        sold = 200.0 if i % 2 else 3.0
        loss.counted("S1", "food", 20.0, round(0.02 * sold), sold)
    per_day, per_unit = loss.group_rates(loss.group("S1", "food"))
    assert per_unit == pytest.approx(0.02, rel=0.15)
    assert per_day < 0.01
    fast, slow = per_day * 20 + per_unit * 200, per_day * 20 + per_unit * 3
    assert fast > 10 * slow


def test_gaps_that_follow_days_keep_a_loss_per_day() -> None:
    """The same pairs, but one unit gone every 10 days whatever they sold."""
    loss = LossRate()
    for i in range(1000):
        sold = 200.0 if i % 2 else 3.0
        loss.counted("S1", "food", 20.0 + (i % 7), round(0.1 * (20 + i % 7)), sold)
    per_day, per_unit = loss.group_rates(loss.group("S1", "food"))
    assert per_unit == 0.0
    assert per_day == pytest.approx(0.1, rel=0.3)


@given(
    st.floats(min_value=0.0, max_value=1e4),
    st.floats(min_value=0.0, max_value=1e6),
    st.floats(min_value=-1e6, max_value=1e6),
    st.floats(min_value=-1e6, max_value=1e6),
    st.floats(min_value=0.0, max_value=1e4),
    st.integers(min_value=1, max_value=1000),
)
def test_the_split_is_never_negative(
    sdd: float, sss: float, sdy: float, ssy: float, frac: float, n: int
) -> None:
    sds = (sdd * sss) ** 0.5 * min(frac, 1.0)  # Cauchy-Schwarz: |Σ d·s| ≤ √(Σd² Σs²)
    per_day, per_unit = chain_split(sdd, sss, sds, sdy, ssy, n)
    assert per_day >= 0.0 and per_unit >= 0.0


def _chain_where_loss_follows_sales() -> tuple[Engine, datetime]:
    """400 pairs counted after 30 days; the fast sellers (20 sold) came up 2 short, the
    slow ones (1 sold) exact. Then pair F (fast) and pair L (slow) each sold as their
    kind did, for 10 days since a count, with 12 on the book."""
    pairs = 400
    engine = Engine(Policy(), {f"P{i}": "food" for i in range(pairs)} | {"F": "food", "L": "food"})
    engine.observe_snapshot(
        T0,
        [SnapshotRow("S1", f"P{i}", 100, 0, 0, T0) for i in range(pairs)]
        + [SnapshotRow("S1", "F", 30, 0, 0, T0), SnapshotRow("S1", "L", 13, 0, 0, T0)],
    )
    n = 0
    for i in range(pairs):
        fast = i % 2 == 0
        for d in range(20 if fast else 1):
            n += 1
            at = T0 + timedelta(days=1, hours=d)
            engine.observe_event(Sale(event_id=f"s{n}", store_id="S1", sku=f"P{i}",
                                      occurred_at=at, qty=1))  # fmt: skip
        on_hand = 100 - (20 if fast else 1) - (2 if fast else 0)
        engine.observe_event(Count(event_id=f"c{i}", store_id="S1", sku=f"P{i}",
                                   occurred_at=T0 + timedelta(days=30), on_hand=on_hand))  # fmt: skip
    t = T0 + timedelta(days=31)
    for sku, start in (("F", 30), ("L", 13)):
        engine.observe_event(Count(event_id=f"c{sku}", store_id="S1", sku=sku, occurred_at=t,
                                   on_hand=start))  # fmt: skip
    for d in range(18):
        n += 1
        engine.observe_event(Sale(event_id=f"s{n}", store_id="S1", sku="F",
                                  occurred_at=t + timedelta(hours=10 + 12 * d), qty=1))  # fmt: skip
    n += 1
    engine.observe_event(Sale(event_id=f"s{n}", store_id="S1", sku="L",
                              occurred_at=t + timedelta(days=9), qty=1))  # fmt: skip
    return engine, t + timedelta(days=10)


def test_a_fast_seller_carries_more_loss_than_a_slow_one_with_the_same_book() -> None:
    engine, now = _chain_where_loss_follows_sales()
    _, per_unit = engine.loss.group_rates(engine.loss.group("S1", "food"))
    assert per_unit > 0.05  # 2 in 20 sold went missing
    evidence = {}
    for sku in ("F", "L"):
        pos = engine.ledger.position("S1", sku, now)
        assert pos is not None and pos.book == 12
        evidence[sku] = engine._evidence(pos, 1, now, engine.policy.arrival_horizon)
    # Same book, same days since the count; F sold 18 since, L 1.
    assert evidence["F"].unrecorded_loss > evidence["L"].unrecorded_loss + 1.0
    assert confidence(evidence["F"]) < confidence(evidence["L"])


def test_a_count_starts_the_units_sold_afresh() -> None:
    """The loss per unit counts the units sold since the pair was last verified."""
    engine, now = _chain_where_loss_follows_sales()
    pos = engine.ledger.position("S1", "F", now)
    assert pos is not None
    before = engine._evidence(pos, 1, now, engine.policy.arrival_horizon).unrecorded_loss
    engine.observe_event(Count(event_id="cF2", store_id="S1", sku="F", occurred_at=now,
                               on_hand=12))  # fmt: skip
    later = now + timedelta(minutes=1)
    pos = engine.ledger.position("S1", "F", later)
    assert pos is not None
    after = engine._evidence(pos, 1, later, engine.policy.arrival_horizon).unrecorded_loss
    assert after < before / 10


def test_one_absurd_sale_line_does_not_switch_the_chains_loss_per_unit_off() -> None:
    """A till that sends qty 2,000,000,000 once (then a count finds the shelf as it was)
    would make that count's units sold dwarf every other's; the loss learner counts a
    sale line up to ``STORE_UNITS_PER_SALE`` units, as the store's rhythm does."""
    engine, now = _chain_where_loss_follows_sales()
    _, per_unit = engine.loss.group_rates(engine.loss.group("S1", "food"))
    engine.observe_event(Sale(event_id="absurd", store_id="S1", sku="P1", qty=2_000_000_000,
                              occurred_at=now))  # fmt: skip
    engine.observe_event(Count(event_id="cP1", store_id="S1", sku="P1", on_hand=98,
                               occurred_at=now + timedelta(minutes=5)))  # fmt: skip
    _, after = engine.loss.group_rates(engine.loss.group("S1", "food"))
    assert after == pytest.approx(per_unit, rel=0.2)


@settings(max_examples=15, deadline=None)
@given(st.integers(min_value=0, max_value=6), st.integers(min_value=1, max_value=6))
def test_more_units_sold_since_the_count_never_lower_the_loss_or_raise_confidence(
    sold: int, more: int
) -> None:
    """At the chain's learned rates, each further unit sold since the pair was verified
    adds loss (and takes a unit off the book): the badge's confidence never rises."""
    readings = []
    for extra in (sold, sold + more):
        engine, now = _chain_where_loss_follows_sales()
        for k in range(extra):
            engine.observe_event(Sale(event_id=f"x{k}", store_id="S1", sku="L", qty=1,
                                      occurred_at=now - timedelta(hours=1 + k)))  # fmt: skip
        pos = engine.ledger.position("S1", "L", now)
        assert pos is not None
        ev = engine._evidence(pos, 1, now, engine.policy.arrival_horizon)
        readings.append((ev.unrecorded_loss, confidence(ev)))
    (loss_few, conf_few), (loss_more, conf_more) = readings
    assert loss_more > loss_few
    assert conf_more <= conf_few + 1e-12

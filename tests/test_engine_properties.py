"""Badge properties that hold by construction of the confidence function."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hypothesis import example, given
from hypothesis import strategies as st

from app.domain.badge import badge_for
from app.domain.calibration import (
    BINS,
    COLD_PRIOR,
    FLOOR_MAX,
    LABEL_MEMORY,
    MIN_LABELS,
    Calibration,
    knots_of,
    read_knots,
)
from app.domain.confidence import (
    SHELF_SALES_SHARE,
    Assessment,
    Evidence,
    confidence,
    held_back,
    raw_confidence,
)
from app.domain.model import BookPosition
from app.domain.policy import Policy
from app.domain.pooled import pooled_rates, rebuild_due
from app.domain.shelf import IDLE_FACTOR, IdleEmptiness

T0 = datetime(2026, 11, 2, 12, tzinfo=UTC)
units = st.floats(0.0, 30.0, allow_nan=False)
more = st.floats(0.01, 20.0, allow_nan=False)


@st.composite
def evidence(draw: st.DrawFn) -> Evidence:
    return Evidence(
        book=draw(st.integers(-5, 60)),
        wanted=draw(st.integers(1, 6)),
        expected_sales=draw(units),
        unreported_sales=draw(units),
        unrecorded_loss=draw(units),
        back_room=draw(st.integers(0, 24)),
        shelf_fill=draw(st.floats(0.0, 1.0)),
        silence=draw(units),
        phantom_prior=draw(st.floats(0.0, 0.5)),
        shelf_bound=draw(st.none() | st.integers(0, 30)),
        refilled_units=draw(st.none() | st.integers(-5, 60)),
        not_refilled=draw(st.floats(0.0, 1.0)),
        into_day=draw(st.floats(0.0, 20.0)),
        shelf_typical=draw(st.just(0.0) | st.floats(0.5, 40.0)),
        shelf_spread=draw(st.just(0.0) | st.floats(0.05, 1.5)),
    )


@st.composite
def calibrations(draw: st.DrawFn) -> Calibration | None:
    """None, or a map learned from arbitrary (even perverse) labelled evidence: the
    cold-start map while there are fewer than MIN_LABELS labels, else the learned one
    (the drawn labels repeated past MIN_LABELS)."""
    if draw(st.booleans()):
        return None
    cal = Calibration(rate=draw(st.sampled_from([0.0, 0.05, 1.0])))
    labels = draw(st.lists(st.tuples(evidence(), st.booleans()), max_size=60))
    rounds = -(-MIN_LABELS // len(labels)) if labels and draw(st.booleans()) else 1
    for _ in range(rounds):
        for e, hit in labels:
            cal.observe(e, raw_confidence(e), hit)
    for counted in draw(st.lists(st.integers(0, 5), max_size=300)):
        cal.observe_short(counted)  # shelf counts where the book said none: the floors
    return cal


def conf(e: Evidence, cal: Calibration | None) -> float:
    """The engine's confidence: the map and, with it, its floors."""
    return confidence(e, cal, None if cal is None else cal.floor)


def replace(e: Evidence, **changes: object) -> Evidence:
    return Evidence(**{**{f: getattr(e, f) for f in e.__struct_fields__}, **changes})


@given(evidence(), calibrations(), st.sampled_from(
    ["expected_sales", "unreported_sales", "unrecorded_loss", "silence"]), more)  # fmt: skip
def test_more_depletion_or_silence_never_raises_confidence(
    e: Evidence, cal: Calibration | None, field: str, extra: float
) -> None:
    worse = replace(e, **{field: getattr(e, field) + extra})
    assert conf(worse, cal) <= conf(e, cal) + 1e-12


@given(evidence(), calibrations(), st.integers(1, 40))
def test_more_book_never_lowers_confidence(e: Evidence, cal: Calibration | None, n: int) -> None:
    assert conf(replace(e, book=e.book + n), cal) >= conf(e, cal) - 1e-12


@given(evidence(), calibrations(), st.floats(0.0, 1.0))
def test_slower_shelf_fill_or_likelier_phantom_never_raises_confidence(
    e: Evidence, cal: Calibration | None, less: float
) -> None:
    slower = replace(e, shelf_fill=e.shelf_fill * less)
    assert conf(slower, cal) <= conf(e, cal) + 1e-12
    more_phantom = min(1.0, e.phantom_prior + less / 2)
    assert conf(replace(e, phantom_prior=more_phantom), cal) <= conf(e, cal) + 1e-12


@given(evidence(), calibrations(), st.integers(0, 30))
def test_a_lower_shelf_bound_never_raises_confidence(
    e: Evidence, cal: Calibration | None, bound: int
) -> None:
    tighter = bound if e.shelf_bound is None else min(bound, e.shelf_bound)
    assert conf(replace(e, shelf_bound=tighter), cal) <= conf(e, cal) + 1e-12


@given(evidence(), calibrations(), st.floats(0.0, 1.0), st.integers(1, 30))
def test_a_likelier_refill_or_more_behind_it_never_lowers_confidence(
    e: Evidence, cal: Calibration | None, less: float, more: int
) -> None:
    likelier = replace(e, not_refilled=e.not_refilled * less)
    assert conf(likelier, cal) >= conf(e, cal) - 1e-12
    if e.refilled_units is not None:
        bigger = replace(e, refilled_units=e.refilled_units + more)
        assert conf(bigger, cal) >= conf(e, cal) - 1e-12
    assert conf(replace(e, not_refilled=1.0), cal) <= conf(e, cal) + 1e-12


@given(evidence(), calibrations())
def test_no_units_whatever_happened_is_the_floor_alone(
    e: Evidence, cal: Calibration | None
) -> None:
    """Raw 0 (too few units whatever happened) is 0 through the map; only the floor, what
    shelf counts found behind books that said none, lifts it, and never to a promise."""
    if raw_confidence(e) == 0.0:
        assert confidence(e, cal) == 0.0
        assert conf(e, cal) == (0.0 if cal is None else cal.floor(e.book, e.wanted))
        assert conf(e, cal) <= FLOOR_MAX


@given(evidence(), calibrations(), st.integers(1, 10), st.floats(0.0, 1.0))
@example(  # found: 1 + erf(x) far in its lower tail was rounding (0.940 against 0.915)
    Evidence(book=1, wanted=1, expected_sales=0.0625, shelf_typical=1.0, shelf_spread=0.75),
    None, 1, 0.0,
)  # fmt: skip
def test_more_wanted_or_a_smaller_shelf_share_never_raises_confidence(
    e: Evidence, cal: Calibration | None, extra: int, less: float
) -> None:
    assert conf(replace(e, wanted=e.wanted + extra), cal) <= conf(e, cal) + 1e-12
    if e.shelf_typical > 0.0:
        smaller = replace(e, shelf_typical=max(1e-3, e.shelf_typical * less))
        assert conf(smaller, cal) <= conf(e, cal) + 1e-12


@given(evidence(), st.floats(0.5, 40.0), st.floats(0.05, 1.5))
def test_the_shelf_share_leaves_one_unit_with_no_sales_alone_and_only_lowers_the_rest(
    e: Evidence, typical: float, spread: float
) -> None:
    plain = replace(e, shelf_typical=0.0, shelf_spread=0.0)
    shared = replace(e, shelf_typical=typical, shelf_spread=spread)
    assert raw_confidence(shared) == raw_confidence(plain)  # the map's input is the same
    if e.wanted == 1 and e.expected_sales == 0.0:
        assert confidence(shared) == confidence(plain)
    else:
        assert confidence(shared) <= confidence(plain)
        need = e.wanted + SHELF_SALES_SHARE * e.expected_sales
        if typical < need - 1 and spread < 0.2 and confidence(plain) > 0.5:
            assert confidence(shared) < 0.5 * confidence(plain)


def test_a_fast_sellers_shelf_may_run_dry_before_arrival_while_its_book_is_high() -> None:
    """A shelf of ~6 units in front of a book of 40: six sales expected before arrival
    empty it about half the time; the book alone (or an unknown shelf) hardly notices."""
    slow = Evidence(book=40, wanted=1, expected_sales=0.2, shelf_typical=6.0, shelf_spread=0.4)
    fast = replace(slow, expected_sales=12.0)
    assert confidence(slow) > 0.97
    assert confidence(fast) < 0.8 * confidence(slow)
    unknown_shelf = [replace(e, shelf_typical=0.0, shelf_spread=0.0) for e in (slow, fast)]
    assert confidence(unknown_shelf[1]) > 0.97 * confidence(unknown_shelf[0])
    # faster still only lowers it; a bigger usual shelf raises it back
    assert confidence(replace(fast, expected_sales=20.0)) < confidence(fast)
    assert confidence(replace(fast, shelf_typical=30.0)) > confidence(fast)


@given(evidence(), calibrations())
def test_calibrated_confidence_is_a_probability(e: Evidence, cal: Calibration | None) -> None:
    assert 0.0 <= conf(e, cal) <= 1.0


def test_the_cold_start_map_is_a_non_decreasing_probability_used_until_labels_come() -> None:
    assert len(COLD_PRIOR) == BINS
    assert all(0.0 < p < 1.0 for p in COLD_PRIOR)
    assert all(a <= b for a, b in pairwise(COLD_PRIOR))
    cal = Calibration()
    e = Evidence(book=2, wanted=1, expected_sales=1.0, unrecorded_loss=0.5)
    raw = raw_confidence(e)
    assert 0.1 < raw < 0.9  # the middle of the scale, where the cold-start map lifts raw
    cold = knots_of(list(COLD_PRIOR))
    assert cal(e, raw) == read_knots(cold, raw)
    i = int(raw * BINS)
    assert COLD_PRIOR[i - 1] <= cal(e, raw) <= COLD_PRIOR[i + 1]  # between its neighbours
    for k in range(4 * MIN_LABELS):  # every label, at every raw, found the units:
        cal.observe(e, (k % BINS + 0.5) / BINS, True)  # the learned map says so
    assert cal(e, raw) > read_knots(cold, raw)


# per-bin values as a map holds them (a few decimals: not two floats an ulp apart)
steps = st.lists(st.floats(0.0, 1.0).map(lambda x: round(x, 4)), min_size=BINS, max_size=BINS).map(
    sorted
)


bin_weights = st.none() | st.lists(st.floats(0.01, 1e4), min_size=BINS, max_size=BINS)


@given(steps, bin_weights, st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_the_map_read_linearly_keeps_its_order_and_range(
    step: list[float], weights: list[float] | None, p: float, q: float
) -> None:
    knots = knots_of(step, weights)
    assert all(a <= b for a, b in pairwise(knots))
    lo, hi = (p, q) if p <= q else (q, p)
    assert step[0] <= read_knots(knots, lo) <= read_knots(knots, hi) <= step[-1]


@given(steps, bin_weights, st.floats(0.0, 1.0), st.floats(1e-6, 0.02))
def test_less_raw_is_less_confidence_wherever_the_map_climbs(
    step: list[float], weights: list[float] | None, p: float, d: float
) -> None:
    """Inside a step (even a pooled run of equal bins), a lower raw probability reads a
    lower confidence wherever the map is above its lowest value and below its highest:
    a small change of the evidence shows, not only one that crosses a bin's edge."""
    knots = knots_of(step, weights)
    for a, b in pairwise(knots):
        assert a < b or not (step[0] < b and a < step[-1])
    if step[0] < read_knots(knots, p) < step[-1]:
        assert read_knots(knots, p - d) < read_knots(knots, p)


def test_a_small_drop_in_raw_shows_on_the_cold_start_map() -> None:
    """The cold-start map repeats values (0.967 for raw 0.925-0.975); read as steps, a
    store's three quiet hours moved a well-stocked item's raw 0.949 → 0.947 and its
    confidence not at all."""
    cold = knots_of(list(COLD_PRIOR))
    assert COLD_PRIOR[int(0.949 * BINS)] == COLD_PRIOR[int(0.947 * BINS)]
    assert read_knots(cold, 0.947) < read_knots(cold, 0.949)


def test_the_learned_map_remembers_about_label_memory_labels() -> None:
    """Shelves drift: the map follows the labels of its last ``LABEL_MEMORY`` or so, and a
    chain with few labels keeps nearly all of them."""
    e = Evidence(book=2, wanted=1, expected_sales=1.0, unrecorded_loss=0.5)
    raw = raw_confidence(e)
    drifted = Calibration()
    for found in (True, False):  # the shelves found stocked, then as many found empty
        for _ in range(3 * LABEL_MEMORY):
            drifted.observe(e, raw, found)
    assert drifted(e, raw) < 0.15  # equal counts (0.5), but the recent ones weigh more
    few = Calibration()
    for found in (True, False):
        for _ in range(1000):
            few.observe(e, raw, found)
    assert 0.45 < few(e, raw) < 0.5


def test_the_learned_map_learns_that_fast_sellers_fail_more() -> None:
    """Labels where fast sellers' shelves are empty twice as often move the map that way."""
    cal = Calibration(rate=0.05)
    slow = Evidence(book=20, wanted=1, expected_sales=0.2)
    fast = Evidence(book=20, wanted=1, expected_sales=6.0)
    for i in range(4000):
        cal.observe(slow, raw_confidence(slow), i % 20 != 0)  # 5% empty
        cal.observe(fast, raw_confidence(fast), i % 5 != 0)  # 20% empty
    assert (
        cal.logistic(fast, raw_confidence(fast)) < cal.logistic(slow, raw_confidence(slow)) - 0.05
    )
    assert cal.w[2] < 0.0


@given(evidence())
def test_confidence_is_a_probability_and_zero_without_the_units(e: Evidence) -> None:
    c = confidence(e)
    assert 0.0 <= c <= 1.0
    units = min(e.book, e.shelf_bound if e.shelf_bound is not None else e.book)
    if e.refilled_units is not None and e.not_refilled < 1.0:
        units = max(units, e.refilled_units)  # a refill since the shelf was seen short
    if units < e.wanted:
        assert c == 0.0


@given(
    evidence(),
    st.floats(0.5, 0.99),
    st.integers(0, 4),
    st.timedeltas(min_value=timedelta(0), max_value=timedelta(hours=12)),
)
def test_a_promise_has_margin_confidence_and_fresh_data(
    e: Evidence, threshold: float, minimum: int, age: timedelta
) -> None:
    policy = Policy(safety_buffer=minimum, confidence_threshold=threshold)
    for_sales, for_uncertainty = held_back(e, threshold)
    a = Assessment(
        confidence=confidence(e), held_for_sales=for_sales, held_for_uncertainty=for_uncertainty
    )
    pos = BookPosition(store_id="S1", sku="A", book=e.book, base_source="snapshot",
                       base_at=T0 - age)  # fmt: skip
    b = badge_for(pos, policy=policy, category=None, store_newest_at=T0 - age, now=T0,
                  wanted=e.wanted, assessment=a)  # fmt: skip
    assert b.safety_buffer >= minimum
    assert b.confidence == a.confidence
    if b.promise:
        assert b.book is not None and b.book - b.safety_buffer >= e.wanted
        assert a.confidence >= threshold
        assert age <= policy.max_data_age
    if age > policy.max_data_age:
        assert b.state == "unknown"


@given(evidence(), st.floats(0.5, 0.99), st.integers(1, 40))
def test_more_book_never_withdraws_a_promise(e: Evidence, threshold: float, n: int) -> None:
    policy = Policy(confidence_threshold=threshold)

    def promise(ev: Evidence) -> bool:
        s, u = held_back(ev, threshold)
        a = Assessment(confidence=confidence(ev), held_for_sales=s, held_for_uncertainty=u)
        pos = BookPosition(store_id="S1", sku="A", book=ev.book, base_source="snapshot",
                           base_at=T0)  # fmt: skip
        return badge_for(pos, policy=policy, category=None, store_newest_at=T0, now=T0,
                         wanted=ev.wanted, assessment=a).promise  # fmt: skip

    if promise(e):
        assert promise(replace(e, book=e.book + n))


def test_no_position_is_never_a_promise() -> None:
    b = badge_for(None, policy=Policy(), category=None, store_newest_at=T0, now=T0)
    assert b.state == "unknown" and not b.promise


def test_learned_map_cannot_reward_sales_through_the_time_of_day_term() -> None:
    """Regression: labels where busy afternoons look *safer* must not teach the map
    that more expected sales raise confidence (the into_day × sales term is signed)."""
    cal = Calibration(rate=1.0)
    for i in range(400):
        sales = float(i % 10)
        e = Evidence(book=0, wanted=1, expected_sales=sales, into_day=10.0)
        cal.observe(e, raw_confidence(e), sales >= 5)
    quiet = Evidence(book=0, wanted=1, expected_sales=0.0, into_day=10.0)
    busy = replace(quiet, expected_sales=9.0)
    assert conf(busy, cal) <= conf(quiet, cal)


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["S1", "S2"]),
            st.sampled_from(["A", "B"]),
            st.floats(0.0, 100.0),
            st.booleans(),
        ),
        max_size=80,
    ),
    st.sampled_from(["S1", "S2", "S3"]),
    st.sampled_from(["A", "B", "C"]),
    st.floats(0.0, 100.0),
    st.floats(0.0, 100.0),
    st.floats(0.0, 1.0),
)
def test_a_faster_seller_never_gets_a_lower_empty_shelf_prior(
    seen: list[tuple[str, str, float, bool]], store: str, sku: str, a: float, b: float,
    store_rate: float,
) -> None:  # fmt: skip
    """Whatever was observed, the pair prior is non-decreasing in sales speed (so is the badge)."""
    from app.domain.shelf import PairEmptiness

    model = PairEmptiness()
    for s, k, per_day, empty in seen:
        model.observe(s, k, per_day, empty)
    slow, fast = min(a, b), max(a, b)
    assert model.prior(store, sku, slow, store_rate) <= model.prior(store, sku, fast, store_rate)
    assert 0.0 <= model.prior(store, sku, fast, store_rate) <= 1.0


@given(
    st.lists(st.tuples(st.floats(0.0, 1000.0), st.booleans()), max_size=80),
    st.floats(0.0, 1000.0),
    st.floats(0.0, 1000.0),
)
def test_a_longer_time_unseen_on_the_shelf_never_lowers_the_empty_shelf_factor(
    seen: list[tuple[float, bool]], a: float, b: float
) -> None:
    """Whatever was observed, the idle factor is non-decreasing in trade hours since the pair
    was last seen (so a longer silence never raises confidence) and bounded."""
    model = IdleEmptiness()
    for hours, empty in seen:
        model.observe(hours, empty)
    short, long = min(a, b), max(a, b)
    assert model.factor(short) <= model.factor(long)
    assert IDLE_FACTOR[0] <= model.factor(short) and model.factor(long) <= IDLE_FACTOR[1]


@given(st.integers(-3, 400), st.floats(0.0, 300.0, allow_nan=False))
def test_the_closed_form_negbin_cdf_equals_the_summed_series(m: int, mean: float) -> None:
    """Size 2 is summed in closed form; it must be the same distribution as the series."""
    import math

    from app.domain.confidence import negbin_cdf

    if m < 0 or mean <= 1e-12:
        expected = 0.0 if m < 0 else 1.0
    else:
        p = 2.0 / (2.0 + mean)
        term = p * p
        expected = term
        for k in range(m):
            term *= (k + 2.0) / (k + 1) * (1.0 - p)
            expected += term
        expected = min(1.0, expected)
    assert math.isclose(negbin_cdf(m, mean), expected, abs_tol=1e-9)


def _pooled_by_the_book(
    empties: list[float], counts: list[float], prior_n: float, chain: float
) -> list[float]:
    """Pool adjacent violators as first written: both ratios divided at every comparison."""
    sums: list[float] = []
    weights: list[float] = []
    cells: list[int] = []
    for e, n in zip(empties, counts, strict=True):
        s, w, c = e + prior_n * chain, n + prior_n, 1
        while sums and sums[-1] / weights[-1] > s / w:
            s += sums.pop()
            w += weights.pop()
            c += cells.pop()
        sums.append(s)
        weights.append(w)
        cells.append(c)
    out: list[float] = []
    for s, w, c in zip(sums, weights, cells, strict=True):
        out.extend([s / w] * c)
    return out


@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 300)), min_size=1, max_size=12))
def test_pooled_rates_are_the_same_floats_as_pooling_by_the_book(
    bins: list[tuple[int, int]],
) -> None:
    """Dividing each block once (the speed pass) gives bit-identical rates."""
    counts = [float(max(e, n)) for e, n in bins]
    empties = [float(min(e, n)) for e, n in bins]
    chain = (sum(empties) + 1.0) / (sum(counts) + 20.0)
    assert pooled_rates(empties, counts, 20.0, chain) == _pooled_by_the_book(
        empties, counts, 20.0, chain
    )


@given(
    st.lists(
        st.tuples(st.sampled_from(["S1", "S2"]), st.floats(0.0, 400.0), st.booleans()),
        max_size=80,
    ),
    st.sampled_from(["S1", "S2", "S3", None]),
    st.floats(0.0, 400.0),
    st.floats(0.0, 400.0),
)
def test_more_units_sold_today_never_lowers_the_run_out_factor(
    seen: list[tuple[str, float, bool]], store: str | None, a: float, b: float
) -> None:
    """Whatever stretches were observed, a store's run-out factor on the empty-shelf prior
    is non-decreasing in units sold today (so more sales today never raise confidence),
    never below 1 and bounded."""
    from app.domain.runout import RUN_FACTOR_MAX, RunOut

    model = RunOut()
    for s, units, dry in seen:
        model.observe(s, units, dry)
    fewer, more = min(a, b), max(a, b)
    assert model.factor(fewer, store) <= model.factor(more, store)
    assert model.factor(fewer, store) >= 1.0 and model.factor(more, store) <= RUN_FACTOR_MAX


def test_pooled_rates_are_rebuilt_at_every_observation_then_at_each_percent_more() -> None:
    assert rebuild_due(1.0, 0.0) and rebuild_due(51.0, 50.0) and rebuild_due(100.0, 99.0)
    assert not rebuild_due(1009.0, 1000.0) and rebuild_due(1010.0, 1000.0)
    idle = IdleEmptiness()
    for _ in range(150):
        idle.observe(3.0, True)
        idle.observe(300.0, False)
    stale = idle.factors()
    idle.observe(3.0, True)  # one more of 301: not due, the factors stand
    assert idle.factors() is stale
    for _ in range(3):
        idle.observe(3.0, True)
    assert idle.factors() is not stale  # 303 ≥ 300 + 3: rebuilt

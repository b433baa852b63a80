"""The backtest report: hand-computed scores and the exact contract JSON."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.backtest.report import (
    PolicyScore,
    ReportBuilder,
    encode_report,
    naive_promise,
    static_buffer_promise,
)


def test_baselines_promise_on_the_book_alone() -> None:
    assert naive_promise(1, 1) and naive_promise(3, 2)
    assert not naive_promise(0, 1) and not naive_promise(None, 1) and not naive_promise(-2, 1)
    assert static_buffer_promise(3, 1) and static_buffer_promise(4, 2)
    assert not static_buffer_promise(2, 1) and not static_buffer_promise(3, 2)
    assert not static_buffer_promise(None, 1)


def _four_visits() -> ReportBuilder:
    """Four visits, scored by hand below.

    | # | want | shelf | ok | book | service (promise, conf) | naive | buffer |
    | 1 |  1   |   5   | 1  |  6   | yes 0.95                | yes   | yes    |
    | 2 |  1   |   0   | 0  |  4   | yes 0.72                | yes   | yes    |
    | 3 |  2   |   3   | 1  |  2   | no  0.35                | yes   | no     |
    | 4 |  1   |   0   | 0  |  0   | no  0.0                 | no    | no     |
    """
    r = ReportBuilder()
    r.add(qty_wanted=1, on_shelf_qty=5, book=6, promise=True, confidence=0.95)
    r.add(qty_wanted=1, on_shelf_qty=0, book=4, promise=True, confidence=0.72)
    r.add(qty_wanted=2, on_shelf_qty=3, book=2, promise=False, confidence=0.35)
    r.add(qty_wanted=1, on_shelf_qty=0, book=0, promise=False, confidence=0.0)
    return r


def test_hand_computed_scores() -> None:
    report = _four_visits().finish()
    assert report.visits == 4
    service = report.policies["service"]
    assert (service.promises, service.false_promises) == (2, 1)
    assert service.false_promise_rate == 0.5
    assert service.coverage == 0.5  # kept 1 of 2 available
    # ((0.95-1)² + 0.72² + (0.35-1)² + 0²) / 4 = (0.0025 + 0.5184 + 0.4225) / 4
    assert service.brier == pytest.approx(0.9434 / 4)

    naive = report.policies["naive"]
    assert (naive.promises, naive.false_promises) == (3, 1)
    assert naive.false_promise_rate == pytest.approx(1 / 3)
    assert naive.coverage == 1.0
    assert naive.brier == pytest.approx(1 / 4)  # only visit 2 is wrong
    assert naive.calibration is None

    buffer = report.policies["static_buffer"]
    assert (buffer.promises, buffer.false_promises) == (2, 1)
    assert buffer.coverage == 0.5
    assert buffer.brier == pytest.approx(2 / 4)  # visits 2 and 3 wrong


def test_calibration_bins_for_the_service_only() -> None:
    bins = _four_visits().finish().policies["service"].calibration
    assert bins is not None and len(bins) == 10
    assert [(b.low, b.high) for b in bins] == [(i / 10, (i + 1) / 10) for i in range(10)]
    by_low = {b.low: b for b in bins}
    assert (by_low[0.0].n, by_low[0.0].mean_confidence, by_low[0.0].observed) == (1, 0.0, 0.0)
    assert (by_low[0.3].n, by_low[0.3].mean_confidence, by_low[0.3].observed) == (1, 0.35, 1.0)
    assert (by_low[0.7].n, by_low[0.7].observed) == (1, 0.0)
    assert (by_low[0.9].n, by_low[0.9].observed) == (1, 1.0)
    assert sum(b.n for b in bins) == 4
    assert (by_low[0.5].n, by_low[0.5].mean_confidence, by_low[0.5].observed) == (0, 0.0, 0.0)


@pytest.mark.parametrize(
    ("confidence", "low"),
    [(1.0, 0.9), (0.0, 0.0), (0.7, 0.7), (0.3, 0.3), (0.1 * 3, 0.3), (0.699, 0.6)],
)
def test_edges_go_to_the_upper_bin_and_one_to_the_last(confidence: float, low: float) -> None:
    score = PolicyScore(calibrated=True)
    score.add(available=True, promise=True, confidence=confidence)
    bins = score.finish().calibration
    assert bins is not None
    assert [b.low for b in bins if b.n] == [low]


def test_empty_and_degenerate_reports_are_zero_not_errors() -> None:
    report = ReportBuilder().finish()
    assert report.visits == 0
    for p in report.policies.values():
        assert (p.promises, p.false_promise_rate, p.coverage, p.brier) == (0, 0.0, 0.0, 0.0)
    r = ReportBuilder()
    r.add(qty_wanted=1, on_shelf_qty=0, book=None, promise=False, confidence=0.1)
    service = r.finish().policies["service"]
    assert service.false_promise_rate == 0.0 and service.coverage == 0.0
    assert service.brier == pytest.approx(0.01)


@pytest.mark.parametrize("confidence", [-0.01, 1.01, float("nan")])
def test_confidence_outside_unit_interval_is_refused(confidence: float) -> None:
    with pytest.raises(ValueError, match="confidence"):
        ReportBuilder().add(
            qty_wanted=1, on_shelf_qty=1, book=1, promise=True, confidence=confidence
        )


def test_encodes_to_exactly_the_contract_shape() -> None:
    doc = json.loads(encode_report(_four_visits().finish()))
    assert list(doc) == ["format", "visits", "policies"]
    assert doc["format"] == "availability-backtest-report/1" and doc["visits"] == 4
    assert list(doc["policies"]) == ["service", "naive", "static_buffer"]
    keys = ["promises", "false_promises", "false_promise_rate", "coverage", "brier"]
    assert list(doc["policies"]["service"]) == [*keys, "calibration"]
    assert list(doc["policies"]["naive"]) == keys
    assert list(doc["policies"]["static_buffer"]) == keys
    assert doc["policies"]["service"]["calibration"][9] == {
        "low": 0.9, "high": 1.0, "n": 1, "mean_confidence": 0.95, "observed": 1.0
    }  # fmt: skip
    assert isinstance(doc["policies"]["naive"]["false_promise_rate"], float)


visit = st.tuples(
    st.integers(1, 3), st.integers(0, 6), st.one_of(st.none(), st.integers(-2, 8)),
    st.booleans(), st.floats(0.0, 1.0),
)  # fmt: skip


@given(st.lists(visit, max_size=40))
def test_scores_stay_in_range_and_add_up(
    visits: list[tuple[int, int, int | None, bool, float]],
) -> None:
    r = ReportBuilder()
    for want, shelf, book, promise, conf in visits:
        r.add(qty_wanted=want, on_shelf_qty=shelf, book=book, promise=promise, confidence=conf)
    report = r.finish()
    available = sum(shelf >= want for want, shelf, *_ in visits)
    for p in report.policies.values():
        assert 0 <= p.false_promises <= p.promises <= len(visits)
        assert 0.0 <= p.false_promise_rate <= 1.0 and 0.0 <= p.coverage <= 1.0
        assert 0.0 <= p.brier <= 1.0
        kept = p.promises - p.false_promises
        assert p.coverage == (kept / available if available else 0.0)
    bins = report.policies["service"].calibration
    assert bins is not None and sum(b.n for b in bins) == len(visits)
    assert sum(b.observed * b.n for b in bins) == pytest.approx(available)

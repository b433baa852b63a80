"""The backtest report (contract "Backtest report"), built one visit at a time.

A replay streams visits, so scoring is an accumulator: ``add`` per visit, then
``finish`` into Structs that encode to exactly the contract JSON. Pure: no I/O.
"""

from __future__ import annotations

import math

import msgspec

REPORT_FORMAT = "availability-backtest-report/1"
STATIC_BUFFER = 2
CALIBRATION_BINS = 10


class CalibrationBin(msgspec.Struct, frozen=True):
    low: float
    high: float
    n: int
    mean_confidence: float
    observed: float


class PolicyReport(msgspec.Struct, frozen=True, omit_defaults=True):
    """One policy's scores; ``calibration`` only for the service (baselines have none)."""

    promises: int
    false_promises: int
    false_promise_rate: float
    coverage: float
    brier: float
    calibration: list[CalibrationBin] | None = None


class BacktestReport(msgspec.Struct, frozen=True):
    format: str
    visits: int
    policies: dict[str, PolicyReport]


def naive_promise(book: int | None, qty_wanted: int) -> bool:
    """Baseline: promise whenever the book covers the request."""
    return book is not None and book >= qty_wanted


def static_buffer_promise(book: int | None, qty_wanted: int, buffer: int = STATIC_BUFFER) -> bool:
    """Baseline: promise when the book covers the request with ``buffer`` units to spare."""
    return book is not None and book - buffer >= qty_wanted


def _bin_index(confidence: float) -> int:
    # 0.7 is stored as 0.69999…; the epsilon keeps decimal edges in the upper bin.
    i = math.floor(confidence * CALIBRATION_BINS + 1e-9)
    return i if i < CALIBRATION_BINS - 1 else CALIBRATION_BINS - 1  # min(BINS - 1, i), per visit


class PolicyScore:
    """Running totals of one policy."""

    __slots__ = (
        "_bin_conf",
        "_bin_n",
        "_bin_obs",
        "available",
        "brier_sum",
        "calibrated",
        "false_promises",
        "kept",
        "promises",
        "visits",
    )

    def __init__(self, *, calibrated: bool) -> None:
        self.calibrated = calibrated
        self.visits = 0
        self.available = 0
        self.promises = 0
        self.false_promises = 0
        self.kept = 0
        self.brier_sum = 0.0
        self._bin_n = [0] * CALIBRATION_BINS
        self._bin_conf = [0.0] * CALIBRATION_BINS
        self._bin_obs = [0] * CALIBRATION_BINS

    def add(self, available: bool, promise: bool, confidence: float) -> None:
        """One visit's outcome, the policy's promise and its confidence (positional in the
        replay's hot loop: keyword calls cost more than the arithmetic)."""
        if not 0.0 <= confidence <= 1.0:  # also rejects NaN
            raise ValueError(f"confidence must be within [0, 1], got {confidence!r}")
        outcome = 1 if available else 0
        self.visits += 1
        self.available += outcome
        if promise:
            self.promises += 1
            if available:
                self.kept += 1
            else:
                self.false_promises += 1
        self.brier_sum += (confidence - outcome) ** 2
        if self.calibrated:
            i = _bin_index(confidence)
            self._bin_n[i] += 1
            self._bin_conf[i] += confidence
            self._bin_obs[i] += outcome

    def add_certain(self, available: bool, promise: bool) -> None:
        """``add`` for a baseline of an uncalibrated policy, whose confidence is its promise
        (1.0 or 0.0): the same totals (a Brier term is 1.0 or 0.0; adding 0.0 to the
        non-negative sum changes nothing), without the checks and the power per visit."""
        self.visits += 1
        if available:
            self.available += 1
        if promise:
            self.promises += 1
            if available:
                self.kept += 1
            else:
                self.false_promises += 1
        if promise != available:  # (confidence - outcome) ** 2 == 1.0
            self.brier_sum += 1.0

    def finish(self) -> PolicyReport:
        calibration = None
        if self.calibrated:
            calibration = [
                CalibrationBin(
                    low=round(i / CALIBRATION_BINS, 1),
                    high=round((i + 1) / CALIBRATION_BINS, 1),
                    n=n,
                    mean_confidence=self._bin_conf[i] / n if n else 0.0,
                    observed=self._bin_obs[i] / n if n else 0.0,
                )
                for i, n in enumerate(self._bin_n)
            ]
        return PolicyReport(
            promises=self.promises,
            false_promises=self.false_promises,
            false_promise_rate=self.false_promises / self.promises if self.promises else 0.0,
            coverage=self.kept / self.available if self.available else 0.0,
            brier=self.brier_sum / self.visits if self.visits else 0.0,
            calibration=calibration,
        )


class ReportBuilder:
    """Scores the service against the ``naive`` and ``static_buffer`` baselines."""

    def __init__(self) -> None:
        self.visits = 0
        self.service = PolicyScore(calibrated=True)
        self.naive = PolicyScore(calibrated=False)
        self.static_buffer = PolicyScore(calibrated=False)

    def add(
        self,
        qty_wanted: int,
        on_shelf_qty: int,
        book: int | None,
        promise: bool,
        confidence: float,
    ) -> None:
        """One visit: the truth, the book the service had at ``viewed_at`` and its answer."""
        available = on_shelf_qty >= qty_wanted
        self.visits += 1
        self.service.add(available, promise, confidence)
        promised = book is not None and book >= qty_wanted  # naive_promise
        self.naive.add_certain(available, promised)
        promised = book is not None and book - STATIC_BUFFER >= qty_wanted  # static_buffer_promise
        self.static_buffer.add_certain(available, promised)

    def finish(self) -> BacktestReport:
        return BacktestReport(
            format=REPORT_FORMAT,
            visits=self.visits,
            policies={
                "service": self.service.finish(),
                "naive": self.naive.finish(),
                "static_buffer": self.static_buffer.finish(),
            },
        )


def encode_report(report: BacktestReport) -> bytes:
    """The report as contract JSON (indented, newline-terminated)."""
    return msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n"

"""The backtest report (contract "Backtest report"), built one visit at a time.

A replay streams visits, so scoring is an accumulator: ``add`` per visit, then
``finish`` into Structs that encode to exactly the contract JSON. Pure: no I/O.
"""

from __future__ import annotations

import copy
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
        """One visit's outcome, the policy's promise and its confidence."""
        self.add_confidence(available, confidence)
        self.add_counts(available, promise, 1)

    def add_confidence(self, available: bool, confidence: float) -> None:
        """One visit's confidence against its outcome: the Brier sum and (calibrated) its
        bin, not the counts (positional in the replay's hot loop: keyword calls cost
        more than the arithmetic)."""
        if not 0.0 <= confidence <= 1.0:  # also rejects NaN
            raise ValueError(f"confidence must be within [0, 1], got {confidence!r}")
        outcome = 1 if available else 0
        self.brier_sum += (confidence - outcome) ** 2
        if self.calibrated:
            i = _bin_index(confidence)
            self._bin_n[i] += 1
            self._bin_conf[i] += confidence
            self._bin_obs[i] += outcome

    def add_certain(self, available: bool, promise: bool, times: int = 1) -> None:
        """``add`` for a baseline of an uncalibrated policy, whose confidence is its promise
        (1.0 or 0.0), ``times`` visits alike: the same totals (a Brier term is 1.0 or 0.0,
        so the sum is the count of wrong promises, exact as a float), without the checks
        and the power per visit."""
        self.add_counts(available, promise, times)
        if promise != available:  # (confidence - outcome) ** 2 == 1.0
            self.brier_sum += times

    def add_counts(self, available: bool, promise: bool, times: int) -> None:
        """The counts of ``times`` visits alike (not the Brier sum nor the bins)."""
        self.visits += times
        if available:
            self.available += times
        if promise:
            self.promises += times
            if available:
                self.kept += times
            else:
                self.false_promises += times

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
    """Scores the service against the ``naive`` and ``static_buffer`` baselines.

    Every count of the three policies is a sum over visits alike in (service promise,
    available, naive promise, static_buffer promise), so a visit adds one to a tally of
    those 16 kinds, and ``finish`` hands each kind to the policies once; the service's
    Brier sum and calibration bins are added per visit (``PolicyScore.add_confidence``).
    Two calls per visit of the replay, not four."""

    def __init__(self) -> None:
        self.visits = 0
        self._kinds = [0] * 16  # index: 8 service promise, 4 available, 2 naive, 1 static
        self._service = PolicyScore(calibrated=True)  # its Brier sum and bins; counts at finish

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
        self._service.add_confidence(available, confidence)
        self.visits += 1
        kind = 8 if promise else 0
        if available:
            kind += 4
        if book is not None:
            if book >= qty_wanted:  # naive_promise
                kind += 2
            if book - STATIC_BUFFER >= qty_wanted:  # static_buffer_promise
                kind += 1
        self._kinds[kind] += 1

    def finish(self) -> BacktestReport:
        service = copy.copy(self._service)  # (finish can be asked again)
        naive = PolicyScore(calibrated=False)
        static_buffer = PolicyScore(calibrated=False)
        for kind, times in enumerate(self._kinds):
            if times:
                available = kind & 4 != 0
                service.add_counts(available, kind & 8 != 0, times)
                naive.add_certain(available, kind & 2 != 0, times)
                static_buffer.add_certain(available, kind & 1 != 0, times)
        return BacktestReport(
            format=REPORT_FORMAT,
            visits=self.visits,
            policies={
                "service": service.finish(),
                "naive": naive.finish(),
                "static_buffer": static_buffer.finish(),
            },
        )


def encode_report(report: BacktestReport) -> bytes:
    """The report as contract JSON (indented, newline-terminated)."""
    return msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n"

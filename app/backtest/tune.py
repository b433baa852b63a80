"""Choose a promise policy from a recorded replay: most coverage under a false-promise target.

The knobs are the confidence threshold and the minimum safety buffer (a default,
and per category where the data has enough visits). The dataset's window is cut
in two: candidates are *chosen* on the earlier (fit) slice and *judged* on the
later (validation) slice, so the number reported for the chosen policy is one it
was not fitted on. The engine itself learns online through the whole replay
(``app.backtest.tune_record``); only the choice of the two knobs is fitted.

Everything here is pure arithmetic over ``VisitRecord``s: a histogram per
(slice, threshold, category) of each visit's slack (book − held-back − wanted)
turns scoring any buffer into a suffix sum, so hundreds of candidates cost
nothing next to the replay.

The candidate family does not depend on the target (uniform grid, plus per-
category buffers that maximise kept − λ·false promises on the fit slice for a
fixed sweep of λ), and the choice is the feasible candidate with the most fit
coverage; so a stricter target can only shrink the feasible set, never raise
the coverage chosen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from app.backtest.tune_record import Recording, held
from app.domain.policy import BufferRule, Policy

THRESHOLDS: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99)
# Plus the fit slice's own confidence quantiles: a calibrated engine's confidences bunch
# up (e.g. most at 0.976–0.982), and a fixed grid would step right over them.
QUANTILES: tuple[float, ...] = tuple(k / 20 for k in range(1, 20))
MAX_BUFFER = 6  # minimum safety buffers tried: 0..MAX_BUFFER units
# Exchange rates (kept promises one false promise is worth) swept to build per-category
# candidates; 1/λ is roughly the marginal false-promise rate each one accepts.
LAMBDAS: tuple[float, ...] = tuple(round(2 ** (k / 2), 3) for k in range(0, 25))
MIN_CATEGORY_VISITS = 1000  # fit-slice visits a category needs for its own buffer
FIT_FRACTION = 0.65

SliceName = Literal["fit", "validation"]
_SLICES: tuple[SliceName, ...] = ("fit", "validation")
_OTHER = "\x00other"  # key for visits without a category


class TuneError(ValueError):
    """Arguments the tuner cannot work with; the message says which and why."""


class Candidate(msgspec.Struct, frozen=True):
    """A point in the search: threshold, default minimum buffer, per-category minimums."""

    confidence_threshold: float
    safety_buffer: int
    category_buffers: tuple[tuple[str, int], ...] = ()

    def buffer(self, category: str | None) -> int:
        for c, units in self.category_buffers:
            if c == category:
                return units
        return self.safety_buffer

    def label(self) -> str:
        extra = ",".join(f"{c}={u}" for c, u in self.category_buffers)
        return f"t={self.confidence_threshold:g} b={self.safety_buffer}" + (
            f" [{extra}]" if extra else ""
        )


class SliceScore(msgspec.Struct, frozen=True):
    """Contract definitions: FPR = false / promises, coverage = kept / available visits."""

    visits: int
    available: int
    promises: int
    false_promises: int

    @property
    def false_promise_rate(self) -> float:
        return self.false_promises / self.promises if self.promises else 0.0

    @property
    def coverage(self) -> float:
        kept = self.promises - self.false_promises
        return kept / self.available if self.available else 0.0


class Scored(msgspec.Struct, frozen=True):
    candidate: Candidate
    fit: SliceScore
    validation: SliceScore


class Window(msgspec.Struct, frozen=True):
    start: datetime
    cut: datetime
    end: datetime


class TuneResult(msgspec.Struct, frozen=True):
    """All candidates scored, the choice (``None``: nothing meets the target) and the base."""

    target: float
    window: Window
    scored: list[Scored]
    chosen: Scored | None
    base: Scored | None  # the base policy, scored the same way, for reference


def cut_time(start: datetime, end: datetime, fraction: float) -> datetime:
    """The moment ``fraction`` of the way through the window, to the second."""
    if not 0.0 < fraction < 1.0:
        raise TuneError(f"fit fraction must be between 0 and 1 (exclusive), got {fraction}")
    return start + timedelta(seconds=round((end - start).total_seconds() * fraction))


def check_target(target: float) -> float:
    """A target is a rate in [0, 1); 0 means only perfect promises."""
    if math.isnan(target) or not 0.0 <= target < 1.0:
        raise TuneError(f"false-promise-rate target must be in [0, 1), got {target}")
    return target


class Tally:
    """Per (slice, threshold, category): promises and kept promises by slack, capped."""

    def __init__(
        self, recording: Recording, cut: datetime, thresholds: Sequence[float], max_buffer: int
    ) -> None:
        self.thresholds = tuple(sorted(set(thresholds)))
        self.max_buffer = max_buffer
        self.visits = dict.fromkeys(_SLICES, 0)
        self.available = dict.fromkeys(_SLICES, 0)
        self.category_visits: dict[SliceName, dict[str, int]] = {s: {} for s in _SLICES}
        # hist[slice][i][category] = ([promises with slack == k], [kept with slack == k])
        self._hist: dict[SliceName, list[dict[str, tuple[list[int], list[int]]]]] = {
            s: [{} for _ in self.thresholds] for s in _SLICES
        }
        for rec in recording.visits:
            s: SliceName = "fit" if rec.viewed_at < cut else "validation"
            cat = _OTHER if rec.category is None else rec.category
            self.visits[s] += 1
            self.available[s] += rec.available
            per_cat = self.category_visits[s]
            per_cat[cat] = per_cat.get(cat, 0) + 1
            if not rec.fresh or rec.book is None:
                continue
            for i, t in enumerate(self.thresholds):
                if rec.confidence < t:
                    break  # thresholds ascend: no higher one passes either
                slack = rec.book - held(rec, t) - rec.wanted
                if slack < 0:
                    continue
                row = self._hist[s][i].get(cat)
                if row is None:
                    row = self._hist[s][i][cat] = ([0] * (max_buffer + 1), [0] * (max_buffer + 1))
                k = min(slack, max_buffer)
                row[0][k] += 1
                row[1][k] += rec.available

    def categories(self) -> list[str]:
        seen = set(self.category_visits["fit"]) | set(self.category_visits["validation"])
        return sorted(seen)

    def counts(self, s: SliceName, i: int, category: str, buffer: int) -> tuple[int, int]:
        """(promises, kept) of one category at threshold index ``i`` and minimum ``buffer``."""
        if not 0 <= buffer <= self.max_buffer:
            raise ValueError(f"buffer {buffer} is outside the tallied 0..{self.max_buffer}")
        row = self._hist[s][i].get(category)
        if row is None:
            return 0, 0
        return sum(row[0][buffer:]), sum(row[1][buffer:])

    def score(self, s: SliceName, candidate: Candidate) -> SliceScore:
        i = self.thresholds.index(candidate.confidence_threshold)
        promises = kept = 0
        for cat in self.categories():
            p, k = self.counts(s, i, cat, candidate.buffer(None if cat == _OTHER else cat))
            promises += p
            kept += k
        return SliceScore(
            visits=self.visits[s],
            available=self.available[s],
            promises=promises,
            false_promises=promises - kept,
        )


def threshold_grid(recording: Recording, cut: datetime) -> list[float]:
    """``THRESHOLDS``, the base threshold and the fit slice's confidence quantiles (3 decimals).

    Quantiles are of the confidences where a promise was possible (fresh data), so the
    grid follows where the engine's answers actually lie; it is the same for any target.
    """
    confs = sorted(r.confidence for r in recording.visits if r.fresh and r.viewed_at < cut)
    grid = {*THRESHOLDS, recording.base_policy.confidence_threshold}
    if confs:
        for q in QUANTILES:
            grid.add(round(confs[min(len(confs) - 1, int(q * len(confs)))], 3))
    return sorted(t for t in grid if 0.0 < t < 1.0)


def uniform_candidates(thresholds: Sequence[float], max_buffer: int) -> list[Candidate]:
    return [Candidate(t, b) for t in thresholds for b in range(max_buffer + 1)]


def category_candidates(
    tally: Tally, lambdas: Iterable[float], min_category_visits: int
) -> list[Candidate]:
    """Per-category buffers that maximise kept − λ·false on the fit slice, for each λ.

    Only categories with ``min_category_visits`` fit visits get their own buffer; the
    rest (and categories the data never saw) use the default, chosen the same way on
    all fit visits. Candidates equal to a uniform one are left out.
    """
    fit_visits = tally.category_visits["fit"]
    own = [
        c for c in tally.categories() if c != _OTHER and fit_visits.get(c, 0) >= min_category_visits
    ]
    if not own:
        return []
    out: dict[Candidate, None] = {}
    for i, t in enumerate(tally.thresholds):
        for lam in lambdas:

            def best(cats: Sequence[str], i: int = i, lam: float = lam) -> int:
                def value(b: int) -> tuple[float, int]:
                    p = k = 0
                    for c in cats:
                        cp, ck = tally.counts("fit", i, c, b)
                        p, k = p + cp, k + ck
                    return k - lam * (p - k), b  # ties: the larger buffer

                return max(range(tally.max_buffer + 1), key=value)

            default = best(tally.categories())
            rules = tuple((c, b) for c in own if (b := best([c])) != default)
            if rules:
                out[Candidate(t, default, rules)] = None
    return list(out)


def choose(scored: Sequence[Scored], target: float) -> Scored | None:
    """Most fit coverage with fit FPR ≤ target; ``None`` when no candidate keeps a promise.

    Ties go to fewer false promises, then a uniform policy, then the stricter one.
    """
    check_target(target)
    feasible = [
        s
        for s in scored
        if s.fit.promises > s.fit.false_promises and s.fit.false_promises <= target * s.fit.promises
    ]
    if not feasible:
        return None
    return max(
        feasible,
        key=lambda s: (
            s.fit.coverage,
            -s.fit.false_promises,
            not s.candidate.category_buffers,
            s.candidate.confidence_threshold,
            s.candidate.safety_buffer,
        ),
    )


def tune(
    recording: Recording,
    target: float,
    *,
    fit_fraction: float = FIT_FRACTION,
    max_buffer: int = MAX_BUFFER,
    min_category_visits: int = MIN_CATEGORY_VISITS,
    lambdas: Iterable[float] = LAMBDAS,
) -> TuneResult:
    """Score every candidate on both slices and choose on the fit slice."""
    check_target(target)
    if max_buffer < 0:
        raise TuneError(f"max buffer must be ≥ 0, got {max_buffer}")
    cut = cut_time(recording.start, recording.end, fit_fraction)
    tally = Tally(recording, cut, threshold_grid(recording, cut), max_buffer)
    candidates = uniform_candidates(tally.thresholds, max_buffer)
    candidates += category_candidates(tally, lambdas, min_category_visits)
    scored = [Scored(c, tally.score("fit", c), tally.score("validation", c)) for c in candidates]
    bp = recording.base_policy
    base = None
    if not bp.buffers and bp.safety_buffer <= max_buffer:
        c = Candidate(bp.confidence_threshold, bp.safety_buffer)
        base = Scored(c, tally.score("fit", c), tally.score("validation", c))
    return TuneResult(
        target=target,
        window=Window(recording.start, cut, recording.end),
        scored=scored,
        chosen=choose(scored, target),
        base=base,
    )


def why_none(result: TuneResult) -> str:
    """Why no policy was chosen, in the words a dataset's owner can act on: a fit slice
    without visits, or without a promise any candidate would make, or the target."""
    w = result.window
    fit = result.scored[0].fit if result.scored else None
    where = f"the fit slice ({_stamp(w.start)} .. {_stamp(w.cut)})"
    if fit is None or fit.visits == 0:
        return f"{where} has no visits: nothing to fit a policy on"
    if not any(s.fit.promises for s in result.scored):
        return (
            f"{where} has {fit.visits} visits and no candidate promises any of them "
            f"(none has a fresh book covering its request)"
        )
    return f"no candidate keeps its fit-slice false-promise rate within {result.target:.2%}"


def to_policy(candidate: Candidate, base: Policy) -> Policy:
    """The base policy with the candidate's threshold and buffers (base buffer rules dropped)."""
    rules = tuple(BufferRule(units=u, category=c) for c, u in candidate.category_buffers)
    return msgspec.structs.replace(
        base,
        confidence_threshold=candidate.confidence_threshold,
        safety_buffer=candidate.safety_buffer,
        buffers=rules,
    )


def frontier(result: TuneResult) -> list[Scored]:
    """Per threshold, the candidate the choice rule would pick among that threshold's."""
    rows: list[Scored] = []
    for t in sorted({s.candidate.confidence_threshold for s in result.scored}):
        best = choose(
            [s for s in result.scored if s.candidate.confidence_threshold == t], result.target
        )
        if best is not None:
            rows.append(best)
    return rows


def _duration(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    if seconds == d.total_seconds():
        for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
            if seconds % size == 0 and seconds:
                return f"{seconds // size}{unit}"
        return f"{seconds}s"
    return f"{d.total_seconds()}s"


def _toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _one_line(s: str) -> str:
    return " ".join(s.split())


def _stamp(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _line(name: str, a: datetime, b: datetime, s: SliceScore) -> str:
    return (
        f"# {name:<11} {_stamp(a)} .. {_stamp(b)}: {s.visits} visits, {s.promises} promises, "
        f"FPR {s.false_promise_rate:.2%} ({s.false_promises} false), coverage {s.coverage:.2%}"
    )


def policy_toml(policy: Policy, result: TuneResult, dataset: str) -> str:
    """The policy as a file ``app.policy_file.load_policy`` reads, with how it was chosen."""
    chosen = result.chosen
    if chosen is None:
        raise TuneError("no policy was chosen; nothing to write")
    w = result.window
    header = [
        "# Promise policy chosen by `availability tune`.",
        f"# dataset: {_one_line(dataset)}",
        f"# target: false-promise rate <= {result.target:.2%}, chosen on the fit slice, "
        "judged on the later validation slice",
        _line("fit:", w.start, w.cut, chosen.fit),
        _line("validation:", w.cut, w.end, chosen.validation),
    ]
    if chosen.validation.false_promise_rate > result.target:
        header.append("# WARNING: the validation FPR is above the target.")
    body = [
        f"confidence_threshold = {policy.confidence_threshold!r}",
        f"safety_buffer = {policy.safety_buffer}",
        f"low_stock_below = {policy.low_stock_below}",
        f'max_data_age = "{_duration(policy.max_data_age)}"',
        f'arrival_horizon = "{_duration(policy.arrival_horizon)}"',
    ]
    for rule in policy.buffers:
        body.append("")
        body.append("[[buffers]]")
        for key in ("store_id", "category", "sku"):
            value = getattr(rule, key)
            if value is not None:
                body.append(f"{key} = {_toml_str(value)}")
        body.append(f"units = {rule.units}")
    return "\n".join([*header, "", *body]) + "\n"


def table(result: TuneResult) -> str:
    """Compact text: the base policy, then per threshold its best candidate under the target."""
    head = f"{'':2}{'candidate':<44} {'fit FPR':>8} {'fit cov':>8} {'val FPR':>8} {'val cov':>8}"
    lines = [head]

    def row(mark: str, s: Scored) -> str:
        return (
            f"{mark:2}{s.candidate.label():<44.44} {s.fit.false_promise_rate:8.2%} "
            f"{s.fit.coverage:8.2%} {s.validation.false_promise_rate:8.2%} "
            f"{s.validation.coverage:8.2%}"
        )

    if result.base is not None:
        lines.append(row("=", result.base))
    best = frontier(result)
    for s in best:
        lines.append(row("*" if s == result.chosen else "", s))
    if not best:  # nothing meets the target: show how close the safest candidates came
        kept = [s for s in result.scored if s.fit.promises > s.fit.false_promises]
        kept.sort(key=lambda s: (s.fit.false_promise_rate, -s.fit.coverage))
        lines.append("  (none meets the target on fit; lowest fit FPRs:)")
        lines.extend(row("", s) for s in kept[:5])
    return "\n".join(lines)


def fpr_upper_bound(s: SliceScore, z: float = 1.96) -> float:
    """Wilson 95% upper bound of the false-promise rate: how sure a small count is."""
    n = s.promises
    if n == 0:
        return 1.0
    p = s.false_promises / n
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return min(1.0, (centre + spread) / (1 + z * z / n))


def summary(result: TuneResult, *, replay_seconds: float | None = None) -> str:
    """A few lines on the choice: both slices, the bound, and whether validation kept the target."""
    w = result.window
    lines = [
        f"target FPR <= {result.target:.2%}; fit {_stamp(w.start)} .. {_stamp(w.cut)}, "
        f"validation .. {_stamp(w.end)}; {len(result.scored)} candidates"
        + ("" if replay_seconds is None else f", one replay pass {replay_seconds:.1f}s"),
    ]
    c = result.chosen
    if c is None:
        lines.append(f"chosen: none ({why_none(result)})")
        return "\n".join(lines)
    lines.append(f"chosen: {c.candidate.label()}")
    for name, s in (("fit", c.fit), ("validation", c.validation)):
        lines.append(
            f"  {name:<10} {s.promises:>6} promises, {s.false_promises:>5} false: "
            f"FPR {s.false_promise_rate:.2%} (95% upper {fpr_upper_bound(s):.2%}), "
            f"coverage {s.coverage:.2%}"
        )
    v = c.validation
    if v.promises == 0:
        lines.append("  validation: no promises at all; the choice says nothing about later data")
    elif v.false_promise_rate > result.target:
        lines.append("  WARNING: validation FPR is above the target")
    return "\n".join(lines)


class _SliceOut(msgspec.Struct):
    visits: int
    available: int
    promises: int
    false_promises: int
    false_promise_rate: float
    coverage: float


class _CandidateOut(msgspec.Struct):
    confidence_threshold: float
    safety_buffer: int
    category_buffers: dict[str, int]
    fit: _SliceOut
    validation: _SliceOut
    chosen: bool


class _ReportOut(msgspec.Struct):
    format: str
    target: float
    fit: tuple[datetime, datetime]
    validation: tuple[datetime, datetime]
    chosen: _CandidateOut | None
    base: _CandidateOut | None
    candidates: list[_CandidateOut]


def _slice_out(s: SliceScore) -> _SliceOut:
    return _SliceOut(
        s.visits, s.available, s.promises, s.false_promises, s.false_promise_rate, s.coverage
    )


def encode_tune_report(result: TuneResult) -> bytes:
    """Every candidate on both slices, as indented JSON."""

    def out(s: Scored) -> _CandidateOut:
        c = s.candidate
        return _CandidateOut(
            c.confidence_threshold, c.safety_buffer, dict(c.category_buffers),
            _slice_out(s.fit), _slice_out(s.validation), s == result.chosen,
        )  # fmt: skip

    w = result.window
    report = _ReportOut(
        format="availability-tune-report/1",
        target=result.target,
        fit=(w.start, w.cut),
        validation=(w.cut, w.end),
        chosen=None if result.chosen is None else out(result.chosen),
        base=None if result.base is None else out(result.base),
        candidates=[out(s) for s in result.scored],
    )
    return msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n"

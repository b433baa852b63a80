"""P(at least the wanted units are on the shelf when the shopper arrives).

Pure arithmetic over an ``Evidence`` record the engine assembles (clamps on the hot
path are conditionals, ``x if x < 1.0 else 1.0`` for ``min(1.0, x)``: the same value,
without a builtin call per clamp, ~25 of them per visit). The shape:

    on-shelf at arrival = book − D,   D ~ NegBin(mean = sales to arrival
                                        + unreported sales + unrecorded loss)

mixed with the back room (units received recently are on the shelf only with the
learned fill probability), times 1 − P(phantom | silence), then through a
monotone calibration map (after a shelf seen short: the shelf as seen and the shelf
refilled each through the map, mixed by P(not refilled)) and times P(the shelf holds
the units wanted and half the sales before arrival | it holds any) from the shelf's
usual share of the book. Every step is
monotone in the right direction, so the properties the badge needs hold by
construction: more book never lowers confidence; more expected sales, loss,
unreported sales or silence never raise it. A raw probability of exactly 0 (too few
units whatever happened: no label ever has one) stays 0 through the map; the
calibration's floor (``calibration.floor_of``: how often shelf counts found units
where the book said none) is the least any confidence goes to, so a short book is
not a certainty either. It depends on book and wanted alone, in the same directions.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable

from app.domain.reasons import Reason
from app.domain.records import Assessment as Assessment
from app.domain.records import Evidence as Evidence

# Over-dispersion of depletion (NegBin size): sales come in bursts and loss in lumps.
DEPLETION_SIZE = 2.0
# Over-dispersion of demand when reading silence: a quiet spell is likelier than Poisson says.
SILENCE_SIZE = 1.5


def negbin_cdf(m: int, mean: float, size: float = DEPLETION_SIZE) -> float:
    """P(D ≤ m) for a negative binomial with the given mean and size."""
    if m < 0:
        return 0.0
    if mean <= 1e-12:
        return 1.0
    p = size / (size + mean)
    q = 1.0 - p
    if size == 2.0:  # closed form: P(D > m) = q^(m+1) (1 + (m+1) p), no sum over m terms
        c = 1.0 - q ** (m + 1) * (1.0 + (m + 1) * p)
        c = c if c < 1.0 else 1.0
        return c if c > 0.0 else 0.0
    pk = math.exp(size * math.log(p))
    total = pk
    for k in range(m):
        pk *= (k + size) / (k + 1) * q
        total += pk
        if total >= 1.0 - 1e-12:
            return 1.0
    return min(1.0, total)


def negbin_quantile(level: float, mean: float, size: float = DEPLETION_SIZE) -> int:
    """Smallest n with P(D ≤ n) ≥ level: the running sum's first n (``_summed_quantile``),
    read from the level's table of means when the depletion size is asked (every visit
    asks the policy's threshold), summed when the table cannot be sure."""
    if mean <= 1e-12:
        return 0
    if size == DEPLETION_SIZE:
        table = _TABLES.get(level)
        if table is None:
            table = _quantile_table(level)
        if table is not None:
            n = table.lookup(mean)
            if n >= 0:
                return n
    return _summed_quantile(level, mean, size)


def _summed_quantile(level: float, mean: float, size: float) -> int:
    """``negbin_quantile`` by summing the probabilities until they reach ``level``."""
    p = size / (size + mean)
    q = 1.0 - p
    pk = math.exp(size * math.log(p))
    total = pk
    # for loops (not a while with two tests) and, for the depletion size, each step's
    # ratio (k + size) / (k + 1) read from a table (the same floats).
    first = 0
    if size == DEPLETION_SIZE:
        for k, ratio in enumerate(_RATIOS_2):
            if not total < level:  # (NaN stops here, as the while loop's test did)
                return k
            pk *= ratio * q
            total += pk
        first = len(_RATIOS_2)
    for k in range(first, 100_000):
        if not total < level:
            return k
        pk *= (k + size) / (k + 1) * q
        total += pk
    return 100_000


_RATIOS_2 = tuple((k + DEPLETION_SIZE) / (k + 1) for k in range(512))

# The quantile table: the summed series at n differs from the closed form
# 1 − q^(n+1) (1 + (n+1) p) (size 2) by rounding only (~n² · 1e-16), far below this margin.
QUANTILE_MARGIN = 1e-8
QUANTILE_TABLE_N = 256  # answers up to here from a table (a mean of ~130 at level 0.9)
QUANTILE_LEVELS = 64  # tables kept (one per level asked: the policies' thresholds)


def _tail_2(n: int, mean: float) -> float:
    """P(D ≤ n) at size 2 in closed form, from ``p`` and ``q`` computed as the sum does."""
    p = 2.0 / (2.0 + mean)
    q = 1.0 - p
    return 1.0 - q ** (n + 1) * (1.0 + (n + 1) * p)


def _mean_bracket(n: int, target: float) -> tuple[float, float]:
    """Means ``lo < hi`` with ``_tail_2(n, lo) > target >= _tail_2(n, hi)`` (the closed form
    falls as the mean grows), ``hi - lo`` a few ulps of ``hi``."""
    lo, hi = 0.0, 1.0
    while _tail_2(n, hi) > target:
        lo, hi = hi, 2.0 * hi
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        if not lo < mid < hi:
            break
        if _tail_2(n, mid) > target:
            lo = mid
        else:
            hi = mid
    return lo, hi


class _QuantileTable:
    """``negbin_quantile`` at size 2 for one level, by the mean. Per n, ``sure_by[n]``:
    at a mean at or below it P(D ≤ n) exceeds the level by the margin, so the sum has
    reached it by n; ``short_of[n]``: at a mean at or above it P(D ≤ n) is below the
    level by the margin, so the sum has not (both rise with n). A mean in neither
    (within ~1e-8 of a step, or beyond the table) is left to the sum: the same answer
    for every mean, one bisection instead of ~12-30 terms. Built as far as asked."""

    __slots__ = ("level", "short_of", "sure_by")

    def __init__(self, level: float) -> None:
        self.level = level
        self.sure_by: list[float] = []
        self.short_of: list[float] = []

    def lookup(self, mean: float) -> int:
        """The quantile at ``mean``; -1 when the table cannot be sure (sum instead)."""
        short_of = self.short_of
        n = bisect_right(short_of, mean)  # the sum falls short of the level at 0 .. n - 1
        if n == len(short_of):
            if not (n < QUANTILE_TABLE_N and mean < math.inf):
                return -1
            self._extend(mean)
            n = bisect_right(short_of, mean)
            if n == len(short_of):
                return -1
        return n if mean <= self.sure_by[n] else -1

    def _extend(self, mean: float) -> None:
        """Rows until one falls short above ``mean`` (or the table is full)."""
        level = self.level
        while len(self.short_of) < QUANTILE_TABLE_N:
            n = len(self.short_of)
            self.sure_by.append(_mean_bracket(n, level + QUANTILE_MARGIN)[0])
            self.short_of.append(_mean_bracket(n, level - QUANTILE_MARGIN)[1])
            if self.short_of[-1] > mean:
                return


_TABLES: dict[float, _QuantileTable | None] = {}


def _quantile_table(level: float) -> _QuantileTable | None:
    """The level's table (None: a level the margin leaves no room in, summed always)."""
    if len(_TABLES) >= QUANTILE_LEVELS:
        _TABLES.clear()
    ok = 2 * QUANTILE_MARGIN < level < 1.0 - 2 * QUANTILE_MARGIN  # (False for NaN)
    table = _TABLES[level] = _QuantileTable(level) if ok else None
    return table


def depletion(e: Evidence) -> float:
    """Expected units gone from the shelf by arrival beyond what the book shows."""
    return e.expected_sales + e.unreported_sales + e.unrecorded_loss


def p_phantom(e: Evidence) -> float:
    """P(shelf empty | no sale in a stretch where ``silence`` units would have sold)."""
    return empty_given_quiet(e.phantom_prior, e.silence)


def empty_given_quiet(prior: float, silence: float) -> float:
    """P(shelf empty | no sale while a stocked shelf would have sold ``silence`` units),
    from P(empty) = ``prior``: an empty shelf sells nothing, a stocked one stays quiet
    that long with the over-dispersed chance below. Non-decreasing in both."""
    prior = 0.0 if prior < 0.0 else prior  # min(max(prior, 0.0), 1.0)
    prior = 1.0 if prior > 1.0 else prior
    if prior <= 0.0 or silence <= 0.0:
        return prior
    p_quiet = math.exp(SILENCE_SIZE * math.log(SILENCE_SIZE / (SILENCE_SIZE + silence)))
    return prior / (prior + (1.0 - prior) * p_quiet)


# The share of the sales expected before arrival that the shelf itself must hold (beyond
# the units wanted) in ``shelf_share_factor``: 1 would assume no refill before arrival,
# 0 a shelf always refilled in time. Half: a refill due in the horizon comes, on
# average, halfway through it. A design constant (labels, counted at the moment,
# cannot learn it); 0.5, 0.75 and 1 measured in docs/engine.md (stop 25).
SHELF_SALES_SHARE = 0.5
_SQRT2 = math.sqrt(2.0)
_LOG_HALF = math.log(0.5)


def shelf_share_factor(e: Evidence) -> float:
    """P(the shelf holds ≥ ``wanted`` units plus ``SHELF_SALES_SHARE`` of the sales
    expected before arrival | it holds any), from the shelf's usual share of the book
    (log-normal around ``shelf_typical``). The book's depletion counts those sales
    against the whole book; a fast seller's shelf, a few days of its sales in front of a
    bigger book, can run dry before the shopper comes while the book stays high. 1 for
    one unit with no sales expected, and where the share is unknown. Non-increasing in
    ``wanted`` and ``expected_sales``, non-decreasing in ``shelf_typical``, and the same
    whatever ``shelf_bound`` says (so a lower bound never raises confidence)."""
    need = e.wanted + (SHELF_SALES_SHARE * e.expected_sales if e.expected_sales > 0.0 else 0.0)
    if need <= 1.0 or e.shelf_typical <= 0.0:
        return 1.0
    lm, s = math.log(e.shelf_typical), e.shelf_spread * _SQRT2
    if s <= 0.0:
        return 1.0 if lm >= math.log(need - 0.5) else 0.0
    # 1 + erf(x) as erfc(-x): far in the lower tail (a shelf share of a unit in a
    # thousand) 1 + erf(x) is all rounding, and the ratio of two such was anything
    any_ = math.erfc((_LOG_HALF - lm) / s)
    enough = math.erfc((math.log(need - 0.5) - lm) / s)
    f = enough / any_ if any_ > 0.0 else 0.0
    return f if f < 1.0 else 1.0


def raw_confidence(e: Evidence) -> float:
    """The model's probability before calibration (and before the shelf share, which
    multiplies the calibrated one: ``confidence``)."""
    return _raw(e, depletion(e), p_phantom(e))


def _on_shelf(e: Evidence, units: int, mean: float) -> float:
    """P(≥ wanted of ``units`` are left at arrival), a delivery in the back room on the
    shelf only with the fill probability."""
    filled = negbin_cdf(units - e.wanted, mean)
    if e.back_room > 0 and e.shelf_fill < 1.0:
        waiting = negbin_cdf(units - e.back_room - e.wanted, mean)
        filled = e.shelf_fill * filled + (1.0 - e.shelf_fill) * waiting
    return filled


def _raw(e: Evidence, mean: float, phantom: float) -> float:
    """``raw_confidence`` given ``depletion(e)`` and ``p_phantom(e)`` (``assessment``
    reads both again: computed once, the same floats)."""
    return _mixed(_cases(e, mean, phantom))


Cases = tuple[float, float, float]  # P(not refilled), raw as seen, raw refilled


def _mixed(cases: Cases) -> float:
    """The raw probability of ``_cases``: the two mixed, clamped to [0, 1]."""
    stays, seen, refilled = cases
    raw = seen if stays >= 1.0 else stays * seen + (1.0 - stays) * refilled
    raw = raw if raw < 1.0 else 1.0
    return raw if raw > 0.0 else 0.0


def _cases(e: Evidence, mean: float, phantom: float) -> Cases:
    """After a shelf seen short: P(not refilled since), and the raw probability in each
    case (the shelf as seen, rolled forward; the shelf refilled). Otherwise (1, raw, raw)."""
    units = e.book  # min(book, shelf_bound)
    if e.shelf_bound is not None and e.shelf_bound < units:
        units = e.shelf_bound
    keep = 1.0 - phantom
    seen = _on_shelf(e, units, mean) * keep
    more = e.refilled_units
    if more is not None and more > units and e.not_refilled < 1.0:  # refilled since?
        stays = e.not_refilled if e.not_refilled > 0.0 else 0.0
        return stays, seen, _on_shelf(e, more, mean) * keep
    return 1.0, seen, seen


def _calibrated(e: Evidence, calibrate: Calibrate, cases: Cases) -> float:
    """The map applied to each case of ``_cases`` apart, then mixed. The map is learned
    on shelves in one state; a shelf seen empty that may have been refilled is a mix of
    two, and its low raw value mapped whole was lifted as a lone quiet shelf's is
    (bins 0.4-0.6 were over-confident by 0.1-0.4 on such visits, docs/engine.md)."""
    stays, seen, refilled = cases  # (each in [0, 1]: ``_on_shelf`` times 1 − P(phantom))
    a = calibrate(e, seen) if seen > 0.0 else 0.0
    if stays >= 1.0:
        return a
    b = calibrate(e, refilled) if refilled > 0.0 else 0.0
    return stays * a + (1.0 - stays) * b


Calibrate = Callable[[Evidence, float], float]
Floor = Callable[[int, int], float]  # (book, wanted) -> the least confidence


def confidence(
    e: Evidence, calibrate: Calibrate | None = None, floor: Floor | None = None
) -> float:
    """Calibrated P(on-shelf ≥ wanted at arrival).

    ``calibrate(e, raw)`` must be non-decreasing in ``raw`` and move with each
    evidence field in the same direction as the raw probability does
    (``app.domain.calibration`` does both by construction). The shelf share multiplies
    the calibrated probability: it is a probability of its own (P(the shelf holds the
    wanted units and the sales before arrival | it holds any)), which the map, fitted
    on the raw model's pessimism for single units counted at the moment, would
    otherwise stretch (measured in docs/engine.md).
    ``floor(book, wanted)``, the calibration's floors, is the least it returns: it
    depends on those two alone, non-decreasing in the book, non-increasing in wanted.
    """
    cases = _cases(e, depletion(e), p_phantom(e))
    raw = _mixed(cases)
    conf = raw
    if calibrate is not None and raw > 0.0:
        conf = max(0.0, min(1.0, _calibrated(e, calibrate, cases)))
    conf *= shelf_share_factor(e)
    return conf if floor is None else max(conf, floor(e.book, e.wanted))


def held_back(e: Evidence, level: float) -> tuple[int, int]:
    """Units held back (for expected depletion, for its uncertainty) at ``level``."""
    return _held_back(depletion(e), level)


def _held_back(mean: float, level: float) -> tuple[int, int]:
    """``held_back`` given the evidence's ``depletion``."""
    total = negbin_quantile(level, mean)
    ceiling = math.ceil(mean - 1e-9)
    for_sales = ceiling if ceiling < total else total
    return for_sales, total - for_sales


def assessment(
    ev: Evidence,
    *,
    threshold: float,
    calibrate: Calibrate | None,
    floor: Floor | None = None,
    pos_quiet: bool,
    sources_disagree: bool,
    reasons: bool = True,
) -> Assessment:
    """The Assessment for evidence ``ev``: one place for the confidence, the held-back
    units and the reason rules, shared by the engine and by ``reassess`` (stored records).
    ``reasons=False`` leaves the reasons out (the backtest scores only the numbers): the
    same confidence and held-back units."""
    # confidence() and held_back() inlined: depletion and p_phantom read once each.
    mean = ev.expected_sales + ev.unreported_sales + ev.unrecorded_loss  # depletion(ev)
    phantom = p_phantom(ev)
    cases = _cases(ev, mean, phantom)
    conf = _mixed(cases)
    if calibrate is not None and conf > 0.0:  # 0: the map has no label there (module doc)
        conf = _calibrated(ev, calibrate, cases)
        conf = conf if conf < 1.0 else 1.0
        conf = conf if conf > 0.0 else 0.0
    # (the factor's own first test, inline: no call where it is 1)
    share = (
        shelf_share_factor(ev)
        if ev.shelf_typical > 0.0 and (ev.wanted > 1 or ev.expected_sales > 0.0)
        else 1.0
    )
    conf *= share
    if floor is not None:
        least = floor(ev.book, ev.wanted)
        conf = conf if conf > least else least
    for_sales, for_uncertainty = _held_back(mean, threshold)
    found: list[Reason] = []
    if reasons:
        if pos_quiet:
            found.append(Reason.POS_QUIET)
        if phantom >= 0.2 and phantom >= 2 * ev.phantom_prior:
            found.append(Reason.SILENT_SHELF)
        if ev.back_room > 0 and ev.shelf_fill < 0.9 and ev.book - ev.back_room < ev.wanted + 1:
            found.append(Reason.LIKELY_IN_BACK_ROOM)
        if share < 0.5:
            found.append(Reason.SHELF_HOLDS_FEWER)
        if ev.unrecorded_loss >= 1.0:
            found.append(Reason.RECENT_LOSS)
        if sources_disagree:
            found.append(Reason.SOURCES_DISAGREE)
        if ev.expected_sales >= 1.0:
            found.append(Reason.SELLING_FAST)
    return Assessment(
        confidence=conf,
        held_for_sales=for_sales,
        held_for_uncertainty=for_uncertainty,
        reasons=tuple(found),
    )

"""P(at least the wanted units are on the shelf when the shopper arrives).

Pure arithmetic over an ``Evidence`` record the engine assembles (clamps on the hot
path are conditionals, ``x if x < 1.0 else 1.0`` for ``min(1.0, x)``: the same value,
without a builtin call per clamp, ~25 of them per visit). The shape:

    on-shelf at arrival = book − D,   D ~ NegBin(mean = sales to arrival
                                        + unreported sales + unrecorded loss)

mixed with the back room (units received recently are on the shelf only with the
learned fill probability), times 1 − P(phantom | silence), then through a
monotone calibration map. Every step is monotone in the right direction, so the
properties the badge needs hold by construction: more book never lowers
confidence; more expected sales, loss, unreported sales or silence never raise it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import msgspec

from app.domain.reasons import Reason

# Over-dispersion of depletion (NegBin size): sales come in bursts and loss in lumps.
DEPLETION_SIZE = 2.0
# Over-dispersion of demand when reading silence: a quiet spell is likelier than Poisson says.
SILENCE_SIZE = 1.5


class Evidence(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """What is known at ``now`` about one (store, sku), in units and probabilities
    (``gc=False``: scalars only, as ``app.domain.model``'s events)."""

    book: int
    wanted: int
    expected_sales: float = 0.0  # sales speed × trade hours from view to arrival
    unreported_sales: float = 0.0  # sales speed × trade hours the POS has been quiet
    unrecorded_loss: float = 0.0  # loss rate × days since the last verification
    back_room: int = 0  # units received recently that may not be on the shelf yet
    shelf_fill: float = 1.0  # P(those units are on the shelf by arrival)
    silence: float = 0.0  # units that would have sold since the last sign of life
    phantom_prior: float = 0.0  # P(shelf empty while the book says otherwise), learned
    shelf_bound: int | None = None  # a later shelf observation rolled forward
    into_day: float = 0.0  # average trade hours the store has traded today (since it was quiet)


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
    """Smallest n with P(D ≤ n) ≥ level."""
    if mean <= 1e-12:
        return 0
    p = size / (size + mean)
    q = 1.0 - p
    pk = math.exp(size * math.log(p))
    total = pk
    # ~12-30 steps a visit: for loops (not a while with two tests) and, for the depletion
    # size, each step's ratio (k + size) / (k + 1) read from a table (the same floats).
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


def depletion(e: Evidence) -> float:
    """Expected units gone from the shelf by arrival beyond what the book shows."""
    return e.expected_sales + e.unreported_sales + e.unrecorded_loss


def p_phantom(e: Evidence) -> float:
    """P(shelf empty | no sale in a stretch where ``silence`` units would have sold)."""
    prior = e.phantom_prior  # min(max(prior, 0.0), 1.0)
    prior = 0.0 if prior < 0.0 else prior
    prior = 1.0 if prior > 1.0 else prior
    if prior <= 0.0 or e.silence <= 0.0:
        return prior
    p_quiet = math.exp(SILENCE_SIZE * math.log(SILENCE_SIZE / (SILENCE_SIZE + e.silence)))
    return prior / (prior + (1.0 - prior) * p_quiet)


def raw_confidence(e: Evidence) -> float:
    """The model's probability before calibration."""
    return _raw(e, depletion(e), p_phantom(e))


def _raw(e: Evidence, mean: float, phantom: float) -> float:
    """``raw_confidence`` given ``depletion(e)`` and ``p_phantom(e)`` (``assessment``
    reads both again: computed once, the same floats)."""
    units = e.book  # min(book, shelf_bound)
    if e.shelf_bound is not None and e.shelf_bound < units:
        units = e.shelf_bound
    filled = negbin_cdf(units - e.wanted, mean)
    if e.back_room > 0 and e.shelf_fill < 1.0:
        waiting = negbin_cdf(units - e.back_room - e.wanted, mean)
        filled = e.shelf_fill * filled + (1.0 - e.shelf_fill) * waiting
    raw = filled * (1.0 - phantom)
    raw = raw if raw < 1.0 else 1.0
    return raw if raw > 0.0 else 0.0


Calibrate = Callable[[Evidence, float], float]


def confidence(e: Evidence, calibrate: Calibrate | None = None) -> float:
    """Calibrated P(on-shelf ≥ wanted at arrival).

    ``calibrate(e, raw)`` must be non-decreasing in ``raw`` and move with each
    evidence field in the same direction as the raw probability does
    (``app.domain.calibration`` does both by construction).
    """
    raw = raw_confidence(e)
    return raw if calibrate is None else max(0.0, min(1.0, calibrate(e, raw)))


def held_back(e: Evidence, level: float) -> tuple[int, int]:
    """Units held back (for expected depletion, for its uncertainty) at ``level``."""
    return _held_back(depletion(e), level)


def _held_back(mean: float, level: float) -> tuple[int, int]:
    """``held_back`` given the evidence's ``depletion``."""
    total = negbin_quantile(level, mean)
    ceiling = math.ceil(mean - 1e-9)
    for_sales = ceiling if ceiling < total else total
    return for_sales, total - for_sales


class Assessment(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The engine's answer for one (store, sku, wanted) at a moment."""

    confidence: float
    held_for_sales: int  # units held back for expected sales and loss before arrival
    held_for_uncertainty: int  # further units so that depletion stays within them at the threshold
    reasons: tuple[Reason, ...] = ()


def assessment(
    ev: Evidence,
    *,
    threshold: float,
    calibrate: Calibrate | None,
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
    conf = _raw(ev, mean, phantom)
    if calibrate is not None:
        conf = calibrate(ev, conf)
        conf = conf if conf < 1.0 else 1.0
        conf = conf if conf > 0.0 else 0.0
    for_sales, for_uncertainty = _held_back(mean, threshold)
    found: list[Reason] = []
    if reasons:
        if pos_quiet:
            found.append(Reason.POS_QUIET)
        if phantom >= 0.2 and phantom >= 2 * ev.phantom_prior:
            found.append(Reason.SILENT_SHELF)
        if ev.back_room > 0 and ev.shelf_fill < 0.9 and ev.book - ev.back_room < ev.wanted + 1:
            found.append(Reason.LIKELY_IN_BACK_ROOM)
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

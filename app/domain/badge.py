"""Turn a book position (and, when there is one, the engine's assessment) into a badge.

Without an assessment a badge is a promise when the book beyond the policy's
safety buffer covers the wanted units and the store's data is fresh. With one
(``app.domain.engine``), the buffer also holds back units for expected sales and
their uncertainty, and a promise also needs confidence at or above the policy's
threshold. Pure: the caller passes ``now``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

import msgspec

from app.domain.calibration import unrecorded_of
from app.domain.confidence import Assessment
from app.domain.model import BookPosition
from app.domain.policy import Policy
from app.domain.reasons import Reason

BadgeState = Literal["in_stock", "low_stock", "unavailable", "unknown"]
PROMISES: frozenset[str] = frozenset({"in_stock", "low_stock"})


class Badge(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A badge and why. ``promise`` is true only for in_stock and low_stock. Not tracked
    by the cyclic garbage collector (it holds no cycles; readers cache many)."""

    state: BadgeState
    book: int | None
    safety_buffer: int
    wanted: int
    confidence: float | None
    as_of: datetime | None
    reasons: tuple[Reason, ...]

    @property
    def promise(self) -> bool:
        return self.state in PROMISES


def newest(*times: datetime | None) -> datetime | None:
    """Latest of the given times, ignoring missing ones."""
    best: datetime | None = None
    for t in times:  # the first of equal maxima, as max() would
        if t is not None and (best is None or t > best):
            best = t
    return best


def is_stale(store_newest_at: datetime | None, now: datetime, policy: Policy) -> bool:
    """True when the store's newest data is missing or older than the policy allows."""
    return store_newest_at is None or now - store_newest_at > policy.max_data_age


def badge_for(
    position: BookPosition | None,
    *,
    policy: Policy,
    category: str | None,
    store_newest_at: datetime | None,
    now: datetime,
    wanted: int = 1,
    assessment: Assessment | None = None,
    reasons: bool = True,
    unrecorded: tuple[float, ...] | None = None,
) -> Badge:
    """The badge for one (store, sku) at ``now``.

    ``store_newest_at`` is the newest data the service holds for the whole store
    (latest POS event or snapshot ``as_of``): a store whose feeds went quiet gets no
    promise, whatever a single item's record says. ``assessment`` (optional, so
    callers without the engine keep the book-only badge) adds confidence, the held
    back units and the engine's reasons. ``reasons=False`` leaves the reasons out (the
    backtest scores state, book and confidence only): the same badge with ``reasons=()``.
    ``unrecorded`` (the engine's ``Calibration.unrecorded``; empty: its prior) gives a
    pair with no record the chance that a shelf of the chain holds ``wanted`` units as
    its confidence; without it such a badge has none.
    """
    if wanted < 1:
        raise ValueError("wanted must be at least 1")
    if position is None:
        return Badge(
            state="unknown",
            book=None,
            safety_buffer=policy.safety_buffer,
            wanted=wanted,
            confidence=None if unrecorded is None else unrecorded_of(unrecorded, wanted),
            as_of=None,
            reasons=(Reason.NO_DATA,),
        )
    buffer = policy.buffer_for(position.store_id, position.sku, category)
    confidence: float | None = None
    if assessment is not None:
        buffer += assessment.held_for_sales + assessment.held_for_uncertainty
        confidence = assessment.confidence
    # newest() of two, inline (per visit and per recomputed pair)
    last = position.last_event_at
    as_of = position.base_at if last is None or not last > position.base_at else last
    fresh = as_of if store_newest_at is None or as_of > store_newest_at else store_newest_at
    state: BadgeState
    why: Reason  # the state's reason, first of the badge's
    if is_stale(fresh, now, policy):
        state, why = "unknown", Reason.STALE_DATA
    else:
        promisable = position.book - buffer
        if position.book <= 0:
            state, why = "unavailable", Reason.OUT_OF_STOCK
        elif promisable <= 0:
            state, why = "unavailable", Reason.WITHIN_SAFETY_BUFFER
        elif promisable < wanted:
            state, why = "unavailable", Reason.BELOW_WANTED
        elif confidence is not None and confidence < policy.confidence_threshold:
            state, why = "unavailable", Reason.LOW_CONFIDENCE
        elif promisable < policy.low_stock_below:
            state, why = "low_stock", Reason.FEW_LEFT
        else:
            state, why = "in_stock", Reason.MARGIN_OK
    found: tuple[Reason, ...] = ()
    if reasons:
        listed = [why, Reason.COUNTED] if position.base_source == "count" else [why]
        if assessment is not None:
            if state in PROMISES:
                listed.append(Reason.CONFIDENT)
            for r in assessment.reasons:  # a loop, not a generator: this runs per visit
                if r not in listed:
                    listed.append(r)
        found = tuple(listed)
    return Badge(
        state=state,
        book=position.book,
        safety_buffer=buffer,
        wanted=wanted,
        confidence=confidence,
        as_of=as_of,
        reasons=found,
    )


def gate_staleness(
    badge: Badge, store_newest_at: datetime | None, now: datetime, policy: Policy
) -> Badge:
    """Withdraw a stored promise whose store data has since gone stale.

    Badges are computed when data arrives; time passes between that and a read.
    The read path calls this so a promise never outlives the policy's age limit.
    """
    if badge.state == "unknown" or not is_stale(newest(store_newest_at, badge.as_of), now, policy):
        return badge
    return msgspec.structs.replace(
        badge,
        state="unknown",
        confidence=None,
        reasons=(
            Reason.STALE_DATA,
            *(r for r in badge.reasons if r is not Reason.MARGIN_OK and r is not Reason.FEW_LEFT),
        ),
    )

"""A stored badge asked about for more units or a later pickup, answered conservatively.

Stored badges are computed by the reconcilers for one unit (``wanted`` 1) and the
policy's arrival horizon. A shopper may want several units (``qty``) or say when
they will come (``pickup_within``). Without the engine's evidence for the pair, the
stored badge can only be narrowed, never widened:

* a promise stays a promise only when the record beyond the stored safety buffer
  covers the wanted units (``book − safety_buffer ≥ wanted``) and the pickup window
  is not longer than the one the badge was computed for;
* otherwise it becomes ``unavailable`` with ``below_wanted`` (not enough units beyond
  the buffer) or ``low_confidence`` (a window the badge says nothing about);
* a badge that was no promise stays as it is.

The stored confidence is kept only where it still bounds the answer from below
(the same units, a window no longer than the stored one). Pure.
"""

from __future__ import annotations

from datetime import timedelta

import msgspec

from app.domain.badge import Badge
from app.domain.reasons import Reason

_PROMISE_REASONS = frozenset({Reason.MARGIN_OK, Reason.FEW_LEFT, Reason.CONFIDENT})


def _withdrawn(badge: Badge, why: Reason, wanted: int) -> Badge:
    return msgspec.structs.replace(
        badge,
        state="unavailable",
        wanted=wanted,
        confidence=None,
        reasons=(why, *(r for r in badge.reasons if r not in _PROMISE_REASONS)),
    )


def for_wanted(badge: Badge, *, wanted: int, horizon: timedelta, computed_for: timedelta) -> Badge:
    """``badge`` (computed for ``badge.wanted`` units and a ``computed_for`` window) as
    an answer for ``wanted`` units picked up within ``horizon``: never more of a
    promise than the stored badge, and no promise without the units or the window."""
    if wanted < 1:
        raise ValueError("wanted must be at least 1")
    if horizon < timedelta(0):
        raise ValueError("horizon must not be negative")
    if wanted == badge.wanted and horizon == computed_for:
        return badge
    if badge.promise:
        if horizon > computed_for:
            return _withdrawn(badge, Reason.LOW_CONFIDENCE, wanted)
        if badge.book is None or badge.book - badge.safety_buffer < wanted:
            return _withdrawn(badge, Reason.BELOW_WANTED, wanted)
    # P(enough at arrival) falls with more units and a longer window, so the stored
    # value is still a lower bound only for no more units within no longer a window.
    keeps = wanted <= badge.wanted and horizon <= computed_for
    return msgspec.structs.replace(
        badge, wanted=wanted, confidence=badge.confidence if keeps else None
    )

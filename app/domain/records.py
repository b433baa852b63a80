"""The records the engine hands between its parts: what is known about a pair at a
moment (``Evidence``), the answer (``Assessment``) and a store's side of a moment
(``StoreAt``).

msgspec Structs, here rather than beside the code that builds them, because the
modules that build them may be compiled by mypyc (``app.domain.native``), and mypyc
drops a Struct's class options (frozen, kw_only, gc) in a module it compiles.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec

from app.domain.reasons import Reason

if TYPE_CHECKING:
    from app.domain.engine import StoreState
    from app.domain.rhythm import Rhythm


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
    # After a shelf seen short (a short pick's bound, or a shelf count that took the back
    # room's units out of the book): the units on the shelf if staff have refilled it
    # since, and P(they have not).
    refilled_units: int | None = None
    not_refilled: float = 1.0
    into_day: float = 0.0  # average trade hours the store has traded today (since it was quiet)
    # The shelf's usual share of the book (``shelf.ShelfShare``): median shelf units for
    # this book and the log-scale spread; 0: unknown (or the book is a shelf count).
    shelf_typical: float = 0.0
    shelf_spread: float = 0.0


class Assessment(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The engine's answer for one (store, sku, wanted) at a moment."""

    confidence: float
    held_for_sales: int  # units held back for expected sales and loss before arrival
    held_for_uncertainty: int  # further units so that depletion stays within them at the threshold
    reasons: tuple[Reason, ...] = ()


class StoreAt(msgspec.Struct, gc=False):
    """A store's side of the evidence at one moment: what every pair of the store reads
    alike (clocks at ``now``, at arrival and at the watermark, the speed's exposure, the
    empty-shelf factor). Built once per visit, or once per store for a recompute's many
    pairs at one ``now``; valid until the engine is fed again. A Struct: built
    positionally in C (a class's ``__init__`` of 13 arguments cost ~3× as much per
    visit); ``gc=False``, as nothing it refers to refers back to it."""

    store_id: str
    state: StoreState
    now: datetime
    x_now: float  # now.timestamp() / 3600
    rhythm: Rhythm
    opened: datetime | None
    watermark: datetime | None  # min(now, the store's newest occurred_at), if any
    exposure: float  # ``SalesSpeed.exposure`` at now
    c_now: float  # the clock at now
    c_end: float | None  # the clock at arrival (None: no horizon)
    into_day: float
    c_wm: float  # the clock at the watermark (0.0 without one)
    shelf_factor: float  # ``PairEmptiness.store_factor`` of its phantom rate
    us: int | None  # now's ``_epoch_us`` (None: not a fixed-offset zone)
    # Trade hours per clock hour since the store opened: the speed is learned per clock
    # hour of exposure and its products (expected sales, silence) are read on the trade
    # clock. Near 1 with the rhythm learned per watched hour; before that a first
    # week's watched hours weighed up to ~6 trade hours each (docs/engine.md, stop 33).
    trade_f: float = 1.0

"""The engine's answer for any wanted quantity and pickup time, from a stored record.

The live recompute (``app.db.positions``) asks the engine once per (store, sku) and
stores, beside the badge, an ``EvidenceRecord`` (msgpack, column
``book_position.evidence``): the evidence at the moment of the recompute for one
wanted unit, the store's trade hours to a set of pickup horizons, and the few
store-level flags behind reason codes. ``reassess`` turns that record, a wanted
quantity and a horizon into the ``Assessment`` the engine would give, without the
engine: the public API answers ``qty`` and ``pickup_within`` per request this way.

Exactness: at the policy's arrival horizon (the stored default) and at every horizon
in ``KNOTS`` the result is bit-for-bit the engine's. Between knots the next knot up
is used: more expected sales, so never a more optimistic answer than the engine's.
Horizons beyond the last knot are refused. The calibration map, when the engine
used one, is persisted (table ``engine_calibration``) and named by
``EvidenceRecord.calibration_id``; pass the matching ``CalibrationMap``.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import msgspec

from app.domain.badge import Badge, badge_for
from app.domain.calibration import START, features, floor_of, logit, read_knots
from app.domain.confidence import Assessment, Evidence, assessment
from app.domain.model import BookPosition
from app.domain.policy import Policy

RECORD_VERSION = 1
# Pickup horizons (minutes) whose store trade hours every record carries.
KNOTS: tuple[int, ...] = (0, 15, 30, 45, 60, 90, 120, 180, 240, 360, 480, 720, 1440)
MAX_HORIZON = timedelta(minutes=KNOTS[-1])


class EvidenceRecord(msgspec.Struct, frozen=True, array_like=True):
    """What ``reassess`` needs for one (store, sku), as assessed at one moment.

    Stored msgpack-encoded in ``book_position.evidence``; ``array_like`` keeps it
    compact (~150 bytes). ``trade_hours[i]`` is the store's average trade hours in
    ``KNOTS[i]`` minutes from the assessment; ``expected_sales`` is the default
    horizon's (``horizon_s``) exactly as the engine computed it.
    """

    version: int
    book: int
    shelf_bound: int | None
    speed: float  # units per average trade hour
    horizon_s: int
    expected_sales: float
    trade_hours: tuple[float, ...]
    unreported_sales: float
    unrecorded_loss: float
    back_room: int
    shelf_fill: float
    silence: float
    phantom_prior: float
    into_day: float
    pos_quiet: bool
    sources_disagree: bool
    calibration_id: int | None = None
    # The shelf's usual share of the book (``Evidence.shelf_typical``); a record stored
    # before these fields decodes with 0: no share, as the engine then assessed it.
    shelf_typical: float = 0.0
    shelf_spread: float = 0.0
    # After a shelf seen short (``Evidence.refilled_units``); older records: none.
    refilled_units: int | None = None
    not_refilled: float = 1.0


class CalibrationMap(msgspec.Struct, frozen=True):
    """A frozen copy of the engine's calibration (logistic weights, isotonic map, floors,
    the unrecorded shelf)."""

    calibration_id: int
    weights: tuple[float, ...]
    table: tuple[float, ...]
    floors: tuple[float, ...] = ()  # none: a map saved before floors were learned
    unrecorded: tuple[float, ...] = ()  # none: saved before these were (the prior's)

    def floor(self, book: int, wanted: int) -> float:
        """As ``Calibration.floor`` with the floors it had when frozen."""
        return floor_of(self.floors, book, wanted)

    def __call__(self, e: Evidence, raw: float) -> float:
        """As ``Calibration.__call__`` with the map it had when frozen."""
        if self.weights == START:  # the identity stage (RATE 0): the same sum, no features
            z = logit(raw)
        else:
            z = sum(w * v for w, v in zip(self.weights, features(e, raw), strict=True))
        p = 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))
        return read_knots(self.table, p)


_ENCODER = msgspec.msgpack.Encoder()
_DECODER = msgspec.msgpack.Decoder(EvidenceRecord)


def encode_record(record: EvidenceRecord) -> bytes:
    return _ENCODER.encode(record)


def decode_record(raw: bytes) -> EvidenceRecord:
    """The stored record; ``ValueError`` naming the column when it cannot be read."""
    try:
        record = _DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise ValueError(f"book_position.evidence: unreadable evidence record: {exc}") from None
    if record.version != RECORD_VERSION or len(record.trade_hours) != len(KNOTS):
        raise ValueError(
            f"book_position.evidence: record version {record.version} with "
            f"{len(record.trade_hours)} horizons; expected version {RECORD_VERSION}"
        )
    return record


def expected_sales(record: EvidenceRecord, horizon: timedelta) -> float:
    """Expected sales to ``horizon``: exact at the default and at knots, else the next knot."""
    seconds = horizon.total_seconds()
    if seconds < 0:
        raise ValueError(f"pickup horizon {horizon} is negative")
    if seconds == record.horizon_s:
        return record.expected_sales
    if horizon > MAX_HORIZON:
        raise ValueError(
            f"pickup horizon {horizon} is beyond the longest supported ({MAX_HORIZON})"
        )
    minutes = seconds / 60
    for knot, hours in zip(KNOTS, record.trade_hours, strict=True):
        if knot >= minutes:
            return record.speed * hours
    raise AssertionError("unreachable: horizon checked against MAX_HORIZON")


def evidence(record: EvidenceRecord, *, wanted: int, horizon: timedelta) -> Evidence:
    """The engine's ``Evidence`` for ``wanted`` units at ``horizon``."""
    if wanted < 1:
        raise ValueError(f"wanted {wanted} must be at least 1")
    return Evidence(
        book=record.book,
        wanted=wanted,
        expected_sales=expected_sales(record, horizon),
        unreported_sales=record.unreported_sales,
        unrecorded_loss=record.unrecorded_loss,
        back_room=record.back_room,
        shelf_fill=record.shelf_fill,
        silence=record.silence,
        phantom_prior=record.phantom_prior,
        shelf_bound=record.shelf_bound,
        into_day=record.into_day,
        shelf_typical=record.shelf_typical,
        shelf_spread=record.shelf_spread,
        refilled_units=record.refilled_units,
        not_refilled=record.not_refilled,
    )


def reassess(
    record: EvidenceRecord,
    *,
    wanted: int,
    horizon: timedelta,
    policy: Policy,
    calibration: CalibrationMap | None = None,
) -> Assessment:
    """The Assessment the engine gave (or would give) for ``wanted`` units at ``horizon``.

    ``calibration`` must be the map ``record.calibration_id`` names (``ValueError``
    otherwise): a record assessed with a map is never reassessed without it.
    """
    if record.calibration_id is not None and (
        calibration is None or calibration.calibration_id != record.calibration_id
    ):
        have = None if calibration is None else calibration.calibration_id
        raise ValueError(
            f"book_position.evidence: assessed with calibration {record.calibration_id}, given {have}"
        )
    ev = evidence(record, wanted=wanted, horizon=horizon)
    frozen = calibration if record.calibration_id is not None else None
    return assessment(
        ev,
        threshold=policy.confidence_threshold,
        calibrate=frozen,
        floor=None if frozen is None else frozen.floor,
        pos_quiet=record.pos_quiet,
        sources_disagree=record.sources_disagree,
    )


def badge_from_record(
    position: BookPosition,
    record: EvidenceRecord | None,
    *,
    policy: Policy,
    category: str | None,
    store_newest_at: datetime | None,
    now: datetime,
    wanted: int = 1,
    horizon: timedelta | None = None,
    calibration: CalibrationMap | None = None,
) -> Badge:
    """The badge for ``wanted`` units picked up within ``horizon`` (default: the policy's).

    ``badge_for`` with the reassessed record, so margin, threshold and staleness rules
    are the stored badge's own. ``record`` None (a position stored before the engine
    ran live) gives the book-only badge.
    """
    assessment = (
        None
        if record is None
        else reassess(
            record,
            wanted=wanted,
            horizon=policy.arrival_horizon if horizon is None else horizon,
            policy=policy,
            calibration=calibration,
        )
    )
    return badge_for(
        position,
        policy=policy,
        category=category,
        store_newest_at=store_newest_at,
        now=now,
        wanted=wanted,
        assessment=assessment,
    )

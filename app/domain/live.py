"""Assess many stored positions with the engine at once, as the live recompute needs.

``Assessor`` asks a running ``Engine`` for the ``EvidenceRecord`` of each position
(``app.domain.reassess``) and derives the stored assessment from the record, so the
stored badge and any later ``reassess`` of it agree by construction.

Bulk: a pair the engine knows nothing particular about (no POS events, no feedback,
no count; only snapshot rows) has evidence that depends on its store, category,
base time, first sighting and book alone. Those pairs share one evidence template
per group and one record per (group, book): a snapshot of 1M such rows needs a few
thousand engine calls, not a million. Pure: no I/O, the moment is passed in.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec

from app.domain.confidence import Assessment
from app.domain.engine import QUIET_EVENTS, Engine, StoreAt
from app.domain.model import BookPosition
from app.domain.reassess import (
    KNOTS,
    RECORD_VERSION,
    CalibrationMap,
    EvidenceRecord,
    encode_record,
    reassess,
)

_DISAGREE_SECONDS = 7 * 86400.0  # Engine.assess's DISAGREE_DAYS


def calibration_state(
    engine: Engine,
) -> tuple[tuple[float, ...], tuple[float, ...], tuple[float, ...], tuple[float, ...]]:
    """The engine's calibration as (weights, table, floors, unrecorded): the map it uses
    now (the cold-start map until it has labels enough), its floors and the unrecorded
    shelf's rates."""
    cal = engine.calibration
    if cal._map is None:  # built lazily: build it as the next assessment would
        cal._map = cal._build()
        cal._built_at = cal.labels
    return tuple(cal.w), tuple(cal._map), cal.floors(), cal.unrecorded()


def frozen_calibration(engine: Engine, calibration_id: int) -> CalibrationMap:
    """The engine's map in use now, frozen under ``calibration_id`` (which the caller
    gives it: the shell's stored row, see ``app.db.engine_state``)."""
    return CalibrationMap(calibration_id, *calibration_state(engine))


class Assessor:
    """One recompute's view of the engine at ``now``: records and assessments per position.

    ``calibration`` is the frozen copy of the engine's current map
    (``frozen_calibration``); the shell persists it and gives its id.
    """

    def __init__(self, engine: Engine, now: datetime, calibration: CalibrationMap) -> None:
        self.engine = engine
        self.now = now
        self.calibration = calibration
        self.horizon = engine.policy.arrival_horizon
        self._x_now = now.timestamp() / 3600
        # Per store: its side of the evidence at ``now`` (the engine is not fed while an
        # Assessor is in use), its trade hours to each knot and whether its tills are quiet.
        self._at: dict[str, StoreAt] = {}
        self._store: dict[str, tuple[tuple[float, ...], bool]] = {}
        self._templates: dict[tuple[object, ...], EvidenceRecord] = {}
        self._memo: dict[tuple[object, ...], tuple[bytes, Assessment]] = {}
        self._by_record: dict[bytes, Assessment] = {}
        self.engine_calls = 0

    def _store_at(self, store_id: str) -> StoreAt:
        at = self._at.get(store_id)
        if at is None:
            at = self._at[store_id] = self.engine._store_at(
                store_id, self.now, self._x_now, self.horizon
            )
        return at

    def _store_terms(self, store_id: str) -> tuple[tuple[float, ...], bool]:
        terms = self._store.get(store_id)
        if terms is None:
            rhythm = self.engine.sales.store_rhythm(store_id)
            hours = tuple(rhythm.hours(self.now, self.now + timedelta(minutes=k)) for k in KNOTS)
            quiet = self.engine._quiet(store_id, self.now, self._store_at(store_id)) >= QUIET_EVENTS
            terms = self._store[store_id] = (hours, quiet)
        return terms

    def _particular(self, key: tuple[str, str]) -> bool:
        """True when the engine holds anything about this pair beyond snapshot rows."""
        return key in self.engine.pairs  # a POS event or feedback gave the pair its state

    def record(self, pos: BookPosition) -> EvidenceRecord:
        """The engine's evidence record for one position at ``now`` (one wanted unit)."""
        e = self.engine
        self.engine_calls += 1
        p = e.pairs.get((pos.store_id, pos.sku))
        ev, _, speed, _ = e._evidence_at(pos, p, 1, self._store_at(pos.store_id))
        hours, quiet = self._store_terms(pos.store_id)
        gap = None if p is None else p.last_gap
        disagree = (
            gap is not None
            and (self.now - gap[0]).total_seconds() < _DISAGREE_SECONDS
            and abs(gap[1]) >= max(3, 0.3 * max(pos.book, 1))
        )
        return EvidenceRecord(
            version=RECORD_VERSION,
            book=pos.book,
            shelf_bound=ev.shelf_bound,
            speed=speed,
            horizon_s=int(self.horizon.total_seconds()),
            expected_sales=ev.expected_sales,
            trade_hours=hours,
            unreported_sales=ev.unreported_sales,
            unrecorded_loss=ev.unrecorded_loss,
            back_room=ev.back_room,
            shelf_fill=ev.shelf_fill,
            silence=ev.silence,
            phantom_prior=ev.phantom_prior,
            into_day=ev.into_day,
            pos_quiet=quiet,
            sources_disagree=disagree,
            calibration_id=self.calibration.calibration_id,
            shelf_typical=ev.shelf_typical,
            shelf_spread=ev.shelf_spread,
            refilled_units=ev.refilled_units,
            not_refilled=ev.not_refilled,
        )

    def _assessed(self, record: EvidenceRecord) -> Assessment:
        return reassess(
            record,
            wanted=1,
            horizon=self.horizon,
            policy=self.engine.policy,
            calibration=self.calibration,
        )

    def shared_key(
        self, store_id: str, sku: str, base_at: datetime, base_source: str, book: int
    ) -> tuple[object, ...] | None:
        """The key under which this position's record is shared with others (``None``
        when the engine holds something particular about the pair): equal keys give
        equal records and assessments. Lets a bulk caller memoise what it derives."""
        key = (store_id, sku)
        if self._particular(key):
            return None
        e = self.engine
        return (store_id, e.categories.get(sku), base_at, base_source,
                e.first_seen(store_id, sku), book)  # fmt: skip

    def assess(self, pos: BookPosition) -> tuple[bytes, Assessment]:
        """The encoded record and the stored (one unit, default horizon) assessment."""
        memo_key = self.shared_key(pos.store_id, pos.sku, pos.base_at, pos.base_source, pos.book)
        if memo_key is None:
            record = self.record(pos)
            return encode_record(record), self._assessed(record)
        group = memo_key[:-1]
        hit = self._memo.get(memo_key)
        if hit is not None:
            return hit
        template = self._templates.get(group)
        if template is None:
            template = self._templates[group] = self.record(pos)
        # The book's own shelf share (a snapshot-only pair has no shelf count of its own).
        typical, spread = self.engine.shelf_share.typical(pos.book)
        record = msgspec.structs.replace(
            template, book=pos.book, shelf_typical=typical, shelf_spread=spread
        )
        encoded = encode_record(record)
        # Equal records give equal assessments: stores and categories whose terms
        # came out alike share one (the assessment is a function of the record alone).
        assessment = self._by_record.get(encoded)
        if assessment is None:
            assessment = self._by_record[encoded] = self._assessed(record)
        hit = self._memo[memo_key] = (encoded, assessment)
        return hit

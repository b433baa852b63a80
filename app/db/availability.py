"""Stored badges as the read path needs them, one round trip per load.

The reconcilers compute badges when data arrives and store them in
``book_position``; this module reads them back as domain :class:`Badge` values
with the store's freshness, so the API can apply the staleness gate at read time.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import cast

import asyncpg
import msgspec
import structlog

from app.db import Connection
from app.db.engine_state import load_calibration
from app.db.queries import Queries
from app.domain.badge import Badge, BadgeState, newest
from app.domain.model import BookPosition
from app.domain.reasons import Reason
from app.domain.reassess import CalibrationMap, EvidenceRecord, decode_record

Q = Queries("availability.sql")
log = structlog.get_logger(__name__)
_KNOWN_REASONS = frozenset(r.value for r in Reason)
STORED_WANTED = 1  # stored badges answer "is at least one unit there?"


class StoredBadge(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A badge as the reconcilers stored it.

    ``other_reasons`` keeps codes this version does not know (a newer writer), so
    nothing the writer said is lost on the way out. ``position``, ``record``,
    ``category`` and ``calibration`` are what ``app.domain.reassess`` needs to answer
    another qty or pickup time as the engine would (``record`` None: the badge was
    computed without the engine, or its record could not be read).
    """

    badge: Badge
    other_reasons: tuple[str, ...] = ()
    computed_at: datetime
    position: BookPosition | None = None
    record: EvidenceRecord | None = None
    category: str | None = None
    calibration: CalibrationMap | None = None


_REASON_TUPLES: dict[tuple[str, ...], tuple[Reason, ...]] = {}


def _reasons(codes: list[str]) -> tuple[Reason, ...]:
    """The known codes as Reasons; one shared tuple per combination (there are few), so
    a million cached badges do not hold a million tuples for the garbage collector."""
    key = tuple(codes)
    found = _REASON_TUPLES.get(key)
    if found is None:
        found = tuple(Reason(c) for c in codes if c in _KNOWN_REASONS)
        if len(_REASON_TUPLES) < 10_000:
            _REASON_TUPLES[key] = found
    return found


def _record(row: asyncpg.Record) -> EvidenceRecord | None:
    raw = row["evidence"]
    if raw is None:
        return None
    try:
        return decode_record(bytes(raw))
    except ValueError as exc:
        log.warning(
            "availability.unreadable_evidence",
            store_id=row["store_id"],
            sku=row["sku"],
            error=str(exc),
        )
        return None


def _position(row: asyncpg.Record) -> BookPosition | None:
    if row["book"] is None or row["base_source"] is None or row["base_at"] is None:
        return None
    return BookPosition(
        store_id=row["store_id"],
        sku=row["sku"],
        book=row["book"],
        base_source=row["base_source"],
        base_at=row["base_at"],
        snapshot_as_of=row["snapshot_as_of"],
        last_event_at=row["last_event_at"],
    )


def _stored(
    row: asyncpg.Record, calibrations: dict[int, CalibrationMap] | None = None
) -> StoredBadge | None:
    if not row["has_position"]:
        return None
    codes: list[str] = list(row["reasons"] or ())
    other = tuple(c for c in codes if c not in _KNOWN_REASONS)
    if other:
        log.warning("availability.unknown_reason_codes", codes=other)
    badge = Badge(
        state=cast(BadgeState, row["badge_state"]),
        book=row["book"],
        safety_buffer=row["safety_buffer"],
        wanted=STORED_WANTED,
        confidence=row["confidence"],
        as_of=row["badge_as_of"] or newest(row["base_at"], row["last_event_at"]),
        reasons=_reasons(codes),
    )
    record = _record(row)
    calibration = None
    if record is not None and record.calibration_id is not None:
        calibration = (calibrations or {}).get(record.calibration_id)
        if calibration is None:
            record = None  # assessed with a map this process cannot have: the stored badge only
    return StoredBadge(
        badge=badge,
        other_reasons=other,
        computed_at=row["computed_at"],
        position=_position(row) if record is not None else None,
        record=record,
        category=row["category"],
        calibration=calibration,
    )


def _store_newest(row: asyncpg.Record) -> datetime | None:
    return newest(row["last_pos_event_at"], row["store_snapshot_as_of"])


class StoreRow(msgspec.Struct, frozen=True, kw_only=True):
    """A store as the read model holds it, with its newest data time."""

    store_id: str
    name: str
    lat: float
    lon: float
    postal_code: str | None
    newest_at: datetime | None


async def all_stores(conn: Connection) -> tuple[list[StoreRow], tuple[float, ...]]:
    """Every store with its freshness, ordered by store id; and the newest calibration
    map's unrecorded shelf (empty before any map: the prior's), read in the same statement."""
    rows = await conn.fetch(Q.all_stores)
    stores = [
        StoreRow(
            store_id=r["store_id"],
            name=r["name"],
            lat=r["lat"],
            lon=r["lon"],
            postal_code=r["postal_code"],
            newest_at=_store_newest(r),
        )
        for r in rows
    ]
    rates = rows[0]["unrecorded"] if rows else None
    return stores, () if rates is None else tuple(float(r) for r in rates)


async def stored_badges(
    conn: Connection,
    skus: list[str],
    store_ids: list[str],
    calibrations: dict[int, CalibrationMap] | None = None,
) -> dict[str, tuple[bool, dict[str, StoredBadge]]]:
    """Per sku: whether it is known, and its stored badges at ``store_ids`` (a store
    with no position is absent). One query whatever the numbers of skus and stores,
    plus one per calibration map not yet in ``calibrations`` (the caller's cache,
    filled here; maps never change once stored, and a new one is rare)."""
    cache = calibrations if calibrations is not None else {}
    rows = await conn.fetch(Q.stored_badges, skus, store_ids)
    await _load_calibrations(conn, rows, cache)
    out: dict[str, tuple[bool, dict[str, StoredBadge]]] = {}
    for r in rows:
        _, stored = out.setdefault(r["sku"], (bool(r["sku_known"]), {}))
        badge = _stored(r, cache)
        if badge is not None:
            stored[r["store_id"]] = badge
    return out


async def stored_pairs(
    conn: Connection,
    pairs: list[tuple[str, str]],
    calibrations: dict[int, CalibrationMap] | None = None,
) -> dict[tuple[str, str], StoredBadge]:
    """The stored badges of exactly ``pairs`` (a pair with no position is absent), in
    one query (plus one per calibration map not yet in ``calibrations``)."""
    cache = calibrations if calibrations is not None else {}
    rows = await conn.fetch(Q.stored_pairs, [s for s, _ in pairs], [k for _, k in pairs])
    await _load_calibrations(conn, rows, cache)
    out: dict[tuple[str, str], StoredBadge] = {}
    for r in rows:
        badge = _stored(r, cache)
        if badge is not None:
            out[(r["asked_store_id"], r["sku"])] = badge
    return out


async def _load_calibrations(
    conn: Connection, rows: list[asyncpg.Record], cache: dict[int, CalibrationMap]
) -> None:
    """Load the calibration maps the rows' evidence records name that ``cache`` lacks."""
    for r in rows:
        if r["evidence"] is not None:
            record = _record(r)
            cid = None if record is None else record.calibration_id
            if cid is not None and cid not in cache:
                found = await load_calibration(conn, cid)
                if found is not None:
                    cache[cid] = found


NOTIFY_LIMIT = 7000  # NOTIFY payloads are capped at 8000 bytes


async def notify_badges_changed(
    conn: Connection,
    store_ids: list[str] | None = None,
    *,
    pairs: Iterable[tuple[str, str]] | None = None,
) -> None:
    """Tell every API process that stored badges changed (PostgreSQL NOTIFY on
    ``availability_changed``). Payload: comma-separated items, ``store/sku`` for a pair
    that changed (``pairs``; ``/`` is not an identifier character) or ``store`` for
    anything at that store (``store_ids``); empty for everything. Pairs that do not
    fit are sent as their stores, stores that do not fit as everything. Reconcilers
    call it in the publishing transaction: it is delivered only on commit."""
    if pairs is not None:
        distinct = set(pairs)
        if not distinct and not store_ids:
            return  # nothing changed
        payload = None
        if 4 * len(distinct) - 1 <= NOTIFY_LIMIT:  # else no list of them fits ("s/k" each)
            items = [f"{s}/{k}" for s, k in sorted(distinct)] + sorted(set(store_ids or ()))
            payload = ",".join(items)
        if payload is None or len(payload) > NOTIFY_LIMIT:
            payload = ",".join(sorted({s for s, _ in distinct} | set(store_ids or ())))
    else:
        payload = ",".join(store_ids or [])
    if len(payload) > NOTIFY_LIMIT:
        payload = ""
    await conn.execute(Q.notify_badges_changed, payload)

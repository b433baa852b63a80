"""Stored badges as the read path needs them, one round trip per request.

The reconcilers compute badges when data arrives and store them in
``book_position``; this module reads them back as domain :class:`Badge` values
with the store's freshness, so the API can apply the staleness gate at read time.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

import asyncpg
import msgspec
import structlog

from app.db import Connection
from app.db.queries import Queries
from app.domain.badge import Badge, BadgeState, newest
from app.domain.reasons import Reason

Q = Queries("availability.sql")
log = structlog.get_logger(__name__)
_KNOWN_REASONS = frozenset(r.value for r in Reason)
STORED_WANTED = 1  # stored badges answer "is at least one unit there?"


class StoredBadge(msgspec.Struct, frozen=True, kw_only=True):
    """A badge as the reconcilers stored it.

    ``other_reasons`` keeps codes this version does not know (a newer writer), so
    nothing the writer said is lost on the way out.
    """

    badge: Badge
    other_reasons: tuple[str, ...] = ()
    computed_at: datetime


class BadgeLookup(msgspec.Struct, frozen=True, kw_only=True):
    """Everything the single-store read needs."""

    store_known: bool
    sku_known: bool
    stored: StoredBadge | None
    store_newest_at: datetime | None


class NearbyCandidate(msgspec.Struct, frozen=True, kw_only=True):
    """A store inside the bounding box, with its stored badge for the sku if any."""

    store_id: str
    name: str
    lat: float
    lon: float
    stored: StoredBadge | None
    store_newest_at: datetime | None


def _stored(row: asyncpg.Record) -> StoredBadge | None:
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
        reasons=tuple(Reason(c) for c in codes if c in _KNOWN_REASONS),
    )
    return StoredBadge(badge=badge, other_reasons=other, computed_at=row["computed_at"])


def _store_newest(row: asyncpg.Record) -> datetime | None:
    return newest(row["last_pos_event_at"], row["store_snapshot_as_of"])


async def badge_at_store(conn: Connection, store_id: str, sku: str) -> BadgeLookup:
    """The stored badge for (store_id, sku), whether both are known, and store freshness."""
    row = await conn.fetchrow(Q.badge_at_store, store_id, sku)
    assert row is not None  # the query always yields one row
    return BadgeLookup(
        store_known=row["store_known"],
        sku_known=row["sku_known"],
        stored=_stored(row),
        store_newest_at=_store_newest(row),
    )


class SkuNearby(msgspec.Struct, frozen=True, kw_only=True):
    """One asked-for sku: whether it is known, and the stores in the box."""

    sku: str
    sku_known: bool
    candidates: list[NearbyCandidate]


class NearLookup(msgspec.Struct, frozen=True, kw_only=True):
    """The centre actually used (null when a postal code matched no store), and
    per asked-for sku, in the order asked, the stores in the box."""

    centre: tuple[float, float] | None
    skus: list[SkuNearby]


async def badges_near(
    conn: Connection,
    skus: list[str],
    *,
    radius_km: float,
    lat: float | None = None,
    lon: float | None = None,
    postal_code: str | None = None,
) -> NearLookup:
    """Stores near (lat, lon) or near the stores of ``postal_code``, with their badge
    for each of ``skus``: one query, one round trip, whatever the number of skus."""
    if postal_code is None and (lat is None or lon is None):
        raise ValueError("badges_near needs lat and lon, or a postal code")
    rows = await conn.fetch(Q.badges_near, skus, postal_code, lat, lon, radius_km)
    centre: tuple[float, float] | None = None
    out: list[SkuNearby] = []
    for r in rows:
        if centre is None and r["centre_lat"] is not None:
            centre = (r["centre_lat"], r["centre_lon"])
        if len(out) < r["ord"]:  # rows come in the order asked, one sku after another
            out.append(SkuNearby(sku=r["sku"], sku_known=bool(r["sku_known"]), candidates=[]))
        if r["store_id"] is not None:
            out[-1].candidates.append(
                NearbyCandidate(
                    store_id=r["store_id"],
                    name=r["name"],
                    lat=r["lat"],
                    lon=r["lon"],
                    stored=_stored(r),
                    store_newest_at=_store_newest(r),
                )
            )
    return NearLookup(centre=centre, skus=out)


class StoreRow(msgspec.Struct, frozen=True, kw_only=True):
    """A store as the read model holds it, with its newest data time."""

    store_id: str
    name: str
    lat: float
    lon: float
    postal_code: str | None
    newest_at: datetime | None


async def all_stores(conn: Connection) -> list[StoreRow]:
    """Every store with its freshness, ordered by store id."""
    rows = await conn.fetch(Q.all_stores)
    return [
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


async def stored_badges(
    conn: Connection, skus: list[str], store_ids: list[str]
) -> dict[str, tuple[bool, dict[str, StoredBadge]]]:
    """Per sku: whether it is known, and its stored badges at ``store_ids`` (a store
    with no position is absent). One query whatever the numbers of skus and stores."""
    out: dict[str, tuple[bool, dict[str, StoredBadge]]] = {}
    for r in await conn.fetch(Q.stored_badges, skus, store_ids):
        _, stored = out.setdefault(r["sku"], (bool(r["sku_known"]), {}))
        badge = _stored(r)
        if badge is not None:
            stored[r["store_id"]] = badge
    return out


async def notify_badges_changed(conn: Connection, store_ids: list[str] | None = None) -> None:
    """Tell every API process that stored badges changed (PostgreSQL NOTIFY on
    ``availability_changed``; payload: comma-separated store ids, empty for all).
    Reconcilers call it after committing new positions; it is transactional, so
    calling it inside the publishing transaction delivers only on commit."""
    payload = ",".join(store_ids or [])
    if len(payload) > 7000:  # NOTIFY payloads are capped at 8000 bytes
        payload = ""
    await conn.execute(Q.notify_badges_changed, payload)

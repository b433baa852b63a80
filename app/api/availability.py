"""Badge reads: one store, or the stores near a shopper.

Badges are computed by the reconcilers when data arrives; time passes between that
and a read, so every read applies the domain's staleness gate with the injected
clock and the store's newest data time. A promise never outlives the policy's
``max_data_age``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import asyncpg
import msgspec
from litestar import get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException

from app.api.errors import error_responses
from app.api.params import (
    DEFAULT_LIMIT,
    DEFAULT_RADIUS_KM,
    Lat,
    Limit,
    Lon,
    RadiusKm,
    SkuPath,
    StoreIdPath,
)
from app.clock import Clock
from app.db import availability as availability_db
from app.domain.badge import BadgeState, badge_for, gate_staleness
from app.domain.geo import bounding_box, distance_km
from app.domain.policy import Policy
from app.domain.reasons import PLAIN_WORDS, Reason

TAGS = ["availability"]

_AS_OF = (
    "Newest data behind the badge (for a no_data badge: the store's newest data); null when none."
)
_REASONS = "Reason codes, most important first (see reason_text for the words)."


class BadgeView(msgspec.Struct, frozen=True, kw_only=True):
    """The badge fields every availability answer carries (internal)."""

    state: BadgeState
    promise: bool
    book: int | None
    safety_buffer: int
    confidence: float | None
    as_of: datetime | None
    computed_at: datetime | None
    reasons: list[str]
    reason_text: str


class Availability(msgspec.Struct, frozen=True, kw_only=True):
    """The badge for one item at one store, with when its data is from and why."""

    store_id: str
    sku: str
    state: Annotated[
        BadgeState, msgspec.Meta(description="in_stock, low_stock, unavailable or unknown")
    ]
    promise: Annotated[
        bool, msgspec.Meta(description="True when the badge tells the shopper the item is there")
    ]
    book: Annotated[
        int | None, msgspec.Meta(description="Units on record; null when there is no record")
    ]
    safety_buffer: Annotated[
        int, msgspec.Meta(description="Units held back before anything is promised")
    ]
    confidence: Annotated[
        float | None, msgspec.Meta(description="Chance the promise holds, when modelled")
    ]
    as_of: Annotated[datetime | None, msgspec.Meta(description=_AS_OF)]
    computed_at: Annotated[datetime | None, msgspec.Meta(description="When the badge was computed")]
    reasons: Annotated[list[str], msgspec.Meta(description=_REASONS)]
    reason_text: Annotated[str, msgspec.Meta(description="The reasons in plain words")]


class StoreRef(msgspec.Struct, frozen=True, kw_only=True):
    store_id: str
    name: str
    distance_km: Annotated[
        float, msgspec.Meta(description="Great-circle distance from the point asked about")
    ]


class NearbyBadge(msgspec.Struct, frozen=True, kw_only=True):
    """One nearby store and its badge for the item."""

    store: StoreRef
    state: BadgeState
    promise: bool
    book: int | None
    safety_buffer: int
    confidence: float | None
    as_of: Annotated[datetime | None, msgspec.Meta(description=_AS_OF)]
    computed_at: datetime | None
    reasons: Annotated[list[str], msgspec.Meta(description=_REASONS)]
    reason_text: str


class NearbyAvailability(msgspec.Struct, frozen=True, kw_only=True):
    """Badges for one item at the stores near a point, nearest first."""

    sku: str
    generated_at: Annotated[datetime, msgspec.Meta(description="When this answer was made")]
    lat: float
    lon: float
    radius_km: float
    stores: list[NearbyBadge]


def _words(code: str) -> str:
    try:
        return PLAIN_WORDS[Reason(code)]
    except (ValueError, KeyError):
        return code


def badge_view(
    stored: availability_db.StoredBadge | None,
    store_newest_at: datetime | None,
    *,
    now: datetime,
    policy: Policy,
) -> BadgeView:
    """The badge to show at ``now``: the stored one through the staleness gate,
    or ``unknown``/no_data when the reconcilers have no position for the pair."""
    other: tuple[str, ...] = ()
    if stored is None:
        badge = badge_for(
            None, policy=policy, category=None, store_newest_at=store_newest_at, now=now
        )
        as_of, computed_at = store_newest_at, None
    else:
        badge = gate_staleness(stored.badge, store_newest_at, now, policy)
        as_of, computed_at, other = badge.as_of, stored.computed_at, stored.other_reasons
    codes = [*(r.value for r in badge.reasons), *other]
    return BadgeView(
        state=badge.state,
        promise=badge.promise,
        book=badge.book,
        safety_buffer=badge.safety_buffer,
        confidence=badge.confidence,
        as_of=as_of,
        computed_at=computed_at,
        reasons=codes,
        reason_text=" ".join(_words(c) for c in codes),
    )


@get(
    "/v1/stores/{store_id:str}/availability/{sku:str}",
    summary="The badge for one item at one store",
    description=(
        "The stored badge, withdrawn to `unknown` (stale_data) when the store's newest data "
        "is older than the policy allows. A known store and sku with no record yet give an "
        "`unknown` badge with reason no_data."
    ),
    tags=TAGS,
    responses=error_responses(400, 404),
)
async def store_availability(
    store_id: StoreIdPath,
    sku: SkuPath,
    pool: NamedDependency[asyncpg.Pool],
    policy: NamedDependency[Policy],
    clock: NamedDependency[Clock],
) -> Availability:
    async with pool.acquire() as conn:
        found = await availability_db.badge_at_store(conn, store_id, sku)
    if not found.store_known:
        raise NotFoundException(f"unknown store {store_id!r}")
    if not found.sku_known:
        raise NotFoundException(f"unknown sku {sku!r}")
    view = badge_view(found.stored, found.store_newest_at, now=clock(), policy=policy)
    return Availability(store_id=store_id, sku=sku, **msgspec.structs.asdict(view))


@get(
    "/v1/availability/{sku:str}",
    summary="Badges for one item at the stores near a point",
    description=(
        "Stores within `radius_km` of (`lat`, `lon`) by great-circle distance, nearest first, "
        "at most `limit`. Stores with no record for the item are listed as `unknown` (no_data)."
    ),
    tags=TAGS,
    responses=error_responses(400, 404),
)
async def nearby_availability(
    sku: SkuPath,
    lat: Lat,
    lon: Lon,
    pool: NamedDependency[asyncpg.Pool],
    policy: NamedDependency[Policy],
    clock: NamedDependency[Clock],
    radius_km: RadiusKm = DEFAULT_RADIUS_KM,
    limit: Limit = DEFAULT_LIMIT,
) -> NearbyAvailability:
    async with pool.acquire() as conn:
        found = await availability_db.badges_in_box(conn, sku, bounding_box(lat, lon, radius_km))
    if not found.sku_known:
        raise NotFoundException(f"unknown sku {sku!r}")
    now = clock()
    in_range = sorted(
        (
            (d, c)
            for c in found.candidates
            if (d := distance_km(lat, lon, c.lat, c.lon)) <= radius_km
        ),
        key=lambda dc: (dc[0], dc[1].store_id),
    )[:limit]
    stores = [
        NearbyBadge(
            store=StoreRef(store_id=c.store_id, name=c.name, distance_km=round(d, 3)),
            **msgspec.structs.asdict(
                badge_view(c.stored, c.store_newest_at, now=now, policy=policy)
            ),
        )
        for d, c in in_range
    ]
    return NearbyAvailability(
        sku=sku, generated_at=now, lat=lat, lon=lon, radius_km=radius_km, stores=stores
    )

"""Badge reads: one store, or the stores near a shopper.

Badges are computed by the reconcilers when data arrives; time passes between that
and a read, so every read applies the domain's staleness gate with the injected
clock and the store's newest data time. A promise never outlives the policy's
``max_data_age``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Response, get, post
from litestar.di import NamedDependency
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException, ValidationException
from litestar.openapi.spec import Example
from litestar.params import Body
from litestar.status_codes import HTTP_200_OK

from app.api.errors import error_responses
from app.api.params import (
    DEFAULT_LIMIT,
    DEFAULT_RADIUS_KM,
    MAX_BATCH_SKUS,
    MAX_LIMIT,
    MAX_RADIUS_KM,
    POSTAL_CODE_PATTERN,
    Limit,
    OptionalLatNear,
    OptionalLonNear,
    OptionalPostalCode,
    RadiusKm,
    SkuPath,
    StoreIdPath,
)
from app.api.read_model import InRange, Located, ReadModel, Row
from app.clock import Clock
from app.db import availability as availability_db
from app.domain.badge import BadgeState, badge_for, gate_staleness
from app.domain.model import Identifier
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
    display_text: str


DISPLAY_TEXT: dict[BadgeState, str] = {
    "in_stock": "In stock",
    "low_stock": "Only a few left",
    "unavailable": "Check with store",
    "unknown": "Check with store",
}
_DISPLAY = (
    "Short text for a shopper: 'In stock', 'Only a few left', or 'Check with store' "
    "(unavailable or unknown: never a promise)."
)


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
    display_text: Annotated[str, msgspec.Meta(description=_DISPLAY, examples=["In stock"])]


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
    display_text: Annotated[str, msgspec.Meta(description=_DISPLAY, examples=["In stock"])]


_GENERATED_AT = "When this answer was made (each badge's as_of says when its data is from)"
_CENTRE_LAT = "Latitude of the search centre (the postal code's store centroid when one was given)"
_CENTRE_LON = "Longitude of the search centre"
_POSTAL = "The postal code asked for, if any"


class NearbyAvailability(msgspec.Struct, frozen=True, kw_only=True):
    """Badges for one item at the stores near a point, nearest first."""

    sku: str
    generated_at: Annotated[datetime, msgspec.Meta(description=_GENERATED_AT)]
    lat: Annotated[float, msgspec.Meta(description=_CENTRE_LAT)]
    lon: Annotated[float, msgspec.Meta(description=_CENTRE_LON)]
    postal_code: Annotated[str | None, msgspec.Meta(description=_POSTAL)] = None
    radius_km: float
    stores: list[NearbyBadge]


class BatchRequest(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Several items around one location: lat and lon, or postal_code."""

    skus: Annotated[
        list[Identifier],
        msgspec.Meta(
            min_length=1,
            max_length=MAX_BATCH_SKUS,
            description=f"1 to {MAX_BATCH_SKUS} skus; repeats are answered once",
            examples=[["SKU-0001", "SKU-0002"]],
        ),
    ]
    lat: Annotated[float, msgspec.Meta(ge=-90, le=90, examples=[45.7676])] | None = None
    lon: Annotated[float, msgspec.Meta(ge=-180, le=180, examples=[4.8344])] | None = None
    postal_code: (
        Annotated[
            str,
            msgspec.Meta(pattern=POSTAL_CODE_PATTERN, max_length=16, examples=["69002"]),
        ]
        | None
    ) = None
    radius_km: Annotated[float, msgspec.Meta(gt=0, le=MAX_RADIUS_KM)] = DEFAULT_RADIUS_KM
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_LIMIT, description="Most stores per sku")] = (
        DEFAULT_LIMIT
    )


class SkuAvailability(msgspec.Struct, frozen=True, kw_only=True):
    """One sku of a batch: its nearby stores, nearest first (empty when unknown)."""

    sku: str
    known: Annotated[bool, msgspec.Meta(description="False when no product or record has it")]
    stores: list[NearbyBadge]


class BatchAvailability(msgspec.Struct, frozen=True, kw_only=True):
    """Badges for several items near one location, in the order asked."""

    generated_at: Annotated[datetime, msgspec.Meta(description=_GENERATED_AT)]
    lat: Annotated[float, msgspec.Meta(description=_CENTRE_LAT)]
    lon: Annotated[float, msgspec.Meta(description=_CENTRE_LON)]
    postal_code: Annotated[str | None, msgspec.Meta(description=_POSTAL)] = None
    radius_km: float
    limit: int
    results: list[SkuAvailability]


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
        display_text=DISPLAY_TEXT[badge.state],
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
    opt={"http_cache": True},
)
async def store_availability(
    store_id: StoreIdPath,
    sku: SkuPath,
    reads: NamedDependency[ReadModel],
    policy: NamedDependency[Policy],
    clock: NamedDependency[Clock],
) -> Availability:
    store = (await reads.stores()).by_id.get(store_id)
    if store is None:
        raise NotFoundException(f"unknown store {store_id!r}")
    found = (await reads.badges([sku], [store_id]))[sku]
    if not found.known:
        raise NotFoundException(f"unknown sku {sku!r}")
    view = badge_view(found.rows[store_id].stored, store.newest_at, now=clock(), policy=policy)
    return Availability(store_id=store_id, sku=sku, **msgspec.structs.asdict(view))


def _bad(field: str, why: str, source: str = "query") -> ValidationException:
    return ValidationException(
        detail=f"invalid parameter: {field}",
        extra=[{"key": field, "message": why, "source": source}],
    )


def _check_location(
    lat: float | None, lon: float | None, postal_code: str | None, source: str
) -> None:
    """lat and lon together, or postal_code alone: otherwise a 400 naming the field."""
    if postal_code is not None:
        if lat is not None or lon is not None:
            raise _bad("postal_code", "give lat and lon, or postal_code, not both", source)
        return
    if lat is None:
        raise _bad("lat", "give lat and lon, or postal_code", source)
    if lon is None:
        raise _bad("lon", "give lat and lon, or postal_code", source)


async def _near(
    reads: ReadModel,
    *,
    lat: float | None,
    lon: float | None,
    postal_code: str | None,
    radius_km: float,
) -> Located:
    located = (await reads.stores()).near(
        lat=lat, lon=lon, postal_code=postal_code, radius_km=radius_km
    )
    if located is None:
        raise NotFoundException(f"unknown postal_code {postal_code!r}")
    return located


def _badge_json(row: Row, store_newest_at: datetime | None, now: datetime, policy: Policy) -> bytes:
    """The encoded badge fields of one stored row at ``now``. The gate runs on every
    read; while it leaves the stored badge as it is, the encoding made once is reused."""
    stored = row.stored
    if stored is not None and gate_staleness(stored.badge, store_newest_at, now, policy) is (
        stored.badge
    ):
        if row.view_json is None:
            row.view_json = _ENCODER.encode(
                badge_view(stored, store_newest_at, now=now, policy=policy)
            )
        return row.view_json
    return _ENCODER.encode(badge_view(stored, store_newest_at, now=now, policy=policy))


def _nearby_json(
    chosen: list[InRange], rows: dict[str, Row], now: datetime, policy: Policy
) -> list[msgspec.Raw]:
    """Each chosen store as an encoded ``NearbyBadge``: its ``store`` first, then the
    badge fields (the same names, in the same order, as ``BadgeView``)."""
    return [
        msgspec.Raw(
            b'{"store":'
            + i.ref_json
            + b","
            + _badge_json(rows[i.store.store_id], i.store.newest_at, now, policy)[1:]
        )
        for i in chosen
    ]


class _NearbyWire(msgspec.Struct, frozen=True, kw_only=True):
    """``NearbyAvailability`` with its stores already encoded (same fields, same order)."""

    sku: str
    generated_at: datetime
    lat: float
    lon: float
    postal_code: str | None
    radius_km: float
    stores: list[msgspec.Raw]


class _SkuWire(msgspec.Struct, frozen=True, kw_only=True):
    sku: str
    known: bool
    stores: list[msgspec.Raw]


class _BatchWire(msgspec.Struct, frozen=True, kw_only=True):
    generated_at: datetime
    lat: float
    lon: float
    postal_code: str | None
    radius_km: float
    limit: int
    results: list[_SkuWire]


_ENCODER = msgspec.json.Encoder()


def _json(wire: msgspec.Struct) -> Response[Any]:
    return Response(content=_ENCODER.encode(wire), media_type=MediaType.JSON)


@get(
    "/v1/availability/{sku:str}",
    summary="Badges for one item at the stores near a point or a postal code",
    description=(
        "Stores within `radius_km` of (`lat`, `lon`), or of the centroid of the stores with "
        "`postal_code`, by great-circle distance, nearest first, at most `limit`. Stores with "
        "no record for the item are listed as `unknown` (no_data). Give lat and lon, or "
        "postal_code (400 otherwise); an unknown postal code is a 404 naming it. "
        "Cacheable: `ETag` and `Cache-Control: public, max-age`; `If-None-Match` gives 304."
    ),
    tags=TAGS,
    responses=error_responses(400, 404),
    opt={"http_cache": True},
)
async def nearby_availability(
    sku: SkuPath,
    reads: NamedDependency[ReadModel],
    policy: NamedDependency[Policy],
    clock: NamedDependency[Clock],
    lat: OptionalLatNear = None,
    lon: OptionalLonNear = None,
    postal_code: OptionalPostalCode = None,
    radius_km: RadiusKm = DEFAULT_RADIUS_KM,
    limit: Limit = DEFAULT_LIMIT,
) -> Response[NearbyAvailability]:
    _check_location(lat, lon, postal_code, "query")
    located = await _near(reads, lat=lat, lon=lon, postal_code=postal_code, radius_km=radius_km)
    chosen = located.stores[:limit]
    found = (await reads.badges([sku], [i.store.store_id for i in chosen]))[sku]
    if not found.known:
        raise NotFoundException(f"unknown sku {sku!r}")
    now = clock()
    return _json(
        _NearbyWire(
            sku=sku,
            generated_at=now,
            lat=located.centre[0],
            lon=located.centre[1],
            postal_code=postal_code,
            radius_km=radius_km,
            stores=_nearby_json(chosen, found.rows, now, policy),
        )
    )


_BATCH_EXAMPLE = {"skus": ["SKU-0001", "SKU-0002"], "postal_code": "69002", "radius_km": 10}


@post(
    "/v1/availability:batch",
    summary="Badges for up to 100 items near one location, in one round trip",
    description=(
        f"Like `GET /v1/availability/{{sku}}` for up to {MAX_BATCH_SKUS} skus at once (a product "
        "list page): one location (lat and lon, or postal_code), one radius, `limit` stores "
        "per sku. Whatever is not cached is loaded with one database query for all the skus. An unknown sku is listed with "
        "`known: false` and no stores rather than failing the batch."
    ),
    tags=TAGS,
    responses=error_responses(400, 404),
    status_code=HTTP_200_OK,
)
async def batch_availability(
    data: Annotated[
        BatchRequest,
        Body(
            description="The skus and the location",
            examples=[Example(summary="Two skus near a postal code", value=_BATCH_EXAMPLE)],
        ),
    ],
    reads: NamedDependency[ReadModel],
    policy: NamedDependency[Policy],
    clock: NamedDependency[Clock],
) -> Response[BatchAvailability]:
    _check_location(data.lat, data.lon, data.postal_code, "body")
    skus = list(dict.fromkeys(data.skus))
    located = await _near(
        reads, lat=data.lat, lon=data.lon, postal_code=data.postal_code, radius_km=data.radius_km
    )
    chosen = located.stores[: data.limit]
    found = await reads.badges(skus, [i.store.store_id for i in chosen])
    now = clock()
    return _json(
        _BatchWire(
            generated_at=now,
            lat=located.centre[0],
            lon=located.centre[1],
            postal_code=data.postal_code,
            radius_km=data.radius_km,
            limit=data.limit,
            results=[
                _SkuWire(
                    sku=sku,
                    known=one.known,
                    stores=_nearby_json(chosen, one.rows, now, policy) if one.known else [],
                )
                for sku, one in found.items()
            ],
        )
    )

"""Badge reads: one store, or the stores near a shopper.

Badges are computed by the reconcilers when data arrives; time passes between that
and a read, so every read applies the domain's staleness gate with the injected
clock and the store's newest data time. A promise never outlives the policy's
``max_data_age``.

A shopper may ask for ``qty`` units and say when they will come (``pickup_within``
minutes). With the engine's evidence record for the pair the answer is the engine's
(:func:`app.domain.reassess.badge_from_record`); without one the stored badge (one
unit, the policy's arrival horizon) is only narrowed (:func:`app.domain.wanted.for_wanted`).

The hot path (nearby and batch): the encoded answer for one (sku, location, radius,
limit, qty, window) is kept in the read model (:meth:`ReadModel.answer`), dropped by
the notifications that concern it and bounded by ``max_age`` like the rows it was made
from, and served while the request's clock stays inside the window where the staleness
gate gives the same badges. A request then costs a dictionary lookup, a few
comparisons and the encoding of ``generated_at``; its ETag was computed with the
answer. These handlers read the model, policy and clock from ``app.state`` rather than
by dependency injection (Litestar resolves several dependencies in a task group per
request, which cost more than the whole answer) and answer conditional requests
themselves (:func:`app.api.caching.conditional_json`).
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException, ValidationException
from litestar.openapi.spec import Example
from litestar.params import Body
from litestar.status_codes import HTTP_200_OK

from app.api.caching import conditional_json, entity_tag, plain_json
from app.api.errors import error_responses
from app.api.params import (
    DEFAULT_LIMIT,
    DEFAULT_RADIUS_KM,
    MAX_BATCH_SKUS,
    MAX_LIMIT,
    MAX_PICKUP_MINUTES,
    MAX_QTY,
    MAX_RADIUS_KM,
    POSTAL_CODE_PATTERN,
    Limit,
    OptionalLatNear,
    OptionalLonNear,
    OptionalPostalCode,
    PickupWithin,
    Qty,
    RadiusKm,
    SkuPath,
    StoreIdPath,
)
from app.api.read_model import Answer, InRange, Located, ReadModel, Row, SkuBadges, Stores
from app.clock import Clock
from app.db import availability as availability_db
from app.domain.badge import Badge, BadgeState, badge_for, gate_staleness, newest
from app.domain.calibration import unrecorded_of
from app.domain.model import Identifier
from app.domain.policy import Policy
from app.domain.reasons import PLAIN_WORDS, Reason
from app.domain.reassess import MAX_HORIZON, badge_from_record
from app.domain.wanted import for_wanted

TAGS = ["availability"]

_AS_OF = (
    "Newest data behind the badge (for a no_data badge: the store's newest data); null when none."
)
_REASONS = "Reason codes, most important first (see reason_text for the words)."
_QTY = "Units the badges are for (the qty asked, default 1)"
_PICKUP = (
    "Minutes to pickup the badges are for (pickup_within as asked, or the policy's arrival "
    "horizon rounded up to a minute)"
)


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
    qty: Annotated[int, msgspec.Meta(description=_QTY, examples=[1])]
    pickup_within: Annotated[int, msgspec.Meta(description=_PICKUP, examples=[120])]
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
    qty: Annotated[int, msgspec.Meta(description=_QTY, examples=[1])]
    pickup_within: Annotated[int, msgspec.Meta(description=_PICKUP, examples=[120])]
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
    qty: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            le=MAX_QTY,
            description=f"Units wanted of each sku (default 1, max {MAX_QTY})",
            examples=[2],
        ),
    ] = 1
    pickup_within: (
        Annotated[
            int,
            msgspec.Meta(
                ge=0,
                le=MAX_PICKUP_MINUTES,
                description=(
                    "Minutes until pickup (default: the policy's arrival horizon; "
                    f"max {MAX_PICKUP_MINUTES})"
                ),
                examples=[60],
            ),
        ]
        | None
    ) = None


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
    qty: Annotated[int, msgspec.Meta(description=_QTY, examples=[1])]
    pickup_within: Annotated[int, msgspec.Meta(description=_PICKUP, examples=[120])]
    results: list[SkuAvailability]


# -- one badge -----------------------------------------------------------------


class Ask(msgspec.Struct, frozen=True, gc=False):
    """The question a badge answers: ``qty`` units picked up within ``horizon``."""

    qty: int
    horizon: timedelta

    @property
    def minutes(self) -> int:
        return math.ceil(self.horizon / timedelta(minutes=1))


def ask_for(qty: int, pickup_within: int | None, policy: Policy) -> Ask:
    horizon = policy.arrival_horizon if pickup_within is None else timedelta(minutes=pickup_within)
    return Ask(qty, horizon)


def _words(code: str) -> str:
    try:
        return PLAIN_WORDS[Reason(code)]
    except (ValueError, KeyError):
        return code


def _answered(stored: availability_db.StoredBadge, ask: Ask, policy: Policy) -> Badge:
    """The badge for the question, as computed while the data is fresh (the staleness
    gate comes after): the stored badge for the question it was stored for; with the
    engine's evidence record, the engine's answer for the question
    (``app.domain.reassess``); without one, the stored badge narrowed by ``for_wanted``."""
    if ask.qty == stored.badge.wanted and ask.horizon == policy.arrival_horizon:
        return stored.badge
    position, record = stored.position, stored.record
    if position is not None and record is not None and ask.horizon <= MAX_HORIZON:
        try:
            # ``now`` at the position's own data time: the badge as while fresh.
            return badge_from_record(
                position,
                record,
                policy=policy,
                category=stored.category,
                store_newest_at=None,
                now=newest(position.base_at, position.last_event_at) or position.base_at,
                wanted=ask.qty,
                horizon=ask.horizon,
                calibration=stored.calibration,
            )
        except ValueError:
            pass  # a record this version cannot reassess: the conservative answer
    return for_wanted(
        stored.badge, wanted=ask.qty, horizon=ask.horizon, computed_for=policy.arrival_horizon
    )


def badge_view(
    stored: availability_db.StoredBadge | None,
    store_newest_at: datetime | None,
    *,
    now: datetime,
    policy: Policy,
    ask: Ask | None = None,
    unrecorded: tuple[float, ...] = (),
) -> BadgeView:
    """The badge to show at ``now`` for ``ask`` (default: one unit, the policy's
    horizon): the stored one narrowed to the question and through the staleness
    gate, or ``unknown``/no_data when the reconcilers have no position for the pair,
    with the chain's unrecorded shelf (``Stores.unrecorded``) as its confidence."""
    ask = ask if ask is not None else Ask(1, policy.arrival_horizon)
    other: tuple[str, ...] = ()
    if stored is None:
        badge = badge_for(
            None,
            policy=policy,
            category=None,
            store_newest_at=store_newest_at,
            now=now,
            wanted=ask.qty,
            unrecorded=unrecorded,
        )
        as_of, computed_at = store_newest_at, None
    else:
        badge = gate_staleness(_answered(stored, ask, policy), store_newest_at, now, policy)
        if badge.book is None:  # stored without a record (events, no base): as if none
            badge = msgspec.structs.replace(badge, confidence=unrecorded_of(unrecorded, ask.qty))
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
        "`unknown` badge with reason no_data. `qty` and `pickup_within` narrow the badge to "
        "that many units picked up within that many minutes: never more of a promise than "
        "the stored one, no promise without `qty` units beyond the safety buffer "
        "(below_wanted) or for a window longer than the stored badge's (low_confidence)."
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
    qty: Qty = 1,
    pickup_within: PickupWithin = None,
) -> Availability:
    stores = await reads.stores()
    store = stores.by_id.get(store_id)
    if store is None:
        raise NotFoundException(f"unknown store {store_id!r}")
    found = (await reads.badges([sku], [store_id]))[sku]
    if not found.known:
        raise NotFoundException(f"unknown sku {sku!r}")
    ask = ask_for(qty, pickup_within, policy)
    view = badge_view(
        found.rows[store_id].stored,
        store.newest_at,
        now=clock(),
        policy=policy,
        ask=ask,
        unrecorded=stores.unrecorded,
    )
    return Availability(
        store_id=store_id,
        sku=sku,
        qty=ask.qty,
        pickup_within=ask.minutes,
        **msgspec.structs.asdict(view),
    )


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


# -- nearby answers, encoded once ------------------------------------------------

_ENCODER = msgspec.json.Encoder()
_enc = _ENCODER.encode
_NEVER = datetime.min.replace(tzinfo=UTC)
_ALWAYS = datetime.max.replace(tzinfo=UTC)


def _badge_json(
    row: Row,
    store_newest_at: datetime | None,
    now: datetime,
    policy: Policy,
    ask: Ask,
    unrecorded: tuple[float, ...],
) -> bytes:
    """The encoded badge fields of one stored row at ``now`` for ``ask``. The gate runs
    on every build; while it leaves the badge as it is, the encoding made once per
    question is reused (it depends on the stored row and the question only). A row
    stored without a book is not reused: its confidence is the chain's unrecorded
    shelf, which moves with the stores' reload, not with the row."""
    stored = row.stored
    if stored is not None and stored.badge.book is not None:
        answered = _answered(stored, ask, policy)
        if gate_staleness(answered, store_newest_at, now, policy) is answered:
            view = row.views.get(ask)
            if view is None:
                view = row.views[ask] = _enc(
                    badge_view(
                        stored,
                        store_newest_at,
                        now=now,
                        policy=policy,
                        ask=ask,
                        unrecorded=unrecorded,
                    )
                )
            return view
    return _enc(
        badge_view(stored, store_newest_at, now=now, policy=policy, ask=ask, unrecorded=unrecorded)
    )


class Window(msgspec.Struct, kw_only=True, gc=False):
    """The clock times over which the staleness gate gives these badges: after
    ``after`` (exclusive) and up to ``until`` (inclusive)."""

    after: datetime = _NEVER
    until: datetime = _ALWAYS

    def holds(self, now: datetime) -> bool:
        return self.after < now <= self.until

    def add(
        self, store_newest_at: datetime | None, stored: Badge, now: datetime, policy: Policy
    ) -> None:
        """Narrow to where a row's staleness (``gate_staleness``: stale once
        ``now - newest > max_data_age``) stays what it is at ``now``."""
        data_at = newest(store_newest_at, stored.as_of)
        if data_at is None:
            return  # stale whatever the time
        try:
            edge = data_at + policy.max_data_age
        except OverflowError:
            return
        if now > edge:
            self.after = max(self.after, edge)
        else:
            self.until = min(self.until, edge)


class SkuNear(msgspec.Struct, gc=False):
    """One sku's encoded stores near one location for one question, and where it holds.
    The nearby and batch bodies around it are made on first use. Kept by the read
    model, untracked by the garbage collector like its rows (no reference cycles)."""

    sku: str
    known: bool
    stores_json: bytes
    window: Window
    nearby: tuple[bytes, bytes, str] | None = None  # head, tail, ETag
    item: bytes | None = None  # the batch's {"sku", "known", "stores"}


def _compose(
    sku: str,
    one: SkuBadges,
    chosen: list[InRange],
    stores: Stores,
    now: datetime,
    policy: Policy,
    ask: Ask,
) -> SkuNear:
    window = Window()
    if not one.known:
        return SkuNear(sku, False, b"[]", window)
    parts: list[bytes] = []
    for i in chosen:
        row = one.rows[i.store_id]
        newest_at = stores.by_id[i.store_id].newest_at
        if row.stored is not None:
            window.add(newest_at, row.stored.badge, now, policy)
        fields = _badge_json(row, newest_at, now, policy, ask, stores.unrecorded)
        parts.append(b'{"store":' + i.ref_json + b"," + fields[1:])
    return SkuNear(sku, True, b"[" + b",".join(parts) + b"]", window)


class Where(msgspec.Struct, frozen=True):
    """A location as asked (lat and lon, or postal_code) and the radius."""

    lat: float | None
    lon: float | None
    postal_code: str | None
    radius_km: float


def _key(sku: str, where: Where, limit: int, ask: Ask) -> tuple[Any, ...]:
    return (sku, where.lat, where.lon, where.postal_code, where.radius_km, limit, ask)


def _near(stores: Stores, where: Where) -> Located:
    located = stores.near(
        lat=where.lat, lon=where.lon, postal_code=where.postal_code, radius_km=where.radius_km
    )
    if located is None:
        raise NotFoundException(f"unknown postal_code {where.postal_code!r}")
    return located


async def _answers(
    reads: ReadModel,
    skus: list[str],
    where: Where,
    limit: int,
    ask: Ask,
    now: datetime,
    policy: Policy,
) -> tuple[tuple[float, float], list[SkuNear]]:
    """The centre and, per sku (distinct), its stores near ``where``: from the answers
    kept while current and inside their window, the others made in one read of the
    model (one query for whatever it does not hold) and kept."""
    out: dict[str, SkuNear] = {}
    centre: tuple[float, float] | None = None
    missing: list[str] = []
    for sku in skus:
        key = _key(sku, where, limit, ask)
        kept = reads.answer(key) or await reads.revalidated(key)
        if kept is not None and kept.parts[1].window.holds(now):
            centre, out[sku] = kept.parts
        else:
            missing.append(sku)
    if missing:
        gen = reads.gen
        stores = await reads.stores()
        located = _near(stores, where)
        centre = located.centre
        chosen = located.stores[:limit]
        ids = [i.store_id for i in chosen]
        infos = tuple(stores.by_id[s] for s in ids)
        found = await reads.badges(missing, ids)
        for sku in missing:
            one = found[sku]
            made = out[sku] = _compose(sku, one, chosen, stores, now, policy, ask)
            loaded_at = min([stores.loaded_at, *(r.loaded_at for r in one.rows.values())])
            reads.keep_answer(
                _key(sku, where, limit, ask),
                Answer(
                    gen,
                    loaded_at,
                    (centre, made),
                    2 * len(made.stores_json) + 256,
                    sku=sku,
                    stores_version=stores.version,
                    infos=infos,
                    geometry_version=stores.geometry_version,
                    known=one.known,
                    unrecorded=stores.unrecorded,
                ),
            )
    assert centre is not None
    return centre, [out[sku] for sku in skus]


def _nearby_parts(
    one: SkuNear, centre: tuple[float, float], where: Where, ask: Ask
) -> tuple[bytes, bytes, str]:
    """The nearby body around ``generated_at`` (the same fields, in the same order, as
    ``NearbyAvailability``) and its weak ETag (``entity_tag`` leaves generated_at out)."""
    if one.nearby is None:
        head = b'{"sku":' + _enc(one.sku) + b',"generated_at":'
        tail = b"".join(
            (
                b',"lat":',
                _enc(centre[0]),
                b',"lon":',
                _enc(centre[1]),
                b',"postal_code":',
                _enc(where.postal_code),
                b',"radius_km":',
                _enc(where.radius_km),
                b',"qty":',
                _enc(ask.qty),
                b',"pickup_within":',
                _enc(ask.minutes),
                b',"stores":',
                one.stores_json,
                b"}",
            )
        )
        one.nearby = (head, tail, entity_tag(head + b'"",' + tail[1:]))
    return one.nearby


def _batch_item(one: SkuNear) -> bytes:
    if one.item is None:
        one.item = b"".join(
            (
                b'{"sku":',
                _enc(one.sku),
                b',"known":',
                b"true" if one.known else b"false",
                b',"stores":',
                one.stores_json,
                b"}",
            )
        )
    return one.item


class _Hot(msgspec.Struct, frozen=True):
    reads: ReadModel
    policy: Policy
    clock: Clock
    max_age: int


def _hot(request: Request[Any, Any, Any]) -> _Hot:
    """What the hot reads need, from ``app.state`` (made once per app)."""
    state = request.app.state
    hot: _Hot | None = state.get("availability_hot")
    reads: ReadModel = state.read_model
    if hot is None or hot.reads is not reads:
        hot = state["availability_hot"] = _Hot(
            reads, state.policy, state.clock, int(state.settings.http_cache_max_age)
        )
    return hot


@get(
    "/v1/availability/{sku:str}",
    summary="Badges for one item at the stores near a point or a postal code",
    description=(
        "Stores within `radius_km` of (`lat`, `lon`), or of the centroid of the stores with "
        "`postal_code`, by great-circle distance, nearest first, at most `limit`. Stores with "
        "no record for the item are listed as `unknown` (no_data). Give lat and lon, or "
        "postal_code (400 otherwise); an unknown postal code is a 404 naming it. "
        "`qty` (units wanted) and `pickup_within` (minutes) narrow every badge to that "
        "question: no promise without `qty` units beyond the safety buffer (below_wanted) "
        "or for a window longer than the one the stored badge was computed for "
        "(low_confidence). "
        "Cacheable: `ETag` and `Cache-Control: public, max-age`; `If-None-Match` gives 304."
    ),
    tags=TAGS,
    responses=error_responses(400, 404),
    opt={"http_cache": True, "etag_in_handler": True},
)
async def nearby_availability(
    request: Request[Any, Any, Any],
    sku: SkuPath,
    lat: OptionalLatNear = None,
    lon: OptionalLonNear = None,
    postal_code: OptionalPostalCode = None,
    radius_km: RadiusKm = DEFAULT_RADIUS_KM,
    limit: Limit = DEFAULT_LIMIT,
    qty: Qty = 1,
    pickup_within: PickupWithin = None,
) -> Response[NearbyAvailability]:
    _check_location(lat, lon, postal_code, "query")
    hot = _hot(request)
    ask = ask_for(qty, pickup_within, hot.policy)
    where = Where(lat, lon, postal_code, radius_km)
    now = hot.clock()
    centre, (one,) = await _answers(hot.reads, [sku], where, limit, ask, now, hot.policy)
    if not one.known:
        raise NotFoundException(f"unknown sku {sku!r}")
    head, tail, tag = _nearby_parts(one, centre, where, ask)
    return conditional_json(request.scope["headers"], head + _enc(now) + tail, tag, hot.max_age)


_BATCH_EXAMPLE = {
    "skus": ["SKU-0001", "SKU-0002"],
    "postal_code": "69002",
    "radius_km": 10,
    "qty": 2,
    "pickup_within": 60,
}


@post(
    "/v1/availability:batch",
    summary="Badges for up to 100 items near one location, in one round trip",
    description=(
        f"Like `GET /v1/availability/{{sku}}` for up to {MAX_BATCH_SKUS} skus at once (a product "
        "list page): one location (lat and lon, or postal_code), one radius, `limit` stores "
        "per sku, one `qty` and `pickup_within` for every sku. Whatever is not cached is "
        "loaded with one database query for all the skus. An unknown sku is listed with "
        "`known: false` and no stores rather than failing the batch."
    ),
    tags=TAGS,
    responses=error_responses(400, 404),
    status_code=HTTP_200_OK,
)
async def batch_availability(
    request: Request[Any, Any, Any],
    data: Annotated[
        BatchRequest,
        Body(
            description="The skus, the location and the question",
            examples=[
                Example(summary="Two skus near a postal code, two units each", value=_BATCH_EXAMPLE)
            ],
        ),
    ],
) -> Response[BatchAvailability]:
    _check_location(data.lat, data.lon, data.postal_code, "body")
    hot = _hot(request)
    ask = ask_for(data.qty, data.pickup_within, hot.policy)
    where = Where(data.lat, data.lon, data.postal_code, data.radius_km)
    now = hot.clock()
    skus = list(dict.fromkeys(data.skus))
    centre, found = await _answers(hot.reads, skus, where, data.limit, ask, now, hot.policy)
    head = b"".join(
        (
            b'{"generated_at":',
            _enc(now),
            b',"lat":',
            _enc(centre[0]),
            b',"lon":',
            _enc(centre[1]),
            b',"postal_code":',
            _enc(data.postal_code),
            b',"radius_km":',
            _enc(data.radius_km),
            b',"limit":',
            _enc(data.limit),
            b',"qty":',
            _enc(ask.qty),
            b',"pickup_within":',
            _enc(ask.minutes),
            b',"results":[',
        )
    )
    return plain_json(head + b",".join(_batch_item(one) for one in found) + b"]}")

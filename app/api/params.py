"""Request parameters shared by handlers: identifiers and coordinates, with limits.

Declared once so every endpoint checks them the same way and OpenAPI shows the
same constraints; a bad value is a 400 naming the parameter.
"""

from __future__ import annotations

from typing import Annotated

from litestar.openapi.spec import Example
from litestar.params import PathParameter, QueryParameter

from app.domain.model import ID_PATTERN

_ID_RULE = "1 to 64 of A-Z a-z 0-9 . _ - :"

StoreIdPath = Annotated[
    str,
    PathParameter(pattern=ID_PATTERN, max_length=64, description=f"Store identifier ({_ID_RULE})."),
]
SkuPath = Annotated[
    str,
    PathParameter(
        pattern=ID_PATTERN, max_length=64, description=f"Product identifier ({_ID_RULE})."
    ),
]
Lat = Annotated[
    float, QueryParameter(ge=-90, le=90, description="Latitude of the shopper, degrees.")
]
Lon = Annotated[
    float, QueryParameter(ge=-180, le=180, description="Longitude of the shopper, degrees.")
]
OptionalLat = Annotated[
    float | None, QueryParameter(ge=-90, le=90, description="Latitude, degrees (with lon).")
]
OptionalLon = Annotated[
    float | None, QueryParameter(ge=-180, le=180, description="Longitude, degrees (with lat).")
]

DEFAULT_RADIUS_KM = 25.0
MAX_RADIUS_KM = 500.0
RadiusKm = Annotated[
    float,
    QueryParameter(
        gt=0,
        le=MAX_RADIUS_KM,
        description=f"Search radius in km, great-circle (default {DEFAULT_RADIUS_KM:g}, max {MAX_RADIUS_KM:g}).",
    ),
]
OptionalRadiusKm = Annotated[
    float | None,
    QueryParameter(
        gt=0,
        le=MAX_RADIUS_KM,
        description=f"Search radius in km with lat/lon (default {DEFAULT_RADIUS_KM:g}, max {MAX_RADIUS_KM:g}).",
    ),
]
DEFAULT_LIMIT = 10
MAX_LIMIT = 50
Limit = Annotated[
    int,
    QueryParameter(
        ge=1,
        le=MAX_LIMIT,
        description=f"Most stores to return (default {DEFAULT_LIMIT}, max {MAX_LIMIT}).",
    ),
]

POSTAL_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 -]{0,14}[A-Za-z0-9]$"
OptionalPostalCode = Annotated[
    str | None,
    QueryParameter(
        pattern=POSTAL_CODE_PATTERN,
        max_length=16,
        description=(
            "Postal code instead of lat/lon: the search centre is the centroid of the stores "
            "with this postal code (compared without spaces or case). 404 when none has it."
        ),
        examples=[Example(value="69002")],
    ),
]
OptionalLatNear = Annotated[
    float | None,
    QueryParameter(
        ge=-90, le=90, description="Latitude of the shopper, degrees (with lon; or postal_code)."
    ),
]
OptionalLonNear = Annotated[
    float | None,
    QueryParameter(
        ge=-180,
        le=180,
        description="Longitude of the shopper, degrees (with lat; or postal_code).",
    ),
]
MAX_BATCH_SKUS = 100

MAX_QTY = 100
Qty = Annotated[
    int,
    QueryParameter(
        ge=1,
        le=MAX_QTY,
        description=(
            f"Units wanted (default 1, max {MAX_QTY}): a promise needs that many units on record "
            "beyond the safety buffer (and, with the engine's evidence, confidence that many "
            "will be on the shelf)."
        ),
        examples=[Example(summary="one unit", value=1), Example(summary="a set of four", value=4)],
    ),
]
MAX_PICKUP_MINUTES = 1440
PickupWithin = Annotated[
    int | None,
    QueryParameter(
        ge=0,
        le=MAX_PICKUP_MINUTES,
        description=(
            "Minutes until the shopper picks the item up (default: the policy's arrival "
            f"horizon, 120 unless configured; max {MAX_PICKUP_MINUTES}). With the engine's "
            "evidence for the pair, the engine's answer for that window (sales expected "
            "before pickup are held back); without it, a window longer than the one the "
            "stored badge was computed for gets no promise (low_confidence)."
        ),
        examples=[Example(summary="within the hour", value=60)],
    ),
]

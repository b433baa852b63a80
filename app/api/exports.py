"""Exports for outside feeds: Google Merchant Center's local inventory (TSV, streamed).

Guarded by ``settings.export_token``, an admin API key or the admin token, sent as a
bearer token or as the password of HTTP Basic (what Merchant Center's scheduled fetch
can send). Always guarded: a fresh install has no open mode (docs/managers.md).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from litestar import get
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.response import Stream

from app.api.auth import ADMIN_SECURITY, authenticator_of
from app.api.errors import error_responses
from app.db import exports
from app.settings import Settings
from reconcilers.adapters import google_local

TSV_MEDIA_TYPE = "text/tab-separated-values; charset=utf-8"
_CHALLENGE = {"WWW-Authenticate": 'Basic realm="store-availability exports", charset="UTF-8"'}


def given_token(authorization: str) -> str | None:
    """The token in ``Bearer <token>`` or in the password of ``Basic <user:password>``."""
    scheme, _sep, value = authorization.partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


async def require_export(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """401 without a token, 403 with one that is neither the export token nor an admin's."""
    settings: Settings = connection.app.state.settings
    state = connection.app.state
    auth = authenticator_of(state)
    given = given_token(connection.headers.get("authorization", ""))
    if given is None:
        raise NotAuthorizedException(
            "export token required: send 'Authorization: Bearer <token>' or HTTP Basic "
            "with the token as password",
            headers=_CHALLENGE,
        )
    if settings.export_token and hmac.compare_digest(
        given.encode(), settings.export_token.encode()
    ):
        return
    principal = await auth.resolve(state.pool, given)
    if principal is None or principal.role != "admin":
        raise PermissionDeniedException("export token not accepted")


def pickup_of(settings: Settings) -> google_local.Pickup:
    return google_local.Pickup(method=settings.google_pickup_method, sla=settings.google_pickup_sla)


@get(
    "/v1/exports/google-local-inventory.tsv",
    guards=[require_export],
    security=ADMIN_SECURITY,
    tags=["exports"],
    summary="Google local inventory feed (TSV)",
    description=(
        "One line per (store, sku): store_code, id, availability (in_stock, "
        "limited_availability or out_of_stock, following the badge) and quantity (book "
        "less the safety buffer, never below 0; 0 without a promise), plus pickup_method "
        "and pickup_sla when configured. Streamed."
    ),
    responses=error_responses(401, 403),
)
async def google_local_inventory(
    pool: NamedDependency[asyncpg.Pool], settings: NamedDependency[Settings]
) -> Stream:
    pickup = pickup_of(settings)

    async def body() -> AsyncIterator[bytes]:
        async with (
            pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            async for chunk in google_local.tsv(exports.positions(conn), pickup):
                yield chunk

    return Stream(
        body(),
        media_type=TSV_MEDIA_TYPE,
        headers={"Content-Disposition": 'inline; filename="google-local-inventory.tsv"'},
    )

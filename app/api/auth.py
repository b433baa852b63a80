"""The admin guard for write endpoints: a single bearer token from settings.

A stand-in until API keys with roles arrive: when ``settings.admin_token`` is set,
writes need ``Authorization: Bearer <token>``; when it is not set, writes are open.
"""

from __future__ import annotations

import hmac
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import SecurityRequirement, SecurityScheme

from app.settings import Settings

ADMIN_SCHEME = "adminToken"
ADMIN_SECURITY: list[SecurityRequirement] = [{ADMIN_SCHEME: []}]
SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    ADMIN_SCHEME: SecurityScheme(
        type="http",
        scheme="bearer",
        description="The service's admin token (settings.admin_token); required for writes when set.",
    )
}
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="store-availability"'}


def require_admin(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """401 without a bearer token, 403 with the wrong one; open when no token is set."""
    settings: Settings = connection.app.state.settings
    expected = settings.admin_token
    if not expected:
        return
    header = connection.headers.get("authorization", "")
    scheme, _sep, given = header.partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise NotAuthorizedException(
            "admin token required: send 'Authorization: Bearer <token>'", headers=_CHALLENGE
        )
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise PermissionDeniedException("admin token not accepted")

"""Who may call what: API keys with roles, and the bootstrap admin token.

Roles (docs/managers.md): ``admin`` (everything), ``store_manager`` (reports and
counts of the stores the key is bound to, nothing else), ``ingest`` (feedback and
pushed data), ``app`` (the public reads with a higher rate limit). Keys are sent as
``Authorization: Bearer sak_…`` and checked against their stored SHA-256
(``app/db/keys.py``). ``settings.admin_token``, when set, is accepted as an admin
credential so a fresh install can be used before its first key exists; the other
way to bootstrap is ``availability keys create --role admin`` (the CLI talks to the
database directly).

Access control is always on: every guarded endpoint needs a live credential, on a
fresh install too (there is no open mode). Public badge reads are never guarded.

No credentials: 401. A token that is no live key: 403. A live key of the wrong role,
or of a store manager for another store: 403. Every refusal is a JSON message.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import msgspec
import structlog
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import SecurityRequirement, SecurityScheme

from app.clock import utc_now
from app.db import keys as keys_db
from app.settings import Settings

log = structlog.get_logger(__name__)

ADMIN_SCHEME = "adminToken"  # the name clients know; it takes API keys too
ADMIN_SECURITY: list[SecurityRequirement] = [{ADMIN_SCHEME: []}]
SECURITY_SCHEMES: dict[str, SecurityScheme] = {
    ADMIN_SCHEME: SecurityScheme(
        type="http",
        scheme="bearer",
        description="An API key (sak_…) with the endpoint's role, or the bootstrap admin "
        "token (settings.admin_token). See docs/managers.md.",
    )
}
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="store-availability"'}
# A verified key is trusted this long without asking the database again: a revoked
# key stops working within this time in every process.
KEY_CACHE_SECONDS = 10.0
_CACHE_MAX = 10_000

Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: a key's role and stores, or the bootstrap admin token."""

    role: keys_db.Role
    store_ids: frozenset[str] = frozenset()
    key_id: str | None = None  # None: the bootstrap admin token
    name: str = "admin_token"

    def may_access_store(self, store_id: str) -> bool:
        return self.role == "admin" or (self.role == "store_manager" and store_id in self.store_ids)


class Authenticator:
    """Resolves bearer tokens to principals; verified keys are cached briefly."""

    def __init__(
        self,
        settings: Settings,
        *,
        ttl: float = KEY_CACHE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._admin_token = settings.admin_token
        self._ttl = ttl
        self._monotonic = monotonic
        self._keys: dict[bytes, tuple[float, Principal]] = {}

    async def resolve(self, pool: asyncpg.Pool, token: str) -> Principal | None:
        """The principal of a bearer token, or ``None`` when it is no live credential."""
        if self._admin_token and hmac.compare_digest(token.encode(), self._admin_token.encode()):
            return Principal(role="admin")
        if keys_db.key_id_of(token) is None:
            return None
        cache_key = hashlib.sha256(token.encode()).digest()
        now = self._monotonic()
        hit = self._keys.get(cache_key)
        if hit is not None and hit[0] > now:
            return hit[1]
        async with pool.acquire() as conn:
            record = await keys_db.verify_key(conn, token, now=utc_now())
        if record is None:
            self._keys.pop(cache_key, None)
            return None
        principal = Principal(
            role=record.role,
            store_ids=frozenset(record.store_ids),
            key_id=record.key_id,
            name=record.name,
        )
        if len(self._keys) >= _CACHE_MAX:
            self._keys = {k: v for k, v in self._keys.items() if v[0] > now}
        self._keys[cache_key] = (now + self._ttl, principal)
        return principal


def authenticator_of(app_state: Any) -> Authenticator:
    """The app's authenticator, created on first use from the app's settings."""
    found: Authenticator | None = getattr(app_state, "authenticator", None)
    if found is None:
        found = Authenticator(app_state.settings)
        app_state.authenticator = found
    return found


def bearer_token(authorization: str) -> str | None:
    scheme, _sep, value = authorization.partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


async def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal | None:
    """The caller's principal; ``None`` when it sent no credential; 403 for a bad one."""
    cached: Principal | None = connection.state.get("principal")
    if cached is not None:
        return cached
    state = connection.app.state
    auth = authenticator_of(state)
    token = bearer_token(connection.headers.get("authorization", ""))
    if token is None:
        return None
    principal = await auth.resolve(state.pool, token)
    if principal is None:
        log.info("auth.refused", path=connection.url.path, why="unknown or revoked key")
        raise PermissionDeniedException(
            "API key not accepted: unknown, revoked or not a key (keys look like sak_…)"
        )
    connection.state["principal"] = principal
    return principal


def require_role(*roles: keys_db.Role, store_param: str | None = None) -> Guard:
    """A guard letting through ``admin`` and the given roles.

    A ``store_manager`` passes only when the route's ``store_param`` path parameter
    names one of its stores; the handler checks any store ids in the body the same way
    (:func:`check_store`).
    """
    if "store_manager" in roles and store_param is None:
        raise ValueError("store_manager keys are bound to stores: name the store_param")
    allowed = ("admin", *roles)
    needs = " or ".join(allowed)

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        principal = await principal_of(connection)
        if principal is None:
            raise NotAuthorizedException(
                f"API key required (role {needs}): send 'Authorization: Bearer <key>'",
                headers=CHALLENGE,
            )
        if principal.role not in allowed:
            _refuse(connection, principal, f"a {principal.role} key may not use this endpoint "
                    f"(it needs role {needs})")  # fmt: skip
        if store_param is not None:
            check_store(connection, principal, str(connection.path_params[store_param]))
        connection.state["principal"] = principal

    return guard


def check_store(
    connection: ASGIConnection[Any, Any, Any, Any], principal: Principal, store_id: str
) -> None:
    """403 unless ``principal`` may read and write ``store_id``."""
    if not principal.may_access_store(store_id):
        bound = ", ".join(sorted(principal.store_ids)) or "no store"
        _refuse(connection, principal, f"this key may not access store {store_id!r} "
                f"(it is bound to {bound})")  # fmt: skip


def _refuse(
    connection: ASGIConnection[Any, Any, Any, Any], principal: Principal, message: str
) -> None:
    log.info(
        "auth.refused",
        path=connection.url.path,
        key_id=principal.key_id,
        role=principal.role,
        why=message,
    )
    raise PermissionDeniedException(message)


async def require_admin(
    connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler
) -> None:
    """Admin keys and the bootstrap admin token."""
    principal = await principal_of(connection)
    if principal is None:
        raise NotAuthorizedException(
            "API key required (role admin): send 'Authorization: Bearer <key>'",
            headers=CHALLENGE,
        )
    if principal.role != "admin":
        _refuse(connection, principal, f"a {principal.role} key may not use this endpoint "
                "(it needs role admin)")  # fmt: skip
    connection.state["principal"] = principal


require_ingest = require_role("ingest")

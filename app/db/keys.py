"""API keys with roles: created once, shown once, stored only as a SHA-256 hash.

A key looks like ``sak_<key_id>_<secret>``: ``sak_`` makes it recognisable (secret
scanners, logs), ``key_id`` (12 lowercase letters and digits) is its public part,
used for the lookup and shown by ``availability keys list``, and ``secret`` is 256
random bits. The table keeps the hash of the whole key; checking a key compares
hashes in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

import asyncpg
import msgspec

from app.db import Connection
from app.db.queries import Queries
from app.reference_data import identifier_problem

Q = Queries("keys.sql")

Role = Literal["admin", "store_manager", "ingest", "app"]
ROLES: tuple[Role, ...] = ("admin", "store_manager", "ingest", "app")
PREFIX = "sak_"
KEY_PATTERN = re.compile(r"^sak_([a-z0-9]{12})_([A-Za-z0-9_-]{43})$")
_ID_ALPHABET = string.ascii_lowercase + string.digits


class KeyRefused(ValueError):
    """A key cannot be created or revoked as asked; the message says why."""


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """A key's record, without its hash."""

    key_id: str
    name: str
    role: Role
    store_ids: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class NewKey(msgspec.Struct, frozen=True, kw_only=True):
    """A key just created: ``secret`` is the whole key, shown once and never stored."""

    key: ApiKey
    secret: str


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def key_id_of(key: str) -> str | None:
    """The public id of a well-formed key, else ``None`` (no lookup for garbage)."""
    m = KEY_PATTERN.match(key)
    return m.group(1) if m else None


def check_new_key(name: str, role: str, store_ids: Sequence[str]) -> list[str]:
    """Every reason a key with these attributes cannot be created (empty: fine)."""
    problems: list[str] = []
    if not name.strip() or len(name) > 200:
        problems.append("name must be 1 to 200 characters")
    if role not in ROLES:
        problems.append(f"role {role!r} is not one of {', '.join(ROLES)}")
    if role == "store_manager" and not store_ids:
        problems.append("a store_manager key needs at least one store (--store)")
    if role != "store_manager" and store_ids:
        problems.append(f"only store_manager keys are bound to stores, not {role}")
    for store in store_ids:
        if bad := identifier_problem("store", store):
            problems.append(bad)
    return problems


def _record(r: asyncpg.Record) -> ApiKey:
    return ApiKey(
        key_id=r["key_id"],
        name=r["name"],
        role=r["role"],
        store_ids=tuple(r["store_ids"]),
        created_at=r["created_at"],
        last_used_at=r["last_used_at"],
        revoked_at=r["revoked_at"],
    )


async def create_key(
    conn: Connection, *, name: str, role: str, store_ids: Sequence[str], now: datetime
) -> NewKey:
    """Create a key; :class:`KeyRefused` when the attributes are wrong."""
    if problems := check_new_key(name, role, store_ids):
        raise KeyRefused("; ".join(problems))
    stores = sorted(set(store_ids))
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(12))
    secret = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    assert KEY_PATTERN.match(secret)
    await conn.execute(Q.insert_key, key_id, name.strip(), role, stores, hash_key(secret), now)
    row = await conn.fetchrow(Q.get_key, key_id)
    assert row is not None
    return NewKey(key=_record(row), secret=secret)


async def list_keys(conn: Connection) -> list[ApiKey]:
    return [_record(r) for r in await conn.fetch(Q.list_keys)]


async def revoke_key(conn: Connection, key_id: str, *, now: datetime) -> ApiKey:
    """Revoke a key (again: no change); :class:`KeyRefused` for an unknown id."""
    row = await conn.fetchrow(Q.revoke_key, key_id, now)
    if row is None:
        raise KeyRefused(f"no key with id {key_id!r} (see 'availability keys list')")
    return _record(row)


async def verify_key(conn: Connection, key: str, *, now: datetime) -> ApiKey | None:
    """The key's record when ``key`` is a live key (and its use is recorded), else ``None``."""
    key_id = key_id_of(key)
    if key_id is None:
        return None
    row = await conn.fetchrow(Q.get_key, key_id)
    if row is None or not hmac.compare_digest(bytes(row["secret_hash"]), hash_key(key)):
        return None
    if row["revoked_at"] is not None:
        return None
    await conn.execute(Q.touch_key, key_id, now)
    return _record(row)

"""Forward-only numbered migrations (``migrations/NNNN_name.sql``), applied under a lock.

Each file runs in its own transaction and is recorded in ``schema_migration`` with
its checksum; a file changed after it was applied stops start-up rather than drift.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import structlog

from app.db import Connection

log = structlog.get_logger(__name__)

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
LOCK_KEY = 0x5A7A_11AB  # advisory lock id for "migrations in progress"
# PostgreSQL 13: pg_current_xact_id, xid8 and pg_snapshot (events_since, migration 0011).
MIN_SERVER_VERSION = 130000
_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    pass


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _FILE.match(path.name)
        if not m:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path.read_text(encoding="utf-8")))
    versions = [m.version for m in found]
    # A gap is a number reserved by work in progress on another branch; a repeat is a mistake.
    if len(set(versions)) != len(versions) or (versions and versions[0] < 1):
        raise MigrationError(f"migrations must have distinct numbers from 1, found {versions}")
    return found


def check_server_version(version_num: int, version: str) -> None:
    """``MigrationError`` naming the server's version when it is older than the oldest
    the service runs on (``MIN_SERVER_VERSION``)."""
    if version_num < MIN_SERVER_VERSION:
        raise MigrationError(
            f"PostgreSQL {MIN_SERVER_VERSION // 10000} or later is required; "
            f"DATABASE_URL's server is PostgreSQL {version}"
        )


async def migrate(conn: Connection, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Apply pending migrations; return the versions applied (empty when up to date)."""
    migrations = discover(directory)
    server = await conn.fetchrow(
        "SELECT current_setting('server_version_num')::int AS num, "
        "current_setting('server_version') AS version"
    )
    assert server is not None  # one row, always
    check_server_version(server["num"], server["version"])
    await conn.execute("SELECT pg_advisory_lock($1)", LOCK_KEY)
    try:
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migration (
                 version integer PRIMARY KEY,
                 name text NOT NULL,
                 checksum text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        rows = await conn.fetch("SELECT version, name, checksum FROM schema_migration")
        applied = {r["version"]: r for r in rows}
        done: list[int] = []
        for m in migrations:
            if m.version in applied:
                if applied[m.version]["checksum"] != m.checksum:
                    raise MigrationError(
                        f"migration {m.version:04d}_{m.name} changed after it was applied; "
                        "add a new migration instead of editing an old one"
                    )
                continue
            async with conn.transaction():
                await conn.execute(m.sql)
                await conn.execute(
                    "INSERT INTO schema_migration (version, name, checksum) VALUES ($1, $2, $3)",
                    m.version,
                    m.name,
                    m.checksum,
                )
            log.info("migration.applied", version=m.version, name=m.name)
            done.append(m.version)
        return done
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", LOCK_KEY)


async def pending(conn: Connection, directory: Path = MIGRATIONS_DIR) -> list[int]:
    """Versions not yet applied (used by /ready)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migration') IS NOT NULL")
    applied: set[int] = set()
    if exists:
        applied = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migration")}
    return [m.version for m in discover(directory) if m.version not in applied]

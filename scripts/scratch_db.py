"""A scratch database for the benchmarks (``bench_api.py``, ``bench_reconcile.py``).

``BENCH_DATABASE_URL``'s server when set, else a private PostgreSQL from pgserver
in a temporary folder, started as the service's embedded one is (same server
settings, ``app/db/embedded.py``) and deleted afterwards. A database of a random
name is created on it and dropped (``WITH (FORCE)``) when the block exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


@dataclass(frozen=True)
class Scratch:
    server: str  # DSN of the server's maintenance database
    dsn: str  # DSN of the scratch database

    def admin(self, sql: str) -> None:
        """Run ``sql`` on the server's maintenance database."""
        import asyncpg

        async def run() -> None:
            conn = await asyncpg.connect(self.server)
            try:
                await conn.execute(sql)
            finally:
                await conn.close()

        asyncio.run(run())

    def migrate(self) -> None:
        """Apply the service's migrations to the scratch database."""
        import asyncpg

        from app.db.migrate import migrate

        async def run() -> None:
            conn = await asyncpg.connect(self.dsn)
            try:
                await migrate(conn)
            finally:
                await conn.close()

        asyncio.run(run())


@contextlib.contextmanager
def scratch_database() -> Iterator[Scratch]:
    server_pg = None
    base = os.environ.get("BENCH_DATABASE_URL")
    if not base:
        from app.db.embedded import start_server
        from app.settings import parse_pg_settings

        pgdata = Path(tempfile.mkdtemp(prefix="bench-pg-")) / "pg"
        overrides = parse_pg_settings(os.environ.get("EMBEDDED_PG_SETTINGS", ""))
        server_pg = start_server(pgdata, cleanup_mode="delete", overrides=overrides)
        base = server_pg.get_uri()
    name = f"bench_{uuid.uuid4().hex[:8]}"
    scratch = Scratch(base, urlunsplit(urlsplit(base)._replace(path=f"/{name}")))
    try:
        scratch.admin(f'CREATE DATABASE "{name}"')
        try:
            yield scratch
        finally:
            scratch.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        if server_pg is not None:
            server_pg.cleanup()
            with contextlib.suppress(OSError):
                pgdata.parent.rmdir()

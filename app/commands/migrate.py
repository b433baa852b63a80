"""``availability migrate``: apply pending migrations and exit."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from app.commands import database
from app.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "migrate",
        help="apply database migrations and exit",
        description="Apply pending numbered migrations under an advisory lock; running it twice changes nothing.",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncpg

    from app.db.migrate import migrate

    async def apply(dsn: str) -> list[int]:
        conn = await asyncpg.connect(dsn)
        try:
            return await migrate(conn)
        finally:
            await conn.close()

    with database(settings) as dsn:
        applied = asyncio.run(apply(dsn))
    print(f"applied migrations: {applied}" if applied else "schema is up to date")
    return 0

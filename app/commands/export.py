"""``availability export google-local --out FILE``: the Google local inventory feed."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from app.commands import database
from app.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="write an export feed (google-local: Google local inventory TSV)",
        description=(
            "Write Google Merchant Center's local inventory feed from the stored badges: "
            "availability follows the badge, quantity is the book less the safety buffer. "
            "Uses DATABASE_URL, or the embedded server."
        ),
    )
    p.add_argument("feed", choices=["google-local"], help="which export")
    p.add_argument("--out", required=True, type=Path, help="file to write ('-' for stdout)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    with database(settings) as dsn:
        lines = asyncio.run(write_google_local(dsn, args.out, settings))
    if str(args.out) != "-":
        print(f"wrote {lines} rows to {args.out}", file=sys.stderr)
    return 0


async def write_google_local(dsn: str, out: Path, settings: Settings) -> int:
    """Stream the feed into ``out`` (atomically: a temporary file renamed at the end)."""
    import asyncpg

    from app.api.exports import pickup_of
    from app.db import exports
    from app.db.stream_file import stream_to
    from reconcilers.adapters import google_local

    conn = await asyncpg.connect(dsn)
    try:
        chunks = google_local.tsv(exports.positions(conn), pickup_of(settings))
        _, lines = await stream_to(conn, chunks, out)
    finally:
        await conn.close()
    return lines - 1

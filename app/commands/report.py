"""``availability report --store ID [--out FILE]``: a store's reconciliation report."""

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
        "report",
        help="write a store's reconciliation report (CSV)",
        description=(
            "The store managers' reconciliation report (docs/managers.md): one row per item "
            "that needs a look, highest priority first. Totals per action go to stderr."
        ),
    )
    p.add_argument("--store", required=True, metavar="STORE_ID")
    p.add_argument("--out", type=Path, default=Path("-"), help="file to write (default stdout)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    from app.reference_data import identifier_problem

    if bad := identifier_problem("--store", args.store):
        print(f"availability report: {bad}", file=sys.stderr)
        return 2
    with database(settings) as dsn:
        return asyncio.run(_run(dsn, args.store, args.out))


async def _run(dsn: str, store_id: str, out: Path) -> int:
    import asyncpg

    from app.clock import utc_now
    from app.db import reports
    from app.db.migrate import migrate
    from reconcilers.report_export import write_report

    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        if not await reports.store_known(conn, store_id):
            print(f"availability report: unknown store {store_id!r}", file=sys.stderr)
            return 2
        now = utc_now()
        await write_report(conn, store_id, out, now=now)  # "-": stdout
        _, by_action, _ = await reports.review_summary(conn, store_id, now=now)
    finally:
        await conn.close()
    totals = ", ".join(f"{action}: {n}" for action, (n, _) in by_action.items())
    where = "" if str(out) == "-" else f" to {out}"
    print(f"report of {store_id}{where}: {totals}", file=sys.stderr)
    return 0

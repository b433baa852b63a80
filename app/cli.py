"""The ``availability`` command: everything a user runs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Iterator, Sequence

from app.settings import Settings, SettingsError, load_settings


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """DATABASE_URL when set, else the embedded server for as long as the block runs."""
    if settings.database_url:
        yield settings.database_url
        return
    from app.db.embedded import embedded_postgres

    with embedded_postgres(settings.data_dir) as dsn:
        yield dsn


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.api.app import create_app

    with database(settings) as dsn:
        app = create_app(settings, dsn=dsn)
        uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    import asyncpg

    from app.db.migrate import migrate

    async def run(dsn: str) -> list[int]:
        conn = await asyncpg.connect(dsn)
        try:
            return await migrate(conn)
        finally:
            await conn.close()

    with database(settings) as dsn:
        applied = asyncio.run(run(dsn))
    print(f"applied migrations: {applied}" if applied else "schema is up to date")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="availability",
        description="store-availability: truthful in-store availability badges.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("serve", help="run the API and the scheduled reconcilers",
                       description="Run the HTTP API and the feed reconcilers. Uses DATABASE_URL, "
                       "or an embedded PostgreSQL in AVAILABILITY_DATA_DIR (default ./.data) when unset.")
    p.add_argument("--host", help="bind address (default 127.0.0.1, env AVAILABILITY_HOST)")
    p.add_argument("--port", type=int, help="port (default 8000, env PORT)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("migrate", help="apply database migrations and exit",
                       description="Apply pending numbered migrations under an advisory lock; running twice changes nothing.")
    p.set_defaults(func=cmd_migrate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        overrides = {k: getattr(args, k, None) for k in ("host", "port")}
        settings = load_settings(**overrides)
    except SettingsError as exc:
        print(f"availability: bad setting: {exc}", file=sys.stderr)
        return 2
    from app.logs import configure_logging

    configure_logging(settings.log_format, settings.log_level)
    rc: int = args.func(args, settings)
    return rc


if __name__ == "__main__":
    sys.exit(main())

"""``availability serve``: the API and the scheduled reconcilers."""

from __future__ import annotations

import argparse
from typing import Any

from app.commands import database
from app.settings import Settings


def register(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run the API and the scheduled reconcilers",
        description="Run the HTTP API and the feed reconcilers. Uses DATABASE_URL, or an embedded "
        "PostgreSQL in AVAILABILITY_DATA_DIR (default ./.data) when it is unset.",
    )
    p.add_argument("--host", help="bind address (default 127.0.0.1; env AVAILABILITY_HOST)")
    p.add_argument("--port", type=int, help="port (default 8000; env PORT)")
    p.set_defaults(func=run, settings_overrides=("host", "port"))


def run(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.api.app import create_app

    with database(settings) as dsn:
        app = create_app(settings, dsn=dsn)
        uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
    return 0

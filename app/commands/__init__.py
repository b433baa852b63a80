"""Subcommands of ``availability``; each module has ``register(subparsers)``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from app.settings import Settings

# Modules whose register() adds a subcommand, in --help order.
COMMAND_MODULES: tuple[str, ...] = (
    "app.commands.serve",
    "app.commands.migrate",
    "app.commands.simulate",
    "app.commands.backtest",
    "app.commands.tune",
    "app.commands.demo",
    "app.commands.feed_simulator",
    "app.commands.export",
    "app.commands.keys",
    "app.commands.report",
)


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """DATABASE_URL when set, else the embedded server for as long as the block runs."""
    if settings.database_url:
        yield settings.database_url
        return
    from app.db.embedded import embedded_postgres

    with embedded_postgres(settings.data_dir, settings.embedded_pg_overrides()) as dsn:
        yield dsn

"""A private PostgreSQL from the ``pgserver`` wheel, for when DATABASE_URL is unset.

pgserver runs ``initdb`` and starts the server in one call, with PostgreSQL's
defaults (``shared_buffers`` 128 MB). Those are too small for a million positions
(docs/scaling.md: writes slow down as ``book_position`` and its indexes outgrow the
buffer cache), so ``start_server`` writes ``SERVER_SETTINGS`` with ``ALTER SYSTEM``
and restarts the server once when the settings in force differ (in practice: the
first start of a new data folder; later starts read ``postgresql.auto.conf``).
``EMBEDDED_PG_SETTINGS="shared_buffers=2GB,random_page_cost=1.1"`` (the setting
``embedded_pg_settings``) overrides or adds settings of any kind.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

# Sized for one machine running the service beside its embedded PostgreSQL, with a
# million (store, sku) positions: book_position (~330 MB) and warehouse_stock with
# their indexes fit the buffer cache; work_mem lets the set-wise recomputes and the
# snapshot's checks hash in memory. See docs/operations.md to change them.
SERVER_SETTINGS: dict[str, str] = {
    "shared_buffers": "1GB",
    "work_mem": "64MB",
    "maintenance_work_mem": "256MB",
    "max_wal_size": "4GB",
    "wal_buffers": "16MB",
}


def server_settings(overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """``SERVER_SETTINGS`` with ``overrides`` (``Settings.embedded_pg_overrides()``) applied."""
    return {**SERVER_SETTINGS, **(overrides or {})}


def start_server(
    pgdata: Path, *, cleanup_mode: str = "stop", overrides: Mapping[str, str] | None = None
) -> Any:
    """pgserver's server for ``pgdata`` (created and started as needed), with
    ``server_settings(overrides)`` in force; returns pgserver's ``PostgresServer``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    server = pgserver.get_server(pgdata, cleanup_mode=cleanup_mode)  # type: ignore[attr-defined]
    _apply_settings(server, pgdata, server_settings(overrides))
    return server


# A wanted setting is in force when postgresql.auto.conf holds exactly its value, the
# server read it without error, and it waits for no restart. Names and values were
# checked by Settings (plain tokens), so they can be quoted as literals.
_IN_FORCE = """
SELECT w.name, EXISTS (
    SELECT 1 FROM pg_file_settings f JOIN pg_settings s USING (name)
    WHERE f.name = w.name AND f.setting = w.value AND f.error IS NULL
      AND f.sourcefile LIKE '%%postgresql.auto.conf' AND NOT s.pending_restart
) FROM (VALUES %s) AS w(name, value);
"""


def _apply_settings(server: Any, pgdata: Path, wanted: dict[str, str]) -> None:
    """ALTER SYSTEM the settings that differ and restart, if no other process holds it."""
    from pgserver.postgres_server import pg_ctl  # type: ignore[attr-defined]
    from pgserver.utils import PostmasterInfo

    values = ", ".join(f"('{name}', '{value}')" for name, value in wanted.items())
    out = server.psql(f"\\pset tuples_only on\n\\pset format unaligned\n{_IN_FORCE % values}")
    differ = [line.split("|")[0] for line in out.splitlines() if line.endswith("|f")]
    if not differ:
        return
    if server.global_process_id_list.get() != [os.getpid()]:
        log.warning("embedded_postgres.settings_not_applied", differ=differ,
                    why="another process holds the server; they apply at its next start")  # fmt: skip
        return
    auto_conf = pgdata / "postgresql.auto.conf"
    before = auto_conf.read_text(encoding="utf-8")
    try:
        server.psql("\\set ON_ERROR_STOP on\n"
                    + "".join(f"ALTER SYSTEM SET {n} = '{wanted[n]}';\n" for n in differ))  # fmt: skip
    except subprocess.CalledProcessError as exc:  # a value the server refuses
        auto_conf.write_text(before, encoding="utf-8")
        log.warning("embedded_postgres.settings_not_applied", differ=differ, why=str(exc))
        return
    restart = ["-w", "-m", "fast", "restart"]  # with the options it was started with
    try:
        pg_ctl(restart, pgdata=pgdata, user=server.system_user, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        # e.g. not enough shared memory for shared_buffers: back to what worked.
        auto_conf.write_text(before, encoding="utf-8")
        pg_ctl(restart, pgdata=pgdata, user=server.system_user, timeout=60)
        log.warning("embedded_postgres.settings_not_applied", differ=differ,
                    why=f"the server did not start with them ({exc}); see its log in {pgdata}")  # fmt: skip
        differ = []
    # pgserver keeps the postmaster's pid to stop it at cleanup: the restart changed it.
    server._postmaster_info = PostmasterInfo.read_from_pgdata(pgdata)
    if differ:
        log.info("embedded_postgres.configured", settings={n: wanted[n] for n in differ})


@contextlib.contextmanager
def embedded_postgres(data_dir: Path, overrides: Mapping[str, str] | None = None) -> Iterator[str]:
    """Start (or reuse) the server whose data lives in ``data_dir/pg``; yield its DSN.

    The server is stopped when the block exits, unless another process still holds
    it (pgserver counts handles across processes).
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "pg").resolve()
    server = start_server(pgdata, cleanup_mode="stop", overrides=overrides)
    dsn: str = server.get_uri()
    log.info("embedded_postgres.started", pgdata=str(pgdata))
    with _sigterm_unwinds():
        try:
            yield dsn
        finally:
            server.cleanup()
            log.info("embedded_postgres.stopped", pgdata=str(pgdata))


def _exit_on_sigterm(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Make SIGTERM unwind the stack (SystemExit) so the server is stopped.

    uvicorn handles SIGTERM itself, then re-raises it once shut down; with the
    default action the process would die there and leave PostgreSQL running
    (``docker stop``, ``kill``). Only the main thread may set handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

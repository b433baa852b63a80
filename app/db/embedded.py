"""A private PostgreSQL from the ``pgserver`` wheel, for when DATABASE_URL is unset."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)


@contextlib.contextmanager
def embedded_postgres(data_dir: Path) -> Iterator[str]:
    """Start (or reuse) the server whose data lives in ``data_dir/pg``; yield its DSN.

    The server is stopped when the block exits, unless another process still holds
    it (pgserver counts handles across processes).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    logging.getLogger("pgserver").setLevel(logging.WARNING)
    data_dir.mkdir(parents=True, exist_ok=True)
    pgdata = (data_dir / "pg").resolve()
    server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
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

"""The embedded PostgreSQL runs with the service's settings (app/db/embedded.py).

A new data folder is configured with ``ALTER SYSTEM`` and one restart; the next
start finds them in force; settings the server refuses leave it
running with what worked. The server is stopped at the end of each block.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from app.db.embedded import embedded_postgres, server_settings


async def _setting(dsn: str, name: str) -> str:
    conn = await asyncpg.connect(dsn)
    try:
        return str(await conn.fetchval(f"SHOW {name}"))
    finally:
        await conn.close()


def test_settings_apply_on_the_first_start_and_stay(tmp_path: Path) -> None:
    wanted = server_settings()
    with embedded_postgres(tmp_path) as dsn:
        assert asyncio.run(_setting(dsn, "shared_buffers")) == wanted["shared_buffers"]
        assert asyncio.run(_setting(dsn, "work_mem")) == wanted["work_mem"]
    with embedded_postgres(tmp_path) as dsn:  # the next start reads them from the folder
        assert asyncio.run(_setting(dsn, "shared_buffers")) == wanted["shared_buffers"]


@pytest.mark.parametrize("value", ["100TB", "200GB"])  # refused by ALTER SYSTEM; by start
def test_settings_the_server_refuses_leave_it_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("EMBEDDED_PG_SETTINGS", f"shared_buffers={value}")
    with embedded_postgres(tmp_path) as dsn:
        assert asyncio.run(_setting(dsn, "shared_buffers")) == "128MB"
    assert (
        f"shared_buffers = '{value}'" not in (tmp_path / "pg" / "postgresql.auto.conf").read_text()
    )

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
from app.settings import SettingsError, load_settings


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


def test_overrides_of_any_kind_apply_and_a_change_applies_at_the_next_start(
    tmp_path: Path,
) -> None:
    overrides = load_settings(
        {"EMBEDDED_PG_SETTINGS": "random_page_cost=1.1, jit=off,work_mem=32MB"}
    ).embedded_pg_overrides()
    with embedded_postgres(tmp_path, overrides) as dsn:
        assert asyncio.run(_setting(dsn, "random_page_cost")) == "1.1"
        assert asyncio.run(_setting(dsn, "jit")) == "off"
        assert asyncio.run(_setting(dsn, "work_mem")) == "32MB"
    with embedded_postgres(tmp_path, {"random_page_cost": "2"}) as dsn:
        assert asyncio.run(_setting(dsn, "random_page_cost")) == "2"
        assert asyncio.run(_setting(dsn, "work_mem")) == server_settings()["work_mem"]


@pytest.mark.parametrize(
    "text", ["shared_buffers", "work_mem=64MB'; DROP TABLE x; --", "a b=1", "jit=", "x=on off"]
)
def test_a_malformed_override_stops_start_up_with_a_message(text: str) -> None:
    with pytest.raises(SettingsError, match="embedded_pg_settings") as exc:
        load_settings({"EMBEDDED_PG_SETTINGS": text})
    assert "name=value" in str(exc.value)


@pytest.mark.parametrize("value", ["100TB", "200GB"])  # refused by ALTER SYSTEM; by start
def test_settings_the_server_refuses_leave_it_as_it_was(tmp_path: Path, value: str) -> None:
    with embedded_postgres(tmp_path, {"shared_buffers": value}) as dsn:
        assert asyncio.run(_setting(dsn, "shared_buffers")) == "128MB"
    assert (
        f"shared_buffers = '{value}'" not in (tmp_path / "pg" / "postgresql.auto.conf").read_text()
    )

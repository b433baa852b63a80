"""Generated requests against the service's own OpenAPI: no 5xx on any input.

The real app runs under uvicorn on 127.0.0.1 with a real (cloned) database holding a
few stores, products and badges; schemathesis reads ``/schema/openapi.json`` and
sends a bounded number of generated requests to every operation, with the admin
credential so the guarded endpoints' own validation is exercised too. Examples per
operation: ``SCHEMATHESIS_EXAMPLES`` (default 12; the CI keeps it small).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hsettings
from schemathesis.checks import not_a_server_error

from app.api.app import create_app
from app.settings import Settings, load_settings
from tests.conftest import _admin, uvicorn_in_thread, with_database

EXAMPLES = int(os.environ.get("SCHEMATHESIS_EXAMPLES", "12"))
TOKEN = "schemathesis-admin"
NOW = datetime.now(UTC)


async def _seed(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """INSERT INTO store (store_id, name, lat, lon, postal_code, timezone) VALUES
               ('S1', 'One', 48.85, 2.35, '75001', 'Europe/Paris'),
               ('S2', 'Two', 48.86, 2.36, NULL, NULL)"""
        )
        await conn.execute("INSERT INTO product (sku, name, category) VALUES ('SKU-1', 'A', 'x')")
        await conn.execute(
            """INSERT INTO book_position (store_id, sku, book, base_source, base_at,
                   snapshot_as_of, badge_state, safety_buffer, reasons, badge_as_of, computed_at)
               VALUES ('S1', 'SKU-1', 9, 'snapshot', $1, $1, 'in_stock', 2, '{margin_ok}', $1, $1)""",
            NOW - timedelta(minutes=5),
        )
        await conn.execute(
            "INSERT INTO store_freshness (store_id, snapshot_as_of) VALUES ('S1', $1)",
            NOW - timedelta(minutes=5),
        )
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def api_url(
    pg_dsn: str, template_db: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The app under uvicorn on an ephemeral port, on its own clone of the template."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    asyncio.run(_admin(pg_dsn, f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"'))
    dsn = with_database(pg_dsn, name)
    asyncio.run(_seed(dsn))
    data: Path = tmp_path_factory.mktemp("schemathesis")
    settings: Settings = load_settings(
        {}, data_dir=data, scheduler=False, log_format="console", log_level="error",
        rate_limit_per_minute=0, admin_token=TOKEN, max_request_body_bytes=64 * 1024,
    )  # fmt: skip
    try:
        with uvicorn_in_thread(create_app(settings, dsn=dsn)) as base:
            yield base
    finally:
        asyncio.run(_admin(pg_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="module")
def api_schema(api_url: str) -> Any:
    return schemathesis.openapi.from_url(f"{api_url}/schema/openapi.json")


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@hsettings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same inputs every run: a failure here is reproducible
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_generated_request_gets_a_server_error(case: Any, api_url: str) -> None:
    response = case.call(base_url=api_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    case.validate_response(response, checks=[not_a_server_error])


def test_an_oversized_body_is_refused_with_413(api_url: str) -> None:
    import httpx

    body = b"store_id,name,lat,lon,postal_code,timezone\n" + b"S9,x,1,1,,\n" * 7000
    assert len(body) > 64 * 1024
    r = httpx.post(f"{api_url}/v1/stores", content=body, timeout=30,
                   headers={"Content-Type": "text/csv", "Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert r.status_code == 413, r.text
    r = httpx.get(f"{api_url}/v1/stores/S9", timeout=30)
    assert r.status_code == 404  # nothing of it was applied

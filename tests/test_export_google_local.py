"""Google local inventory export: the pure formatter, the endpoint and the CLI, against
real PostgreSQL."""

from __future__ import annotations

import argparse
import base64
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import msgspec
from litestar import Litestar

from app.commands import export as export_command
from app.settings import Settings
from reconcilers.adapters import google_local
from reconcilers.adapters.google_local import Pickup, Position
from tests.conftest import seed_database, serve_in_loop

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
URL = "/v1/exports/google-local-inventory.tsv"


def test_availability_follows_the_badge_and_quantity_keeps_the_buffer() -> None:
    def line(state: str, book: int | None, buffer: int = 2) -> list[str]:
        pos = Position(
            store_id="S1", sku="SKU-A", badge_state=state, book=book, safety_buffer=buffer
        )
        return google_local.row(pos, Pickup()).rstrip("\n").split("\t")

    assert line("in_stock", 10) == ["S1", "SKU-A", "in_stock", "8"]
    assert line("low_stock", 3) == ["S1", "SKU-A", "limited_availability", "1"]
    assert line("low_stock", 1) == ["S1", "SKU-A", "limited_availability", "0"]  # never below 0
    assert line("unavailable", 9) == ["S1", "SKU-A", "out_of_stock", "0"]  # no promise, no units
    assert line("unknown", None) == ["S1", "SKU-A", "out_of_stock", "0"]


def test_values_carry_no_tabs_or_line_breaks_and_pickup_columns_appear_when_configured() -> None:
    pos = Position(store_id="S\t1", sku="SKU\nA", badge_state="in_stock", book=5, safety_buffer=1)
    pickup = Pickup(method="buy", sla="same day")
    assert google_local.header(pickup) == (
        "store_code\tid\tavailability\tquantity\tpickup_method\tpickup_sla\n"
    )
    assert google_local.row(pos, pickup) == "S 1\tSKU A\tin_stock\t4\tbuy\tsame day\n"


async def seed(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        await conn.executemany(
            """INSERT INTO book_position (store_id, sku, book, badge_state, safety_buffer, computed_at)
               VALUES ($1, $2, $3, $4, $5, $6)""",
            [("S1", "SKU-A", 12, "in_stock", 2, NOW), ("S1", "SKU-B", 3, "low_stock", 2, NOW),
             ("S2", "SKU-A", 4, "unavailable", 5, NOW), ("S2", "SKU-B", None, "unknown", 2, NOW)],
        )  # fmt: skip


EXPECTED = (
    "store_code\tid\tavailability\tquantity\n"
    "S1\tSKU-A\tin_stock\t10\n"
    "S1\tSKU-B\tlimited_availability\t1\n"
    "S2\tSKU-A\tout_of_stock\t0\n"
    "S2\tSKU-B\tout_of_stock\t0\n"
)


async def test_endpoint_streams_the_feed_to_the_export_token(
    pool: asyncpg.Pool, make_app: Callable[..., Litestar], settings: Settings
) -> None:
    await seed(pool)
    guarded = msgspec.structs.replace(
        settings, admin_token="admin-secret", export_token="gmc-secret"
    )
    async with serve_in_loop(make_app(settings=guarded, clock=lambda: NOW)) as client:
        missing = await client.get(URL)
        wrong = await client.get(URL, headers={"Authorization": "Bearer nope"})
        bearer = await client.get(URL, headers={"Authorization": "Bearer gmc-secret"})
        basic = base64.b64encode(b"merchant:gmc-secret").decode()
        via_basic = await client.get(URL, headers={"Authorization": f"Basic {basic}"})
        admin = await client.get(URL, headers={"Authorization": "Bearer admin-secret"})
    assert missing.status_code == 401 and "export token required" in missing.json()["error"]
    assert wrong.status_code == 403
    for ok in (bearer, via_basic, admin):
        assert ok.status_code == 200
        assert ok.headers["content-type"].startswith("text/tab-separated-values")
        assert ok.text == EXPECTED


async def test_pickup_settings_add_their_columns(
    pool: asyncpg.Pool,
    make_app: Callable[..., Litestar],
    settings: Settings,
    admin_auth: dict[str, str],
) -> None:
    await seed(pool)
    configured = msgspec.structs.replace(
        settings, google_pickup_method="reserve", google_pickup_sla="next day"
    )
    async with serve_in_loop(
        make_app(settings=configured, clock=lambda: NOW), headers=admin_auth
    ) as client:
        response = await client.get(URL)
    lines = response.text.splitlines()
    assert lines[0].split("\t")[-2:] == ["pickup_method", "pickup_sla"]
    assert lines[1] == "S1\tSKU-A\tin_stock\t10\treserve\tnext day"


def test_cli_writes_the_same_feed(db_dsn: str, settings: Settings, tmp_path: Path) -> None:
    seed_database(db_dsn, seed)
    out = tmp_path / "feeds" / "local.tsv"
    out.parent.mkdir()
    args = argparse.Namespace(feed="google-local", out=out)
    rc = export_command.run(args, msgspec.structs.replace(settings, database_url=db_dsn))
    assert rc == 0
    assert out.read_text() == EXPECTED
    assert [p.name for p in out.parent.iterdir()] == ["local.tsv"]  # no temporary left behind

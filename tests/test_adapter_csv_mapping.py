"""Warehouse CSV in another shape (format csv_mapping): the feeds-file mapping, the pure
translator and pulls against real PostgreSQL and a local HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.db.feeds import upsert_feeds
from app.domain.policy import Policy
from app.settings import Settings, SettingsError
from reconcilers.adapters.csv_mapping import CsvTranslator, translate
from reconcilers.adapters.ids import Skipped
from reconcilers.feeds_config import load_feeds
from reconcilers.jobs import run_feed
from reconcilers.warehouse import SnapshotRejected
from tests.conftest import stock_in_force
from tests.feedserver import FeedServer, Reply

FIXTURES = Path(__file__).parent / "fixtures" / "vendors"
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
WMS = (FIXTURES / "wms_export.csv").read_bytes()

FEEDS_TOML = """
[[feeds]]
name = "wms-de"
kind = "warehouse"
format = "csv_mapping"
url = "{url}"
timeout = "2s"
ids_file = "ids.csv"

[feeds.csv]
delimiter = ";"
date_format = "%d.%m.%Y %H:%M"
timezone = "Europe/Berlin"
units_multiplier = {multiplier}

[feeds.csv.columns]
location_id = "Filiale"
sku = "Artikelnummer"
on_hand = "Bestand"
reserved = "Reserviert"
as_of = "Stand"

[feeds.csv.defaults]
reserved = 0
in_transit = 0
"""
IDS_CSV = (
    "type,vendor_id,id\nlocation,F-001,S1\nlocation,F-002,S2\nitem,A-100,SKU-A\nitem,A-200,SKU-B\n"
)


def write_feeds(tmp_path: Path, url: str, multiplier: int = 1) -> Path:
    (tmp_path / "ids.csv").write_text(IDS_CSV)
    path = tmp_path / "feeds.toml"
    path.write_text(FEEDS_TOML.format(url=url, multiplier=multiplier))
    return path


async def chunked(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def translated(data: bytes, tmp_path: Path, size: int = 7, multiplier: int = 1) -> str:
    (feed,) = load_feeds(write_feeds(tmp_path, "https://wms.example/x", multiplier))
    assert feed.csv is not None
    from reconcilers.adapters.ids import IdMap

    translator = CsvTranslator(feed.csv, IdMap(feed.locations, feed.items), Skipped())
    out = [c async for c in translate(chunked(data, size), translator, feed.csv.encoding)]
    return b"".join(out).decode()


async def test_translates_the_wms_export_in_any_chunking(tmp_path: Path) -> None:
    expected = (
        "location_id,sku,on_hand,reserved,in_transit,as_of\n"
        "S1,SKU-A,12,2,0,2026-11-23T07:00:00+01:00\n"
        "S1,SKU-B,0,0,0,2026-11-23T07:00:00+01:00\n"
        "S2,SKU-A,4,0,0,2026-11-23T06:30:00+01:00\n"
    )
    assert await translated(WMS, tmp_path, size=7) == expected
    assert await translated(WMS, tmp_path, size=100_000) == expected


async def test_units_multiplier_and_line_numbers_in_errors(tmp_path: Path) -> None:
    assert ",72,12,0," in await translated(WMS, tmp_path, multiplier=6)
    bad = WMS.replace(b"F-001;A-200;0;0", b"F-001;A-200;zwei;0")
    with pytest.raises(SnapshotRejected, match=r"line 3: 'Bestand' \(on_hand\): 'zwei'"):
        await translated(bad, tmp_path)
    bad_date = WMS.replace(b"23.11.2026 06:30", b"2026-11-23")
    with pytest.raises(SnapshotRejected, match=r"line 4: 'Stand' \(as_of\).*'%d.%m.%Y %H:%M'"):
        await translated(bad_date, tmp_path)
    with pytest.raises(
        SnapshotRejected, match="column 'Bestand' \\(for on_hand\\) is not in the header"
    ):
        await translated(WMS.replace(b"Bestand", b"Menge"), tmp_path)


def test_feeds_file_problems_are_named(tmp_path: Path) -> None:
    path = write_feeds(tmp_path, "https://wms.example/x")
    (tmp_path / "ids.csv").write_text("type,vendor_id,id\nlocation,F-001,not ok\n")
    with pytest.raises(SettingsError, match=r"feed wms-de: ids_file .*ids.csv: line 2: 'not ok'"):
        load_feeds(path)
    path.write_text(FEEDS_TOML.format(url="https://x.example", multiplier=1).replace(
        'kind = "warehouse"', 'kind = "pos"'))  # fmt: skip
    with pytest.raises(SettingsError, match="format 'csv_mapping' needs kind 'warehouse'"):
        load_feeds(path)


async def pull(pool: asyncpg.Pool, tmp_path: Path, feed_server: FeedServer,
               client: httpx.AsyncClient, settings: Settings) -> Any:  # fmt: skip
    (feed,) = load_feeds(write_feeds(tmp_path, feed_server.url("/wms.csv")))
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [feed])
    return await run_feed(pool, feed, client, settings=settings, policy=Policy(), clock=lambda: NOW)


async def stock(pool: asyncpg.Pool) -> list[tuple[Any, ...]]:
    return await stock_in_force(pool, ("on_hand", "reserved"))


async def test_pull_applies_the_translated_snapshot_after_a_429(
    pool: asyncpg.Pool, tmp_path: Path, feed_server: FeedServer, client: httpx.AsyncClient,
    settings: Settings,
) -> None:  # fmt: skip
    feed_server.sequence("/wms.csv", Reply(status=429, headers={"Retry-After": "1"}),
                         Reply(body=WMS, headers={"ETag": '"v1"'}, chunked=True, chunk_size=5))  # fmt: skip
    outcome = await pull(pool, tmp_path, feed_server, client, settings)
    assert outcome.outcome == "applied", outcome.detail
    seven_utc = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
    assert await stock(pool) == [
        ("S1", "SKU-A", 12, 2, seven_utc), ("S1", "SKU-B", 0, 0, seven_utc),
        ("S2", "SKU-A", 4, 0, seven_utc - timedelta(minutes=30)),
    ]  # fmt: skip
    first, second = feed_server.requests_to("/wms.csv")
    assert second.at - first.at >= 0.95


async def test_a_bad_line_quarantines_and_the_previous_snapshot_stays(
    pool: asyncpg.Pool, tmp_path: Path, feed_server: FeedServer, client: httpx.AsyncClient,
    settings: Settings,
) -> None:  # fmt: skip
    feed_server.always("/wms.csv", Reply(body=WMS))
    assert (await pull(pool, tmp_path, feed_server, client, settings)).outcome == "applied"
    before = await stock(pool)
    feed_server.always("/wms.csv", Reply(body=WMS.replace(b"F-002;A-100;4", b"F-002;A-100;-4")))
    outcome = await pull(pool, tmp_path, feed_server, client, settings)
    assert outcome.outcome == "quarantined"
    assert outcome.detail is not None and outcome.detail.startswith(
        "line 4: 'Bestand' (on_hand): '-4'"
    )
    assert await stock(pool) == before

"""stores.csv / products.csv: strict all-or-nothing parsing and start-up loading."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import asyncpg
import msgspec
import pytest
from litestar import Litestar

from app.domain.model import Product, Store
from app.reference_data import (
    SHOWN_PROBLEMS,
    CsvRejected,
    LineProblem,
    ReferenceDataError,
    load_reference_files,
    parse_products_csv,
    parse_stores_csv,
)
from app.settings import Settings
from tests.conftest import serve_in_loop

HEADER = "store_id,name,lat,lon,postal_code,timezone\n"


def test_good_stores_file_parses_with_empty_optionals() -> None:
    text = (
        "\ufeff"
        + HEADER
        + 'S001,Main Street,48.85,2.35,75001,Europe/Paris\r\nS002,"Dock, North",-33.9,151.2,,\n\n'
    )
    assert parse_stores_csv(text) == [
        Store(
            store_id="S001",
            name="Main Street",
            lat=48.85,
            lon=2.35,
            postal_code="75001",
            timezone="Europe/Paris",
        ),
        Store(
            store_id="S002",
            name="Dock, North",
            lat=-33.9,
            lon=151.2,
            postal_code=None,
            timezone=None,
        ),
    ]


def test_every_bad_row_is_reported_with_its_line() -> None:
    text = (
        HEADER
        + "S001,One,48.0,2.0,,\n"  # line 2, good
        + "S 2,Two,48.0,2.0,,\n"  # line 3, bad id
        + "S003,Three,91,2.0,,\n"  # line 4, lat out of range
        + "S004,Four,48.0,east,,\n"  # line 5, lon not a number
        + "S001,Again,48.0,2.0,,\n"  # line 6, duplicate of line 2
        + "S006,Six,48.0\n"  # line 7, too few fields
        + "S007,,48.0,2.0,,Mars/Olympus\n"  # line 8, empty name and bad zone
        + "S008,Eight,nan,2.0,,\n"  # line 9, not finite
    )
    with pytest.raises(CsvRejected) as caught:
        parse_stores_csv(text, source="stores.csv")
    problems = caught.value.problems
    assert [p.line for p in problems] == [3, 4, 5, 6, 7, 8, 8, 9]
    reasons = {p.line: p.reason for p in problems}
    assert "store_id 'S 2' is not an identifier" in reasons[3]
    assert reasons[4] == "lat 91.0 is out of range -90..90"
    assert reasons[5] == "lon 'east' is not a number"
    assert reasons[6] == "store_id 'S001' repeats line 2"
    assert reasons[7] == "expected 6 fields, got 3"
    assert "'Mars/Olympus' is not an IANA time zone" in caught.value.message
    assert reasons[9] == "lat 'nan' is not a finite number"
    assert caught.value.message.startswith(
        "stores.csv rejected, nothing applied (8 problems): line 3:"
    )


def test_header_must_be_exactly_the_contract() -> None:
    with pytest.raises(CsvRejected) as caught:
        parse_stores_csv("store_id,name,latitude,longitude,postal_code,timezone\nS1,A,1,2,,\n")
    assert caught.value.problems == (
        LineProblem(
            1,
            "header must be exactly 'store_id,name,lat,lon,postal_code,timezone', "
            "got 'store_id,name,latitude,longitude,postal_code,timezone'",
        ),
    )
    with pytest.raises(CsvRejected, match="got an empty file"):
        parse_stores_csv("")


def test_message_lists_first_twenty_and_counts_the_rest() -> None:
    text = HEADER + "".join(f"S{i},Name,100,0,,\n" for i in range(25))
    with pytest.raises(CsvRejected) as caught:
        parse_stores_csv(text)
    assert len(caught.value.problems) == 25
    message = caught.value.message
    assert f"line {SHOWN_PROBLEMS + 1}:" in message and f"line {SHOWN_PROBLEMS + 2}:" not in message
    assert message.endswith("; and 5 more")


def test_quoted_multiline_field_keeps_line_numbers_right() -> None:
    text = HEADER + 'S1,"two\nlines",1,2,,\nS 2,Bad,1,2,,\n'
    with pytest.raises(CsvRejected) as caught:
        parse_stores_csv(text)
    assert [p.line for p in caught.value.problems] == [4]


def test_products_file() -> None:
    assert parse_products_csv("sku,name,category\nSKU-1,Drill,tools\nSKU-2,,\n") == [
        Product(sku="SKU-1", name="Drill", category="tools"),
        Product(sku="SKU-2", name=None, category=None),
    ]
    with pytest.raises(CsvRejected) as caught:
        parse_products_csv("sku,name,category\nSKU-1,Drill,tools\nSKU-1,Drill,tools\nbad sku,x,y\n")
    assert caught.value.problems == (
        LineProblem(3, "sku 'SKU-1' repeats line 2"),
        LineProblem(4, "sku 'bad sku' is not an identifier (1 to 64 of A-Z a-z 0-9 . _ - :)"),
    )


async def _stores(pool: asyncpg.Pool) -> list[tuple[str, str]]:
    return [
        (r["store_id"], r["name"])
        for r in await pool.fetch("SELECT store_id, name FROM store ORDER BY 1")
    ]


async def test_startup_loads_files_and_reload_is_an_upsert(
    make_app: Callable[..., Litestar], settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    stores_file = tmp_path / "stores.csv"
    products_file = tmp_path / "products.csv"
    stores_file.write_text(HEADER + "S001,One,48.0,2.0,,\nS002,Two,48.1,2.1,75002,Europe/Paris\n")
    products_file.write_text("sku,name,category\nSKU-1,Drill,tools\n")
    configured = msgspec.structs.replace(
        settings, stores_file=stores_file, products_file=products_file
    )
    async with serve_in_loop(make_app(settings=configured)) as client:
        r = await client.get("/v1/stores/S002")
        assert r.status_code == 200
        assert r.json()["postal_code"] == "75002"
        r = await client.get("/v1/products/SKU-1")
        assert r.json()["category"] == "tools"
    assert await _stores(pool) == [("S001", "One"), ("S002", "Two")]

    stores_file.write_text(HEADER + "S001,One renamed,48.0,2.0,,\n")
    await load_reference_files(pool, configured)
    assert await _stores(pool) == [("S001", "One renamed"), ("S002", "Two")]


async def test_bad_file_stops_startup_and_changes_nothing(
    make_app: Callable[..., Litestar], settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await pool.execute(
        "INSERT INTO store (store_id, name, lat, lon) VALUES ('S001', 'Before', 1, 2)"
    )
    stores_file = tmp_path / "stores.csv"
    products_file = tmp_path / "products.csv"
    stores_file.write_text(HEADER + "S001,After,48.0,2.0,,\nS002,Two,48.1,2.1,,\n")
    products_file.write_text("sku,name,category\nSKU-1,Drill,tools\nSKU-1,Drill,tools\n")
    configured = msgspec.structs.replace(
        settings, stores_file=stores_file, products_file=products_file
    )
    expected = pytest.RaisesExc(
        ReferenceDataError, match=r"products\.csv rejected.*line 3: sku 'SKU-1' repeats"
    )
    with pytest.RaisesGroup(expected, flatten_subgroups=True):
        async with serve_in_loop(make_app(settings=configured)):
            pass
    assert await _stores(pool) == [("S001", "Before")]
    assert await pool.fetchval("SELECT count(*) FROM product") == 0


async def test_missing_file_is_named(
    settings: Settings, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(ReferenceDataError, match=f"cannot read {missing}"):
        await load_reference_files(pool, msgspec.structs.replace(settings, stores_file=missing))

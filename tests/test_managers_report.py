"""The reconciliation report: golden file for a seeded store, totals, CSV injection,
and 100,000 rows streamed with bounded memory."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st
from litestar import Litestar

from app.domain.reconciliation import COLUMNS, cell, uncell
from app.settings import Settings
from tests.conftest import serve_in_loop
from tests.managers_scenario import NOW, POLICY, seed

GOLDEN = Path(__file__).parent / "golden" / "reconciliation_S1.csv"
ADMIN = {"authorization": "Bearer boot"}
URL = "/v1/stores/S1/reconciliation.csv"


@pytest.fixture
def app(make_app: Callable[..., Litestar], settings: Settings) -> Litestar:
    guarded = msgspec.structs.replace(settings, admin_token="boot")
    return make_app(settings=guarded, clock=lambda: NOW, policy=POLICY)


def rows_of(body: bytes) -> list[list[str]]:
    text = body.decode("utf-8")
    assert text.startswith("\ufeff"), "Excel needs the BOM to read UTF-8"
    return list(csv.reader(io.StringIO(text[1:], newline="")))


async def test_report_matches_the_golden_file(app: Litestar, pool: asyncpg.Pool) -> None:
    await seed(pool)
    async with serve_in_loop(app) as client:
        r = await client.get(URL, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert 'filename="reconciliation-S1-2026-11-23.csv"' in r.headers["content-disposition"]
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_bytes(r.content)
    assert r.content == GOLDEN.read_bytes()


async def test_report_rows_say_why_what_to_do_and_in_which_order(
    app: Litestar, pool: asyncpg.Pool
) -> None:
    await seed(pool)
    async with serve_in_loop(app) as client:
        body = (await client.get(URL, headers=ADMIN)).content
    header, *lines = rows_of(body)
    assert tuple(header) == COLUMNS
    rows = [dict(zip(header, line, strict=True)) for line in lines]
    by_sku = {r["sku"]: r for r in rows}
    # SKU-OK needs nothing; S2's items never appear in S1's report.
    assert set(by_sku) == {"SKU-FAST", "SKU-PH", "SKU-DIS", "SKU-HELD", "SKU-SP"}
    assert [float(r["priority"]) for r in rows] == sorted(
        (float(r["priority"]) for r in rows), reverse=True
    )
    dis = by_sku["SKU-DIS"]
    assert (dis["book_on_hand"], dis["warehouse_on_hand"], dis["pos_movements_since"]) == (
        "9",
        "10",
        "-1",
    )
    assert (dis["last_count_qty"], dis["last_count_at"]) == ("4", "2026-11-22T12:00:00Z")
    assert dis["records_differ_by"] == "-7" and dis["suggested_action"] == "recount"
    assert "disagree by 7 units" in dis["reasons"]
    assert by_sku["SKU-PH"]["suggested_action"] == "check shelf and back room"
    assert by_sku["SKU-PH"]["reason_codes"] == "phantom_silence"
    assert by_sku["SKU-SP"]["reason_codes"] == "phantom_short_picks"
    assert by_sku["SKU-FAST"]["reason_codes"] == "count_old_fast_seller"
    assert by_sku["SKU-FAST"]["sales_last_7_days"] == "10"
    held = by_sku["SKU-HELD"]
    assert (held["badge_state"], held["confidence"], held["reason_codes"]) == (
        "unknown",
        "0.42",
        "badge_held_back",
    )
    # Confidence is empty, not 0, where the engine left it null.
    assert dis["confidence"] == ""


async def test_text_cells_cannot_run_as_formulas(app: Litestar, pool: asyncpg.Pool) -> None:
    await seed(pool)
    async with serve_in_loop(app) as client:
        body = (await client.get(URL, headers=ADMIN)).content
    header, *lines = rows_of(body)
    numeric = {"book_on_hand", "pos_movements_since", "records_differ_by", "priority"}
    for line in lines:
        for name, value in zip(header, line, strict=True):
            if name in numeric and value:
                float(value)  # a number, written as one
            else:
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (name, value)
    fast = next(dict(zip(header, line, strict=True)) for line in lines if line[0] == "SKU-FAST")
    assert fast["name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert fast["category"] == "'+cat"
    held = next(dict(zip(header, line, strict=True)) for line in lines if line[0] == "SKU-HELD")
    assert (held["name"], held["category"]) == ("'@Perceuse", "'-power")


@given(st.text())
def test_cell_never_starts_a_formula_and_uncell_undoes_it(text: str) -> None:
    out = cell(text)
    assert not out.startswith(("=", "+", "-", "@", "\t", "\r"))
    if not text.startswith("'"):
        assert uncell(out) == text
    assert out in (text, "'" + text)


async def test_summary_totals_the_same_rows(app: Litestar, pool: asyncpg.Pool) -> None:
    await seed(pool)
    async with serve_in_loop(app) as client:
        summary = (await client.get("/v1/stores/S1/reconciliation/summary", headers=ADMIN)).json()
        body = (await client.get(URL, headers=ADMIN)).content
        missing = await client.get("/v1/stores/NOPE/reconciliation/summary", headers=ADMIN)
    header, *lines = rows_of(body)
    actions = [dict(zip(header, line, strict=True))["suggested_action"] for line in lines]
    assert summary["items"] == len(lines) == 5
    assert summary["positions"] == 6
    assert {a: t["items"] for a, t in summary["by_action"].items()} == {
        "check shelf and back room": actions.count("check shelf and back room"),
        "recount": actions.count("recount"),
        "none": actions.count("none"),
    }
    assert summary["by_reason"]["records_disagree"] == 1
    assert summary["by_action"]["recount"]["priority"] == pytest.approx(
        sum(
            float(dict(zip(header, line, strict=True))["priority"])
            for line in lines
            if dict(zip(header, line, strict=True))["suggested_action"] == "recount"
        )
    )
    assert missing.status_code == 404


async def _seed_many(pool: asyncpg.Pool, n: int) -> None:
    """n items of store S9 whose badge is held back, with long names."""
    await pool.execute(
        """INSERT INTO product (sku, name, category)
           SELECT 'SKU-' || lpad(i::text, 6, '0'), 'Item number ' || i || ' with a long name', 'cat'
           FROM generate_series(1, $1) AS i""",
        n,
    )
    await pool.execute(
        """INSERT INTO book_position (store_id, sku, book, base_source, base_at, in_transit,
                                      badge_state, safety_buffer, confidence, reasons, computed_at)
           SELECT 'S9', 'SKU-' || lpad(i::text, 6, '0'), 10, 'snapshot', $2, 0, 'unknown', 2,
                  0.5, '{low_confidence}', $2
           FROM generate_series(1, $1) AS i""",
        n,
        NOW,
    )


async def test_a_100k_row_report_streams_in_bounded_memory(
    app: Litestar, pool: asyncpg.Pool
) -> None:
    n = 100_000
    await _seed_many(pool, n)
    messages: list[int] = []
    lines = 0

    received, done = asyncio.Event(), asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not received.is_set():
            received.set()
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()  # the client stays until the whole body has arrived
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal lines
        if message["type"] == "http.response.start":
            assert message["status"] == 200
        elif message["type"] == "http.response.body":
            messages.append(len(message.get("body", b"")))
            lines += message.get("body", b"").count(b"\r\n")
            if not message.get("more_body", False):
                done.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/v1/stores/S9/reconciliation.csv",
        "raw_path": b"/v1/stores/S9/reconciliation.csv",
        "query_string": b"",
        "headers": [(b"host", b"t"), (b"authorization", b"Bearer boot")],
        "client": ("127.0.0.1", 1234),
        "server": ("t", 80),
        "root_path": "",
    }
    async with app.lifespan():
        tracemalloc.start()
        try:
            await app(scope, receive, send)  # type: ignore[arg-type]
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    total = sum(messages)
    assert lines == n + 1  # the header and one line per item
    assert len(messages) >= n // 1000  # sent in pieces as it is read, not at the end
    assert max(messages) < 200_000
    # The whole body is ~22 MB; at its peak the request held ~2 MB (the cursor's prefetch
    # of 1,000 rows and one chunk of 500 lines), whatever the number of rows.
    print(f"report of {n} rows: {total / 1e6:.1f} MB sent in {len(messages)} chunks, "
          f"peak traced memory {peak / 1e6:.2f} MB")  # fmt: skip
    assert total > 20_000_000
    assert peak < 5_000_000

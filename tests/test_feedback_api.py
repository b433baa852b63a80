"""POST /v1/feedback on real PostgreSQL: JSON and CSV batches, validation of the
whole batch, idempotency, shelf counts moving the book, the admin guard, the log."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import uvicorn
from litestar import Litestar
from structlog.testing import capture_logs

from app.db.events import insert_events
from app.db.feeds import upsert_feeds
from app.domain.model import Count, SnapshotRow
from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.feeds_config import FeedConfig
from tests.conftest import serve_in_loop

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = Policy(safety_buffer=2, low_stock_below=3, max_data_age=timedelta(hours=6))
FEED = FeedConfig(name="pos-test", kind="pos", url="http://127.0.0.1:1/events")
CSV = {"content-type": "text/csv"}


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def item(
    kind: str, qty: int, *, minutes_ago: int = 30, store: str = "S1", sku: str = "SKU-A"
) -> dict[str, Any]:
    return {
        "observed_at": iso(NOW - timedelta(minutes=minutes_ago)),
        "store_id": store,
        "sku": sku,
        "kind": kind,
        "qty": qty,
    }


@pytest.fixture
def app(make_app: Callable[..., Litestar]) -> Litestar:
    return make_app(clock=lambda: NOW, policy=POLICY)


async def snapshot(pool: asyncpg.Pool, row: SnapshotRow) -> None:
    """A warehouse row, its location and the store's freshness, as the puller leaves them."""
    await pool.execute(
        """INSERT INTO warehouse_stock (location_id, sku, on_hand, reserved, in_transit, as_of, snapshot_id)
           VALUES ($1, $2, $3, $4, $5, $6, 1)""",
        row.location_id, row.sku, row.on_hand, row.reserved, row.in_transit, row.as_of,
    )  # fmt: skip
    await pool.execute(
        """INSERT INTO warehouse_location (location_id, as_of, snapshot_id) VALUES ($1, $2, 1)
           ON CONFLICT (location_id) DO NOTHING""",
        row.location_id, row.as_of,
    )  # fmt: skip
    await pool.execute(
        """INSERT INTO store_freshness (store_id, snapshot_as_of) VALUES ($1, $2)
           ON CONFLICT (store_id) DO UPDATE SET snapshot_as_of = EXCLUDED.snapshot_as_of""",
        row.location_id, row.as_of,
    )  # fmt: skip


async def position(pool: asyncpg.Pool, store_id: str = "S1", sku: str = "SKU-A") -> dict[str, Any]:
    row = await pool.fetchrow(
        "SELECT * FROM book_position WHERE store_id = $1 AND sku = $2", store_id, sku
    )
    assert row is not None, f"no position for {store_id}/{sku}"
    return dict(row)


async def feedback_rows(pool: asyncpg.Pool) -> list[tuple[str, str, str, datetime, int]]:
    rows = await pool.fetch(
        "SELECT store_id, sku, kind, observed_at, qty FROM feedback ORDER BY 1, 2, 3, 4, 5"
    )
    return [tuple(r.values()) for r in rows]


# -- JSON ---------------------------------------------------------------------------------


async def test_a_shelf_count_replaces_the_base_and_recomputes_the_badge(
    app: Litestar, pool: asyncpg.Pool, admin_auth: dict[str, str]
) -> None:
    await snapshot(pool, SnapshotRow("S1", "SKU-A", 12, 0, 0, NOW - timedelta(hours=2)))
    batch = {
        "feedback": [
            item("shelf_count", 3, minutes_ago=30),
            item("pick_found", 2, minutes_ago=20, sku="SKU-B"),
            item("pick_short", 0, minutes_ago=10, sku="SKU-B"),
        ]
    }
    async with serve_in_loop(app, headers=admin_auth) as client:
        r = await client.post("/v1/feedback", json=batch)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "received": 3,
        "stored": 3,
        "duplicates": 0,
        "positions_recomputed": 1,
        "stored_by_kind": {"shelf_count": 1, "pick_found": 1, "pick_short": 1},
    }
    row = await position(pool)
    assert (row["book"], row["base_source"], row["base_at"]) == (
        3,
        "count",
        NOW - timedelta(minutes=30),
    )
    # 3 counted, 2 held back: 1 promisable, below low_stock_below
    assert row["badge_state"] == "low_stock"
    assert list(row["reasons"])[:2] == ["few_left", "recently_counted"]  # then the engine's
    assert row["confidence"] is not None  # the live engine assessed it
    assert row["computed_at"] == NOW
    assert row["last_event_at"] == NOW - timedelta(minutes=30)
    # pick outcomes do not move any book; they are kept for learning
    assert await pool.fetchval("SELECT count(*) FROM book_position WHERE sku = 'SKU-B'") == 0
    picks = await pool.fetch(
        "SELECT found, qty_found, qty_wanted, received_at FROM pick_outcome ORDER BY observed_at"
    )
    assert [tuple(p.values()) for p in picks] == [(True, 2, 2, NOW), (False, 0, None, NOW)]


async def test_reposting_a_batch_changes_nothing(
    app: Litestar, pool: asyncpg.Pool, admin_auth: dict[str, str]
) -> None:
    await snapshot(pool, SnapshotRow("S1", "SKU-A", 12, 0, 0, NOW - timedelta(hours=2)))
    batch = {"feedback": [item("shelf_count", 5), item("pick_short", 1, sku="SKU-B")]}
    async with serve_in_loop(app, headers=admin_auth) as client:
        first = await client.post("/v1/feedback", json=batch)
        before = await feedback_rows(pool)
        computed = (await position(pool))["computed_at"]
        again = await client.post("/v1/feedback", json=batch)
        # the same instant written with another offset is the same observation
        shifted = dict(batch["feedback"][0], observed_at="2026-11-23T12:30:00+01:00")
        third = await client.post("/v1/feedback", json={"feedback": [shifted, shifted]})
    assert first.json()["stored"] == 2
    assert again.status_code == 200
    assert (again.json()["stored"], again.json()["duplicates"]) == (0, 2)
    assert again.json()["positions_recomputed"] == 0
    assert (third.json()["stored"], third.json()["duplicates"]) == (0, 2)
    assert await feedback_rows(pool) == before
    assert len(before) == 2
    assert (await position(pool))["computed_at"] == computed


async def test_the_latest_count_wins_whether_pos_or_shelf(
    app: Litestar, pool: asyncpg.Pool, admin_auth: dict[str, str]
) -> None:
    """POS counts and shelf counts compete by time; at one instant the shelf count
    wins, and of two shelf counts the smaller."""
    await snapshot(pool, SnapshotRow("S1", "SKU-A", 12, 0, 0, NOW - timedelta(hours=2)))
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [FEED])
        await insert_events(
            conn,
            FEED.name,
            [Count(event_id="C1", store_id="S1", sku="SKU-A", on_hand=7,
                   occurred_at=NOW - timedelta(minutes=20))],
            received_at=NOW,
        )  # fmt: skip
    async with serve_in_loop(app, headers=admin_auth) as client:
        r = await client.post(
            "/v1/feedback", json={"feedback": [item("shelf_count", 3, minutes_ago=40)]}
        )
        assert r.json()["positions_recomputed"] == 1
        # older than the POS count: the POS count stays the base
        assert ((await position(pool))["book"], (await position(pool))["base_at"]) == (
            7,
            NOW - timedelta(minutes=20),
        )
        await client.post(
            "/v1/feedback", json={"feedback": [item("shelf_count", 9, minutes_ago=20)]}
        )
        assert (await position(pool))["book"] == 9  # same instant as the POS count: shelf wins
        await client.post(
            "/v1/feedback",
            json={"feedback": [item("shelf_count", 6, minutes_ago=5), item("shelf_count", 4, minutes_ago=5)]},
        )  # fmt: skip
    row = await position(pool)
    assert (row["book"], row["base_at"]) == (4, NOW - timedelta(minutes=5))


async def test_a_bad_item_rejects_the_batch_with_every_reason(
    app: Litestar, pool: asyncpg.Pool, admin_auth: dict[str, str]
) -> None:
    batch = {
        "feedback": [
            item("shelf_count", 3),  # fine, but the batch fails
            {**item("shelf_count", -1), "store_id": "S 1"},
            {**item("recount", 2), "observed_at": "2026-11-23T10:00:00"},
            item("pick_found", 0),
            {**item("shelf_count", 1), "qty": "1"},
            {**item("shelf_count", 1), "note": "x"},
            {k: v for k, v in item("shelf_count", 1).items() if k != "sku"},
            {**item("shelf_count", 1), "observed_at": iso(NOW + timedelta(minutes=6))},
        ]
    }
    with capture_logs() as logs:
        async with serve_in_loop(app, headers=admin_auth) as client:
            r = await client.post("/v1/feedback", json=batch)
    assert r.status_code == 422
    body = r.json()
    problems = [(p["item"], p["reason"]) for p in body["detail"]["problems"]]
    ident = "(1 to 64 of A-Z a-z 0-9 . _ - :)"
    assert problems == [
        (1, f"store_id 'S 1' is not an identifier {ident}"),
        (1, "qty -1 is negative"),
        (2, "observed_at '2026-11-23T10:00:00' is not an RFC 3339 timestamp with an offset "
            "(e.g. 2026-11-23T10:01:02Z)"),
        (2, "kind 'recount' is not one of shelf_count, pick_found, pick_short"),
        (3, "qty 0 for pick_found: qty is the units the pick wanted, at least 1"),
        (4, "Expected `int`, got `str` - at `qty`"),
        (5, "Object contains unknown field `note`"),
        (6, "Object missing required field `sku`"),
        (7, "observed_at 2026-11-23T12:06:00Z is in the future (more than 5 minutes after "
            "the service's clock)"),
    ]  # fmt: skip
    assert body["detail"]["problem_count"] == 9
    assert body["error"].startswith(
        "feedback rejected, nothing stored (9 problems): $.feedback[1]: "
    )
    assert await feedback_rows(pool) == []
    assert await pool.fetchval("SELECT count(*) FROM book_position") == 0
    assert [e["problems"] for e in logs if e["event"] == "feedback.rejected"] == [9]
    assert not [e for e in logs if e["event"] == "feedback.received"]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{", "feedback rejected, nothing stored: body is not valid JSON: "),
        (b'{"items": []}', "feedback rejected, nothing stored: body is not a feedback batch: "),
        (b"[]", "feedback rejected, nothing stored: body is not a feedback batch: "),
    ],
)
async def test_a_body_that_is_not_a_batch_is_422(
    app: Litestar, pool: asyncpg.Pool, body: bytes, error: str, admin_auth: dict[str, str]
) -> None:
    async with serve_in_loop(app, headers=admin_auth) as client:
        r = await client.post(
            "/v1/feedback", content=body, headers={"content-type": "application/json"}
        )
    assert r.status_code == 422
    assert r.json()["error"].startswith(error)
    assert await feedback_rows(pool) == []


async def test_too_many_items_and_wrong_media_type(
    app: Litestar, pool: asyncpg.Pool, admin_auth: dict[str, str]
) -> None:
    too_many = {
        "feedback": [item("pick_found", 1 + i % 7, minutes_ago=i % 600) for i in range(10_001)]
    }
    async with serve_in_loop(app, headers=admin_auth) as client:
        r = await client.post("/v1/feedback", json=too_many)
        assert r.status_code == 422
        assert r.json()["error"] == (
            "feedback rejected, nothing stored: 10001 items, at most 10000 per batch; send it in parts"
        )
        r = await client.post(
            "/v1/feedback", content=b"<x/>", headers={"content-type": "application/xml"}
        )
        assert r.status_code == 415
        assert r.json()["error"] == (
            "send feedback as Content-Type: application/json or text/csv (got application/xml)"
        )
        ok = await client.post("/v1/feedback", json={"feedback": too_many["feedback"][:10_000]})
    assert ok.status_code == 200
    assert ok.json()["received"] == 10_000
    # (i mod 7, i mod 600) repeats every 4200: 4200 distinct observations, the rest repeat
    assert (ok.json()["stored"], ok.json()["duplicates"]) == (4200, 5800)
    assert await pool.fetchval("SELECT count(*) FROM feedback") == 4200


# -- CSV ----------------------------------------------------------------------------------


async def test_csv_with_and_without_published_at(
    app: Litestar, pool: asyncpg.Pool, admin_auth: dict[str, str]
) -> None:
    await snapshot(pool, SnapshotRow("S1", "SKU-A", 12, 0, 0, NOW - timedelta(hours=2)))
    plain = (
        "observed_at,store_id,sku,kind,qty\r\n"
        "2026-11-23T11:00:00Z,S1,SKU-A,shelf_count,8\r\n"
        "\r\n"
        "2026-11-23T11:10:00Z,S1,SKU-B,pick_short,1\r\n"
    )
    published = (
        "\ufeffobserved_at,store_id,sku,kind,qty,published_at\n"
        "2026-11-23T11:00:00Z,S1,SKU-A,shelf_count,8,2026-11-23T11:02:00Z\n"
        "2026-11-23T11:30:00Z,S2,SKU-A,pick_found,3,not-even-a-time\n"
    )
    async with serve_in_loop(app, headers=admin_auth) as client:
        r1 = await client.post("/v1/feedback", content=plain, headers=CSV)
        r2 = await client.post("/v1/feedback", content=published.encode(), headers=CSV)
    assert r1.status_code == 200, r1.text
    assert (r1.json()["stored"], r1.json()["positions_recomputed"]) == (2, 1)
    assert (r2.json()["received"], r2.json()["stored"], r2.json()["duplicates"]) == (2, 1, 1)
    assert (await position(pool))["book"] == 8
    assert [r[:3] for r in await feedback_rows(pool)] == [
        ("S1", "SKU-A", "shelf_count"),
        ("S1", "SKU-B", "pick_short"),
        ("S2", "SKU-A", "pick_found"),
    ]


async def test_bad_csv_lists_every_line_and_stores_nothing(
    app: Litestar, pool: asyncpg.Pool, admin_auth: dict[str, str]
) -> None:
    text = (
        "observed_at,store_id,sku,kind,qty\n"
        "2026-11-23T11:00:00Z,S1,SKU-A,shelf_count,8\n"
        "2026-11-23T11:00:00Z,S1,SKU-A,shelf_count\n"
        "yesterday,S1,,pick_found,2\n"
        "2026-11-23T11:00:00Z,S1,SKU-A,pick_short,1.5\n"
        "2026-11-23T11:00:00Z,S1,SKU-A,pick_short,\n"
    )
    async with serve_in_loop(app, headers=admin_auth) as client:
        r = await client.post("/v1/feedback", content=text, headers=CSV)
        header = await client.post("/v1/feedback", content="when,store,sku,kind,qty\n", headers=CSV)
    assert r.status_code == 422
    assert [(p["line"], p["reason"]) for p in r.json()["detail"]["problems"]] == [
        (3, "expected 5 fields, got 4"),
        (4, "observed_at 'yesterday' is not an RFC 3339 timestamp with an offset "
            "(e.g. 2026-11-23T10:01:02Z)"),
        (4, "sku is empty"),
        (5, "qty '1.5' is not a whole number"),
        (6, "qty is empty"),
    ]  # fmt: skip
    assert r.json()["error"].startswith(
        "feedback.csv rejected, nothing applied (5 problems): line 3:"
    )
    assert header.status_code == 422
    assert header.json()["detail"]["problems"] == [
        {
            "line": 1,
            "reason": "header must be 'observed_at,store_id,sku,kind,qty' (optionally "
            "',published_at'), got 'when,store,sku,kind,qty'",
        }
    ]
    assert await feedback_rows(pool) == []


# -- guard and log ------------------------------------------------------------------------


async def test_feedback_needs_the_admin_token_when_one_is_set(
    make_app: Callable[..., Litestar], settings: Settings, pool: asyncpg.Pool
) -> None:
    guarded = msgspec.structs.replace(settings, admin_token="s3cret")
    app = make_app(settings=guarded, clock=lambda: NOW, policy=POLICY)
    batch = {"feedback": [item("pick_found", 1)]}
    async with serve_in_loop(app) as client:
        none = await client.post("/v1/feedback", json=batch)
        wrong = await client.post(
            "/v1/feedback", json=batch, headers={"authorization": "Bearer nope"}
        )
        assert await feedback_rows(pool) == []
        right = await client.post(
            "/v1/feedback", json=batch, headers={"authorization": "Bearer s3cret"}
        )
    assert (none.status_code, wrong.status_code, right.status_code) == (401, 403, 200)
    assert len(await feedback_rows(pool)) == 1


async def test_one_feedback_received_event_per_batch(
    app: Litestar, pool: asyncpg.Pool, admin_auth: dict[str, str]
) -> None:
    await snapshot(pool, SnapshotRow("S1", "SKU-A", 12, 0, 0, NOW - timedelta(hours=2)))
    batch = {"feedback": [item("shelf_count", 4), item("shelf_count", 4), item("pick_short", 0, store="S2")]}  # fmt: skip
    with capture_logs() as logs:
        async with serve_in_loop(app, headers=admin_auth) as client:
            await client.post("/v1/feedback", json=batch)
    received = [e for e in logs if e["event"] == "feedback.received"]
    assert len(received) == 1
    event = received[0]
    keys = ("format", "received", "stored", "duplicates", "positions", "stores")
    assert [event[k] for k in keys] == ["json", 3, 2, 1, 1, 2]
    assert (event["stored_shelf_count"], event["stored_pick_short"]) == (1, 1)


# -- real HTTP ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serve_http(app: Litestar) -> AsyncIterator[str]:
    """The app under uvicorn on 127.0.0.1 (an ephemeral port), in this event loop."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
    )
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def test_feedback_over_real_http(
    app: Litestar, pool: asyncpg.Pool, admin_auth: dict[str, str]
) -> None:
    await snapshot(pool, SnapshotRow("S1", "SKU-A", 12, 0, 0, NOW - timedelta(hours=2)))
    await pool.execute("INSERT INTO store (store_id, name, lat, lon) VALUES ('S1', 'One', 48, 2)")
    await pool.execute("INSERT INTO product (sku) VALUES ('SKU-A')")
    async with (
        serve_http(app) as base,
        httpx.AsyncClient(base_url=base, headers=admin_auth) as client,
    ):
        r = await client.post(
            "/v1/feedback",
            content="observed_at,store_id,sku,kind,qty\n2026-11-23T11:50:00Z,S1,SKU-A,shelf_count,0\n",
            headers=CSV,
        )
        badge = await client.get("/v1/stores/S1/availability/SKU-A")
    assert r.status_code == 200, r.text
    assert r.json()["positions_recomputed"] == 1
    row = await position(pool)
    assert (row["book"], row["badge_state"]) == (0, "unavailable")
    assert badge.status_code == 200
    assert (badge.json()["state"], badge.json()["reasons"]) == (
        "unavailable",
        ["out_of_stock", "recently_counted"],
    )

"""POS pulls and the job runner against real PostgreSQL and a real HTTP server."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
from structlog.testing import capture_logs

from app.db.feeds import FeedState, get_feed, upsert_feeds
from app.domain.book import book_position
from app.domain.model import PosEvent, SnapshotRow
from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.feeds_config import FeedConfig
from reconcilers.jobs import run_feed
from reconcilers.outcome import PullOutcome
from reconcilers.pos import MAX_PAGES_PER_RUN, page_url, pull_pos
from tests.feedserver import FeedServer, PagedFeed, Reply, json_reply

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
POLICY = Policy()


def clock() -> datetime:
    return NOW


def iso(minute: int) -> str:
    return (T0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")


def ev(event_id: str, minute: int, type_: str = "sale", qty: int = 1, *, store: str = "S1",
       sku: str = "SKU-A") -> dict[str, Any]:  # fmt: skip
    event: dict[str, Any] = {"event_id": event_id, "type": type_, "store_id": store, "sku": sku,
                             "occurred_at": iso(minute)}  # fmt: skip
    event["on_hand" if type_ == "count" else "qty"] = qty
    return event


@pytest.fixture
def pos_feed(feed_server: FeedServer) -> FeedConfig:
    return FeedConfig(
        name="pos-main", kind="pos", url=feed_server.url("/events"), timeout=timedelta(seconds=2)
    )


@pytest.fixture
async def db(pool: asyncpg.Pool, pos_feed: FeedConfig) -> asyncpg.Pool:
    """The test database with the feed row and a snapshot base for S1 (SKU-A 20, SKU-B 5)."""
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [pos_feed])
        await conn.execute("INSERT INTO warehouse_location VALUES ('S1', $1, 1)", T0)
        await conn.execute(
            """INSERT INTO warehouse_stock VALUES ('S1', 'SKU-A', 20, 0, 0, $1, 1), ('S1', 'SKU-B', 5, 0, 0, $1, 1)""",
            T0,
        )
        await conn.execute(
            "INSERT INTO store_freshness (store_id, snapshot_as_of) VALUES ('S1', $1)", T0
        )
    return pool


async def run(
    pool: asyncpg.Pool, feed: FeedConfig, client: httpx.AsyncClient, settings: Settings
) -> PullOutcome:
    return await run_feed(pool, feed, client, settings=settings, policy=POLICY, clock=clock)


async def state(pool: asyncpg.Pool, name: str = "pos-main") -> FeedState:
    async with pool.acquire() as conn:
        found = await get_feed(conn, name)
    assert found is not None
    return found


async def stored(pool: asyncpg.Pool) -> dict[str, Any]:
    """Everything a pull may change, for before/after comparisons."""
    async with pool.acquire() as conn:
        return {
            "events": [tuple(r) for r in await conn.fetch(
                "SELECT feed, event_id, type, store_id, sku, qty, on_hand, occurred_at FROM pos_event ORDER BY event_id")],
            "positions": [tuple(r) for r in await conn.fetch("SELECT * FROM book_position ORDER BY store_id, sku")],
            "freshness": [tuple(r) for r in await conn.fetch("SELECT * FROM store_freshness ORDER BY store_id")],
            "cursor": await conn.fetchval("SELECT cursor FROM feed WHERE name = 'pos-main'"),
        }  # fmt: skip


async def book_of(pool: asyncpg.Pool, sku: str, store: str = "S1") -> asyncpg.Record:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT * FROM book_position WHERE store_id = $1 AND sku = $2", store, sku
        )
    assert row is not None, f"no position for {store}/{sku}"
    return row


# -- paging -------------------------------------------------------------------------------
async def test_pulls_every_page_and_saves_the_last_cursor(
    db: asyncpg.Pool,
    feed_server: FeedServer,
    pos_feed: FeedConfig,
    client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    feed = PagedFeed([
        [ev("E1", 10), ev("E2", 20, "receipt", 4)],
        [ev("E3", 30, sku="SKU-B"), ev("E4", 40, "adjustment", -2)],
        [ev("E5", 50, "return", 1)],
    ])  # fmt: skip
    feed_server.route("/events", feed)
    with capture_logs() as logs:
        outcome = await run(db, pos_feed, client, settings)
    assert (outcome.outcome, outcome.pages, outcome.events_new, outcome.events_duplicate) == (
        "applied",
        3,
        5,
        0,
    )
    assert outcome.positions == 2  # the three pages are stored together: A and B once
    stores = [e for e in logs if e["event"] == "pos.pages_stored"]
    assert [(e["pages"], e["cursor"], e["next_cursor"]) for e in stores] == [
        ([1, 2, 3], None, "c3")
    ]
    assert [r.param("cursor") for r in feed_server.requests_to("/events")] == [None, "c1", "c2"]
    assert (await book_of(db, "SKU-A"))["book"] == 20 - 1 + 4 - 2 + 1
    assert (await book_of(db, "SKU-B"))["book"] == 4
    st = await state(db)
    assert st.cursor == "c3" and st.consecutive_failures == 0 and st.last_success_at == NOW
    assert st.last_rows == 5 and st.last_error is None
    pulled = [e for e in logs if e["event"] == "feed.pulled"]
    assert len(pulled) == 1
    assert {k: pulled[0][k] for k in ("feed", "kind", "outcome", "pages", "events_new", "events_duplicate", "positions")} == {
        "feed": "pos-main", "kind": "pos", "outcome": "applied", "pages": 3, "events_new": 5,
        "events_duplicate": 0, "positions": 2,
    }  # fmt: skip
    assert pulled[0]["error"] is None and pulled[0]["duration_ms"] >= 0

    # nothing new: one request from the saved cursor, nothing written
    before = await stored(db)
    outcome = await run(db, pos_feed, client, settings)
    assert (outcome.outcome, outcome.pages, outcome.events_new) == ("unchanged", 1, 0)
    assert feed_server.requests_to("/events")[-1].param("cursor") == "c3"
    assert await stored(db) == before


def test_page_url_keeps_other_params_and_encodes_the_cursor() -> None:
    assert page_url("http://h/e?store=all", None) == "http://h/e?store=all"
    assert (
        page_url("http://h/e?store=all&cursor=old", "a b&c=/d")
        == "http://h/e?store=all&cursor=a+b%26c%3D%2Fd"
    )
    assert page_url("http://h/e", "x") == "http://h/e?cursor=x"


async def test_cursor_is_sent_url_encoded_alongside_existing_params(
    pool: asyncpg.Pool, feed_server: FeedServer, client: httpx.AsyncClient, settings: Settings
) -> None:
    feed = FeedConfig(name="pos-q", kind="pos", url=feed_server.url("/events?region=north"))
    odd = "p2 &=?/é"
    feed_server.route("/events", lambda req: json_reply(
        {"events": [], "next_cursor": odd, "has_more": True} if req.param("cursor") is None
        else {"events": [], "next_cursor": odd, "has_more": False}))  # fmt: skip
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [feed])
    outcome = await pull_pos(pool, feed, client, settings=settings, policy=POLICY, clock=clock)
    assert outcome.pages == 2
    second = feed_server.requests_to("/events")[1]
    assert second.param("region") == "north" and second.param("cursor") == odd
    assert (await state(pool, "pos-q")).cursor == odd


# -- crashes, redelivery, late events ----------------------------------------------------
async def test_resume_after_a_failure_between_pages_repeats_nothing_and_skips_nothing(
    db: asyncpg.Pool,
    feed_server: FeedServer,
    pos_feed: FeedConfig,
    client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    feed = PagedFeed([[ev("E1", 10), ev("E2", 11)], [ev("E3", 12)], [ev("E4", 13, sku="SKU-B")]])
    body = json_reply(feed.page_body(1)).body
    # page 2 breaks mid-body on every attempt (settings: 3 attempts)
    feed.faults[1] = [Reply(body=body, cut_after=5) for _ in range(settings.retry_attempts)]
    feed_server.route("/events", feed)
    outcome = await run(db, pos_feed, client, settings)
    assert outcome.outcome == "failed" and outcome.pages == 1 and outcome.events_new == 2
    assert "RemoteProtocolError" in (outcome.detail or "")
    st = await state(db)
    assert st.cursor == "c1" and st.consecutive_failures == 1 and st.last_success_at is None
    assert st.last_error == outcome.detail and st.last_error_at == NOW
    assert [r.param("cursor") for r in feed_server.requests_to("/events")] == [
        None,
        "c1",
        "c1",
        "c1",
    ]
    assert (await book_of(db, "SKU-A"))["book"] == 18

    feed_server.clear_requests()
    outcome = await run(db, pos_feed, client, settings)
    assert (outcome.outcome, outcome.pages, outcome.events_new) == ("applied", 2, 2)
    assert [r.param("cursor") for r in feed_server.requests_to("/events")] == ["c1", "c2"]
    async with db.acquire() as conn:
        ids = [
            r["event_id"]
            for r in await conn.fetch("SELECT event_id FROM pos_event ORDER BY event_id")
        ]
    assert ids == ["E1", "E2", "E3", "E4"]
    assert (await book_of(db, "SKU-A"))["book"] == 17
    st = await state(db)
    assert st.cursor == "c3" and st.consecutive_failures == 0 and st.last_success_at == NOW


async def test_pages_are_stored_in_groups_and_the_good_ones_before_a_failure(
    db: asyncpg.Pool,
    feed_server: FeedServer,
    pos_feed: FeedConfig,
    client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    feed = PagedFeed([[ev("E1", 10), ev("E2", 11)], [ev("E3", 12)], [ev("E4", 13)], [ev("E5", 14)]])
    feed.faults[3] = [Reply(status=503) for _ in range(settings.retry_attempts)]
    feed_server.route("/events", feed)
    outcome = PullOutcome(outcome="applied")
    with capture_logs() as logs, pytest.raises(httpx.HTTPStatusError, match="503"):
        await pull_pos(db, pos_feed, client, settings=settings, policy=POLICY, clock=clock,
                       progress=outcome, group_events=2)  # fmt: skip
    stores = [(e["pages"], e["next_cursor"]) for e in logs if e["event"] == "pos.pages_stored"]
    # page 1 fills a group; pages 2 and 3 wait for more and are stored when page 4 fails
    assert stores == [([1], "c1"), ([2, 3], "c3")]
    assert (outcome.pages, outcome.events_new) == (3, 4)
    assert (await state(db)).cursor == "c3"
    assert (await book_of(db, "SKU-A"))["book"] == 20 - 4


async def test_redelivered_events_change_nothing(
    db: asyncpg.Pool,
    feed_server: FeedServer,
    pos_feed: FeedConfig,
    client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    feed = PagedFeed([[ev("E1", 10), ev("E2", 20, "receipt", 3)]])
    feed_server.route("/events", feed)
    await run(db, pos_feed, client, settings)
    before = await stored(db)
    # the feed sends the same events again (and one twice within the page)
    feed.pages.append([ev("E2", 20, "receipt", 3), ev("E1", 10), ev("E1", 10)])
    outcome = await run(db, pos_feed, client, settings)
    assert (outcome.outcome, outcome.events_new, outcome.events_duplicate) == ("unchanged", 0, 3)
    after = await stored(db)
    assert after["events"] == before["events"]
    assert after["positions"] == before["positions"]
    assert after["cursor"] == "c2"
    assert (await book_of(db, "SKU-A"))["book"] == 22


async def test_late_events_land_in_their_place_in_time(
    db: asyncpg.Pool,
    feed_server: FeedServer,
    pos_feed: FeedConfig,
    client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    first = [ev("E1", 60, qty=2), ev("E2", 180)]
    late = [ev("L1", 120, qty=3), ev("L2", 90, "count", 15), ev("L3", 30, qty=5)]
    feed = PagedFeed([first])
    feed_server.route("/events", feed)
    await run(db, pos_feed, client, settings)
    assert (await book_of(db, "SKU-A"))["book"] == 17
    feed.pages.append(late)
    await run(db, pos_feed, client, settings)
    row = await book_of(db, "SKU-A")
    # count at 09:30 replaces the base; the sales at 09:00 and 08:30 are before it
    assert (row["book"], row["base_source"], row["base_at"]) == (
        15 - 3 - 1,
        "count",
        T0 + timedelta(minutes=90),
    )
    assert row["last_event_at"] == T0 + timedelta(minutes=180)
    expected = book_position(
        "S1", "SKU-A",
        snapshot_row=SnapshotRow("S1", "SKU-A", 20, 0, 0, T0), location_as_of=T0,
        events=[msgspec.convert(e, PosEvent, strict=False) for e in first + late],
        at=NOW,
    )  # fmt: skip
    assert expected is not None and expected.book == row["book"]
    async with db.acquire() as conn:
        fresh = await conn.fetchval(
            "SELECT last_pos_event_at FROM store_freshness WHERE store_id = 'S1'"
        )
    assert fresh == T0 + timedelta(minutes=180)  # a late event never moves freshness back


# -- bad pages ----------------------------------------------------------------------------
BAD_PAGES: list[tuple[str, bytes, str]] = [
    ("bad json", b'{"events": [{"event_id": "X1", ', "not valid JSON"),
    ("sale qty 0", msgspec.json.encode({"events": [ev("X1", 70), ev("X2", 71, qty=0)], "has_more": False}),
     "$.events[1].qty"),
    ("bad store_id", msgspec.json.encode({"events": [ev("X1", 70, store="S 1")], "has_more": False}),
     "$.events[0].store_id"),
    ("adjustment qty 0", msgspec.json.encode({"events": [ev("X1", 70), ev("X2", 71), ev("X3", 72, "adjustment", 0)],
                                              "has_more": False}), "$.events[2]"),
    ("unknown type", msgspec.json.encode({"events": [{**ev("X1", 70), "type": "theft"}], "has_more": False}),
     "$.events[0]"),
    ("qty beyond int4", msgspec.json.encode({"events": [ev("X1", 70, "receipt", 2**40)], "has_more": False}),
     "$.events[0].qty"),
    ("has_more without cursor", b'{"events": [], "has_more": true}', "next_cursor"),
]  # fmt: skip


@pytest.mark.parametrize("label, body, where", BAD_PAGES, ids=[b[0] for b in BAD_PAGES])
async def test_a_malformed_page_is_rejected_whole_and_says_where(
    db: asyncpg.Pool, feed_server: FeedServer, pos_feed: FeedConfig, client: httpx.AsyncClient,
    settings: Settings, label: str, body: bytes, where: str,
) -> None:  # fmt: skip
    feed = PagedFeed([[ev("E1", 10), ev("E2", 20)]])
    feed_server.route("/events", feed)
    await run(db, pos_feed, client, settings)
    before = await stored(db)
    assert before["cursor"] == "c1" and len(before["events"]) == 2

    feed.faults[1] = [json_reply(body)] * 2
    feed_server.clear_requests()
    outcome = await run(db, pos_feed, client, settings)
    assert outcome.outcome == "failed"
    message = outcome.detail or ""
    assert message.startswith("feed pos-main: page 1 (cursor 'c1')"), message
    assert where in message, message
    assert await stored(db) == before
    st = await state(db)
    assert st.last_error == message and st.consecutive_failures == 1 and st.last_error_at == NOW
    assert len(feed_server.requests_to("/events")) == 1  # bad data is not retried


async def test_an_oversized_page_is_rejected_with_or_without_content_length(
    db: asyncpg.Pool,
    feed_server: FeedServer,
    pos_feed: FeedConfig,
    client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    small = msgspec.structs.replace(settings, max_feed_bytes=2000)
    big = json_reply({"events": [ev(f"E{i}", i) for i in range(40)], "has_more": False})
    assert len(big.body) > 2000
    for reply in (big, Reply(body=big.body, chunked=True, chunk_size=500)):
        feed_server.always("/events", reply)
        outcome = await run(db, pos_feed, client, small)
        assert outcome.outcome == "failed"
        assert "over the limit of 2000 bytes (max_feed_bytes)" in (outcome.detail or "")
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM pos_event") == 0
    assert (await state(db)).consecutive_failures == 2


# -- retries ------------------------------------------------------------------------------
async def test_two_503s_then_200_succeeds(
    db: asyncpg.Pool,
    feed_server: FeedServer,
    pos_feed: FeedConfig,
    client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    feed_server.sequence(
        "/events", Reply(status=503), Reply(status=503),
        json_reply({"events": [ev("E1", 10)], "next_cursor": "n1", "has_more": False}),
    )  # fmt: skip
    outcome = await run(db, pos_feed, client, settings)
    assert (outcome.outcome, outcome.events_new) == ("applied", 1)
    assert len(feed_server.requests_to("/events")) == 3
    st = await state(db)
    assert st.cursor == "n1" and st.consecutive_failures == 0


async def test_always_500_records_failure_and_keeps_the_cursor(
    db: asyncpg.Pool,
    feed_server: FeedServer,
    pos_feed: FeedConfig,
    client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    async with db.acquire() as conn:
        await conn.execute("UPDATE feed SET cursor = 'kept' WHERE name = 'pos-main'")
    feed_server.always("/events", Reply(status=500, body=b"boom"))
    for attempt in (1, 2):
        with capture_logs() as logs:
            outcome = await run(db, pos_feed, client, settings)
        assert outcome.outcome == "failed"
        st = await state(db)
        assert st.consecutive_failures == attempt and st.cursor == "kept"
        assert (
            st.last_error is not None
            and "HTTP 500" in st.last_error
            and "cursor" not in st.last_error
        )
        pulled = [e for e in logs if e["event"] == "feed.pulled"]
        assert (
            len(pulled) == 1
            and pulled[0]["outcome"] == "failed"
            and pulled[0]["error"] == st.last_error
        )
    assert len(feed_server.requests_to("/events")) == 2 * settings.retry_attempts
    assert all(r.param("cursor") == "kept" for r in feed_server.requests)


async def test_404_is_not_retried(
    db: asyncpg.Pool,
    feed_server: FeedServer,
    pos_feed: FeedConfig,
    client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    feed_server.always("/events", Reply(status=404))
    outcome = await run(db, pos_feed, client, settings)
    assert outcome.outcome == "failed" and "HTTP 404" in (outcome.detail or "")
    assert len(feed_server.requests_to("/events")) == 1


async def test_a_stalled_body_times_out_and_is_retried(
    db: asyncpg.Pool, feed_server: FeedServer, client: httpx.AsyncClient, settings: Settings
) -> None:
    feed = FeedConfig(
        name="pos-main",
        kind="pos",
        url=feed_server.url("/events"),
        timeout=timedelta(milliseconds=300),
    )
    good = json_reply({"events": [ev("E1", 10)], "has_more": False})
    feed_server.sequence("/events", Reply(body=good.body, stall_after=3, stall_for=10), good)
    outcome = await run(db, feed, client, settings)
    assert (outcome.outcome, outcome.events_new) == ("applied", 1)
    assert len(feed_server.requests_to("/events")) == 2


async def test_auth_header_comes_from_the_environment(
    db: asyncpg.Pool, feed_server: FeedServer, client: httpx.AsyncClient, settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    feed = FeedConfig(name="pos-main", kind="pos", url=feed_server.url("/events"),
                      auth_header="Authorization", auth_env="POS_TEST_TOKEN")  # fmt: skip
    feed_server.always("/events", json_reply({"events": [], "has_more": False}))
    monkeypatch.delenv("POS_TEST_TOKEN", raising=False)
    outcome = await run(db, feed, client, settings)
    assert outcome.outcome == "failed" and "POS_TEST_TOKEN is not set" in (outcome.detail or "")
    assert feed_server.requests == []
    monkeypatch.setenv("POS_TEST_TOKEN", "Bearer s3cret")
    outcome = await run(db, feed, client, settings)
    assert outcome.outcome == "unchanged"
    assert feed_server.requests[0].headers["authorization"] == "Bearer s3cret"
    assert (await state(db)).consecutive_failures == 0


# -- one puller per feed ------------------------------------------------------------------
async def test_concurrent_runs_of_one_feed_pull_once(
    db: asyncpg.Pool,
    feed_server: FeedServer,
    pos_feed: FeedConfig,
    client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    body = json_reply({"events": [ev("E1", 10), ev("E2", 11)], "has_more": False}).body
    feed_server.always(
        "/events", Reply(body=body, delay=0.5, headers={"Content-Type": "application/json"})
    )
    outcomes = await asyncio.gather(*(run(db, pos_feed, client, settings) for _ in range(3)))
    assert sorted(o.outcome for o in outcomes) == ["applied", "skipped", "skipped"]
    assert len(feed_server.requests_to("/events")) == 1
    async with db.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM pos_event") == 2
    # the lock is released afterwards: the next run pulls
    assert (await run(db, pos_feed, client, settings)).outcome == "unchanged"


async def test_run_feed_dispatches_warehouse_feeds(
    pool: asyncpg.Pool, feed_server: FeedServer, client: httpx.AsyncClient, settings: Settings
) -> None:
    feed = FeedConfig(name="wh", kind="warehouse", url=feed_server.url("/snap.csv"))
    csv = "location_id,sku,on_hand,reserved,in_transit,as_of\nS9,SKU-A,7,1,2,2026-11-23T06:00:00Z\n"
    feed_server.always(
        "/snap.csv", Reply(body=csv.encode(), headers={"Content-Type": "text/csv", "ETag": '"v1"'})
    )
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [feed])
    outcome = await run(pool, feed, client, settings)
    assert outcome.outcome == "applied"
    assert (await book_of(pool, "SKU-A", store="S9"))["book"] == 6
    st = await state(pool, "wh")
    assert st.consecutive_failures == 0 and st.last_success_at == NOW and st.etag == '"v1"'


async def test_a_cursor_that_goes_back_is_rejected_and_the_good_pages_stay(
    db: asyncpg.Pool,
    feed_server: FeedServer,
    pos_feed: FeedConfig,
    client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    # page 0 -> c1, page 1 -> c2, then the source answers c2 with next_cursor c1 again
    feed_server.route("/events", lambda req: json_reply({
        None: {"events": [ev("E1", 10)], "next_cursor": "c1", "has_more": True},
        "c1": {"events": [ev("E2", 11)], "next_cursor": "c2", "has_more": True},
        "c2": {"events": [ev("E3", 12)], "next_cursor": "c1", "has_more": True},
    }[req.param("cursor")]))  # fmt: skip
    outcome = await run(db, pos_feed, client, settings)
    assert outcome.outcome == "failed" and outcome.pages == 2 and outcome.events_new == 2
    assert outcome.detail == (
        "feed pos-main: page 3 (cursor 'c2'): cursor went back: next_cursor 'c1' "
        "was already used for page 2 of this run"
    )
    after = await stored(db)
    assert [e[1] for e in after["events"]] == ["E1", "E2"]  # E3's page is not stored
    assert after["cursor"] == "c2"  # the resume point of the last good page
    st = await state(db)
    assert st.last_error == outcome.detail and st.consecutive_failures == 1
    assert (await book_of(db, "SKU-A"))["book"] == 18


async def test_a_run_stops_after_max_pages_and_the_next_run_continues(
    db: asyncpg.Pool,
    feed_server: FeedServer,
    pos_feed: FeedConfig,
    client: httpx.AsyncClient,
    settings: Settings,
) -> None:
    """A source that always has more cannot hold one run forever: it stops at the page
    limit with everything stored and the cursor saved, and the next run goes on."""
    pages = MAX_PAGES_PER_RUN + 2
    feed = PagedFeed([
        [{"event_id": f"E{i}", "type": "sale", "store_id": "S1", "sku": "SKU-A", "qty": 1,
          "occurred_at": (T0 + timedelta(seconds=i + 1)).isoformat().replace("+00:00", "Z")}]
        for i in range(pages)
    ])  # fmt: skip
    feed_server.route("/events", feed)
    outcome = await run(db, pos_feed, client, settings)
    assert (outcome.outcome, outcome.pages, outcome.events_new) == ("applied", 1000, 1000)
    assert outcome.detail == "stopped after 1000 pages; the next run continues"
    assert len(feed_server.requests_to("/events")) == MAX_PAGES_PER_RUN
    st = await state(db)
    assert st.cursor == "c1000" and st.consecutive_failures == 0 and st.last_success_at == NOW
    assert (await book_of(db, "SKU-A"))["book"] == 20 - 1000

    feed_server.clear_requests()
    outcome = await run(db, pos_feed, client, settings)
    assert (outcome.outcome, outcome.pages, outcome.events_new, outcome.detail) == (
        "applied", 2, 2, None
    )  # fmt: skip
    assert [r.param("cursor") for r in feed_server.requests_to("/events")] == ["c1000", "c1001"]
    assert (await state(db)).cursor == "c1002"
    assert (await book_of(db, "SKU-A"))["book"] == 20 - pages


def test_events_up_to_max_ahead_of_the_clock_pass_and_later_ones_are_named() -> None:
    from reconcilers.pos import MAX_AHEAD, ahead_problem

    events = [msgspec.convert(ev("X1", 0), PosEvent, strict=False),
              msgspec.convert(ev("X2", 0), PosEvent, strict=False)]  # fmt: skip
    now = T0 - MAX_AHEAD
    assert ahead_problem(events, now=now, feed="f", where="page 1") is None
    late = [events[0], msgspec.structs.replace(events[1], occurred_at=T0 + timedelta(seconds=1))]
    problem = ahead_problem(late, now=now, feed="f", where="page 1")
    assert problem is not None and str(problem) == (
        "feed f: page 1: invalid page: occurred_at 2026-11-23T08:00:01+00:00 is 0:15:01 ahead "
        "of the service clock (more than 0:15:00; a device clock is wrong?) - at "
        "`$.events[1].occurred_at`"
    )

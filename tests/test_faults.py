"""Feed faults end to end: real PostgreSQL, a real fault-injecting HTTP server.

For each fault the same four steps (``docs/operations.md`` maps faults to tests):

1. both feeds pulled well: store S1 promises SKU-A;
2. the faulty pull: the outcome and the ``feed`` row show the error, and everything
   stored (events, stock in force, positions, freshness, cursor, ETag) is exactly
   what it was;
3. time passes beyond the policy's ``max_data_age`` with no good pull: the badge
   refresh withdraws the promise (``unknown``, ``stale_data``);
4. the next good pull heals it: applied, failures reset, the promise is back.
"""

from __future__ import annotations

import gzip
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest

from app.db.feeds import FeedState, get_feed, upsert_feeds
from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.feeds_config import FeedConfig
from reconcilers.jobs import run_feed, run_refresh
from reconcilers.outcome import PullOutcome
from tests.feedserver import FeedServer, PagedFeed, Reply, json_reply, text_reply

POLICY = Policy()  # buffer 2, max_data_age 6 h
START = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
HEADER = "location_id,sku,on_hand,reserved,in_transit,as_of"


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


def iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


def sale(event_id: str, at: datetime, qty: int = 1, sku: str = "SKU-A") -> dict[str, Any]:
    return {"event_id": event_id, "type": "sale", "store_id": "S1", "sku": sku, "qty": qty,
            "occurred_at": iso(at)}  # fmt: skip


def snapshot_csv(as_of: datetime, a: int = 20, b: int = 10) -> str:
    return f"{HEADER}\nS1,SKU-A,{a},0,0,{iso(as_of)}\nS1,SKU-B,{b},0,0,{iso(as_of)}\n"


def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (the port was just freed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/events"


@dataclass
class World:
    pool: asyncpg.Pool
    server: FeedServer
    client: httpx.AsyncClient
    settings: Settings
    clock: Clock
    pos: FeedConfig
    wh: FeedConfig
    events: PagedFeed

    async def run(self, feed: FeedConfig) -> PullOutcome:
        return await run_feed(
            self.pool, feed, self.client, settings=self.settings, policy=POLICY, clock=self.clock
        )

    async def state(self, name: str) -> FeedState:
        async with self.pool.acquire() as conn:
            found = await get_feed(conn, name)
        assert found is not None
        return found

    async def stored(self) -> dict[str, list[tuple[Any, ...]]]:
        """Everything a pull may change (quarantine records aside: they are the error's record)."""
        queries = {
            "events": "SELECT feed, event_id, type, store_id, sku, qty, occurred_at FROM pos_event"
            " ORDER BY 1, 2",
            "stock": "SELECT * FROM warehouse_stock ORDER BY 1, 2",
            "locations": "SELECT * FROM warehouse_location ORDER BY 1",
            "freshness": "SELECT * FROM store_freshness ORDER BY 1",
            "positions": "SELECT * FROM book_position ORDER BY 1, 2",
            "applied": "SELECT snapshot_id FROM warehouse_snapshot WHERE status = 'applied'"
            " ORDER BY 1",
            "resume": "SELECT name, cursor, etag FROM feed ORDER BY 1",
        }
        return {k: [tuple(r) for r in await self.pool.fetch(q)] for k, q in queries.items()}

    async def badge(self, sku: str = "SKU-A") -> tuple[str, list[str], int | None]:
        row = await self.pool.fetchrow(
            "SELECT badge_state, reasons, book FROM book_position WHERE store_id = 'S1' AND sku = $1",
            sku,
        )
        assert row is not None
        return row["badge_state"], list(row["reasons"]), row["book"]


@pytest.fixture
async def world(
    pool: asyncpg.Pool, feed_server: FeedServer, settings: Settings
) -> AsyncIterator[World]:
    clock = Clock()
    pos = FeedConfig(name="pos", kind="pos", url=feed_server.url("/events"),
                     timeout=timedelta(seconds=5))  # fmt: skip
    wh = FeedConfig(name="wh", kind="warehouse", url=feed_server.url("/snap.csv"),
                    timeout=timedelta(seconds=5))  # fmt: skip
    events = PagedFeed([[sale("E1", START - timedelta(minutes=5))]])
    feed_server.route("/events", events)
    feed_server.always(
        "/snap.csv",
        text_reply(snapshot_csv(START - timedelta(minutes=10)), headers={"ETag": '"v1"'}),
    )
    async with pool.acquire() as conn:
        await upsert_feeds(conn, [pos, wh])
    async with httpx.AsyncClient() as client:
        w = World(pool, feed_server, client, settings, clock, pos, wh, events)
        assert (await w.run(wh)).outcome == "applied"
        assert (await w.run(pos)).outcome == "applied"
        assert await w.badge() == ("in_stock", ["margin_ok"], 19)
        yield w


# -- the faults ---------------------------------------------------------------------------
# (id, kind, what the faulty pull is served, words the error must hold, outcome)
# A "serve" function scripts the server (or returns another URL for the feed).


def pos_fault(*replies: Reply) -> Callable[[World], str | None]:
    def serve(w: World) -> None:
        w.events.faults[1] = list(replies) * 10  # every retry of the next page
        return None

    return serve


def wh_fault(reply: Reply) -> Callable[[World], str | None]:
    def serve(w: World) -> None:
        w.server.always("/snap.csv", reply)
        return None

    return serve


def pos_json(body: Any) -> Reply:
    return json_reply(body)


GOOD_CSV = snapshot_csv(START).encode()
FAR_FUTURE = datetime(2031, 1, 1, tzinfo=UTC)
FAULTS: list[tuple[str, str, Callable[[World], str | None], str, str]] = [
    ("pos-connection-refused", "pos", lambda w: refused_url(), "ConnectError", "failed"),
    ("pos-timeout-before-headers", "pos", pos_fault(Reply(delay=5)), "ReadTimeout", "failed"),
    ("pos-headers-then-stall", "pos",
     pos_fault(json_reply({"events": [], "has_more": False}, stall_after=2, stall_for=10)),
     "ReadTimeout", "failed"),
    ("pos-500", "pos", pos_fault(Reply(status=500)), "HTTP 500", "failed"),
    ("pos-502-retry-after-0", "pos", pos_fault(Reply(status=502, headers={"Retry-After": "0"})),
     "HTTP 502", "failed"),
    ("pos-503-retry-after-too-long", "pos",
     pos_fault(Reply(status=503, headers={"Retry-After": "3600"})), "HTTP 503", "failed"),
    ("pos-429", "pos", pos_fault(Reply(status=429, headers={"Retry-After": "0"})), "HTTP 429",
     "failed"),
    ("pos-malformed-json", "pos", pos_fault(pos_json(b'{"events": [')), "not valid JSON", "failed"),
    ("pos-invalid-event", "pos",
     pos_fault(pos_json({"events": [sale("E9", START), {**sale("E10", START), "qty": -3}],
                         "has_more": False})), "$.events[1].qty", "failed"),
    ("pos-clock-skewed-far-future", "pos",
     pos_fault(pos_json({"events": [sale("E9", START), sale("E10", FAR_FUTURE)],
                         "has_more": False})),
     "ahead of the service clock", "failed"),
    ("pos-cut-mid-body", "pos",
     pos_fault(json_reply({"events": [sale("E9", START)], "has_more": False}, cut_after=12)),
     "RemoteProtocolError", "failed"),
    ("wh-connection-refused", "warehouse", lambda w: refused_url(), "ConnectError", "failed"),
    ("wh-timeout-before-headers", "warehouse", wh_fault(Reply(delay=5)), "ReadTimeout", "failed"),
    ("wh-headers-then-stall", "warehouse",
     wh_fault(Reply(body=GOOD_CSV, stall_after=60, stall_for=10)), "ReadTimeout", "failed"),
    ("wh-500", "warehouse", wh_fault(Reply(status=500)), "HTTP 500", "failed"),
    ("wh-503-retry-after-0", "warehouse", wh_fault(Reply(status=503, headers={"Retry-After": "0"})),
     "HTTP 503", "failed"),
    ("wh-429", "warehouse", wh_fault(Reply(status=429)), "HTTP 429", "failed"),
    ("wh-truncated-mid-row", "warehouse",
     wh_fault(text_reply(snapshot_csv(START)[:-14])), "line 3", "quarantined"),
    ("wh-connection-cut-mid-row", "warehouse", wh_fault(Reply(body=GOOD_CSV, cut_after=70)),
     "RemoteProtocolError", "failed"),
    ("wh-wrong-columns", "warehouse",
     wh_fault(text_reply("location_id,sku,on_hand,as_of\nS1,SKU-A,3,2026-11-23T08:00:00Z\n")),
     "expected header", "quarantined"),
    ("wh-empty-snapshot", "warehouse", wh_fault(text_reply(HEADER + "\n")), "no rows",
     "quarantined"),
    ("wh-empty-body", "warehouse", wh_fault(text_reply("")), "received an empty line",
     "quarantined"),
    ("wh-corrupt-gzip", "warehouse",
     wh_fault(Reply(body=b"not gzip at all", headers={"Content-Encoding": "gzip"})),
     "cannot be decoded", "quarantined"),
    ("wh-bad-value", "warehouse",
     wh_fault(text_reply(f"{HEADER}\nS1,SKU-A,many,0,0,{iso(START)}\nS1,SKU-B,1,0,0,{iso(START)}\n")),
     "line 2", "quarantined"),
]  # fmt: skip


@pytest.mark.parametrize("label, kind, serve, words, expected", FAULTS, ids=[f[0] for f in FAULTS])
async def test_a_fault_leaves_data_as_it_was_degrades_badges_and_heals(
    world: World,
    label: str,
    kind: str,
    serve: Callable[[World], str | None],
    words: str,
    expected: str,
) -> None:
    w = world
    feed = w.pos if kind == "pos" else w.wh
    w.clock.now = START + timedelta(minutes=30)
    before = await w.stored()

    # 2. the faulty pull
    url = serve(w)
    # a short timeout for the faulty runs only, so the good ones never time out on a busy box
    faulty = msgspec.structs.replace(feed, url=url or feed.url, timeout=timedelta(milliseconds=250))
    outcome = await w.run(faulty)
    assert outcome.outcome == expected, outcome.detail
    assert words in (outcome.detail or ""), outcome.detail
    st = await w.state(feed.name)
    assert st.last_error == outcome.detail and st.last_error_at == w.clock.now
    assert st.consecutive_failures == 1
    assert await w.stored() == before
    assert await w.badge() == ("in_stock", ["margin_ok"], 19)  # still young enough

    # 3. no good pull for longer than max_data_age: no promise any more
    w.clock.now = START + POLICY.max_data_age + timedelta(minutes=1)
    assert (await w.run(faulty)).outcome == expected
    refreshed = await run_refresh(w.pool, settings=w.settings, policy=POLICY, clock=w.clock)
    assert refreshed.outcome == "refreshed" and refreshed.aging >= 1
    state, reasons, book = await w.badge()
    assert (state, book) == ("unknown", 19) and "stale_data" in reasons
    assert (await w.state(feed.name)).consecutive_failures == 2

    # 4. the next good pull heals it
    w.server.clear_requests()
    w.events.faults.clear()
    w.events.pages.append([sale("E2", w.clock.now - timedelta(minutes=1), qty=2)])
    w.server.always("/snap.csv", text_reply(snapshot_csv(w.clock.now - timedelta(minutes=1), a=18)))
    healed = await w.run(feed)
    assert healed.outcome == "applied", healed.detail
    st = await w.state(feed.name)
    assert st.consecutive_failures == 0 and st.last_success_at == w.clock.now
    assert await w.badge() == ("in_stock", ["margin_ok"], 17 if kind == "pos" else 18)


async def test_retries_follow_the_status_and_retry_after(world: World) -> None:
    """5xx and 429 are retried (Retry-After honoured), a Retry-After longer than the
    retry budget is not waited for, a 4xx is not retried."""
    w = world
    # A budget that only the Retry-After of 3600 s exceeds: with the suite's 2 s, a busy
    # host once ran out of it after two of three attempts (CI, stop 28).
    w.settings = msgspec.structs.replace(w.settings, retry_timeout=timedelta(seconds=60))
    attempts = w.settings.retry_attempts
    for reply, requests in [
        (Reply(status=502), attempts),
        (Reply(status=503, headers={"Retry-After": "0"}), attempts),
        (Reply(status=429, headers={"Retry-After": "0"}), attempts),
        (Reply(status=503, headers={"Retry-After": "3600"}), 1),
        (Reply(status=400), 1),
    ]:
        w.server.clear_requests()
        w.events.faults[1] = [reply] * 10
        assert (await w.run(w.pos)).outcome == "failed"
        assert len(w.server.requests_to("/events")) == requests, reply
    # then a 503 with Retry-After: 0 followed by the page: one run, applied
    w.server.clear_requests()
    w.events.pages.append([sale("E2", START)])
    w.events.faults[1] = [Reply(status=503, headers={"Retry-After": "0"})]
    outcome = await w.run(w.pos)
    assert (outcome.outcome, outcome.events_new) == ("applied", 1)
    assert len(w.server.requests_to("/events")) == 2


async def test_a_gzip_page_and_a_gzip_snapshot_are_applied(world: World) -> None:
    w = world
    w.clock.now = START + timedelta(minutes=30)
    page = msgspec.json.encode({"events": [sale("E2", START)], "next_cursor": "c2",
                                "has_more": False})  # fmt: skip
    w.events.faults[1] = [Reply(body=gzip.compress(page), headers={
        "Content-Type": "application/json", "Content-Encoding": "gzip"})]  # fmt: skip
    assert (await w.run(w.pos)).events_new == 1
    w.server.always("/snap.csv", Reply(body=gzip.compress(snapshot_csv(START, a=30).encode()),
                                       headers={"Content-Encoding": "gzip"}))  # fmt: skip
    assert (await w.run(w.wh)).outcome == "applied"
    assert await w.badge() == ("in_stock", ["margin_ok"], 30)  # E2 is at the snapshot's as_of


async def test_duplicate_and_late_events_across_pages_count_once_in_time_order(
    world: World,
) -> None:
    w = world
    w.clock.now = START + timedelta(hours=1)
    w.events.pages.append([
        sale("E3", START + timedelta(minutes=20)),
        sale("E1", START - timedelta(minutes=5)),  # redelivered
        sale("E2", START - timedelta(minutes=8), qty=3),  # late: before the snapshot's as_of
    ])  # fmt: skip
    w.events.pages.append([sale("E3", START + timedelta(minutes=20)), sale("E2", START)])
    outcome = await w.run(w.pos)
    assert (outcome.outcome, outcome.events_new, outcome.events_duplicate) == ("applied", 2, 3)
    # snapshot as_of 07:50 holds 20; E2 (07:52, 3) and E3 (08:20, 1) and E1 (07:55, 1) after it
    assert await w.badge() == ("in_stock", ["margin_ok"], 20 - 3 - 1 - 1)
    assert await w.pool.fetchval("SELECT count(*) FROM pos_event") == 3


async def test_secrets_never_reach_logs_feed_state_or_the_admin_view(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The auth header's value, a password in the URL and a token in its query stay
    out of every log line and the feed row, on success and on failure alike."""
    from structlog.testing import capture_logs

    from app.api.admin import redacted_url

    monkeypatch.setenv("FAULTS_POS_TOKEN", "Bearer tok-SECRET-1")
    url = w_url = world.server.url("/events").replace("http://", "http://user:pw-SECRET-2@")
    feed = msgspec.structs.replace(
        world.pos, url=f"{w_url}?key=q-SECRET-3", auth_header="Authorization",
        auth_env="FAULTS_POS_TOKEN",
    )  # fmt: skip
    world.events.pages.append([sale("E2", START)])
    with capture_logs() as logs:
        ok = await world.run(feed)
        world.events.faults[2] = [Reply(status=500)] * 10
        world.events.pages.append([sale("E3", START)])
        failed = await world.run(feed)
    assert (ok.outcome, failed.outcome) == ("applied", "failed")
    sent = world.server.requests_to("/events")[-1]
    assert sent.param("key") == "q-SECRET-3" and sent.headers["authorization"]  # they were used
    state = await world.state("pos")
    seen = repr(logs) + repr(state) + repr(failed) + redacted_url(feed.url)
    assert "HTTP 500" in seen and url.split("@")[1] in seen
    for secret in ("SECRET-1", "SECRET-2", "SECRET-3", sent.headers["authorization"]):
        assert secret not in seen, secret

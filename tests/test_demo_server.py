"""The feed simulator on a real HTTP server (127.0.0.1): the contract's formats, on the wire."""

from __future__ import annotations

import csv
import io
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
import pytest

from app.demo.feed import FeedSimulator
from app.demo.server import SimulatorServer
from app.domain.model import PosEvent, PosPage, Product, SnapshotRow, Store
from tests.test_demo_simulation import replay_book


class SteppingClock:
    """A clock that moves ``step`` forward on every reading (the ticker reads it)."""

    def __init__(self, start: datetime, step: timedelta) -> None:
        self.now, self.step = start, step
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            self.now += self.step
            return self.now


@pytest.fixture
def simulator() -> Iterator[SimulatorServer]:
    """Half an hour of trading already in the feed, ticking every 50 ms in real time."""
    feed = FeedSimulator.create(seed=7, start=datetime.now(UTC) - timedelta(minutes=30))
    with SimulatorServer(feed, port=0, tick_seconds=0.05) as server:
        yield server


def all_events(client: httpx.Client, url: str) -> tuple[list[PosEvent], int]:
    """Page the POS feed to its end; return the events and how many pages it took."""
    events: list[PosEvent] = []
    cursor: str | None = None
    pages = 0
    while True:
        r = client.get(url, params={"cursor": cursor} if cursor else None)
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        page = msgspec.json.decode(r.content, type=PosPage)
        pages += 1
        assert len(page.events) <= 500
        events.extend(page.events)
        assert page.next_cursor
        cursor = page.next_cursor
        if not page.has_more:
            return events, pages


def parse_snapshot(body: str) -> list[SnapshotRow]:
    return [
        msgspec.convert(row, SnapshotRow, strict=False) for row in csv.DictReader(io.StringIO(body))
    ]


def test_pos_feed_pages_to_the_end_without_duplicates(simulator: SimulatorServer) -> None:
    with httpx.Client(timeout=10) as client:
        first = client.get(simulator.url("/pos/events"))
        assert b'"occurred_at":"' in first.content and b'Z"' in first.content  # RFC 3339, UTC as Z
        events, pages = all_events(client, simulator.url("/pos/events"))
        assert pages >= 3
        ids = [e.event_id for e in events]
        assert len(ids) == len(set(ids))
        assert [e.occurred_at for e in events] == sorted(e.occurred_at for e in events)
        time.sleep(0.3)  # the simulator keeps trading; a fresh read resumes, never repeats
        more, _ = all_events(client, simulator.url("/pos/events"))
        assert [e.event_id for e in more[: len(events)]] == ids
        r = client.get(simulator.url("/pos/events"), params={"cursor": "not-a-cursor"})
        assert r.status_code == 400


def test_snapshot_parses_has_an_etag_and_reflects_events_up_to_as_of(
    simulator: SimulatorServer,
) -> None:
    with httpx.Client(timeout=10) as client:
        r = client.get(simulator.url("/warehouse/snapshot.csv"))
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        etag = r.headers["etag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        rows = parse_snapshot(r.text)
        assert len(rows) > 1000
        (as_of,) = {row.as_of for row in rows}

        again = client.get(
            simulator.url("/warehouse/snapshot.csv"), headers={"If-None-Match": etag}
        )
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag

        events, _ = all_events(client, simulator.url("/pos/events"))
    assert sum(e.occurred_at <= as_of for e in events) > 500  # the snapshot has history to reflect
    expected = replay_book(simulator.feed.simulation.initial_book, events, until=as_of)
    listed = {(row.location_id, row.sku): row for row in rows}
    for pair, book in expected.items():
        row = listed.get(pair)
        assert (row.on_hand - row.reserved if row else 0) == book, pair


def test_it_re_snapshots_and_a_new_snapshot_gets_a_new_etag() -> None:
    start = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
    feed = FeedSimulator.create(seed=3, start=start, snapshot_every=timedelta(minutes=2))
    clock = SteppingClock(start, timedelta(minutes=1))
    with (
        SimulatorServer(feed, port=0, tick_seconds=0.05, clock=clock) as sim,
        httpx.Client(timeout=10) as client,
    ):
        first = client.get(sim.url("/warehouse/snapshot.csv"))
        deadline = time.monotonic() + 10
        while True:
            r = client.get(
                sim.url("/warehouse/snapshot.csv"), headers={"If-None-Match": first.headers["etag"]}
            )
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            assert r.status_code == 304
            time.sleep(0.05)
        assert r.status_code == 200 and r.headers["etag"] != first.headers["etag"]
        assert parse_snapshot(r.text)[0].as_of > parse_snapshot(first.text)[0].as_of


def test_reference_files_and_the_shelf(simulator: SimulatorServer) -> None:
    with httpx.Client(timeout=10) as client:
        stores = [
            msgspec.convert(row, Store, strict=False)
            for row in csv.DictReader(io.StringIO(client.get(simulator.url("/stores.csv")).text))
        ]
        products = [
            msgspec.convert(row, Product, strict=False)
            for row in csv.DictReader(io.StringIO(client.get(simulator.url("/products.csv")).text))
        ]
        assert len(stores) == 5 and len(products) == 300
        assert len({p.category for p in products}) >= 5
        shelf = client.get(simulator.url(f"/shelf/{stores[0].store_id}/{products[0].sku}")).json()
        assert 0 <= shelf["shelf"] <= shelf["book"]
        assert client.get(simulator.url("/shelf/NOPE/SKU-0001")).status_code == 404
        assert client.get(simulator.url("/health")).json() == {"status": "ok"}

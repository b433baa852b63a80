"""Generated POS event streams with duplicates and reordering, delivered through the
real puller (HTTP pages from a real server, several runs), end in the book position
a simple reference computation gives (written here, independently of app.domain.book).

The reference is the contract's rule read literally: base = the snapshot row
(on_hand − reserved at as_of); the latest ``count`` strictly after that replaces it
(ties: the larger event_id); then every movement strictly after the base's time and
up to now.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from app.db.feeds import upsert_feeds
from app.domain.policy import Policy
from app.settings import load_settings
from reconcilers.feeds_config import FeedConfig
from reconcilers.jobs import run_feed
from tests.feedserver import FeedServer, PagedFeed

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
NOW = T0 + timedelta(minutes=40)
SKUS = ("SKU-A", "SKU-B")
SIGN = {"sale": -1, "return": 1, "receipt": 1, "adjustment": 1}
_numbers = itertools.count()


@st.composite
def events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Unique events (zero-padded ids, so id order is the same in Python and SQL)."""
    out = []
    for i in range(draw(st.integers(0, 20))):
        kind = draw(st.sampled_from(["sale", "return", "receipt", "adjustment", "count"]))
        event: dict[str, Any] = {
            "event_id": f"E{i:03d}", "type": kind, "sku": draw(st.sampled_from(SKUS)),
            "occurred_at": (T0 + timedelta(minutes=draw(st.integers(0, 30)))).isoformat(),
        }  # fmt: skip
        if kind == "count":
            event["on_hand"] = draw(st.integers(0, 30))
        elif kind == "adjustment":
            event["qty"] = draw(st.integers(-9, 9).filter(bool))
        else:
            event["qty"] = draw(st.integers(1, 9))
        out.append(event)
    return out


def reference(
    evs: list[dict[str, Any]], sku: str, snapshot: tuple[int, int, int] | None
) -> int | None:
    """The book of ``sku`` at NOW by the contract's rule (None: no base at all)."""
    mine = [e for e in evs if e["sku"] == sku]
    base: int | None = None
    base_at = datetime.min.replace(tzinfo=UTC)
    if snapshot is not None:
        on_hand, reserved, minute = snapshot
        base, base_at = on_hand - reserved, T0 + timedelta(minutes=minute)
    counts = [e for e in mine if e["type"] == "count"
              and datetime.fromisoformat(e["occurred_at"]) > base_at]  # fmt: skip
    if counts:
        latest = max(counts, key=lambda e: (e["occurred_at"], e["event_id"]))
        base, base_at = latest["on_hand"], datetime.fromisoformat(latest["occurred_at"])
    if base is None:
        return None
    return base + sum(
        SIGN[e["type"]] * e["qty"]
        for e in mine
        if e["type"] != "count" and base_at < datetime.fromisoformat(e["occurred_at"]) <= NOW
    )


@hsettings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    evs=events(),
    redelivered=st.lists(st.integers(0, 19), max_size=10),
    cuts=st.lists(st.integers(0, 30), max_size=4),
    runs=st.integers(1, 3),
    snapshots=st.fixed_dictionaries(
        {
            sku: st.none() | st.tuples(st.integers(0, 40), st.integers(0, 5), st.integers(0, 30))
            for sku in SKUS
        }
    ),
    rnd=st.randoms(use_true_random=False),
)
def test_pulled_streams_with_duplicates_and_reordering_give_the_reference_book(
    db_dsn: str,
    feed_server: FeedServer,
    evs: list[dict[str, Any]],
    redelivered: list[int],
    cuts: list[int],
    runs: int,
    snapshots: dict[str, tuple[int, int, int] | None],
    rnd: Any,
) -> None:
    n = next(_numbers)
    store = f"S{n}"
    for e in evs:
        e["store_id"] = store
    deliveries = [*evs, *(evs[i] for i in redelivered if i < len(evs))]
    rnd.shuffle(deliveries)
    bounds = sorted({0, len(deliveries), *(min(c, len(deliveries)) for c in cuts)})
    pages = [deliveries[a:b] for a, b in itertools.pairwise(bounds)] or [[]]
    feed = FeedConfig(name=f"pos{n}", kind="pos", url=feed_server.url(f"/e{n}"))
    served = PagedFeed([])
    feed_server.route(f"/e{n}", served)
    settings = load_settings({}, retry_attempts=1, log_format="console")

    async def run() -> dict[str, int | None]:
        pool = await asyncpg.create_pool(db_dsn, min_size=1, max_size=3,
                                         server_settings={"timezone": "UTC"})  # fmt: skip
        try:
            async with pool.acquire() as conn:
                await upsert_feeds(conn, [feed])
                for sku, snap in snapshots.items():
                    if snap is not None:
                        on_hand, reserved, minute = snap
                        await conn.execute(
                            "INSERT INTO warehouse_stock VALUES ($1, $2, $3, $4, 0, $5, 1)",
                            store, sku, on_hand, min(reserved, on_hand),
                            T0 + timedelta(minutes=minute),
                        )  # fmt: skip
            async with httpx.AsyncClient() as client:
                per_run = -(-len(pages) // runs)
                for start in range(0, len(pages), per_run):  # pages arrive over several runs
                    served.pages.extend(pages[start : start + per_run])
                    outcome = await run_feed(pool, feed, client, settings=settings,
                                             policy=Policy(), clock=lambda: NOW)  # fmt: skip
                    assert outcome.outcome in ("applied", "unchanged"), outcome.detail
            rows = await pool.fetch(
                "SELECT sku, book FROM book_position WHERE store_id = $1", store
            )
            stored = await pool.fetchval(
                "SELECT count(*) FROM pos_event WHERE feed = $1", feed.name
            )
            assert stored == len(evs)  # every event once, whatever was redelivered
            return {r["sku"]: r["book"] for r in rows}
        finally:
            await pool.close()

    books = asyncio.run(run())
    clamped = {
        sku: None if s is None else (s[0], min(s[1], s[0]), s[2]) for sku, s in snapshots.items()
    }
    for sku in {e["sku"] for e in evs}:
        assert books.get(sku) == reference(evs, sku, clamped[sku]), (sku, evs, clamped[sku])

"""A seeded store for the managers' tests: one item per reason a report row exists,
one item that needs nothing, and a second store that a manager of S1 must never see.

NOW is 2026-11-23T12:00Z; the warehouse snapshot is two hours old (fresh).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from app.db.events import insert_events
from app.db.feeds import upsert_feeds
from app.db.positions import recompute_stores
from app.domain.model import Count, PosEvent, Sale
from app.domain.policy import Policy
from reconcilers.feeds_config import FeedConfig

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
AS_OF = NOW - timedelta(hours=2)
POLICY = Policy(safety_buffer=2, low_stock_below=3, max_data_age=timedelta(hours=6))
FEED = FeedConfig(name="pos-test", kind="pos", url="http://127.0.0.1:1/events")

# sku -> (name, category, warehouse on_hand, reserved)
PRODUCTS: dict[str, tuple[str | None, str | None, int, int]] = {
    "SKU-OK": ("Marteau", "tools", 20, 0),
    "SKU-DIS": ('Tournevis, plat "pro"', "tools", 10, 0),
    "SKU-PH": ("Scie égoïne", "tools", 6, 0),
    "SKU-SP": ("Niveau", None, 5, 1),
    "SKU-FAST": ('=HYPERLINK("http://evil.example","click")', "+cat", 30, 0),
    "SKU-HELD": ("@Perceuse", "-power", 8, 0),
}


def _events() -> list[PosEvent]:
    n = 0

    def eid() -> str:
        nonlocal n
        n += 1
        return f"E{n:05d}"

    events: list[PosEvent] = []
    # SKU-OK: one sale a few days ago; nothing to look at.
    events.append(Sale(event_id=eid(), store_id="S1", sku="SKU-OK", qty=1,
                       occurred_at=NOW - timedelta(days=3)))  # fmt: skip
    # SKU-DIS: a count of 4 a day ago, a sale before and one after the snapshot:
    # warehouse view 10 - 1 = 9, count view 4 - 2 = 2.
    events.append(Count(event_id=eid(), store_id="S1", sku="SKU-DIS", on_hand=4,
                        occurred_at=NOW - timedelta(days=1)))  # fmt: skip
    events.append(Sale(event_id=eid(), store_id="S1", sku="SKU-DIS", qty=1,
                       occurred_at=NOW - timedelta(hours=5)))  # fmt: skip
    events.append(Sale(event_id=eid(), store_id="S1", sku="SKU-DIS", qty=1,
                       occurred_at=NOW - timedelta(hours=1)))  # fmt: skip
    # SKU-PH: 12 sales between 27 and 16 days ago, then silence for 16 days.
    for day in range(16, 28):
        events.append(Sale(event_id=eid(), store_id="S1", sku="SKU-PH", qty=1,
                           occurred_at=NOW - timedelta(days=day)))  # fmt: skip
    # SKU-FAST: 10 sold in the last week, last counted 60 days ago.
    events.append(Count(event_id=eid(), store_id="S1", sku="SKU-FAST", on_hand=40,
                        occurred_at=NOW - timedelta(days=60)))  # fmt: skip
    for day in range(10):
        events.append(Sale(event_id=eid(), store_id="S1", sku="SKU-FAST", qty=1,
                           occurred_at=NOW - timedelta(days=6, hours=day)))  # fmt: skip
    # S2: a disagreeing item a manager of S1 must never see.
    events.append(Count(event_id=eid(), store_id="S2", sku="SKU-DIS", on_hand=0,
                        occurred_at=NOW - timedelta(days=1)))  # fmt: skip
    events.append(Sale(event_id=eid(), store_id="S2", sku="SKU-DIS", qty=2,
                       occurred_at=NOW - timedelta(hours=1)))  # fmt: skip
    return events


async def seed(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        for store, name in (("S1", "Lyon Part-Dieu"), ("S2", "Paris Bercy")):
            await conn.execute(
                "INSERT INTO store (store_id, name, lat, lon) VALUES ($1, $2, 45.76, 4.86)",
                store, name,
            )  # fmt: skip
        await conn.executemany(
            "INSERT INTO product (sku, name, category) VALUES ($1, $2, $3)",
            [(sku, name, cat) for sku, (name, cat, _, _) in PRODUCTS.items()],
        )
        rows: list[tuple[Any, ...]] = [
            (store, sku, on_hand, reserved, AS_OF)
            for sku, (_, _, on_hand, reserved) in PRODUCTS.items()
            for store in ("S1", "S2")
        ]
        await conn.executemany(
            """INSERT INTO warehouse_stock (location_id, sku, on_hand, reserved, in_transit, as_of,
                                            snapshot_id) VALUES ($1, $2, $3, $4, 0, $5, 1)""",
            rows,
        )
        for store in ("S1", "S2"):
            await conn.execute(
                "INSERT INTO warehouse_location (location_id, as_of, snapshot_id) VALUES ($1, $2, 1)",
                store, AS_OF,
            )  # fmt: skip
            await conn.execute(
                "INSERT INTO store_freshness (store_id, snapshot_as_of) VALUES ($1, $2)",
                store, AS_OF,
            )  # fmt: skip
        await upsert_feeds(conn, [FEED])
        await insert_events(conn, FEED.name, _events(), received_at=NOW)
        # SKU-SP: an order pick found none two hours ago.
        await conn.execute(
            """INSERT INTO feedback (store_id, sku, kind, observed_at, qty, received_at)
               VALUES ('S1', 'SKU-SP', 'pick_short', $1, 0, $1)""",
            NOW - timedelta(hours=2),
        )
        await recompute_stores(conn, ["S1", "S2"], policy=POLICY, now=NOW)
        # SKU-HELD: the live engine (another module) held the badge back with low
        # confidence; the report reads what the table says.
        await conn.execute(
            """UPDATE book_position SET badge_state = 'unknown', confidence = 0.42,
                      reasons = '{low_confidence}'
               WHERE store_id = 'S1' AND sku = 'SKU-HELD'"""
        )

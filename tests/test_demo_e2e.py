"""End to end: the simulator's feeds, pulled by the reconcilers, become nearby badges."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import msgspec
from litestar import Litestar

from app.clock import utc_now
from app.demo.catalog import SHOPPER_LAT, SHOPPER_LON, STORES, demo_products
from app.demo.feed import FeedSimulator
from app.demo.files import POS_FEED, WAREHOUSE_FEED, write_demo_folder
from app.demo.server import SimulatorServer
from app.domain.geo import distance_km
from app.policy_file import load_policy
from app.settings import Settings
from reconcilers.scheduler import start_reconcilers
from tests.conftest import serve_in_loop


async def test_demo_feeds_become_nearby_badges(
    tmp_path: Path, make_app: Callable[..., Litestar], pool: asyncpg.Pool, settings: Settings
) -> None:
    feed = FeedSimulator.create(seed=7, start=datetime.now(UTC) - timedelta(minutes=30))
    # One catch-up tick at start, then none for an hour: the simulation holds still while
    # the service pulls, so the service's book must equal the simulator's record exactly.
    with SimulatorServer(feed, port=0, tick_seconds=3600) as simulator:
        files = write_demo_folder(
            tmp_path / "demo", feed_base_url=simulator.url(), products=demo_products(7)
        )
        demo = msgspec.structs.replace(
            settings,
            feeds_file=files.feeds,
            stores_file=files.stores,
            products_file=files.products,
            policy_file=files.policy,
        )
        policy = load_policy(files.policy)
        async with serve_in_loop(make_app(settings=demo)) as client:
            reconcilers = await start_reconcilers(pool, demo, policy, utc_now)
            try:
                warehouse = await reconcilers.run_now(WAREHOUSE_FEED)
                pos = await reconcilers.run_now(POS_FEED)
                again = await reconcilers.run_now(WAREHOUSE_FEED)
            finally:
                await reconcilers.shutdown()

            assert (
                warehouse.outcome == "applied"
                and warehouse.rows == feed.snapshot.body.count(b"\n") - 1
            )
            assert pos.outcome == "applied" and pos.pages >= 3
            assert pos.events_new == len(feed.simulation.events)  # the whole feed, once
            assert again.outcome == "unchanged"  # the ETag came back: 304

            sku = feed.simulation.best_sellers(1)[0]
            r = await client.get(
                f"/v1/availability/{sku}",
                params={"lat": SHOPPER_LAT, "lon": SHOPPER_LON, "radius_km": 10},
            )
            assert r.status_code == 200, r.text
            stores = r.json()["stores"]
            ids = [s["store"]["store_id"] for s in stores]
            nearest_first = sorted(
                STORES, key=lambda s: distance_km(SHOPPER_LAT, SHOPPER_LON, s.lat, s.lon)
            )
            assert ids == [s.store_id for s in nearest_first]
            distances = [s["store"]["distance_km"] for s in stores]
            assert distances == sorted(distances)
            for badge in stores:
                pair = (badge["store"]["store_id"], sku)
                assert badge["state"] in {"in_stock", "low_stock", "unavailable"}, (
                    badge
                )  # fresh data: no "unknown"
                assert badge["book"] == feed.simulation.book(pair), badge
                assert badge["promise"] == (badge["state"] in {"in_stock", "low_stock"})

            one = await client.get(f"/v1/stores/{nearest_first[0].store_id}/availability/{sku}")
            assert one.status_code == 200
            assert one.json()["book"] == feed.simulation.book((nearest_first[0].store_id, sku))

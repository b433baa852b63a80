"""Vendor feed adapters: translate a vendor's shape into the data contract, then store
it through the same paths as contract feeds (docs/adapters.md).

``pull_adapted`` runs a feed whose ``format`` is not ``contract``.
"""

from __future__ import annotations

import asyncpg
import httpx

from app.clock import Clock
from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.feeds_config import FeedConfig
from reconcilers.outcome import PullOutcome


async def pull_adapted(
    pool: asyncpg.Pool,
    feed: FeedConfig,
    client: httpx.AsyncClient,
    *,
    settings: Settings,
    policy: Policy,
    clock: Clock,
    progress: PullOutcome,
) -> PullOutcome:
    """Pull ``feed`` with the adapter its ``format`` names."""
    if feed.format == "square":
        from reconcilers.adapters.square_pull import pull_square

        return await pull_square(
            pool, feed, client, settings=settings, policy=policy, clock=clock, progress=progress
        )
    if feed.format == "shopify":
        from reconcilers.adapters.shopify_pull import pull_shopify

        return await pull_shopify(pool, feed, client, settings=settings, policy=policy, clock=clock)
    if feed.format == "csv_mapping":
        from reconcilers.adapters.csv_mapping import pull_csv_mapping

        return await pull_csv_mapping(
            pool, feed, client, settings=settings, policy=policy, clock=clock
        )
    raise ValueError(f"feed {feed.name}: no adapter for format {feed.format!r}")

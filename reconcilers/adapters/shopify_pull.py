"""Pull Shopify inventory levels as one warehouse snapshot (format "shopify").

Every page (``Link: <...>; rel="next"``) is translated as it arrives and streamed
into the warehouse path (``reconcilers.warehouse.apply_snapshot_stream``): the
snapshot is judged and applied whole, or quarantined. A page that cannot be read
after retries fails the run and leaves nothing behind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import httpx
import structlog

from app.clock import Clock
from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.adapters import shopify
from reconcilers.adapters.http import send
from reconcilers.adapters.ids import IdMap, Skipped
from reconcilers.feeds_config import FeedConfig
from reconcilers.outcome import PullOutcome
from reconcilers.warehouse import SnapshotRejected, apply_snapshot_stream

log = structlog.get_logger(__name__)

MAX_PAGES = 10_000


async def pull_shopify(
    pool: asyncpg.Pool,
    feed: FeedConfig,
    client: httpx.AsyncClient,
    *,
    settings: Settings,
    policy: Policy,
    clock: Clock,
) -> PullOutcome:
    as_of = clock()
    ids = IdMap(feed.locations, feed.items)
    skipped = Skipped()
    pages = 0

    async def snapshot() -> AsyncIterator[bytes]:
        nonlocal pages
        yield shopify.header_line()
        url: str | None = shopify.first_url(feed.url, sorted(feed.locations))
        seen: set[tuple[str, str]] = set()
        while url is not None:
            if pages >= MAX_PAGES:
                raise SnapshotRejected(f"more than {MAX_PAGES} pages; is the Link header looping?")
            pages += 1
            where = f"page {pages}"
            fetched = await send(client, "GET", url, feed=feed, settings=settings, where=where,
                                 headers={"Accept": "application/json"})  # fmt: skip
            page = shopify.decode_page(fetched.content, where=where)
            yield shopify.level_rows(
                page, ids, as_of=as_of, seen=seen, skipped=skipped, where=where
            )
            url = shopify.next_url(fetched.headers.get("link"), base=feed.url)

    outcome = await apply_snapshot_stream(
        pool, feed, snapshot(), None, settings=settings, policy=policy, clock=clock
    )
    outcome.pages = pages
    if skipped.total:
        log.warning("shopify.levels_skipped", feed=feed.name, **skipped.log_fields())
        note = ", ".join(f"{k} {v}" for k, v in sorted(skipped.reasons.items()))
        outcome.detail = "; ".join(filter(None, [outcome.detail, f"skipped or adjusted: {note}"]))
    return outcome

"""HTTP for vendor adapters: any method, the feed's auth, a size limit, and the
feeds' retries (``reconcilers.retry``: transient failures, ``Retry-After`` honoured).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from app.settings import Settings
from reconcilers.feeds_config import FeedConfig
from reconcilers.pos import Fetched, read_limited
from reconcilers.retry import retrying


async def send(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    feed: FeedConfig,
    settings: Settings,
    where: str,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> Fetched:
    """One request with the feed's auth, retried, its body read whole (within
    ``max_feed_bytes``). Non-2xx answers left after retries raise ``httpx.HTTPStatusError``."""
    request_headers = {**feed.headers(), **(headers or {})}
    async for attempt in retrying(settings):
        with attempt:
            async with client.stream(
                method,
                url,
                headers=request_headers,
                content=content,
                timeout=feed.timeout.total_seconds(),
            ) as response:
                response.raise_for_status()
                return await read_limited(
                    response, limit=settings.max_feed_bytes, feed=feed.name, where=where
                )
    raise AssertionError("unreachable: retrying() either returns or raises")

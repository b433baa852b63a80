"""Pull a POS feed page by page, storing pages, their positions and the cursor at once.

A page is decoded and checked whole before anything is written. Good pages are
held (up to ``GROUP_EVENTS`` events or ``GROUP_SECONDS``) and stored together: one
transaction stores their new events, advances store freshness, recomputes the
touched positions once and saves the last page's cursor. A bad page or a failed
request first stores the good pages before it, then fails the run. A crash repeats
the held pages, never skips one; positions never lag the events stored with them.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import httpx
import msgspec
import structlog

from app.clock import Clock
from app.db import feeds as feed_state
from app.db.engine_state import Fresh
from app.db.events import insert_events
from app.db.positions import recompute_pairs
from app.domain.model import MAX_AHEAD, Count, PosEvent, PosPage
from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.feeds_config import FeedConfig
from reconcilers.outcome import FeedDataError, PullOutcome
from reconcilers.retry import retrying

log = structlog.get_logger(__name__)
T = TypeVar("T")

MAX_PAGES_PER_RUN = 1000
# Good pages held before one store: a backlog's pairs are recomputed once for many
# pages (the engine's catch-up, the book query and the write are per transaction;
# measured in docs/scaling.md), while a slow source still gets its pages stored
# every few seconds.
GROUP_EVENTS = 20_000
GROUP_SECONDS = 5.0
_INT4 = 2**31 - 1


def page_url(base: str, cursor: str | None) -> str:
    """``base`` for the first page, else ``base`` with ``cursor`` set (other params kept)."""
    if cursor is None:
        return base
    parts = urlsplit(base)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "cursor"]
    query.append(("cursor", cursor))
    return urlunsplit(parts._replace(query=urlencode(query)))


class Fetched(msgspec.Struct, frozen=True):
    """A response read whole: status, headers and body."""

    status_code: int
    headers: httpx.Headers
    content: bytes


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    feed: FeedConfig,
    settings: Settings,
    where: str,
    headers: Mapping[str, str] | None = None,
) -> Fetched:
    """GET with retries (timeouts, connection errors, 5xx, 429) and a size limit.

    The body is read whole, but never more than ``settings.max_feed_bytes``
    (``FeedDataError`` beyond it). 304 is returned as is; other non-2xx answers and
    exhausted retries raise ``httpx.HTTPError``. ``feed.headers()`` carry the auth.
    """
    limit = settings.max_feed_bytes
    request_headers = {**feed.headers(), **(headers or {})}
    async for attempt in retrying(settings):  # async: backoff sleeps do not block the loop
        with attempt:
            async with client.stream(
                "GET", url, headers=request_headers, timeout=feed.timeout.total_seconds()
            ) as response:
                if response.status_code != 304:
                    response.raise_for_status()
                return await read_limited(response, limit=limit, feed=feed.name, where=where)
    raise AssertionError("unreachable: retrying() either returns or raises")


async def read_limited(response: httpx.Response, *, limit: int, feed: str, where: str) -> Fetched:
    """The streamed ``response`` read whole, or ``FeedDataError`` past ``limit`` bytes
    (checked against ``Content-Length`` and while reading)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise FeedDataError(
            f"feed {feed}: {where}: response of {declared} bytes is over the "
            f"limit of {limit} bytes (max_feed_bytes)"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise FeedDataError(
                f"feed {feed}: {where}: response is over the limit of {limit} bytes (max_feed_bytes)"
            )
        chunks.append(chunk)
    return Fetched(response.status_code, response.headers, b"".join(chunks))


def decode_page(body: bytes, *, feed: str, where: str) -> PosPage:
    """The page, or ``FeedDataError`` naming the feed, the page and msgspec's path."""
    try:
        page = msgspec.json.decode(body, type=PosPage)
    except msgspec.ValidationError as exc:
        raise FeedDataError(f"feed {feed}: {where}: invalid page: {exc}") from None
    except msgspec.DecodeError as exc:
        raise FeedDataError(f"feed {feed}: {where}: not valid JSON: {exc}") from None
    for i, event in enumerate(page.events):
        value = event.on_hand if isinstance(event, Count) else event.qty
        if abs(value) > _INT4:
            field = "on_hand" if isinstance(event, Count) else "qty"
            raise FeedDataError(
                f"feed {feed}: {where}: invalid page: {value} is out of range - at `$.events[{i}].{field}`"
            )
    return page


def ahead_problem(
    events: Sequence[PosEvent], *, now: datetime, feed: str, where: str
) -> FeedDataError | None:
    """The error for the first event dated more than ``MAX_AHEAD`` after ``now``, if any:
    its page is rejected, not stored to apply "later" (a sale that would move the book
    only days from now)."""
    for i, event in enumerate(events):
        ahead = event.occurred_at - now
        if ahead > MAX_AHEAD:
            return FeedDataError(
                f"feed {feed}: {where}: invalid page: occurred_at "
                f"{event.occurred_at.isoformat()} is {ahead} ahead of the service clock (more "
                f"than {MAX_AHEAD}; a device clock is wrong?) - at `$.events[{i}].occurred_at`"
            )
    return None


async def store_page(
    pool: asyncpg.Pool,
    feed: str,
    events: Sequence[PosEvent],
    *,
    cursor: str | None,
    policy: Policy,
    clock: Clock,
    outcome: PullOutcome,
    pages: int = 1,
) -> tuple[int, int]:
    """Store ``pages`` pages' contract ``events`` in one transaction: new events inserted
    (redeliveries ignored), store freshness advanced, the touched positions recomputed
    and, when ``cursor`` is given, the feed's resume point saved with them.

    Adds the pages to ``outcome``; returns (new events, positions recomputed).
    """
    async with pool.acquire() as conn, conn.transaction():
        now = clock()
        new = await insert_events(conn, feed, events, received_at=now)
        positions = await recompute_pairs(
            conn, {(e.store_id, e.sku) for e in new}, policy=policy, now=now,
            fresh=Fresh(feed, now, new),
        )  # fmt: skip
        if cursor is not None:
            await feed_state.save_cursor(conn, feed, cursor)
    outcome.pages += pages
    outcome.rows += len(events)
    outcome.events_new += len(new)
    outcome.events_duplicate += len(events) - len(new)
    outcome.positions += positions
    return len(new), positions


class HeldPages:
    """Good pages fetched and checked, not stored yet; ``store`` stores them together
    (events, positions and the last page's cursor in one transaction). Contract POS
    feeds and vendor adapters (Square) hold their pages here."""

    def __init__(
        self, pool: asyncpg.Pool, feed: str, saved: str | None, *, group_events: int,
        policy: Policy, clock: Clock, outcome: PullOutcome,
    ) -> None:  # fmt: skip
        self.pool, self.feed, self.policy, self.clock = pool, feed, policy, clock
        self.outcome = outcome
        self.group_events = group_events
        self.saved = saved  # the cursor stored for the feed
        self.cursor = saved
        self.events: list[PosEvent] = []
        self.pages: list[int] = []
        self.since = 0.0

    def add(self, page_no: int, events: Sequence[PosEvent], next_cursor: str | None) -> None:
        if not self.pages:
            self.since = time.perf_counter()
        self.events.extend(events)
        self.pages.append(page_no)
        self.cursor = next_cursor

    def full(self) -> bool:
        return (
            len(self.events) >= self.group_events
            or time.perf_counter() - self.since >= GROUP_SECONDS
        )

    async def store(self) -> None:
        """Store the held pages, if any; their last cursor is then the feed's."""
        if not self.pages:
            return
        started = time.perf_counter()
        new, positions = await store_page(
            self.pool, self.feed, self.events,
            cursor=self.cursor if self.cursor != self.saved else None,
            policy=self.policy, clock=self.clock, outcome=self.outcome, pages=len(self.pages),
        )  # fmt: skip
        log.debug(
            "pos.pages_stored", feed=self.feed, pages=self.pages, cursor=self.saved,
            next_cursor=self.cursor, events=len(self.events), events_new=new,
            positions=positions, ms=round((time.perf_counter() - started) * 1000, 1),
        )  # fmt: skip
        self.saved = self.cursor
        self.events = []
        self.pages = []

    async def around(self, fetching: Awaitable[T]) -> T:
        """Await ``fetching`` (pages into this holder, stored whenever it is full), then
        store the rest. A failure first stores the good pages before it, then raises; a
        cancellation (shutdown) stores nothing: the next run fetches those pages again."""
        try:
            result = await fetching
        except Exception:  # not a cancellation: a BaseException, not caught here
            await self.store()
            raise
        await self.store()
        return result


async def pull_pos(
    pool: asyncpg.Pool,
    feed: FeedConfig,
    client: httpx.AsyncClient,
    *,
    settings: Settings,
    policy: Policy,
    clock: Clock,
    progress: PullOutcome | None = None,
    group_events: int = GROUP_EVENTS,
) -> PullOutcome:
    """Pull from the saved cursor while ``has_more`` (at most ``MAX_PAGES_PER_RUN`` pages).

    ``progress`` (optional) is updated as pages are stored, so a caller can report
    what was stored before a later page failed. Good pages are stored together once
    they hold ``group_events`` events (or after ``GROUP_SECONDS``).
    """
    return await pull_held(
        pool, feed.name, await saved_cursor(pool, feed.name),
        lambda held: _fetch_pages(client, feed, settings, clock, held),
        group_events=group_events, policy=policy, clock=clock, progress=progress,
    )  # fmt: skip


async def saved_cursor(pool: asyncpg.Pool, feed: str) -> str | None:
    """The feed's saved resume point (``None``: from the start), read as every held-pages
    feed starts a run; a feed without its row was never upserted: a setup error."""
    async with pool.acquire() as conn:
        state = await feed_state.get_feed(conn, feed)
    if state is None:
        raise LookupError(f"feed {feed} has no feed row; upsert the feeds first")
    return state.cursor


async def pull_held(
    pool: asyncpg.Pool,
    feed: str,
    saved: str | None,
    fetch: Callable[[HeldPages], Awaitable[bool]],
    *,
    group_events: int,
    policy: Policy,
    clock: Clock,
    progress: PullOutcome | None,
) -> PullOutcome:
    """One run of a feed whose pages are held and stored together (``HeldPages``, from
    the ``saved`` cursor): ``fetch`` fills the holder and says whether it stopped at
    ``MAX_PAGES_PER_RUN`` pages with more to come. Contract POS feeds and vendor
    adapters (Square) run this way; ``progress`` (or a new outcome) counts the pages."""
    outcome = progress if progress is not None else PullOutcome(outcome="applied")
    held = HeldPages(pool, feed, saved, group_events=group_events, policy=policy, clock=clock,
                     outcome=outcome)  # fmt: skip
    if await held.around(fetch(held)):
        outcome.detail = f"stopped after {MAX_PAGES_PER_RUN} pages; the next run continues"
    outcome.outcome = "applied" if outcome.events_new else "unchanged"
    return outcome


async def _fetch_pages(
    client: httpx.AsyncClient,
    feed: FeedConfig,
    settings: Settings,
    clock: Clock,
    held: HeldPages,
) -> bool:
    """Fetch and check pages from the held cursor into ``held``, storing when it is
    full; True when ``MAX_PAGES_PER_RUN`` pages came and the source has more."""
    cursor = held.cursor
    seen: dict[str | None, int] = {cursor: 1}  # cursors used in this run -> page number
    for page_no in range(1, MAX_PAGES_PER_RUN + 1):
        where = f"page {page_no} (cursor {cursor!r})"
        response = await fetch(
            client, page_url(feed.url, cursor), feed=feed, settings=settings, where=where
        )
        page = decode_page(response.content, feed=feed.name, where=where)
        if (
            skewed := ahead_problem(page.events, now=clock(), feed=feed.name, where=where)
        ) is not None:
            raise skewed
        if page.has_more and page.next_cursor == cursor:
            raise FeedDataError(
                f"feed {feed.name}: {where}: has_more with an unchanged next_cursor"
            )
        next_cursor = page.next_cursor or cursor
        if next_cursor != cursor and next_cursor in seen:
            # The source went back to a cursor this run already used: storing the page
            # and saving that cursor would re-read (or loop over) pages. Rejected whole.
            raise FeedDataError(
                f"feed {feed.name}: {where}: cursor went back: next_cursor {next_cursor!r} "
                f"was already used for page {seen[next_cursor]} of this run"
            )
        seen.setdefault(next_cursor, page_no + 1)
        held.add(page_no, page.events, next_cursor)
        if held.full():
            await held.store()
        cursor = next_cursor
        if not page.has_more:
            return False
    return True

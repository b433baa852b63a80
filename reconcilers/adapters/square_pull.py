"""Pull a Square location set's inventory as contract POS events (format "square").

First the current IN_STOCK counts (the baseline, as ``count`` events), then, run
after run, the changes created since (``updated_after``). Each page is translated
(``reconcilers.adapters.square``); good pages are held and stored together with the
last one's resume point in one transaction (``reconcilers.pos.HeldPages``, as a
contract POS feed): a crash repeats pages, never skips one, and a failed page first
stores the good ones before it.
"""

from __future__ import annotations

import asyncpg
import httpx
import msgspec
import structlog

from app.clock import Clock
from app.domain.model import PosEvent
from app.domain.policy import Policy
from app.settings import Settings
from reconcilers.adapters import square
from reconcilers.adapters.http import send
from reconcilers.adapters.ids import IdMap, Skipped
from reconcilers.feeds_config import FeedConfig
from reconcilers.outcome import FeedDataError, PullOutcome
from reconcilers.pos import GROUP_EVENTS, MAX_PAGES_PER_RUN, HeldPages, pull_held, saved_cursor

log = structlog.get_logger(__name__)


def _decode(body: bytes, type_: type[square.CountsResponse] | type[square.ChangesResponse],
            *, feed: str, where: str) -> square.CountsResponse | square.ChangesResponse:  # fmt: skip
    try:
        return msgspec.json.decode(body, type=type_)
    except msgspec.ValidationError as exc:
        raise FeedDataError(f"feed {feed}: {where}: invalid Square response: {exc}") from None
    except msgspec.DecodeError as exc:
        raise FeedDataError(f"feed {feed}: {where}: not valid JSON: {exc}") from None


async def pull_square(
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
    """Pull from the saved resume point until Square has no more pages (at most
    ``MAX_PAGES_PER_RUN``); ``progress`` is updated as pages are stored (together, up
    to ``group_events`` events at a time)."""
    saved = await saved_cursor(pool, feed.name)
    resume = square.decode_resume(saved)
    if resume is None:
        if saved:
            log.warning("square.resume_reset", feed=feed.name,
                        detail="saved cursor is not a Square resume point; starting over")  # fmt: skip
        resume = square.initial_resume(clock())
    skipped = Skipped()
    outcome = await pull_held(
        pool, feed.name, saved,
        lambda held: _fetch_pages(client, feed, settings, resume, held, skipped),
        group_events=group_events, policy=policy, clock=clock, progress=progress,
    )  # fmt: skip
    if skipped.total:
        log.warning("square.records_skipped", feed=feed.name, **skipped.log_fields())
        note = ", ".join(f"{k} {v}" for k, v in sorted(skipped.reasons.items()))
        outcome.detail = "; ".join(filter(None, [outcome.detail, f"skipped: {note}"]))
    return outcome


async def _fetch_pages(
    client: httpx.AsyncClient,
    feed: FeedConfig,
    settings: Settings,
    resume: square.Resume,
    held: HeldPages,
    skipped: Skipped,
) -> bool:
    """Fetch and translate pages into ``held``, storing when it is full; True when
    ``MAX_PAGES_PER_RUN`` pages came and Square has more (the resume point is saved
    with the last page)."""
    ids = IdMap(feed.locations, feed.items)
    location_ids = sorted(feed.locations)
    base = feed.url.rstrip("/")
    headers = {"Content-Type": "application/json", "Accept": "application/json",
               "Square-Version": square.SQUARE_VERSION}  # fmt: skip
    for page_no in range(1, MAX_PAGES_PER_RUN + 1):
        where = f"page {page_no} ({resume.phase}, cursor {resume.cursor!r})"
        path, body = square.request_body(resume, location_ids)
        fetched = await send(client, "POST", base + path, feed=feed, settings=settings,
                             where=where, content=body, headers=headers)  # fmt: skip
        page_skipped = Skipped()
        events: list[PosEvent]
        if resume.phase == "counts":
            counts = _decode(fetched.content, square.CountsResponse, feed=feed.name, where=where)
            assert isinstance(counts, square.CountsResponse)
            events = square.translate_counts(counts, ids, page_skipped)
            next_cursor, page_high = counts.cursor, None
        else:
            changes = _decode(fetched.content, square.ChangesResponse, feed=feed.name, where=where)
            assert isinstance(changes, square.ChangesResponse)
            events = square.translate_changes(changes, ids, page_skipped)
            next_cursor, page_high = changes.cursor, square.high_water(changes)
        if next_cursor is not None and next_cursor == resume.cursor:
            raise FeedDataError(f"feed {feed.name}: {where}: Square returned the same cursor again")
        last = resume.phase == "changes" and not next_cursor
        resume = square.after_page(resume, next_cursor, page_high)
        skipped.merge(page_skipped)
        log.debug("square.page_fetched", feed=feed.name, page=page_no, phase=resume.phase,
                  events=len(events), skipped=page_skipped.total)  # fmt: skip
        held.add(page_no, events, resume.encode())
        if held.full():
            await held.store()
        if last:
            return False
    return True

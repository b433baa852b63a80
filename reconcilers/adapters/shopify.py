"""Shopify Admin REST ``inventory_levels`` -> contract snapshot rows (pure: no I/O).

Each level (``inventory_item_id``, ``location_id``, ``available``, ``updated_at``)
becomes one snapshot row through the id mapping: ``on_hand`` = ``available``
(a negative, oversold level is 0), ``reserved`` and ``in_transit`` 0 (Shopify's
``available`` already leaves out committed units), ``as_of`` the time the pull began
(the levels are Shopify's stock at that moment, not at each level's ``updated_at``,
which is only when it last changed). A level with ``available`` null (not tracked)
is skipped, as are unmapped ids.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec

from reconcilers.adapters.ids import IdMap, Skipped, map_pair
from reconcilers.warehouse import EXPECTED_HEADER, SnapshotRejected

PAGE_LIMIT = 250  # Shopify's largest page
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]
_NEXT = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?', re.IGNORECASE)


class InventoryLevel(msgspec.Struct, frozen=True):
    inventory_item_id: int
    location_id: int
    available: int | None = None
    updated_at: Timestamp | None = None


class LevelsPage(msgspec.Struct, frozen=True):
    inventory_levels: list[InventoryLevel]


def first_url(url: str, location_ids: list[str]) -> str:
    """The feed URL with ``location_ids`` (the mapped locations, unless the URL already
    filters by location or item) and ``limit`` added; other query parameters kept."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    names = {k for k, _ in query}
    if not names & {"location_ids", "inventory_item_ids"} and location_ids:
        query.append(("location_ids", ",".join(location_ids)))
    if "limit" not in names:
        query.append(("limit", str(PAGE_LIMIT)))
    return urlunsplit(parts._replace(query=urlencode(query, safe=",")))


def next_url(link: str | None, *, base: str) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header (``None`` on the last page).

    Only a link to the feed's own scheme and host is followed: the access token is
    sent with it.
    """
    if not link:
        return None
    match = _NEXT.search(link)
    if match is None:
        return None
    url = match.group(1)
    if urlsplit(url)[:2] != urlsplit(base)[:2]:
        raise SnapshotRejected(f"Link rel=next points to another host: {urlsplit(url).netloc!r}")
    return url


def header_line() -> bytes:
    return (EXPECTED_HEADER + "\n").encode()


def level_rows(
    page: LevelsPage,
    ids: IdMap,
    *,
    as_of: datetime,
    seen: set[tuple[str, str]],
    skipped: Skipped,
    where: str,
) -> bytes:
    """The page's levels as contract CSV data lines.

    Raises ``SnapshotRejected`` when two levels map to one (store, sku): the id
    mapping must be one-to-one, and a snapshot cannot hold a pair twice.
    """
    stamp = as_of.isoformat()
    out: list[str] = []
    for i, level in enumerate(page.inventory_levels):
        if level.available is None:
            skipped.add("untracked")
            continue
        pair = map_pair(ids, str(level.location_id), str(level.inventory_item_id), skipped)
        if pair is None:
            continue
        if pair in seen:
            raise SnapshotRejected(
                f"{where}: inventory_levels[{i}]: item {level.inventory_item_id} at location "
                f"{level.location_id} maps to store {pair[0]}, sku {pair[1]}, which an earlier "
                "level already gave (is the id mapping one-to-one?)"
            )
        seen.add(pair)
        if level.available < 0:
            skipped.add("negative_available_as_0")  # counted, still stored (as 0)
        out.append(f"{pair[0]},{pair[1]},{max(level.available, 0)},0,0,{stamp}\n")
    return "".join(out).encode()


def decode_page(body: bytes, *, where: str) -> LevelsPage:
    try:
        return msgspec.json.decode(body, type=LevelsPage)
    except msgspec.ValidationError as exc:
        raise SnapshotRejected(f"{where}: invalid inventory_levels page: {exc}") from None
    except msgspec.DecodeError as exc:
        raise SnapshotRejected(f"{where}: not valid JSON: {exc}") from None

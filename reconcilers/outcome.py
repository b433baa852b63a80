"""What a pull reports, and the error for data that must not be applied."""

from __future__ import annotations

import msgspec


class FeedDataError(Exception):
    """The feed answered, but with data that cannot be applied (malformed page,
    truncated or invalid snapshot). Not retried; the message says where and why."""


class PullOutcome(msgspec.Struct, kw_only=True):
    """Counts for the one log line and the feed's state row."""

    outcome: str  # "applied", "unchanged", "quarantined", "failed", "skipped"
    pages: int = 0
    events_new: int = 0
    events_duplicate: int = 0
    rows: int = 0
    positions: int = 0
    detail: str | None = None

"""Which failures are worth retrying, and the retry context built from settings.

A ``Retry-After`` header on a retryable answer (429, 503; seconds, as a number, or an
HTTP date) sets the wait instead of the backoff. One longer than
``settings.retry_timeout`` is not waited for: the run fails and the next one tries again.

Each scheduled retry is logged once (``feed.retry_scheduled``) by our own stamina hook:
stamina's default one logs ``repr`` of the exception, whose URL carries a feed's
credentials and query (tokens, cursors). Ours logs the URL without them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import stamina
import structlog
from stamina.instrumentation import RetryDetails, set_on_retry_hooks

from app.settings import Settings

log = structlog.get_logger(__name__)


def redacted_url(url: httpx.URL) -> str:
    """The URL without credentials or query (what may be logged or stored)."""
    return str(url.copy_with(query=None, userinfo=b"", fragment=None))


def describe(exc: BaseException) -> str:
    """An HTTP failure in words that hold no credentials, query or header values."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} from {redacted_url(exc.request.url)}"
    if isinstance(exc, httpx.RequestError):
        try:
            url = exc.request.url
        except RuntimeError:  # no request attached
            return type(exc).__name__
        text = str(exc).replace(str(url), redacted_url(url))
        return f"{type(exc).__name__} talking to {redacted_url(url)}: {text or 'no detail'}"
    return type(exc).__name__


def _log_retry(details: RetryDetails) -> None:
    log.warning(
        "feed.retry_scheduled",
        retry=details.retry_num,
        wait_s=round(details.wait_for, 3),
        waited_s=round(details.waited_so_far, 3),
        cause=describe(details.caused_by),
    )


set_on_retry_hooks([_log_retry])


def is_retryable(exc: Exception) -> bool:
    """Timeouts, connection trouble, 5xx and 429 are transient; everything else is not."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds a ``Retry-After`` value asks to wait (``None`` when absent or unreadable)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)  # RFC 9110 says an integer; Shopify sends "2.0"
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return max(seconds, 0.0) if seconds == seconds else None  # NaN is unreadable


def backoff_hook(max_wait: float) -> Callable[[Exception], bool | float]:
    """stamina's ``on``: retry transient failures, waiting ``Retry-After`` when given."""

    def hook(exc: Exception) -> bool | float:
        if not is_retryable(exc):
            return False
        if isinstance(exc, httpx.HTTPStatusError):
            wait = retry_after_seconds(exc.response.headers.get("retry-after"))
            if wait is not None:
                return wait if wait <= max_wait else False
        return True

    return hook


def retrying(settings: Settings) -> Any:
    """``for attempt in retrying(settings): with attempt: ...`` with backoff."""
    return stamina.retry_context(
        on=backoff_hook(settings.retry_timeout.total_seconds()),
        attempts=settings.retry_attempts,
        timeout=settings.retry_timeout.total_seconds(),
        wait_initial=settings.retry_initial_wait.total_seconds(),
        wait_max=max(settings.retry_initial_wait.total_seconds(), 5.0),
    )

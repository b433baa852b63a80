"""Which failures are worth retrying, and the retry context built from settings."""

from __future__ import annotations

from typing import Any

import httpx
import stamina

from app.settings import Settings


def is_retryable(exc: Exception) -> bool:
    """Timeouts, connection trouble, 5xx and 429 are transient; everything else is not."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


def retrying(settings: Settings) -> Any:
    """``for attempt in retrying(settings): with attempt: ...`` with backoff."""
    return stamina.retry_context(
        on=is_retryable,
        attempts=settings.retry_attempts,
        timeout=settings.retry_timeout.total_seconds(),
        wait_initial=settings.retry_initial_wait.total_seconds(),
        wait_max=max(settings.retry_initial_wait.total_seconds(), 5.0),
    )

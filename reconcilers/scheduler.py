"""Start the reconcilers inside the running loop; stop them on shutdown."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from app.clock import Clock
from app.domain.policy import Policy
from app.settings import Settings


@dataclass
class Reconcilers:
    feed_names: list[str] = field(default_factory=list)

    async def shutdown(self) -> None:
        return None


async def start_reconcilers(pool: asyncpg.Pool, settings: Settings, policy: Policy, clock: Clock) -> Reconcilers:
    """Placeholder until the feed jobs land."""
    return Reconcilers()

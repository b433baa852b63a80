"""The simulation as the contract's feeds: POS pages by cursor, warehouse snapshots.

No HTTP here (``server`` adds it) and no clock: ``tick(now)`` is told the time.

A cursor is ``<run>.<offset>``. Event ids carry the same run tag, so a simulator
restarted against a service that kept its database produces new ids (nothing is
taken for a redelivery) and a cursor from an earlier run reads from the start.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from app.demo.catalog import STORES, demo_products
from app.demo.simulation import Simulation, SimulationConfig
from app.domain.model import PosPage, SnapshotRow

SNAPSHOT_COLUMNS = ("location_id", "sku", "on_hand", "reserved", "in_transit", "as_of")


class BadCursor(ValueError):
    """The cursor is not one this simulator hands out."""


@dataclass(frozen=True)
class PublishedSnapshot:
    """One warehouse snapshot, rendered once and served until the next."""

    as_of: datetime
    body: bytes
    etag: str

    def matches(self, if_none_match: str | None) -> bool:
        """True when the client already holds this snapshot (weak comparison, RFC 9110)."""
        if not if_none_match:
            return False
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or self.etag in tags


class FeedSimulator:
    """A :class:`Simulation` that publishes a POS feed and periodic snapshots."""

    def __init__(
        self,
        simulation: Simulation,
        *,
        run_tag: str,
        page_size: int = 500,
        snapshot_every: timedelta = timedelta(minutes=2),
    ) -> None:
        if page_size < 1 or snapshot_every <= timedelta(0):
            raise ValueError("page_size and snapshot_every must be positive")
        self.simulation = simulation
        self.run_tag = run_tag
        self.page_size = page_size
        self.snapshot_every = snapshot_every
        self.snapshot = _publish(simulation.snapshot(), simulation.now)

    @classmethod
    def create(
        cls,
        *,
        seed: int,
        start: datetime,
        products: int = 300,
        config: SimulationConfig | None = None,
        page_size: int = 500,
        snapshot_every: timedelta = timedelta(minutes=2),
    ) -> FeedSimulator:
        """The demo chain (Lyon stores, seeded products) starting at ``start``."""
        run_tag = run_tag_for(start)
        simulation = Simulation(
            STORES,
            demo_products(seed, products),
            seed=seed,
            start=start,
            config=config,
            event_prefix=f"P-{run_tag}-",
        )
        return cls(simulation, run_tag=run_tag, page_size=page_size, snapshot_every=snapshot_every)

    def tick(self, now: datetime) -> None:
        """Trade until ``now``, re-snapshotting every ``snapshot_every`` on the way."""
        while self.snapshot.as_of + self.snapshot_every <= now:
            self.simulation.advance(self.snapshot.as_of + self.snapshot_every)
            self.snapshot = _publish(self.simulation.snapshot(), self.simulation.now)
        self.simulation.advance(now)

    def page(self, cursor: str | None) -> PosPage:
        """The events after ``cursor`` (from the start without one), ``page_size`` at most.

        ``next_cursor`` is always set, so a client can resume from the last page.
        """
        start = self._offset(cursor)
        events = self.simulation.events
        end = min(start + self.page_size, len(events))
        return PosPage(
            events=list(events[start:end]),
            has_more=end < len(events),
            next_cursor=f"{self.run_tag}.{end}",
        )

    def _offset(self, cursor: str | None) -> int:
        if cursor is None or cursor == "":
            return 0
        run, sep, offset = cursor.partition(".")
        if not sep or not run or not offset.isdigit():
            raise BadCursor(f"malformed cursor {cursor!r}")
        if run != self.run_tag:
            return 0  # a cursor from an earlier run: this run's events are all new
        value = int(offset)
        if value > len(self.simulation.events):
            raise BadCursor(f"cursor {cursor!r} is ahead of the feed")
        return value


def run_tag_for(start: datetime) -> str:
    """A short tag for a run, from its start time (base 36 of the epoch second)."""
    n = int(start.timestamp())
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def snapshot_csv(rows: list[SnapshotRow]) -> str:
    """The warehouse snapshot CSV as the contract spells it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(SNAPSHOT_COLUMNS)
    for row in rows:
        as_of = msgspec.json.encode(row.as_of).decode().strip('"')
        writer.writerow(
            [row.location_id, row.sku, row.on_hand, row.reserved, row.in_transit, as_of]
        )
    return out.getvalue()


def _publish(rows: list[SnapshotRow], as_of: datetime) -> PublishedSnapshot:
    body = snapshot_csv(rows).encode()
    return PublishedSnapshot(
        as_of=as_of, body=body, etag=f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    )

"""How many of the demo chain's pairs the engine promises, and how many of those
promises find an empty shelf when the shopper arrives (the simulator's hidden shelf).

    .venv/bin/python scripts/demo_promises.py

Runs ``FeedSimulator`` (the chain `make demo` serves, seed 7) from two start times, gives
the engine 1 hour and 26 hours of its history, and asks for every pair at a 10-minute
and a 2-hour pickup with the default policy (the badge the API would give: a promise
needs confidence ≥ 0.9, book − buffer ≥ 1 and fresh data);
then moves the simulator on by the pickup time and counts the promises whose shelf is
empty. A young chain's numbers: the backtests score 14-day histories.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.demo.catalog import demo_products
from app.demo.feed import FeedSimulator
from app.domain.engine import Engine
from app.domain.policy import Policy

STARTS = (datetime(2026, 12, 6, 21, 36, tzinfo=UTC), datetime(2026, 12, 7, 9, 0, tzinfo=UTC))
HISTORY = (timedelta(hours=1), timedelta(hours=26))
PICKUPS = (timedelta(minutes=10), timedelta(hours=2))


def run(start: datetime, history: timedelta, pickup: timedelta) -> tuple[int, int, int]:
    """(pairs, promised, promised but empty at arrival)."""
    feed = FeedSimulator.create(seed=7, start=start)
    engine = Engine(Policy(arrival_horizon=pickup), {p.sku: p.category for p in demo_products(7)})
    now = start + history
    feed.tick(now)
    engine.observe_snapshot(feed.snapshot.as_of, feed.simulation.snapshot())
    for event in sorted(feed.simulation.events, key=lambda e: e.occurred_at):
        engine.observe_event(event)
    pairs = list(feed.simulation._shelf)
    promised = [(store, sku) for store, sku in pairs if engine.answer(store, sku, 1, now).promise]
    feed.tick(now + pickup)
    shelf = feed.simulation._shelf
    return len(pairs), len(promised), sum(1 for k in promised if shelf[k] < 1)


def main() -> None:
    for start in STARTS:
        for history in HISTORY:
            for pickup in PICKUPS:
                pairs, promised, empty = run(start, history, pickup)
                print(f"start {start:%H:%M} UTC, {history.total_seconds() / 3600:.0f} h of history, "
                      f"pickup {pickup.total_seconds() / 60:.0f} min: promised {promised}/{pairs}, "
                      f"empty at arrival {empty} ({empty / max(1, promised):.1%})", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()

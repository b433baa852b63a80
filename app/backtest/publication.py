"""When recorded facts become visible to the service (``published_at``).

Feeds do not deliver at ``occurred_at``: POS events trail by minutes, a store whose
till link is down holds hours of events and releases them in a burst, a few events
come twice, and a few are keyed in a day late. A service that treats silence as
"no sales" must live with all of that, so the simulator reproduces it.
"""

from __future__ import annotations

import random

from app.backtest.calendar import HOUR
from app.backtest.params import WorldParams
from app.backtest.sampling import lognormal_median

Outage = tuple[int, int]  # [start, end) epoch seconds


def store_outages(
    rng: random.Random, params: WorldParams, start: int, end: int, laggy: bool
) -> list[Outage]:
    """POS link outages of one store during [start, end), sorted and non-overlapping."""
    rate = params.outage_per_store_day * (params.laggy_store_mult if laggy else 1.0)
    out: list[Outage] = []
    t = float(start)
    while rate > 0:
        t += rng.expovariate(rate / 86400)
        if t >= end:
            break
        hours = params.outage_hours_min + rng.random() * (
            params.outage_hours_max - params.outage_hours_min
        )
        o_end = int(t + hours * HOUR)
        out.append((int(t), o_end))
        t = o_end
    return out


def publish_pos(
    rng: random.Random, params: WorldParams, occurred: list[int], outages: list[Outage]
) -> list[tuple[int, int]]:
    """(index into ``occurred``, published_at) per delivery, redeliveries included.

    ``occurred`` must be sorted; outages are then walked once alongside it.
    """
    out: list[tuple[int, int]] = []
    k = 0
    for i, t in enumerate(occurred):
        while k < len(outages) and outages[k][1] <= t:
            k += 1
        if k < len(outages) and outages[k][0] <= t < outages[k][1]:
            published = outages[k][1] + int(rng.random() * 600)  # the burst after the link returns
        elif rng.random() < params.late_share:
            published = t + int((1.0 + rng.random() * (params.late_hours_max - 1.0)) * HOUR)
        else:
            published = t + max(
                1, int(lognormal_median(rng, params.pos_lag_median_seconds, params.pos_lag_sigma))
            )
        out.append((i, published))
        if rng.random() < params.redelivery_share:
            out.append((i, published + int(300 + rng.random() * 6 * HOUR)))
    return out


def publish_feedback(rng: random.Random, params: WorldParams, observed_at: int) -> int:
    """Feedback reaches the service a minute or two after it was observed."""
    return observed_at + max(1, int(lognormal_median(rng, params.feedback_lag_median_seconds, 0.8)))


def publish_snapshot(rng: random.Random, params: WorldParams, as_of: int) -> int | None:
    """published_at of a daily snapshot, or ``None`` when that snapshot never arrives."""
    if rng.random() < params.snapshot_missing_share:
        return None
    if rng.random() < params.snapshot_late_share:
        return as_of + int((3.0 + rng.random() * 11.0) * HOUR)
    low, high = params.snapshot_publish_minutes_min, params.snapshot_publish_minutes_max
    return as_of + int((low + rng.random() * (high - low)) * 60)

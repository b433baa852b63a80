"""Store hours and the daily/weekly rhythm of traffic, on hourly bins in UTC.

Shoppers, thieves and staff only act while a store is open, and traffic peaks at
lunch, after work and on Saturdays; everything time-shaped in the simulator is
drawn from these bins so the rhythm is the same for sales, loss and lookups.
"""

from __future__ import annotations

import bisect
import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import msgspec

from app.backtest.sampling import poisson

HOUR = 3600
DAY = 86400

# Relative in-store traffic by local hour (lunch and after-work peaks).
SHOPPER_HOURLY: tuple[float, ...] = (
    0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.3, 0.5,
    0.6, 0.8, 1.0, 1.2, 1.5, 1.4, 1.1, 1.1,
    1.3, 1.7, 1.8, 1.4, 1.0, 0.7, 0.5, 0.3,
)  # fmt: skip
# Relative online ordering by local hour (evening browsing).
ONLINE_HOURLY: tuple[float, ...] = (
    0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.6,
    0.8, 0.9, 1.0, 1.0, 1.1, 1.0, 0.9, 0.9,
    1.0, 1.1, 1.3, 1.6, 1.8, 1.6, 1.0, 0.5,
)  # fmt: skip
# Monday..Sunday traffic; Saturday gets ``weekend_uplift``.
WEEKDAY_FACTOR: tuple[float, ...] = (0.92, 0.9, 0.95, 1.0, 1.12, 1.45, 1.1)


class StoreHours(msgspec.Struct, frozen=True):
    """Local opening hours: Monday–Saturday and Sunday (``None``: closed)."""

    open_hour: int
    close_hour: int
    sunday: tuple[int, int] | None

    def hours_on(self, weekday: int) -> tuple[int, int] | None:
        if weekday == 6:
            return self.sunday
        return (self.open_hour, self.close_hour)


HOURS_TEMPLATES: tuple[StoreHours, ...] = (
    StoreHours(8, 21, (10, 18)),
    StoreHours(9, 20, (12, 17)),
    StoreHours(7, 22, (9, 20)),
    StoreHours(8, 20, None),
)


class StoreCalendar:
    """Hourly bins from ``t0`` (epoch seconds): open flags and traffic weights.

    Weights are scaled so a rate "per day" means per average weekday: the sum of
    shopper weights over a Thursday is 1.
    """

    def __init__(
        self,
        t0: int,
        n_hours: int,
        timezone: str,
        hours: StoreHours,
        weekend_uplift: float,
    ) -> None:
        tz = ZoneInfo(timezone)
        self.t0 = t0
        self.n_hours = n_hours
        weekday_factor = list(WEEKDAY_FACTOR)
        weekday_factor[5] = weekend_uplift
        span = hours.close_hour - hours.open_hour
        weekday_total = sum(SHOPPER_HOURLY[hours.open_hour : hours.close_hour])
        self.open: list[bool] = []
        self.shopper: list[float] = []
        self.online: list[float] = []
        self.staff: list[float] = []
        self.local_day: list[int] = []  # day index in local time (for promotions)
        first_day: int | None = None
        for h in range(n_hours):
            local = datetime.fromtimestamp(t0 + h * HOUR + HOUR // 2, UTC).astimezone(tz)
            day_ordinal = local.date().toordinal()
            if first_day is None:
                first_day = day_ordinal
            self.local_day.append(day_ordinal - first_day)
            window = hours.hours_on(local.weekday())
            is_open = window is not None and window[0] <= local.hour < window[1]
            self.open.append(is_open)
            factor = weekday_factor[local.weekday()]
            self.shopper.append(
                SHOPPER_HOURLY[local.hour] * factor / weekday_total if is_open else 0.0
            )
            self.online.append(ONLINE_HOURLY[local.hour] * factor / sum(ONLINE_HOURLY))
            self.staff.append(1.0 / span if is_open else 0.0)
        self.next_open: list[int] = [n_hours] * (n_hours + 1)
        nxt = n_hours
        for h in range(n_hours - 1, -1, -1):
            if self.open[h]:
                nxt = h
            self.next_open[h] = nxt
        self.cum_shopper = prefix(self.shopper)
        self.cum_online = prefix(self.online)
        self.cum_staff = prefix(self.staff)

    @property
    def t_end(self) -> int:
        return self.t0 + self.n_hours * HOUR

    def is_open(self, t: int) -> bool:
        h = (t - self.t0) // HOUR
        return 0 <= h < self.n_hours and self.open[h]

    def next_open_time(self, t: int, rng: random.Random) -> int:
        """``t`` when the store is open then, else a moment in the first hour after opening."""
        h = (t - self.t0) // HOUR
        if h < 0:
            h = 0
        if h >= self.n_hours:
            return t
        if self.open[h]:
            return t
        nh = self.next_open[h]
        if nh >= self.n_hours:
            return self.t_end + HOUR
        return self.t0 + nh * HOUR + int(rng.random() * HOUR)

    def promo_weights(
        self, weights: list[float], days: tuple[int, int], uplift: float
    ) -> list[float]:
        """Copy of cumulative-ready ``weights`` with local days [first, last) uplifted."""
        first, last = days
        return [
            w * uplift if first <= d < last else w
            for w, d in zip(weights, self.local_day, strict=True)
        ]


def prefix(weights: list[float]) -> list[float]:
    """Cumulative sums with a leading 0 (length ``len(weights) + 1``)."""
    out = [0.0] * (len(weights) + 1)
    acc = 0.0
    for i, w in enumerate(weights):
        acc += w
        out[i + 1] = acc
    return out


def arrivals(
    rng: random.Random, t0: int, cum: list[float], rate_per_day: float, t_from: int | None = None
) -> list[int]:
    """Sorted arrival times of a Poisson process with intensity ``rate × weights``.

    Draw the count, then place each arrival by inverting the cumulative intensity
    (hour bin by bisection, uniform inside the bin): O(n log bins), no thinning.
    """
    total = cum[-1]
    n = poisson(rng, rate_per_day * total)
    if n == 0:
        return []
    us = sorted(rng.random() * total for _ in range(n))
    out: list[int] = []
    last = len(cum) - 2
    for x in us:
        h = min(bisect.bisect_right(cum, x) - 1, last)
        width = cum[h + 1] - cum[h]
        frac = (x - cum[h]) / width if width > 0 else 0.5
        out.append(t0 + int((h + frac) * HOUR))
    if t_from is not None:
        out = [t for t in out if t >= t_from]
    return out

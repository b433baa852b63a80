"""The daily and weekly rhythm of a store, learned from its own sales.

Sales speed is kept per *average hour*; the rhythm turns a stretch of clock time
into how many average hours of trade it holds (a closed night ~0, Saturday noon
~2). Hour-of-day and day-of-week shares are learned separately (each has far more
data than an hour-of-week cell) and multiplied. Hours count from the Unix epoch
in UTC: the profile is per store, so the store's offset is learned, not needed.

Both shares are rates per hour *watched* (from the store's first sale to its last): an
hour of the day or a day of the week not watched yet trades as the average watched one,
not as closed, and a day watched for a few night hours is judged by what the hour
profile expects of those hours. Without that, a store's first week spread the week's
trade over the hours seen (a watched hour of day 0 weighed ~5 average hours) and read
tomorrow morning as closed. Once every cell is watched alike the shares are the plain
counts' (docs/engine.md, stop 33).
"""

from __future__ import annotations

from bisect import insort
from datetime import datetime
from itertools import accumulate, repeat
from math import floor  # floor(x): int(x // 1)'s int for a finite x, without int()'s call
from operator import lt

WEEK_HOURS = 168
# Pseudo-sales that keep an unseen hour or day from reading as "never trades".
HOUR_PRIOR = 0.5
DAY_PRIOR_SHARE = 0.2
REBUILD_GROWTH = 1.04  # rebuild the profile after 4% more sales (a replay asks ~4 times a visit)
WATCH_BY = 3  # sales kept at either end of the watched span, to set outliers aside
QUIET_SHARE = 0.1  # an hour trading below a tenth of the average hour counts as closed


class Rhythm:
    """Hour-of-week intensity (mean 1 over the week) and its running integral."""

    __slots__ = (
        "_built_at",
        "_cum",
        "_day_back",
        "_day_fwd",
        "_day_key",
        "_early",
        "_late",
        "_since_quiet",
        "_w",
        "builds",
        "day",
        "first_h",
        "hour",
        "last_h",
        "total",
    )

    def __init__(self) -> None:
        self.hour = [0.0] * 24
        self.day = [0.0] * 7
        self.total = 0.0
        self._w: list[float] = [1.0] * WEEK_HOURS
        self._cum: list[float] = [float(i) for i in range(WEEK_HOURS + 1)]
        self._built_at = 0.0
        self._since_quiet: list[float] = [0.0] * WEEK_HOURS
        self._day_back: list[int] = [i % 24 for i in range(WEEK_HOURS)]  # see ``day_start_h``
        self._day_fwd: list[int] = [24 - i % 24 for i in range(WEEK_HOURS)]
        self._day_key: tuple[bytes, int] | None = None  # what the day tables are of
        self.builds = 0  # profile rebuilds so far: clock readings taken since then still hold
        # The watched span, epoch hours, from the first to the last sale hour; of the
        # WATCH_BY at either end, one a week or more from the rest is set aside, so a sale
        # from a till with a reset clock does not stretch it over years (``Sales.opened``
        # does the same for the store's opening). -1: none yet.
        self.first_h = -1
        self.last_h = -1
        self._early: list[int] = []  # the WATCH_BY earliest sale hours, ascending
        self._late: list[int] = []  # the WATCH_BY latest, ascending

    def add(self, at: datetime, units: float) -> None:
        """Count ``units`` sold at ``at``."""
        self.add_hour(int(at.timestamp() // 3600), units)

    def add_hour(self, h: int, units: float) -> None:
        """Count ``units`` sold in epoch hour ``h`` (``int(timestamp // 3600)``)."""
        self.hour[h % 24] += units
        self.day[(h // 24) % 7] += units
        self.total += units
        early, late = self._early, self._late
        if len(early) < WATCH_BY or h < early[-1]:
            insort(early, h)
            del early[WATCH_BY:]
        elif not h > late[0]:
            return  # (most sales: inside the span, which stays)
        if len(late) < WATCH_BY or h > late[0]:
            insort(late, h)
            del late[: len(late) - WATCH_BY]
        i = 0  # the earliest sale not a week or more before the next (a reset till clock)
        while i + 1 < len(early) and early[i + 1] - early[i] >= WEEK_HOURS:
            i += 1
        j = len(late) - 1  # and the latest not a week or more after the one before
        while j > 0 and late[j] - late[j - 1] >= WEEK_HOURS:
            j -= 1
        first, last = early[i], late[j]
        self.first_h, self.last_h = (first, last) if first <= last else (early[0], late[-1])

    def _build(self) -> None:
        n = self.total
        hs, ds = self._shares()
        # Cell i = day i // 24, hour i % 24. A rebuild runs ~2,000 times a replay (~5% of
        # its instructions): comprehensions (~50,000 instructions each) rather than
        # ``map(mul, ..., repeat(...))`` (~86,000 and ~62,000), the same products.
        w = [h * d for d in ds for h in hs]
        scale = WEEK_HOURS / sum(w, 0.0)
        self._w = ws = [x * scale for x in w]
        self._cum = list(accumulate(ws, initial=0.0))  # cum[i + 1] = cum[i] + w[i]
        quiet = bytes(map(lt, ws, repeat(QUIET_SHARE)))  # 1 where ws[i] < QUIET_SHARE
        quiet_hour = hs.index(min(hs))
        self._since_quiet = _since_quiet(ws, quiet, _quietest(ws, ds, quiet_hour))
        # The day tables depend only on which cells are quiet and on the quietest hour,
        # which hold in about half the rebuilds: kept until they move.
        day_key = (quiet, quiet_hour)
        if day_key != self._day_key:
            self._day_back, self._day_fwd = _day_tables(quiet, day_key[1])
            self._day_key = day_key
        self._built_at = n
        self.builds += 1

    def _shares(self) -> tuple[list[float], list[float]]:
        """Hour-of-day and day-of-week shares (any scale), each a rate per hour watched:
        hour ``h``'s sales (plus ``HOUR_PRIOR``) over the days it was watched, an hour
        never watched at the watched hours' mean; day ``d``'s sales over what the hour
        shares expect of its watched hours, both plus ``DAY_PRIOR_SHARE`` of an average
        day's expected sales (a day never watched: 1)."""
        first, last = self.first_h, self.last_h
        watched = watched_cells(first, last) if first >= 0 else [0] * WEEK_HOURS
        days_of = [sum(watched[h::24]) for h in range(24)]  # (cell = 24 day + hour)
        seen = sum(days_of)
        if seen == 0:
            return [HOUR_PRIOR + c for c in self.hour], [1.0] * 7
        mean = (self.total + HOUR_PRIOR * sum(1 for d in days_of if d)) / seen
        hs = [(c + HOUR_PRIOR) / d if d else mean for c, d in zip(self.hour, days_of, strict=True)]
        expect = [sum([w * r for w, r in zip(watched[24 * d : 24 * d + 24], hs, strict=True)], 0.0)
                  for d in range(7)]  # fmt: skip
        prior = DAY_PRIOR_SHARE * sum(expect, 0.0) / 7 + 1.0
        ds = [(c + prior) / (e + prior) for c, e in zip(self.day, expect, strict=True)]
        return hs, ds

    def _fresh(self) -> None:
        if self.total > self._built_at * REBUILD_GROWTH + 1.0:
            self._build()

    def fresh_builds(self) -> int:
        """Rebuild if due (as any reading would), then the count of builds so far."""
        if self.total > self._built_at * REBUILD_GROWTH + 1.0:
            self._build()
        return self.builds

    def _at(self, x: float) -> float:
        k = floor(x)
        weeks, i = divmod(k, WEEK_HOURS)
        return weeks * WEEK_HOURS + self._cum[i] + (x - k) * self._w[i]

    def clock(self, at: datetime) -> float:
        """Average trade hours from the epoch to ``at``: ``hours(a, b) = clock(b) - clock(a)``."""
        self._fresh()
        return self._at(at.timestamp() / 3600)

    def clocks(self, *ats: datetime) -> list[float]:
        """``clock`` of several moments at once (one freshness check)."""
        return self.clocks_h(*[t.timestamp() / 3600 for t in ats])

    def clocks_h(self, *xs: float) -> list[float]:
        """``clocks`` of moments given as epoch hours (``timestamp() / 3600``), inlined ``_at``."""
        if self.total > self._built_at * REBUILD_GROWTH + 1.0:
            self._build()
        cum, w = self._cum, self._w
        out = []
        for x in xs:
            k = floor(x)
            weeks, i = divmod(k, WEEK_HOURS)
            out.append(weeks * WEEK_HOURS + cum[i] + (x - k) * w[i])
        return out

    def clock_h(self, x: float) -> float:
        """``clock`` of a moment given as epoch hours (``timestamp() / 3600``)."""
        if self.total > self._built_at * REBUILD_GROWTH + 1.0:
            self._build()
        k = floor(x)
        weeks, i = divmod(k, WEEK_HOURS)
        return weeks * WEEK_HOURS + self._cum[i] + (x - k) * self._w[i]

    def now_clocks(self, x_now: float, x_end: float | None) -> tuple[float, float, float]:
        """``clock_h`` of now and of arrival (``x_end``; None: none, 0) and ``into_day_h``
        of now, in one call (one freshness check, the same arithmetic): what every pair's
        evidence at that moment reads alike."""
        if self.total > self._built_at * REBUILD_GROWTH + 1.0:
            self._build()
        cum, w = self._cum, self._w
        k = floor(x_now)
        weeks, i = divmod(k, WEEK_HOURS)
        w_now = w[i]
        c_now = weeks * WEEK_HOURS + cum[i] + (x_now - k) * w_now
        c_end = 0.0
        if x_end is not None:
            k = floor(x_end)
            weeks, j = divmod(k, WEEK_HOURS)
            c_end = weeks * WEEK_HOURS + cum[j] + (x_end - k) * w[j]
        # into_day_h(x_now): its cell is floor(x) % WEEK_HOURS, i.e. i above
        into = 0.0 if w_now < QUIET_SHARE else self._since_quiet[i] - w_now * (1.0 - (x_now % 1.0))
        return c_now, c_end, into

    def hours(self, start: datetime, end: datetime) -> float:
        """Average hours of trade between ``start`` and ``end`` (0 when end ≤ start)."""
        if end <= start:
            return 0.0
        self._fresh()
        return self._at(end.timestamp() / 3600) - self._at(start.timestamp() / 3600)

    def into_day(self, at: datetime) -> float:
        """Average trade hours since the store last went quiet (its trading day so far)."""
        return self.into_day_h(at.timestamp() / 3600)

    def into_day_h(self, x: float) -> float:
        """``into_day`` of a moment given as epoch hours."""
        self._fresh()
        i = floor(x) % WEEK_HOURS
        w = self._w[i]
        if w < QUIET_SHARE:
            return 0.0
        return self._since_quiet[i] - w * (1.0 - (x % 1.0))

    def day_start_h(self, x: float) -> int:
        """The epoch hour (``int(timestamp // 3600)``) at which the store's trading day
        holding the moment ``x`` (epoch hours) began. Reads the profile as last built
        (no rebuild: a reading here leaves every other reading as it would have been)."""
        k = floor(x)
        return k - self._day_back[k % WEEK_HOURS]

    def built_day_clock_h(self, x: float) -> tuple[int, int, float]:
        """``day_start_h`` of ``x``, the epoch hour the next trading day begins, and the
        ``clocks_h`` of ``x``, on the profile as last built (no rebuild), in one call."""
        k = floor(x)
        weeks, i = divmod(k, WEEK_HOURS)
        clock = weeks * WEEK_HOURS + self._cum[i] + (x - k) * self._w[i]
        return k - self._day_back[i], k + self._day_fwd[i], clock

    def weight(self, at: datetime) -> float:
        """Intensity at ``at`` relative to the store's average hour."""
        self._fresh()
        return self._w[int(at.timestamp() // 3600) % WEEK_HOURS]


def watched_cells(first: int, last: int) -> list[int]:
    """Per hour-of-week cell (``h % WEEK_HOURS``), how many of the epoch hours ``first`` ..
    ``last`` fall in it: whole weeks, plus one for the cells of the part week left."""
    whole, rest = divmod(last - first + 1, WEEK_HOURS)
    watched = [whole] * WEEK_HOURS
    a = first % WEEK_HOURS  # cells a .. a + rest - 1, round the week
    b = a + rest
    more = [whole + 1] * rest
    if b <= WEEK_HOURS:
        watched[a:b] = more
    else:
        watched[a:] = more[: WEEK_HOURS - a]
        watched[: b - WEEK_HOURS] = more[WEEK_HOURS - a :]
    return watched


def _quietest(ws: list[float], ds: list[float], quiet_hour: int) -> int:
    """``ws.index(min(ws))``, the first quietest cell, for ``ws[24 d + h]`` the products
    ``hs[h] * ds[d]`` (positive) times a positive scale, ``quiet_hour`` the first lowest
    ``hs``: rounding is monotone, so the product of the lowest hour and the lowest day is
    the lowest cell (its value; the first cell equal to it is the answer) without
    comparing all 168."""
    return ws.index(ws[24 * ds.index(min(ds)) + quiet_hour])


def _since_quiet(ws: list[float], quiet: bytes, start: int) -> list[float]:
    """Per cell, the trade (average hours) since the last quiet cell: the "how far into
    its trading day is the store" clock. The week is read from ``start + 1`` on, as the
    loop ``acc = 0.0 if quiet else acc + x`` would; each run of trading cells is summed
    by ``accumulate`` in that same order (its first term is ``x``, which is ``0.0 + x``),
    so the floats are the loop's without a Python step per cell."""
    k = start + 1
    rot, rot_quiet = ws[k:] + ws[:k], quiet[k:] + quiet[:k]
    out = [0.0] * WEEK_HOURS
    i = rot_quiet.find(0)  # the first trading cell (quiet cells stay 0.0)
    while i >= 0:
        j = rot_quiet.find(1, i)  # the end of its run of trading cells
        if j < 0:
            j = WEEK_HOURS
        out[i:j] = accumulate(rot[i:j])
        i = rot_quiet.find(0, j)
    r = (WEEK_HOURS - k) % WEEK_HOURS  # rotated position of cell 0
    return out[r:] + out[:r]


def _day_tables(quiet: bytes, quiet_hour: int) -> tuple[list[int], list[int]]:
    """Per hour-of-week cell, whole hours since the store's trading day began and hours
    to the next day's start, from which cells are quiet (``quiet[i]``: 1 when the cell
    trades below ``QUIET_SHARE``) and the quietest hour of the day (``_day_starts``).
    Quiet cells belong to the day that just ended. Built from the few day starts with
    ranges, not cell by cell (a walk twice round the week was ~500,000 instructions a
    rebuild; ``tests/test_runout.py`` holds the two equal)."""
    starts = _day_starts(quiet, quiet_hour)
    back: list[int] = []
    fwd: list[int] = []
    for s, t in zip(starts, [*starts[1:], starts[0] + WEEK_HOURS], strict=True):
        back += range(t - s)
        fwd += range(t - s, 0, -1)
    r = (WEEK_HOURS - starts[0]) % WEEK_HOURS  # where cell 0 is (the lists begin at starts[0])
    return back[r:] + back[:r], fwd[r:] + fwd[:r]


def _day_starts(quiet: bytes, quiet_hour: int) -> list[int]:
    """The cells at which a trading day begins, ascending: the first trading cell after a
    quiet one and, in a run of trading cells, the quietest hour of the day once 24 hours
    have passed since the day began (a store that never goes quiet: that hour, daily)."""
    q0 = quiet.find(1)
    if q0 < 0:
        return list(range(quiet_hour, WEEK_HOURS, 24))
    rot = quiet[q0:] + quiet[:q0]  # read from a quiet cell: no run of trading cells wraps
    found: list[int] = []
    a = rot.find(0)
    assert a >= 0, "a profile has trading cells (its mean intensity is 1)"
    while a >= 0:
        b = rot.find(1, a)  # the run of trading cells [a, b)
        b = WEEK_HOURS if b < 0 else b
        found.append(a)
        # the first cell 24 or more hours after a at the quietest hour, then every 24
        found += range(a + 24 + (quiet_hour - q0 - a - 24) % 24, b, 24)
        a = rot.find(0, b)
    return sorted((q0 + k) % WEEK_HOURS for k in found)

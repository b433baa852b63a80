"""Online calibration: the model's evidence → P(enough on the shelf), learned from labels.

Labelled outcomes the service really gets (shelf counts: the engine passes those
only, since a visit's outcome is the shelf and a pick also searches the back room)
are scored against the evidence the engine would have had for a shopper who
looked the item up a little before (``Engine`` builds that evidence). Two stages:

1. **Sign-constrained logistic regression** on a handful of features of the
   evidence (the raw probability's logit, sales speed, silence, phantom prior,
   unrecorded loss, unreported sales, units beyond the request, a delivery still
   waiting in the back room). Each weight whose feature the badge properties
   care about is projected onto the safe sign after every step (more book never
   lowers, more sales / loss / silence / staleness never raise), so the learned
   map keeps the properties by construction while it learns, for instance, that
   fast sellers run their shelf empty more often than the raw model says.
2. **Isotonic map** (pool adjacent violators over fine bins, shrunk toward the
   identity) of the logistic output to the observed rate, non-decreasing.

And **floors**: where the book says none, the record may be behind the shelf (a
delivery not booked yet, units found). Shelf counts at such books give P(≥ d units
there), d = 1, 2, 3 units short, the least confidence a badge gets (``floor_of``).

And **the unrecorded shelf**: a pair with no record at all (a store whose first
snapshot has not come, no count) still gets a confidence, the chance that a shelf of
this chain holds the wanted units: the share of all its shelf counts that found at
least that many (``unrecorded_of``), not 0, which would claim an empty shelf.

Learning is AdaGrad, one label at a time; no I/O, no clock.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from app.domain.pooled import pooled_rates

if TYPE_CHECKING:
    from app.domain.confidence import Evidence

BINS = 40
# Pseudo-labels a bin at its mean raw. The raw model is under-confident in the middle,
# so shrinking toward it biases the map; 3 with shelf counts as the only labels (~2,000
# in 14 days at the bench's size; 5 until stop 33's rhythm, 20 when picks were labels
# too: docs/engine.md).
PRIOR_N = 3.0
MIN_LABELS = 200  # labels before the learned map replaces the cold-start map
# The map's memory, in labels: each new label multiplies the weight of those before by
# 1 − 1/LABEL_MEMORY. Shelves drift (loss builds up between counts, the other learners
# move the raw scale), and a map of every label since the start lags them; with a
# fixed memory it tracks them as fast as labels come. A 20-store chain gets ~150 shelf
# counts a day and keeps ~82% of its first day's weight after 14 days; a 50 × 1,000 one
# gets ~1,800 a day and forgets with a half-life of ~4 days (docs/engine.md, stop 23).
LABEL_MEMORY = 10_000
# The cold-start map (raw -> P(enough), by bin): what the engine says until it has
# MIN_LABELS labels of its own, and for good where no feedback comes in. The raw
# model is under-confident in the middle of the scale (each of loss, phantom prior
# and silence is pessimistic on its own); this is how visits of seven simulated
# worlds (two seeds each, none of bench_accuracy's) fared by raw confidence, fitted
# as _build fits labels: `scripts/fit_cold_prior.py` prints it, docs/engine.md has
# how it does on worlds it was not fitted on. Non-decreasing, so the badge
# properties hold with it as with any learned map.
COLD_PRIOR = (  # 711,378 visits, 7 worlds, seeds 11 and 12
    0.037, 0.419, 0.452, 0.489, 0.490, 0.522, 0.522, 0.539,
    0.539, 0.577, 0.577, 0.589, 0.608, 0.649, 0.667, 0.668,
    0.729, 0.793, 0.802, 0.802, 0.802, 0.802, 0.802, 0.802,
    0.810, 0.818, 0.835, 0.855, 0.869, 0.881, 0.897, 0.909,
    0.919, 0.934, 0.942, 0.950, 0.960, 0.967, 0.967, 0.988,
)  # fmt: skip
# The record behind the shelf: shelf counts where the book said none (≤ 0) and staff
# found units anyway (a receipt not booked, units found, a return not rung up). By the
# units wanted beyond the book (1, 2, 3; more: no floor), P(the count held that many),
# each from a prior of FLOOR_PRIOR_N counts at FLOOR_PRIOR; non-increasing in the units.
FLOOR_PRIOR = (0.02, 0.01, 0.005)
FLOOR_PRIOR_N = 50.0
# At most: a record that is merely behind. Counts finding more say the book is broken,
# which the floor, a confidence without any evidence of units, must not carry.
FLOOR_MAX = 0.25
# The unrecorded shelf: P(a shelf count finds ≥ q units), q = 1 … len, each from a prior
# of UNRECORDED_PRIOR_N counts at UNRECORDED_PRIOR[q − 1]; more units wanted than the
# table holds: 0 (no count says a shelf holds that many). The prior for one unit is
# retail's average on-shelf availability (an out-of-stock rate of ~8 % of items at any
# moment, Gruen, Corsten & Bharadwaj 2002), each further unit 0.8 times as likely: design
# constants, which a chain's own counts replace within a day of counting.
UNRECORDED_PRIOR = tuple(0.92 * 0.8**q for q in range(24))
UNRECORDED_PRIOR_N = 20.0
RATE = 0.0  # 0: the logistic stage stays the identity (0.05 measured worse, docs/engine.md)
RIDGE = 1e-4  # pull toward the starting weights (the identity map)

# Feature signs: +1 weight ≥ 0, −1 weight ≤ 0, 0 free.
# Last: into_day × log sales, ≤ 0 keeps more sales from raising confidence.
SIGNS = (0, 1, -1, -1, -1, -1, -1, 1, -1, 0, 0, -1)
START = (0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
N_FEATURES = len(SIGNS)


def logit(p: float) -> float:
    p = 1e-4 if p < 1e-4 else p  # min(max(p, 1e-4), 1 - 1e-4) as conditionals (hot path)
    p = 1.0 - 1e-4 if p > 1.0 - 1e-4 else p
    return math.log(p / (1.0 - p))


def features(e: Evidence, raw: float) -> tuple[float, ...]:
    """The logistic stage's inputs; each is monotone in its evidence field."""
    units = e.book if e.shelf_bound is None else min(e.book, e.shelf_bound)
    waiting = (1.0 - e.shelf_fill) if e.back_room > 0 else 0.0
    return (
        1.0,
        logit(raw),
        math.log(0.01 + max(0.0, e.expected_sales)),
        math.log1p(max(0.0, e.silence)),
        math.log(0.001 + min(max(e.phantom_prior, 0.0), 1.0)),
        math.log1p(max(0.0, e.unrecorded_loss)),
        math.log1p(max(0.0, e.unreported_sales)),
        math.log1p(max(0, units - e.wanted)),
        waiting,
        1.0 if e.back_room > 0 else 0.0,
        math.log1p(max(0.0, e.into_day)),
        math.log1p(max(0.0, e.into_day)) * math.log(0.01 + max(0.0, e.expected_sales)),
    )


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    ez = math.exp(z)
    return ez / (1.0 + ez)


def isotonic_map(
    n: list[float], hits: list[float], raw: list[float], prior_n: float = PRIOR_N
) -> list[float]:
    """Observed rate by bin (``n`` outcomes, ``hits`` of them found, ``raw`` their summed
    input), each bin shrunk toward its mean input by ``prior_n`` pseudo-outcomes, pooled
    until non-decreasing. The pseudo-outcomes go into the sums here, so the pooling
    itself adds none (each bin has its own prior mean)."""
    k = len(n)
    means = [raw[i] / n[i] if n[i] else (i + 0.5) / k for i in range(k)]
    return pooled_rates(
        [h + prior_n * m for h, m in zip(hits, means, strict=True)],
        [c + prior_n for c in n],
        0.0,
        0.0,
    )


def knots_of(step: list[float], weights: list[float] | None = None) -> list[float]:
    """The map read at each bin's centre from its per-bin values ``step``: each run of
    equal values (a block the pooling made) stands at its bins' mean centre, weighted
    by ``weights`` (each bin's outcomes; None: alike), and the map is read linearly
    between blocks, flat before the first and after the last: centred isotonic
    regression (Oron & Flournoy 2017). A step map gave one value to a whole bin (0.025
    of raw) and to a pooled run of bins, so a small change of the evidence (a quiet
    hour, one unit more) often changed nothing; read linearly, it moves the confidence
    by its share of the step (docs/engine.md, stop 33). Non-decreasing as ``step`` is."""
    k = len(step)
    at: list[float] = []  # each block's middle, in bins
    value: list[float] = []
    i = 0
    while i < k:
        j = i
        while j + 1 < k and step[j + 1] == step[i]:
            j += 1
        if weights is None:
            at.append((i + j) / 2)
        else:
            w = weights[i : j + 1]
            at.append(sum([centre * x for centre, x in enumerate(w, i)], 0.0) / sum(w, 0.0))
        value.append(step[i])
        i = j + 1
    out: list[float] = []
    b = 0
    for c in range(k):
        while b + 1 < len(at) and at[b + 1] <= c:
            b += 1
        if c <= at[0]:
            out.append(value[0])
        elif b + 1 >= len(at):
            out.append(value[-1])
        else:
            t = (c - at[b]) / (at[b + 1] - at[b])
            out.append(value[b] + t * (value[b + 1] - value[b]))
    return out


def read_knots(knots: tuple[float, ...] | list[float], p: float) -> float:
    """The map at ``p`` (in [0, 1]) from ``knots_of``'s values at the bins' centres."""
    t = p * len(knots) - 0.5
    if t <= 0.0:
        return knots[0]
    j = math.floor(t)
    if j >= len(knots) - 1:
        return knots[-1]
    a = knots[j]
    return a + (t - j) * (knots[j + 1] - a)


def short_floors(n: int, found: list[int]) -> tuple[float, ...]:
    """``Calibration.floors`` from its counts: each rate shrunk toward its prior, then
    made non-increasing in the units."""
    out: list[float] = []
    for d, prior in enumerate(FLOOR_PRIOR):
        rate = (found[d] + FLOOR_PRIOR_N * prior) / (n + FLOOR_PRIOR_N)
        rate = rate if rate < FLOOR_MAX else FLOOR_MAX
        out.append(rate if not out or rate < out[-1] else out[-1])
    return tuple(out)


def map_due(seen: int, built: int) -> bool:
    """Whether the map (or the unrecorded shelf) built at ``built`` labels is due a
    rebuild at ``seen``: after 2% more and 20, so a persisted map lasts a while."""
    return seen >= built * 1.02 + 20


def unrecorded_rates(n: float, at_least: list[float]) -> tuple[float, ...]:
    """``Calibration.unrecorded`` from its counts: each share shrunk toward its prior,
    then made non-increasing in the units."""
    out: list[float] = []
    for q, prior in enumerate(UNRECORDED_PRIOR):
        rate = (at_least[q] + UNRECORDED_PRIOR_N * prior) / (n + UNRECORDED_PRIOR_N)
        out.append(rate if not out or rate < out[-1] else out[-1])
    return tuple(out)


# The rates before any shelf count (a map saved before them has none): made once, not
# per answer.
_PRIOR_RATES = unrecorded_rates(0.0, [0.0] * len(UNRECORDED_PRIOR))


def unrecorded_of(rates: tuple[float, ...], wanted: int) -> float:
    """P(``wanted`` units on the shelf) for a pair without a record: ``rates`` as learned
    (none: the prior's), 0 beyond the table."""
    if not rates:
        rates = _PRIOR_RATES
    return rates[wanted - 1] if 1 <= wanted <= len(rates) else 0.0


def floor_of(floors: tuple[float, ...], book: int, wanted: int) -> float:
    """The confidence no badge goes below: P(the wanted units are there although the book
    is short by ``wanted − book``). A book that covers the request gets the one-unit
    floor, so more book never lowers it; beyond ``len(floors)`` units short, none."""
    short = wanted - (book if book > 0 else 0)
    short = short if short > 1 else 1
    return floors[short - 1] if short <= len(floors) else 0.0


class Calibration:
    def __init__(self, rate: float = RATE) -> None:
        self.rate = rate
        self.w = list(START)
        self.g2 = [1.0] * N_FEATURES
        self.n = [0.0] * BINS
        self.hits = [0.0] * BINS
        self.raw = [0.0] * BINS
        self._map: list[float] | None = None
        self._built_at = 0
        self.labels = 0
        self.short_n = 0
        self.short_found = [0] * len(FLOOR_PRIOR)
        self._floors: tuple[float, ...] | None = None
        self.shelf_n = 0.0
        self.shelf_at_least = [0.0] * len(UNRECORDED_PRIOR)
        self.shelf_counts = 0
        self._unrecorded: tuple[float, ...] | None = None
        self._unrecorded_at = 0

    @staticmethod
    def _bin(p: float) -> int:
        i = math.floor(p * BINS)  # min(BINS - 1, max(0, i)) as conditionals (hot path)
        i = i if i > 0 else 0
        return i if i < BINS - 1 else BINS - 1

    def logistic(self, e: Evidence, raw: float) -> float:
        """Stage one: P(enough) from the evidence's features."""
        if self.rate == 0.0:  # the weights never leave START: the same sum, without the features
            return _sigmoid(logit(raw))
        x = features(e, raw)
        return _sigmoid(sum((w * v for w, v in zip(self.w, x, strict=True)), 0.0))

    def observe(self, e: Evidence, raw: float, outcome: bool) -> None:
        """One labelled outcome for the evidence ``e`` (raw probability ``raw``)."""
        p = self.logistic(e, raw)
        i = self._bin(p)
        keep = 1.0 - 1.0 / LABEL_MEMORY
        self.n = [c * keep for c in self.n]
        self.hits = [h * keep for h in self.hits]
        self.raw = [r * keep for r in self.raw]
        self.n[i] += 1
        self.hits[i] += 1.0 if outcome else 0.0
        self.raw[i] += p
        if self.rate != 0.0:  # at rate 0 every AdaGrad step is 0: skip the features
            self._step(features(e, raw), p - (1.0 if outcome else 0.0))
        self.labels += 1
        if map_due(self.labels, self._built_at) or self.labels == MIN_LABELS:
            self._map = None  # rebuilt lazily; a map a few labels old is as good

    def observe_short(self, counted: int) -> None:
        """A shelf count of ``counted`` units where the book said there were none."""
        self.short_n += 1
        for d in range(len(FLOOR_PRIOR)):
            if counted > d:
                self.short_found[d] += 1
        self._floors = None

    def observe_shelf(self, counted: int) -> None:
        """Any shelf count, of ``counted`` units (the unrecorded shelf's label), with the
        labels' memory."""
        keep = 1.0 - 1.0 / LABEL_MEMORY
        at_least = self.shelf_at_least
        for q in range(len(at_least)):
            at_least[q] = at_least[q] * keep + (1.0 if counted > q else 0.0)
        self.shelf_n = self.shelf_n * keep + 1.0
        self.shelf_counts += 1
        if map_due(self.shelf_counts, self._unrecorded_at):
            self._unrecorded = None  # rebuilt as the map is

    def unrecorded(self) -> tuple[float, ...]:
        """P(a shelf holds ≥ q units), q = 1 … 24, for pairs without a record."""
        if self._unrecorded is None:
            self._unrecorded = unrecorded_rates(self.shelf_n, self.shelf_at_least)
            self._unrecorded_at = self.shelf_counts
        return self._unrecorded

    def floors(self) -> tuple[float, ...]:
        """P(≥ d units on the shelf | the book says none), d = 1, 2, 3."""
        if self._floors is None:
            self._floors = short_floors(self.short_n, self.short_found)
        return self._floors

    def floor(self, book: int, wanted: int) -> float:
        """The least confidence for ``wanted`` units on a book of ``book`` (``floor_of``)."""
        return floor_of(self.floors(), book, wanted)

    def _step(self, x: tuple[float, ...], err: float) -> None:
        """One AdaGrad step, each weight projected back onto its safe sign."""
        for k in range(N_FEATURES):
            g = err * x[k] + RIDGE * (self.w[k] - START[k])
            self.g2[k] += g * g
            w = self.w[k] - self.rate * g / math.sqrt(self.g2[k])
            s = SIGNS[k]
            if (s > 0 and w < 0.0) or (s < 0 and w > 0.0):
                w = 0.0
            self.w[k] = w

    def _build(self) -> list[float]:
        """The map's values at the bins' centres (``knots_of``)."""
        if self.labels < MIN_LABELS:
            return knots_of(list(COLD_PRIOR))
        step = isotonic_map(self.n, self.hits, self.raw)
        return knots_of(step, [c + PRIOR_N for c in self.n])

    def __call__(self, e: Evidence, raw: float) -> float:
        """Calibrated P(enough); non-decreasing in ``raw`` and in each safe feature."""
        # logistic(), _sigmoid(logit(raw)) and _bin() inlined: this runs per visit
        if self.rate == 0.0:
            r = 1e-4 if raw < 1e-4 else raw
            r = 1.0 - 1e-4 if r > 1.0 - 1e-4 else r
            z = math.log(r / (1.0 - r))
            if z >= 0:
                p = 1.0 / (1.0 + math.exp(-z))
            else:
                ez = math.exp(z)
                p = ez / (1.0 + ez)
        else:
            p = self.logistic(e, raw)
        if self._map is None:
            self._map = self._build()
            self._built_at = self.labels
        knots = self._map  # read_knots(self._map, p), inline
        t = p * BINS - 0.5
        if t <= 0.0:
            return knots[0]
        j = math.floor(t)
        if j >= BINS - 1:
            return knots[BINS - 1]
        a = knots[j]
        return a + (t - j) * (knots[j + 1] - a)

"""Calibration-map variants re-scored offline on recorded replays (diagnosis only).

    PYTHONPATH=$PWD .venv/bin/python scripts/calibration_lab.py DATASET_DIR [...] [--table]
        [--ceilings | --adaptive | --promised]

The two ideas docs/engine.md left open ("Doubts and next steps"), measured the way
``accuracy_probe.py`` measures map variants (one replay records every visit's and
label's evidence; the online map is re-run over the recorded stream; the first line is
the engine's map as it was until 2026-12-07, every label kind: it reproduced the
service's report then, and ``shelf counts only`` is now the closest to the engine's,
without its floors, the shelf share and the seen/refilled split. It no longer
reproduces the engine: on default seed 1 (stop 29) its ``engine`` line reads FPR 1.83%,
coverage 84.8%, Brier 0.0379, worst gap 0.133 where the service's report has 1.74%,
85.4%, 0.0357 and 0.042, so compare its lines with each other, not with the report):

- **labels reweighted toward the look-ups' evidence**: the service sees its own
  look-ups (their evidence, not their outcomes), so each label gets the weight
  (look-ups' share of its cell) / (labels' share of its cell), from the histograms of
  everything seen so far, clipped and normalised to a mean of 1; the isotonic map on raw
  is rebuilt from the weighted bins (``CellMap``); cells are evidence features, the
  pair's sales speed or the pair itself. ``--table`` prints, by raw decile, what visits
  find against what labels find, plain and weighted by sales speed or by pair over the
  whole replay (the weighting's best case);
- **a map that conditions on more than raw**: the sign-constrained logistic stage of
  ``app/domain/calibration.py`` fitted in batch (projected Newton with a line search,
  ridge toward the identity) every 25% more labels, on the engine's labels or on
  pseudo-visit labels (looked up 1 h before with the policy's horizon), then the
  isotonic map on its output (``BatchLogitMap``);
- and a label fix: a pick's book also holds the units its own order reserved (an online
  sale is on the record from the order, its units on the shelf until the pick).

``--ceilings`` adds what these maps would do with labels the service does not have or
cannot trust: the visits' own outcomes, learned 2 h after each look-up (a cheat: it
reads ``on_shelf_qty``, as a ceiling), for the isotonic map on raw and for the batch
logistic; and each look-up labelled by the published POS: found when a sale of the pair
of at least the wanted units occurred within 3 h after it (the window of
``viewed_at`` before arrival), learned 4 h after the look-up. Otherwise
``on_shelf_qty`` is read only to score, never to learn. The plain run also tries
maps from one label kind (shelf counts only, picks only).

``--adaptive``: the threshold re-chosen online from the look-ups' confidences (the
lowest at which their expected false-promise rate is within 2% / 1.5%), no outcome
used. ``--promised``: of the visits promised at 0.9 or more, the share that found too
few units by sales speed, book, back room, silence, loss, confidence and hour.
"""

from __future__ import annotations

import argparse
import bisect
import math
from collections import defaultdict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import Protocol

import msgspec
from accuracy_probe import (  # scripts/ on sys.path
    LabelRec,
    VisitRec,
    mechanism,
    promisable,
    record,
    scored,
)

from app.backtest.dataset import PublishedEvent, open_dataset
from app.domain import calibration as C
from app.domain.confidence import Evidence, raw_confidence
from app.domain.model import Sale

Label = tuple[float, Evidence, float, bool]  # (published, evidence, raw, outcome)
Who = tuple[float, tuple[str, str]]  # (the pair's units a day, the pair)
Cell = Callable[[Evidence, float, Who], Hashable]  # (evidence, raw, who) → cell


def _cut(x: float, edges: tuple[float, ...]) -> int:
    return next((i for i, e in enumerate(edges) if x < e), len(edges))


def _units(ev: Evidence) -> int:
    return ev.book if ev.shelf_bound is None else min(ev.book, ev.shelf_bound)


CELLS: dict[str, Cell] = {
    "raw decile": lambda ev, r, w: min(9, int(r * 10)),
    "silence": lambda ev, r, w: _cut(ev.silence, (0.5, 1.5, 3, 6)),
    "mechanism": lambda ev, r, w: mechanism(ev),
    "loss": lambda ev, r, w: _cut(ev.unrecorded_loss, (1, 3, 6, 12)),
    "units beyond the request": lambda ev, r, w: _cut(_units(ev) - ev.wanted, (1, 3, 6, 12, 30)),
    "phantom prior": lambda ev, r, w: _cut(ev.phantom_prior, (0.03, 0.06, 0.1, 0.2)),
    "into the day": lambda ev, r, w: _cut(ev.into_day, (2, 5, 9)),
    "sales speed": lambda ev, r, w: _cut(w[0], (0.25, 0.5, 1, 2, 4, 8, 16, 32)),
    "pair": lambda ev, r, w: w[1],
}


def _bin(p: float) -> int:
    return min(C.BINS - 1, max(0, math.floor(p * C.BINS)))


class Map(Protocol):
    labels: int

    def see(self, ev: Evidence, raw: float, who: Who) -> None: ...
    def observe(self, lab: Label, who: Who) -> None: ...
    def __call__(self, ev: Evidence, raw: float) -> float: ...


class CellMap:
    """The isotonic map on raw, each label weighted by look-ups' share / labels' share of
    its cell (``cell`` None: unweighted, the engine's map). ``per_bin``: the weights are
    renormalised within each raw bin (the same weight a bin as unweighted, only the mix
    within it moves)."""

    def __init__(
        self, cell: Cell | None = None, clip: tuple[float, float] = (0.2, 5.0),
        per_bin: bool = False, prior_n: float = C.PRIOR_N,
    ) -> None:  # fmt: skip
        self.cell, self.clip, self.per_bin, self.prior_n = cell, clip, per_bin, prior_n
        self.stats: dict[Hashable, list[list[float]]] = {}  # cell → [n, hits, raw] by bin
        self.looked: dict[Hashable, int] = defaultdict(int)
        self.lookups = self.labels = self._built_at = 0
        self._map: list[float] | None = None

    def see(self, ev: Evidence, raw: float, who: Who) -> None:
        if self.cell is not None:
            self.looked[self.cell(ev, raw, who)] += 1
            self.lookups += 1

    def observe(self, lab: Label, who: Who) -> None:
        _, ev, raw, outcome = lab
        c = None if self.cell is None else self.cell(ev, raw, who)
        s = self.stats.setdefault(c, [[0.0] * C.BINS, [0.0] * C.BINS, [0.0] * C.BINS])
        i = _bin(raw)
        s[0][i] += 1
        s[1][i] += outcome
        s[2][i] += raw
        self.labels += 1
        if self.labels >= self._built_at * 1.02 + 20:
            self._map = None

    def _weights(self) -> dict[Hashable, float]:
        counts = {c: sum(s[0]) for c, s in self.stats.items()}
        if self.cell is None or not self.lookups:
            return dict.fromkeys(counts, 1.0)
        k = len(counts)
        w = {
            c: min(self.clip[1], max(self.clip[0], ((self.looked[c] + 1) / (self.lookups + k))
                                     / ((n + 1) / (self.labels + k))))
            for c, n in counts.items()
        }  # fmt: skip
        z = sum(w[c] * counts[c] for c in counts) / self.labels
        return {c: x / z for c, x in w.items()}

    def _build(self) -> list[float]:
        w = self._weights()
        n, hits, raw, plain = ([0.0] * C.BINS for _ in range(4))
        for c, s in self.stats.items():
            for i in range(C.BINS):
                n[i] += w[c] * s[0][i]
                hits[i] += w[c] * s[1][i]
                raw[i] += w[c] * s[2][i]
                plain[i] += s[0][i]
        if self.per_bin:
            for i in range(C.BINS):
                f = plain[i] / n[i] if n[i] else 1.0
                n[i], hits[i], raw[i] = n[i] * f, hits[i] * f, raw[i] * f
        return C.isotonic_map(n, hits, raw, self.prior_n)

    def __call__(self, ev: Evidence, raw: float) -> float:
        if self._map is None:
            self._map, self._built_at = self._build(), self.labels
        return self._map[_bin(raw)]


def _solve(a: list[list[float]], b: list[float]) -> list[float]:
    """a x = b by Gauss-Jordan with partial pivoting (small, dense)."""
    n = len(b)
    m = [[*row, b[i]] for i, row in enumerate(a)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        if abs(m[c][c]) < 1e-12:
            continue
        for r in range(n):
            f = m[r][c] / m[c][c] if r != c else 0.0
            if f:
                m[r] = [x - f * y for x, y in zip(m[r], m[c], strict=True)]
    return [m[i][n] / m[i][i] if abs(m[i][i]) > 1e-12 else 0.0 for i in range(n)]


class BatchLogitMap:
    """The logistic stage fitted in batch on every label so far (each weight held on its
    safe sign), refitted every ``grow`` × more labels, then the isotonic map on its output."""

    def __init__(self, ridge: float = 1.0, grow: float = 1.25, iters: int = 4) -> None:
        self.ridge, self.grow, self.iters = ridge, grow, iters
        self.w = list(C.START)
        self.xs: list[tuple[float, ...]] = []
        self.ys: list[float] = []
        self.labels = self._fit_at = self._built_at = 0
        self._map: list[float] | None = None

    def see(self, ev: Evidence, raw: float, who: Who) -> None:
        pass

    def _p(self, x: tuple[float, ...]) -> float:
        return C._sigmoid(sum(a * b for a, b in zip(self.w, x, strict=True)))

    def observe(self, lab: Label, who: Who) -> None:
        self.xs.append(C.features(lab[1], lab[2]))
        self.ys.append(1.0 if lab[3] else 0.0)
        self.labels += 1
        if self.labels >= C.MIN_LABELS and self.labels >= self._fit_at * self.grow:
            self._fit()
            self._fit_at, self._map = self.labels, None
        elif self.labels >= self._built_at * 1.02 + 20:
            self._map = None

    def _loss(self) -> float:
        out = 0.5 * self.ridge * sum((a - b) ** 2 for a, b in zip(self.w, C.START, strict=True))
        for x, y in zip(self.xs, self.ys, strict=True):
            p = min(max(self._p(x), 1e-9), 1 - 1e-9)
            out -= math.log(p) if y else math.log(1 - p)
        return out

    def _fit(self) -> None:
        k = C.N_FEATURES
        for _ in range(self.iters):
            g = [self.ridge * (w - s) for w, s in zip(self.w, C.START, strict=True)]
            h = [[self.ridge if i == j else 0.0 for j in range(k)] for i in range(k)]
            for x, y in zip(self.xs, self.ys, strict=True):
                p = self._p(x)
                for i in range(k):
                    if x[i]:
                        g[i] += (p - y) * x[i]
                        sx = p * (1 - p) * x[i]
                        for j in range(i, k):
                            h[i][j] += sx * x[j]
            for i in range(k):
                for j in range(i):
                    h[i][j] = h[j][i]
            d, w0, base, t = _solve(h, g), self.w[:], self._loss(), 1.0
            while t > 1e-3:  # a damped step, projected onto the signs, that lowers the loss
                self.w = [
                    0.0 if (s > 0 and v < 0) or (s < 0 and v > 0) else v
                    for s, v in zip(C.SIGNS, (a - t * b for a, b in zip(w0, d, strict=True)),
                                    strict=True)
                ]  # fmt: skip
                if self._loss() <= base:
                    break
                t *= 0.5
            else:
                self.w = w0

    def __call__(self, ev: Evidence, raw: float) -> float:
        if self._map is None:
            n, hits, ps = [0.0] * C.BINS, [0.0] * C.BINS, [0.0] * C.BINS
            for x, y in zip(self.xs, self.ys, strict=True):
                p = self._p(x)
                n[_bin(p)] += 1
                hits[_bin(p)] += y
                ps[_bin(p)] += p
            self._map, self._built_at = C.isotonic_map(n, hits, ps, C.PRIOR_N), self.labels
        return self._map[_bin(self._p(C.features(ev, raw)))]


def labels_of(
    labels: list[LabelRec], lead: int | None = None, own_units: bool = False
) -> list[tuple[Label, Who]]:
    """The map's labels (the engine's filter: the book covers the request), published order.
    ``own_units``: a pick's book also holds the units its order reserved (an online sale is
    on the record at order time, its units on the shelf until the pick: the wanted units)."""
    out = []
    for lab in labels:
        ev = lab.ev0 if lead is None else lab.leads[lead]
        if ev is not None and own_units and lab.kind != "shelf_count":
            ev = msgspec.structs.replace(ev, book=ev.book + lab.wanted)
        if ev is not None and ev.book >= lab.wanted:
            out.append(((lab.pub, ev, raw_confidence(ev), lab.outcome), (lab.per_day, lab.key)))
    return sorted(out, key=lambda x: x[0][0])


def outcomes_of(visits: list[VisitRec]) -> list[tuple[Label, Who]]:
    """The visits' own outcomes as labels, 2 h after each look-up (a cheat: a ceiling)."""
    return [
        ((v.t + 7200, v.ev, v.raw, v.available), (v.per_day, v.key))
        for v in visits
        if v.ev is not None and v.ev.book >= v.wanted
    ]


def matched_of(visits: list[VisitRec], root: Path) -> list[tuple[Label, Who]]:
    """Each look-up labelled by the published POS: found when a sale of the pair of at
    least the wanted units occurred within 3 h after it; learned 4 h after the look-up."""
    sales: dict[tuple[str, str], list[tuple[float, int]]] = defaultdict(list)
    for _, item in open_dataset(root).ordered():
        if isinstance(item, PublishedEvent) and isinstance(item.event, Sale):
            e = item.event
            sales[(e.store_id, e.sku)].append((e.occurred_at.timestamp(), e.qty))
    for got in sales.values():
        got.sort()
    out = []
    for v in visits:
        if v.ev is None or v.ev.book < v.wanted:
            continue
        got = sales.get(v.key, [])
        i = bisect.bisect_left(got, (v.t, 0))
        found = False
        while i < len(got) and got[i][0] <= v.t + 3 * 3600 and not found:
            found = got[i][1] >= v.wanted
            i += 1
        out.append(((v.t + 4 * 3600, v.ev, v.raw, found), (v.per_day, v.key)))
    return sorted(out, key=lambda x: x[0][0])


def rescore(
    visits: list[VisitRec], labels: list[tuple[Label, Who]], cal: Map,
    threshold: float = 0.9, buffer: int = 2,
) -> tuple[float, float, float, float]:  # fmt: skip
    """FPR, coverage, Brier and the worst gap over 500+-visit bins, as the report
    (``accuracy_probe.scored``)."""
    return scored(visits, map_confidence(labels, cal), threshold, buffer)


def map_confidence(labels: list[tuple[Label, Who]], cal: Map) -> Callable[[VisitRec], float]:
    """Each visit's confidence, in visit order: the labels published by then are given to
    ``cal`` first, the engine's cold-start map answers until it has ``MIN_LABELS``, and
    each look-up is shown to the map after its answer (the service sees its look-ups)."""
    li = 0

    def confidence(v: VisitRec) -> float:
        nonlocal li
        while li < len(labels) and labels[li][0][0] <= v.t:
            cal.observe(*labels[li])
            li += 1
        if v.ev is None or v.book is None:
            return 0.0
        conf = (
            max(0.0, min(1.0, cal(v.ev, v.raw)))
            if cal.labels >= C.MIN_LABELS
            else C.COLD_PRIOR[_bin(v.raw)]  # the engine's cold-start map
        )
        if v.ev.book >= v.wanted:
            cal.see(v.ev, v.raw, (v.per_day, v.key))
        return conf

    return confidence


def table(visits: list[VisitRec], labels: list[LabelRec]) -> list[str]:
    """By raw decile (book covers the request): what visits find, what labels find (all,
    shelf counts), and labels weighted to the visits' mix of sales speed or of pairs over
    the whole replay (the weighting's best case)."""
    vis = [
        (min(9, int(v.raw * 10)), v.ev, v.raw, (v.per_day, v.key), v.available)
        for v in visits
        if v.ev is not None and v.ev.book >= v.wanted
    ]
    out = ["raw decile               " + " ".join(f"{d / 10:5.1f}" for d in range(10))]
    rate = [[0.0, 0.0] for _ in range(10)]
    for d, *_, ok in vis:
        rate[d][0] += 1
        rate[d][1] += ok
    out.append(f"{'visits':<25}" + " ".join(f"{h / n:5.2f}" if n else "    -" for n, h in rate))
    for name, kinds in (("labels", None), ("shelf counts", {"shelf_count"})):
        labs = []
        for lab in labels:
            ev = lab.ev0
            if ev is not None and ev.book >= lab.wanted and (kinds is None or lab.kind in kinds):
                r = raw_confidence(ev)
                labs.append((min(9, int(r * 10)), ev, r, (lab.per_day, lab.key), lab.outcome))
        for by in (None, "sales speed", "pair"):
            # speed: weighted within each decile; pair: one weight a pair (its look-ups'
            # share over its labels' share), as CellMap weighs it
            cell = CELLS[by] if by else None
            within = by != "pair"
            seen: dict[Hashable, float] = defaultdict(float)
            mine: dict[Hashable, float] = defaultdict(float)
            got: dict[tuple[int, Hashable], list[float]] = defaultdict(lambda: [0.0, 0.0])
            for d, ev, r, who, _ in vis:
                c = cell(ev, r, who) if cell else None
                seen[(d, c) if within else c] += 1
            for d, ev, r, who, ok in labs:
                c = cell(ev, r, who) if cell else None
                mine[c] += 1
                a = got[(d, c)]
                a[0], a[1] = a[0] + 1, a[1] + ok
            line = []
            for d in range(10):
                num = den = 0.0
                for (b, c), (n, h) in got.items():
                    if b == d:
                        if cell is None:
                            w = 1.0
                        elif within:
                            w = seen[(b, c)] / n
                        else:
                            w = (seen[c] + 0.1) / len(vis) / (mine[c] / len(labs))
                        num, den = num + w * h, den + w * n
                line.append(f"{num / den:5.2f}" if den else "    -")
            out.append(f"{name + (', by ' + by if by else ''):<25}" + " ".join(line))
    return out


def adaptive(
    visits: list[VisitRec], labels: list[tuple[Label, Who]], target: float,
    window: int = 20_000, every: int = 200, buffer: int = 2,
) -> tuple[float, float, float]:  # fmt: skip
    """FPR, coverage and the last threshold when the threshold is re-chosen every
    ``every`` look-ups as the lowest t at which the mean of 1 - confidence over the last
    ``window`` promisable look-ups at or above t is within ``target`` (1.0: the
    engine's fixed 0.9). Uses no outcome: the service could run it on its look-ups."""
    confidence, t = map_confidence(labels, CellMap()), 0.9
    recent: list[float] = []  # the promisable look-ups' confidences, oldest first
    ordered: list[float] = []  # the same, sorted
    promises = false = kept = available = 0
    for k, v in enumerate(visits):
        conf, promise = confidence(v), False
        if promisable(v, 0.9, buffer):
            promise = conf >= t
            recent.append(conf)
            bisect.insort(ordered, conf)
            if len(recent) > window:
                del ordered[bisect.bisect_left(ordered, recent.pop(0))]
            if target < 1.0 and k % every == 0 and len(ordered) > 500:
                doubt, n, best = 0.0, 0, 1.0
                for c in reversed(ordered):
                    doubt, n = doubt + 1.0 - c, n + 1
                    if doubt / n <= target:
                        best = c
                t = best
        available += v.available
        promises += promise
        false += promise and not v.available
        kept += promise and v.available
    return false / max(1, promises), kept / max(1, available), t


def promised_by_feature(visits: list[VisitRec], buffer: int = 2) -> list[str]:
    """Of the visits promised at confidence 0.9 or more (the book beyond the policy's
    minimum buffer), the share that found too few units, by what the engine knew."""
    promised = [
        v for v in visits
        if v.conf >= 0.9 and not v.stale and v.ev is not None and v.book is not None
        and v.book - buffer >= v.wanted
    ]  # fmt: skip
    failed = sum(not v.available for v in promised)
    out = [f"{len(promised)} promised, {failed / max(1, len(promised)):.2%} found too few"]
    splits: list[tuple[str, Callable[[VisitRec], float], tuple[float, ...]]] = [
        ("sales a day", lambda v: v.per_day, (0.25, 0.5, 1, 2, 4, 8, 16)),
        ("book", lambda v: v.book or 0, (3, 5, 8, 12, 20, 40)),
        ("back room", lambda v: v.ev.back_room if v.ev else 0, (1, 3, 10)),
        ("silence", lambda v: v.ev.silence if v.ev else 0.0, (0.5, 1, 2, 4)),
        ("unrecorded loss", lambda v: v.ev.unrecorded_loss if v.ev else 0.0, (1, 2, 4, 8)),
        ("confidence", lambda v: v.conf, (0.92, 0.94, 0.96, 0.98, 0.99)),
        ("hour (UTC)", lambda v: (v.t % 86400) / 3600, (10, 12, 14, 16, 18, 20)),
    ]  # fmt: skip
    for name, key, edges in splits:
        cells: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for v in promised:
            cell = cells[_cut(key(v), edges)]
            cell[0] += 1
            cell[1] += not v.available
        shown = (
            f"<{edges[i] if i < len(edges) else 'inf'} {n}/{f / n:.1%}"
            for i, (n, f) in sorted(cells.items())
        )
        out.append(f"{name:<16} " + "  ".join(shown))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("datasets", type=Path, nargs="+")
    ap.add_argument("--table", action="store_true", help="visits against labels by raw decile")
    ap.add_argument("--ceilings", action="store_true", help="with visits' outcomes, POS matches")
    ap.add_argument(
        "--adaptive",
        action="store_true",
        help="threshold chosen from the look-ups' expected false-promise rate",
    )
    ap.add_argument(
        "--promised",
        action="store_true",
        help="false promises at confidence >= 0.9 by what the engine knows",
    )
    args = ap.parse_args()
    silence, pair = CELLS["silence"], CELLS["pair"]
    variants: list[tuple[str, int | None, Callable[[], Map]]] = [
        ("engine", None, CellMap),
        *((f"weighted by {k}", None, lambda c=c: CellMap(c)) for k, c in CELLS.items()),
        ("weighted by silence, within each bin", None, lambda: CellMap(silence, per_bin=True)),
        ("weighted by silence, clip 0.5-2", None, lambda: CellMap(silence, clip=(0.5, 2.0))),
        ("weighted by pair, within each bin", None, lambda: CellMap(pair, per_bin=True)),
        ("5 pseudo-labels a bin", None, lambda: CellMap(prior_n=5.0)),
        ("weighted by pair, 5 pseudo-labels", None, lambda: CellMap(pair, prior_n=5.0)),
        ("batch logistic, ridge 1", None, BatchLogitMap),
        ("batch logistic, ridge 1, pseudo-visit 1 h", 1, BatchLogitMap),
        ("batch logistic, ridge 1000", None, lambda: BatchLogitMap(ridge=1000.0)),
        ("batch logistic, ridge 1000, pseudo-visit 1 h", 1, lambda: BatchLogitMap(ridge=1000.0)),
    ]  # fmt: skip
    for root in args.datasets:
        visits, labels, _ = record(root)
        print(f"{root.name}: {len(visits)} visits, {len(labels)} labels", flush=True)
        if args.table:
            for line in table(visits, labels):
                print("  " + line)
            continue
        if args.promised:
            for line in promised_by_feature(visits):
                print("  " + line)
            continue
        if args.adaptive:
            for target in (1.0, 0.02, 0.015):
                fpr, cov, t = adaptive(visits, labels_of(labels), target)
                print(f"  expected FPR within {target:<5} FPR {fpr:6.2%} coverage {cov:6.2%} "
                      f"last threshold {t:.3f}", flush=True)  # fmt: skip
            continue
        runs: list[tuple[str, list[tuple[Label, Who]], Callable[[], Map]]] = [
            (name, labels_of(labels, lead), make) for name, lead, make in variants
        ]
        runs.append(("picks' own units on the shelf", labels_of(labels, own_units=True), CellMap))
        for name, kinds in (("shelf counts only", {"shelf_count"}),
                            ("picks only", {"pick_found", "pick_short"})):  # fmt: skip
            runs.append((name, labels_of([lab for lab in labels if lab.kind in kinds]), CellMap))
        if args.ceilings:
            own, matched = outcomes_of(visits), matched_of(visits, root)
            runs += [
                ("visits' own outcomes (cheat)", own, CellMap),
                ("visits' own outcomes, batch logistic (cheat)", own, BatchLogitMap),
                ("look-ups matched to a later sale", matched, CellMap),
                ("labels + look-ups matched to a later sale",
                 sorted(labels_of(labels) + matched, key=lambda x: x[0][0]), CellMap),
                ("look-ups matched, batch logistic", matched, BatchLogitMap),
            ]  # fmt: skip
        for name, stream, make in runs:
            fpr, cov, brier, gap = rescore(visits, stream, make())
            print(
                f"  {name:<46} FPR {fpr:6.2%} coverage {cov:6.2%} Brier {brier:.4f} gap {gap:.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()

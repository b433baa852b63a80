"""Offline probe of the engine's ranking and of calibration-map variants (diagnosis only).

    .venv/bin/python scripts/accuracy_probe.py DATASET_DIR [DATASET_DIR ...]

One replay per dataset records each visit's evidence (as ``Engine.answer`` builds it)
and each feedback label's evidence, at horizon 0 as the engine scores it and as a
pseudo-visit looked up 0.5 / 1 / 2 h before with the policy's arrival horizon. The
online calibration is then re-run over the recorded stream in publication order
(the first line, ``engine``, is the map as the engine built it until 2026-12-07:
every label kind, 20 pseudo-labels a bin; it reproduced the service's report then.
The engine now learns from shelf counts only, with 5, and has floors (docs/engine.md),
so the lines compare variants with each other, not with today's report), so map
variants are scored without re-running the engine. Also prints the ranking: the false-promise
rate at fixed coverage when the visits that pass the margin rule are promised in
order of raw confidence. ``on_shelf_qty`` is read only to score, never to learn.
docs/engine.md ("Issue 3, second pass") has the numbers this printed.
"""

from __future__ import annotations

import argparse
import math
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from app.backtest.dataset import Feedback, PublishedEvent, Visit, WarehouseSnapshot, open_dataset
from app.backtest.replay import observe_snapshot
from app.domain import calibration as C
from app.domain.confidence import (
    Evidence,
    depletion,
    held_back,
    negbin_cdf,
    negbin_quantile,
    p_phantom,
    raw_confidence,
)
from app.domain.engine import Engine
from app.domain.loss import LossRate
from app.domain.policy import Policy

LEADS = (0.5, 1.0, 2.0)  # hours before a label at which its pseudo-visit looked the item up


@dataclass
class VisitRec:
    t: float
    key: tuple[str, str]
    wanted: int
    available: bool
    book: int | None
    stale: bool
    ev: Evidence | None
    raw: float
    conf: float
    per_day: float = 0.0  # the pair's sales speed (units a day) at the look-up
    on_shelf: int = 0  # the visit's hidden truth (scoring only)


@dataclass
class LabelRec:
    pub: float
    kind: str
    outcome: bool
    wanted: int
    per_day: float
    ev0: Evidence | None  # at observed_at, horizon 0 (what the engine learns from)
    key: tuple[str, str] = ("", "")
    qty: int = 0
    observed: float = 0.0
    leads: list[Evidence | None] = field(default_factory=list)


class _Gaps(LossRate):
    """``LossRate`` that also keeps every count's (days unverified, gap)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen_gaps: list[tuple[float, int]] = []

    def counted(
        self, store_id: str, category: str | None, days: float, gap: int, sold: float = 0.0
    ) -> None:
        self.seen_gaps.append((days, gap))
        super().counted(store_id, category, days, gap, sold)


class _Recorder(Engine):
    def __init__(self, policy: Policy, categories: dict[str, str | None]) -> None:
        super().__init__(policy, categories)
        self.labels: list[LabelRec] = []
        self.loss = self.gaps = _Gaps()

    def observe_feedback(
        self, *, kind: str, store_id: str, sku: str, qty: int, observed_at: datetime,
        now: datetime,
    ) -> None:  # fmt: skip
        pos = self.ledger.position(store_id, sku, observed_at)
        if pos is not None:
            wanted = qty if kind == "pick_found" else (qty + 1 if kind == "pick_short" else 1)
            rec = LabelRec(
                pub=now.timestamp(),
                kind=kind,
                outcome=kind == "pick_found" or (kind == "shelf_count" and qty >= 1),
                wanted=wanted,
                per_day=24.0 * self.speed(store_id, sku, now),
                ev0=self._evidence(pos, wanted, observed_at, timedelta(0)),
                key=(store_id, sku),
                qty=qty,
                observed=observed_at.timestamp(),
            )
            for lead in LEADS:
                t = observed_at - timedelta(hours=lead)
                p = self.ledger.position(store_id, sku, t)
                horizon = self.policy.arrival_horizon
                rec.leads.append(None if p is None else self._evidence(p, wanted, t, horizon))
            self.labels.append(rec)
        super().observe_feedback(
            kind=kind, store_id=store_id, sku=sku, qty=qty, observed_at=observed_at, now=now
        )


def record(
    root: Path, *, feedback: bool = True
) -> tuple[list[VisitRec], list[LabelRec], list[tuple[float, int]]]:
    """The replay's visits, labels and count gaps (``feedback``: False replays the
    dataset as if it had none)."""
    ds = open_dataset(root)
    policy = Policy()
    eng = _Recorder(policy, {p.sku: p.category for p in ds.products})
    visits: list[VisitRec] = []
    in_force: dict[str, int] = {}
    for at, item in ds.ordered():
        if isinstance(item, PublishedEvent):
            eng.observe_event(item.event)
        elif isinstance(item, Visit):
            badge = eng.answer(item.store_id, item.sku, item.qty_wanted, at)
            pos = eng.ledger.position(item.store_id, item.sku, at)
            ev = (
                None
                if pos is None
                else eng._evidence(pos, item.qty_wanted, at, policy.arrival_horizon)
            )
            visits.append(VisitRec(
                t=at.timestamp(), key=(item.store_id, item.sku), wanted=item.qty_wanted,
                available=item.on_shelf_qty >= item.qty_wanted,
                book=None if pos is None else pos.book, stale=badge.state == "unknown", ev=ev,
                raw=0.0 if ev is None else raw_confidence(ev),
                conf=0.0 if badge.confidence is None else badge.confidence,
                per_day=24.0 * eng.speed(item.store_id, item.sku, at),
                on_shelf=item.on_shelf_qty,
            ))  # fmt: skip
        elif isinstance(item, Feedback) and feedback:
            eng.observe_feedback(kind=item.kind, store_id=item.store_id, sku=item.sku,
                                 qty=item.qty, observed_at=item.observed_at, now=at)  # fmt: skip
        elif isinstance(item, WarehouseSnapshot):
            observe_snapshot(eng, item, in_force)
    return visits, eng.labels, eng.gaps.seen_gaps


class IsoMap:
    """``Calibration`` with the identity logistic stage, weighted labels and knobs."""

    def __init__(self, prior_n: float = C.PRIOR_N, decay: float = 0.0, platt: bool = False):
        self.prior_n, self.decay, self.platt = prior_n, decay, platt
        self.n, self.hits, self.raw = [0.0] * C.BINS, [0.0] * C.BINS, [0.0] * C.BINS
        self.labels, self._built_at = 0, 0
        self._map: list[float] | None = None

    @staticmethod
    def _bin(p: float) -> int:
        return min(C.BINS - 1, max(0, math.floor(p * C.BINS)))

    def observe(self, raw: float, outcome: bool, w: float) -> None:
        if self.decay:
            keep = 1.0 - self.decay
            self.n = [x * keep for x in self.n]
            self.hits = [x * keep for x in self.hits]
            self.raw = [x * keep for x in self.raw]
        i = self._bin(raw)
        self.n[i] += w
        self.hits[i] += w if outcome else 0.0
        self.raw[i] += w * raw
        self.labels += 1
        if self.labels >= self._built_at * 1.02 + 20:
            self._map = None

    def _priors(self) -> list[float]:
        mids = [self.raw[i] / self.n[i] if self.n[i] else (i + 0.5) / C.BINS for i in range(C.BINS)]
        if not self.platt:
            return mids
        xs = [C.logit(m) for m in mids]
        a, b = 0.0, 1.0  # weighted logistic fit of hits / n on logit(raw), b >= 0 (Newton)
        for _ in range(25):
            g0 = g1 = h00 = h01 = h11 = 0.0
            for x, n, h in zip(xs, self.n, self.hits, strict=True):
                p = C._sigmoid(a + b * x)
                r, w = h - n * p, n * p * (1 - p) + 1e-9
                g0, g1, h00, h01, h11 = g0 + r, g1 + r * x, h00 + w, h01 + w * x, h11 + w * x * x
            det = h00 * h11 - h01 * h01
            if det <= 1e-12:
                break
            a, b = a + (h11 * g0 - h01 * g1) / det, b + (h00 * g1 - h01 * g0) / det
            b = max(b, 0.0)
        return [C._sigmoid(a + b * x) for x in xs]

    def __call__(self, raw: float) -> float:
        if self._map is None:
            blocks: list[list[float]] = []
            for i, prior in enumerate(self._priors()):
                blocks.append([self.hits[i] + self.prior_n * prior, self.n[i] + self.prior_n, 1])
                while (
                    len(blocks) > 1
                    and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]
                ):
                    s, w, c = blocks.pop()
                    blocks[-1][0] += s
                    blocks[-1][1] += w
                    blocks[-1][2] += c
            self._map = [s / w for s, w, c in blocks for _ in range(int(c))]
            self._built_at = self.labels
        return self._map[self._bin(raw)]


Stream = list[tuple[float, float, bool, float]]  # (published, raw, outcome, weight)


def stream(
    labels: list[LabelRec], lead: int | None = None, kinds: frozenset[str] | None = None,
    weight: Callable[[LabelRec], float] | None = None,
) -> Stream:  # fmt: skip
    """Labels as the map sees them: with the engine's filter (book covers the request)."""
    out: Stream = []
    for lab in labels:
        ev = lab.ev0 if lead is None else lab.leads[lead]
        if ev is None or ev.book < lab.wanted or (kinds is not None and lab.kind not in kinds):
            continue
        out.append(
            (lab.pub, raw_confidence(ev), lab.outcome, 1.0 if weight is None else weight(lab))
        )
    return sorted(out, key=lambda x: x[0])


def answered(visits: list[VisitRec], labels: list[LabelRec], hours: float = 2.0) -> Stream:
    """The service's own answers as labels: a shelf observation scores the latest answer
    given for that pair within ``hours`` before it (the service sees its lookups, only
    their outcomes are hidden), at the answer's raw confidence and wanted units. Only the
    answer's evidence and the label's published count are read, never ``on_shelf_qty``."""
    by_key: dict[tuple[str, str], list[VisitRec]] = {}
    for v in visits:
        if v.ev is not None:
            by_key.setdefault(v.key, []).append(v)
    out: Stream = []
    for lab in labels:
        before = [v for v in by_key.get(lab.key, ()) if 0 <= lab.observed - v.t <= hours * 3600]
        if not before:
            continue
        v = before[-1]
        if lab.kind == "pick_found" and lab.qty < v.wanted:
            continue  # the pick saw at least qty, not whether the shelf held the answer's units
        out.append((lab.pub, v.raw, lab.qty >= v.wanted, 1.0))
    return sorted(out, key=lambda x: x[0])


def rescore(
    visits: list[VisitRec], labels: Stream, cal: IsoMap, threshold: float = 0.9, buffer: int = 2
) -> tuple[float, float, float, float]:
    """FPR, coverage, Brier and the worst gap over bins of 500+ visits, as the report."""
    li = 0

    def confidence(v: VisitRec) -> float:
        nonlocal li
        while li < len(labels) and labels[li][0] <= v.t:
            cal.observe(labels[li][1], labels[li][2], labels[li][3])
            li += 1
        if v.ev is None or v.book is None:
            return 0.0
        return (
            max(0.0, min(1.0, cal(v.raw)))
            if cal.labels >= C.MIN_LABELS
            else C.COLD_PRIOR[IsoMap._bin(v.raw)]  # the engine's cold-start map
        )

    return scored(visits, confidence, threshold, buffer)


def promisable(v: VisitRec, threshold: float, buffer: int) -> bool:
    """The service's promise rule but the confidence: data fresh, a book, and the book
    beyond the minimum buffer and the units held back at ``threshold``."""
    if v.ev is None or v.book is None or v.stale or v.book <= 0:
        return False
    return v.book - buffer - sum(held_back(v.ev, threshold)) >= v.wanted


def scored(
    visits: list[VisitRec], confidence: Callable[[VisitRec], float], threshold: float, buffer: int
) -> tuple[float, float, float, float]:
    """FPR, coverage, Brier and the worst gap over bins of 500+ visits, each visit
    answered at ``confidence`` (0 without evidence) and promised by the service's rule.
    One tally for every map variant, here and in calibration_lab.py, so their numbers
    compare; ``confidence`` is called once a visit, in order, and may learn from what
    was published by then."""
    promises = false = kept = available = 0
    brier = 0.0
    bins = [[0, 0.0, 0] for _ in range(10)]
    for v in visits:
        conf = confidence(v)
        promise = promisable(v, threshold, buffer) and conf >= threshold
        available += v.available
        promises += promise
        false += promise and not v.available
        kept += promise and v.available
        brier += (conf - v.available) ** 2
        b = bins[min(9, math.floor(conf * 10 + 1e-9))]
        b[0], b[1], b[2] = b[0] + 1, b[1] + conf, b[2] + v.available
    gap = max((abs(c - o) / n for n, c, o in bins if n >= 500), default=0.0)
    return false / max(1, promises), kept / max(1, available), brier / len(visits), gap


def ranking(visits: list[VisitRec], buffer: int = 2, level: float = 0.9) -> str:
    """FPR at 78 / 80 / 82% coverage, promising margin-passing visits by raw confidence."""
    available = sum(v.available for v in visits)
    cand = []
    for v in visits:
        if v.ev is None or v.book is None or v.stale or v.book <= 0:
            continue
        ev = v.ev
        mean = ev.expected_sales + ev.unreported_sales + ev.unrecorded_loss
        if v.book - buffer - negbin_quantile(level, mean) >= v.wanted:
            cand.append((v.raw, v.available))
    cand.sort(key=lambda x: -x[0])
    out, kept, false, covs = [], 0, 0, [0.78, 0.80, 0.82]
    for _, ok in cand:
        kept, false = kept + ok, false + (not ok)
        while covs and kept / available >= covs[0]:
            out.append(f"{covs.pop(0):.0%}: {false / (kept + false):.2%}")
    return "  ".join(out)


def mechanism(ev: Evidence) -> str:
    """What holds a visit's raw confidence down most: a short pick's shelf bound, the
    empty-shelf belief, units waiting in the back room, or depletion (sales and loss)."""
    if ev.shelf_bound is not None and ev.shelf_bound < ev.book:
        return "bound"
    if p_phantom(ev) > 1.0 - negbin_cdf(ev.book - ev.wanted, depletion(ev)):
        return "phantom"
    if ev.back_room > 0 and ev.shelf_fill < 1.0:
        return "back room"
    return "depletion"


def mechanisms(visits: list[VisitRec]) -> list[str]:
    """Observed − mean confidence of the visits at confidence 0.1-0.9, by mechanism and by
    period (days 0-2, 3-7, 8 on), with each group's means of book, loss and sales."""
    start = min(v.t for v in visits)
    groups: dict[tuple[str, int], list[VisitRec]] = {}
    for v in visits:
        if v.ev is not None and 0.1 <= v.conf < 0.9:
            days = (v.t - start) / 86400
            groups.setdefault(
                (mechanism(v.ev), 0 if days < 3 else 1 if days < 8 else 2), []
            ).append(v)
    out = []
    for (kind, period), vs in sorted(groups.items()):

        def mean(f: Callable[[VisitRec], float], vs: list[VisitRec] = vs) -> float:
            return sum(f(v) for v in vs) / len(vs)

        out.append(
            f"{kind:<10} {('days 0-2', 'days 3-7', 'days 8+')[period]:<9} n {len(vs):5d} "
            f"confidence {mean(lambda v: v.conf):.2f} observed {mean(lambda v: v.available):.2f} "
            f"gap {mean(lambda v: v.available - v.conf):+.2f}  "
            f"book {mean(lambda v: v.ev.book if v.ev else 0):7.1f} "
            f"loss {mean(lambda v: v.ev.unrecorded_loss if v.ev else 0.0):5.1f} "
            f"sales to arrival {mean(lambda v: v.ev.expected_sales if v.ev else 0.0):4.2f}"
        )
    return out


def count_gaps(gaps: list[tuple[float, int]]) -> list[str]:
    """The gaps counts found (book − count) by days unverified: the loss term's shape
    (a NegBin of size 2 at the mean: P(0) = (2 / (2 + mean))², median ≈ 0.7 × mean)."""
    out = []
    for lo, hi in ((0, 3), (3, 30), (30, 40), (40, 100)):
        g = sorted(gap for days, gap in gaps if lo <= days < hi)
        if g:
            n = len(g)
            out.append(
                f"count gaps, {lo}-{hi} days unverified: n {n} mean {sum(g) / n:.2f} "
                f"median {g[n // 2]} 90th {g[9 * n // 10]} P(0) {g.count(0) / n:.2f} "
                f"P(<0) {sum(x < 0 for x in g) / n:.2f}"
            )
    return out


BOOK_EDGES = (1, 2, 3, 5, 9, 17, 33)


def _tally(table: dict[int, list[float]], key: int, *values: float) -> None:
    """One more under ``key``: its count first, then each value added to its sum."""
    sums = table.setdefault(key, [0.0] * (len(values) + 1))
    sums[0] += 1
    for i, x in enumerate(values, start=1):
        sums[i] += x


def by_book(visits: list[VisitRec]) -> list[str]:
    """Visits wanting one unit at a positive book (no back room, no shelf bound), by
    book: the units gone from the book at arrival against the depletion's mean, how
    often the shelf was empty, the model's P(empty) from depletion alone, its phantom,
    and 1 − the calibrated confidence (docs/engine.md, stop 31)."""
    rows: dict[int, list[float]] = {}
    for v in visits:
        ev = v.ev
        if ev is None or v.stale or v.wanted != 1 or ev.book < 1:
            continue
        if ev.back_room or ev.shelf_bound is not None:
            continue
        mean = depletion(ev)
        _tally(rows, bisect_right(BOOK_EDGES, ev.book) - 1,
               0.0 if v.available else 1.0, 1.0 - negbin_cdf(ev.book - 1, mean),
               p_phantom(ev), 1.0 - v.conf, ev.book - v.on_shelf, mean)  # fmt: skip
    out = []
    for b, (n, empty, alone, phantom, said, gone, mean) in sorted(rows.items()):
        hi = f"-{BOOK_EDGES[b + 1] - 1}" if b + 1 < len(BOOK_EDGES) else "+"
        out.append(
            f"book {BOOK_EDGES[b]}{hi:<4} visits {n:6.0f} gone {gone / n:6.2f} "
            f"depletion {mean / n:6.2f} empty {empty / n:.3f} "
            f"depletion alone {alone / n:.3f} phantom {phantom / n:.3f} 1 - confidence {said / n:.3f}"
        )
    return out


def labels_and_visits(visits: list[VisitRec], labels: list[LabelRec]) -> list[str]:
    """By raw bin: shelf-count labels (horizon 0, what the map learns from) against the
    visits (what it is scored on), each with how often the units were there."""
    edges = (0.0, 0.1, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95)
    lab: dict[int, list[float]] = {}
    vis: dict[int, list[float]] = {}
    for lr in labels:
        if lr.kind == "shelf_count" and lr.ev0 is not None and lr.ev0.book >= 1:
            raw = raw_confidence(lr.ev0)
            _tally(lab, bisect_right(edges, raw) - 1, lr.outcome, lr.ev0.book)
    for v in visits:
        if v.ev is not None and not v.stale and v.ev.book >= v.wanted:
            _tally(vis, bisect_right(edges, v.raw) - 1, v.available, v.ev.book, v.conf)
    out = []
    for k, lo in enumerate(edges):
        ln, lf, lb = lab.get(k, [0.0] * 3)
        vn, vf, vb, vc = vis.get(k, [0.0] * 4)
        out.append(
            f"raw {lo:.2f}+  labels {ln:5.0f} found {lf / max(ln, 1):.3f} book {lb / max(ln, 1):5.1f}"
            f"  |  visits {vn:6.0f} found {vf / max(vn, 1):.3f} book {vb / max(vn, 1):5.1f} "
            f"confidence {vc / max(vn, 1):.3f}"
        )
    return out


def sweep(visits: list[VisitRec], labels: list[LabelRec]) -> list[str]:
    """FPR / coverage of other policies (threshold, minimum buffer) on the same replay."""
    return [
        f"buffer {b} threshold {t}: "
        + "{:.2%} / {:.2%}".format(
            *rescore(visits, stream(labels), IsoMap(), threshold=t, buffer=b)[:2]
        )
        for b in (0, 1)
        for t in (0.2, 0.3, 0.4, 0.5, 0.6)
    ]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("datasets", type=Path, nargs="+")
    ap.add_argument(
        "--mechanisms", action="store_true", help="the gap by mechanism and period, count gaps"
    )
    ap.add_argument("--sweep", action="store_true", help="FPR / coverage of other policies")
    ap.add_argument(
        "--by-book", action="store_true",
        help="empty shelves by book against the model's parts; labels against visits by raw",
    )  # fmt: skip
    args = ap.parse_args()
    shelf = frozenset({"shelf_count"})
    variants: list[tuple[str, Callable[[list[LabelRec]], Stream], Callable[[], IsoMap]]] = [
        ("engine (20 pseudo-labels a bin)", stream, IsoMap),
        ("10 pseudo-labels", stream, lambda: IsoMap(prior_n=10)),
        ("2 pseudo-labels", stream, lambda: IsoMap(prior_n=2)),
        ("40 pseudo-labels", stream, lambda: IsoMap(prior_n=40)),
        ("shrunk toward a Platt fit", stream, lambda: IsoMap(platt=True)),
        ("forget 1/3000 a label", stream, lambda: IsoMap(decay=1 / 3000)),
        *(
            (f"pseudo-visit {lead} h before", lambda ls, k=k: stream(ls, k), IsoMap)
            for k, lead in enumerate(LEADS)
        ),
        ("answers scored by later labels", lambda ls: sorted(stream(ls) + answered(visits, ls)),
         IsoMap),
        ("shelf counts by speed, 5", lambda ls: stream(ls, 1, shelf, lambda lab: lab.per_day + 0.1),
         lambda: IsoMap(prior_n=5)),
    ]  # fmt: skip
    for root in args.datasets:
        visits, labels, gaps = record(root)
        print(f"{root.name}: {len(visits)} visits, {len(labels)} labels")
        print(f"  ranking (buffer 2, quantile 0.9): {ranking(visits)}")
        if args.by_book:
            for line in by_book(visits) + labels_and_visits(visits, labels):
                print("  " + line)
            continue
        if args.mechanisms or args.sweep:
            lines = mechanisms(visits) + count_gaps(gaps) if args.mechanisms else []
            for line in lines + (sweep(visits, labels) if args.sweep else []):
                print("  " + line)
            continue
        for name, make_stream, make_map in variants:
            fpr, cov, brier, gap = rescore(visits, make_stream(labels), make_map())
            print(
                f"  {name:<34} FPR {fpr:6.2%} coverage {cov:6.2%} Brier {brier:.4f} gap {gap:.3f}"
            )


if __name__ == "__main__":
    main()

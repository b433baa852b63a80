"""Build a whole simulated chain: stores, products, every pair, and the published feeds.

Stores and skus get their traits from their own seeded streams (so a pair's world
does not depend on how many other pairs exist), each pair is simulated on its
own, and publication (lags, outages, redeliveries, late and missing snapshots)
is layered on top of what was recorded.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import msgspec

from app.backtest.calendar import DAY, HOUR, HOURS_TEMPLATES, StoreCalendar, StoreHours, prefix
from app.backtest.params import CategoryTraits, WorldParams
from app.backtest.publication import publish_feedback, publish_pos, publish_snapshot, store_outages
from app.backtest.sampling import lognormal_median
from app.backtest.world import PairOutcome, PairSetup, simulate_pair

CASE_PACKS: tuple[int, ...] = (1, 2, 4, 6, 12, 24)
REVIEW_HOUR_LOCAL = 23
Promo = tuple[int, int, float]


class StoreTraits(msgspec.Struct, frozen=True):
    store_id: str
    name: str
    lat: float
    lon: float
    postal_code: str
    size: float  # traffic multiplier
    shrink_mult: float
    restock_hours_median: float
    lead_days: int
    laggy: bool
    hours: StoreHours


class SkuTraits(msgspec.Struct, frozen=True):
    sku: str
    name: str
    category: CategoryTraits
    shoppers_per_day: float  # in an average store on an average weekday
    # (first local day, last local day, uplift), days counted from warm-up start
    promo: tuple[int, int, float] | None
    # (first day, end day) from warm-up start: the distribution centre cannot ship it
    dc_outage: tuple[int, int] | None = None


class SummaryStats(msgspec.Struct, frozen=True, kw_only=True):
    """Headline numbers of a generated dataset (hidden-truth based)."""

    stores: int
    skus: int
    days: int
    pos_events: int
    pos_lines: int
    snapshots: int
    feedback: int
    visits: int
    available_share: float  # visits where on_shelf_qty ≥ qty_wanted
    naive_promise_share: float  # visits where the recorded book ≥ qty_wanted
    naive_false_promise_rate: float  # book said yes, shelf said no (book as recorded, no lag)
    book_yes_shelf_no_share: float  # of all visits
    false_promise_back_room_share: float  # of those, the back room held enough (a shelf-fill gap)
    lost_sale_share: float  # shoppers who found too little and bought nothing


@dataclass(slots=True)
class SnapshotFile:
    as_of: int
    published_at: int
    rows: list[tuple[str, str, int, int, int]]  # (location_id, sku, on_hand, reserved, in_transit)


@dataclass(slots=True)
class SimulatedDataset:
    """A generated dataset in memory, times in epoch seconds (UTC)."""

    start: int
    end: int
    params: WorldParams
    stores: list[StoreTraits]
    skus: list[SkuTraits]
    # (published, event_id, type, store, sku, qty, occurred)
    pos: list[tuple[int, str, str, str, str, int, int]]
    snapshots: list[SnapshotFile]
    # (observed, store, sku, kind, qty, published)
    feedback: list[tuple[int, str, str, str, int, int]]
    # (viewed, arrived, store, sku, want, on_shelf)
    visits: list[tuple[int, int, str, str, int, int]]
    book_at_view: list[int]  # hidden: recorded book (no lag) when each visit looked
    shelf_traces: dict[tuple[str, str], list[tuple[int, int]]] = field(default_factory=dict)
    summary: SummaryStats | None = None


def _store_traits(seed: int, index: int, params: WorldParams) -> StoreTraits:
    rng = random.Random(f"{seed}/store/{index}")
    bad = rng.random() < params.bad_store_share
    slow = rng.random() < params.slow_store_share
    laggy = rng.random() < params.laggy_store_share
    return StoreTraits(
        store_id=f"S{index:03d}",
        name=f"Store {index:03d}",
        lat=round(51.5 + rng.random() * 1.8, 5),
        lon=round(4.0 + rng.random() * 2.5, 5),
        postal_code=f"{1000 + int(rng.random() * 8999)} {chr(65 + int(rng.random() * 26))}{chr(65 + int(rng.random() * 26))}",
        size=lognormal_median(rng, 1.0, params.store_size_sigma),
        shrink_mult=lognormal_median(rng, 1.0, 0.3) * (params.bad_store_mult if bad else 1.0),
        restock_hours_median=lognormal_median(rng, params.restock_hours_median, 0.3)
        * (params.slow_store_mult if slow else 1.0),
        lead_days=rng.randint(
            params.lead_days_min, max(params.lead_days_min, params.lead_days_max)
        ),
        laggy=laggy,
        hours=rng.choice(HOURS_TEMPLATES),
    )


def _sku_traits(seed: int, index: int, params: WorldParams, days: int) -> SkuTraits:
    rng = random.Random(f"{seed}/sku/{index}")
    weights = [c.weight for c in params.categories]
    category = rng.choices(params.categories, weights=weights)[0]
    rate = lognormal_median(
        rng, params.sale_rate_median * category.speed_mult, params.sale_rate_sigma
    )
    promo: tuple[int, int, float] | None = None
    if rng.random() < params.promo_share:
        first = params.warmup_days + rng.randint(0, max(0, days - 2))
        length = rng.randint(
            params.promo_days_min, max(params.promo_days_min, params.promo_days_max)
        )
        uplift = params.promo_uplift_min + rng.random() * (
            params.promo_uplift_max - params.promo_uplift_min
        )
        promo = (first, first + length, uplift)
    dc_outage: tuple[int, int] | None = None
    dc = random.Random(f"{seed}/dc/{index}")  # its own stream: older worlds stay as they were
    if params.dc_outage_share > 0 and dc.random() < params.dc_outage_share:
        first = dc.randint(0, params.warmup_days + days - 1)
        length = dc.randint(
            params.dc_outage_days_min, max(params.dc_outage_days_min, params.dc_outage_days_max)
        )
        dc_outage = (first, first + length)
    return SkuTraits(
        sku=f"SKU-{index:05d}",
        name=f"{category.name.replace('_', ' ').title()} item {index}",
        category=category,
        shoppers_per_day=rate,
        promo=promo,
        dc_outage=dc_outage,
    )


def _local_times(tz: ZoneInfo, first: datetime, days: int, hour: int) -> list[int]:
    """Epoch seconds of ``hour``:00 local on each of ``days`` local dates from ``first``."""
    d0 = first.astimezone(tz).date()
    return [
        int(datetime.combine(d0 + timedelta(days=i), time(hour), tzinfo=tz).timestamp())
        for i in range(days)
    ]


def _pair_setup(
    store: StoreTraits,
    sku: SkuTraits,
    calendar: StoreCalendar,
    cums: tuple[list[float], list[float]],
    params: WorldParams,
    window: tuple[int, int],
    snapshot_times: tuple[int, ...],
    review_times: tuple[int, ...],
) -> PairSetup:
    shoppers = sku.shoppers_per_day * store.size
    units_per_shopper = 1 + params.multi_unit_share + params.bulk_share * 3.5
    forecast = shoppers * units_per_shopper * (1 + params.online_order_share)
    shelf = min(params.shelf_max, max(params.shelf_min, math.ceil(forecast * params.shelf_days)))
    case = min(CASE_PACKS, key=lambda c: abs(c - forecast * 2))
    reorder_point = max(1, math.ceil(forecast * (store.lead_days + 1 + params.safety_days)))
    order_up_to = reorder_point + max(case, math.ceil(forecast * params.cover_days))
    shrink = (shoppers * params.shrink_per_sale + params.shrink_floor_per_day) * (
        store.shrink_mult * sku.category.shrink_mult
    )
    return PairSetup(
        store_id=store.store_id,
        sku=sku.sku,
        calendar=calendar,
        cum_shopper=cums[0],
        cum_online=cums[1],
        shoppers_per_day=shoppers,
        lookup_share=min(1.0, params.lookup_share * sku.category.lookup_mult),
        shrink_per_day=shrink,
        shelf_capacity=shelf,
        case_pack=case,
        reorder_point=reorder_point,
        order_up_to=order_up_to,
        lead_days=store.lead_days,
        restock_hours_median=store.restock_hours_median,
        start=window[0],
        end=window[1],
        snapshot_times=snapshot_times,
        review_times=review_times,
        params=params,
        dc_outage=None
        if sku.dc_outage is None
        else (calendar.t0 + sku.dc_outage[0] * DAY, calendar.t0 + sku.dc_outage[1] * DAY),
    )


def simulate(
    *,
    stores: int,
    skus: int,
    days: int,
    seed: int,
    start: datetime,
    params: WorldParams,
    trace: bool = False,
) -> SimulatedDataset:
    """Simulate the chain over [start, start + days) after a warm-up; pure in its seed."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    tz = ZoneInfo(params.timezone)
    t_start = int(start.timestamp())
    t_end = t_start + days * DAY
    t0 = t_start - params.warmup_days * DAY
    n_hours = (t_end + DAY - t0) // HOUR  # a day past the end: late arrivals, picks
    store_list = [_store_traits(seed, i + 1, params) for i in range(stores)]
    sku_list = [_sku_traits(seed, j + 1, params, days) for j in range(skus)]

    # Snapshots: one at the window start (the base every book needs), then daily.
    snap_rng = random.Random(f"{seed}/snapshots")
    daily = [
        t
        for t in _local_times(tz, start, days + 1, params.snapshot_hour_local)
        if t_start < t < t_end
    ]
    snap_published: list[tuple[int, int]] = [(t_start, t_start)]
    for as_of in daily:
        published = publish_snapshot(snap_rng, params, as_of)
        if published is not None:
            snap_published.append((as_of, published))
    snapshot_times = tuple(a for a, _ in snap_published)
    review_times = tuple(
        _local_times(
            tz, datetime.fromtimestamp(t0, UTC), params.warmup_days + days + 1, REVIEW_HOUR_LOCAL
        )
    )

    calendars: dict[StoreHours, StoreCalendar] = {}
    cum_cache: dict[tuple[StoreHours, Promo | None], tuple[list[float], list[float]]] = {}
    outcomes: list[tuple[StoreTraits, SkuTraits, PairOutcome]] = []
    for store in store_list:
        cal = calendars.get(store.hours)
        if cal is None:
            cal = calendars[store.hours] = StoreCalendar(
                t0, n_hours, params.timezone, store.hours, params.weekend_uplift
            )
        for sku in sku_list:
            key = (store.hours, sku.promo)
            cums = cum_cache.get(key)
            if cums is None:
                if sku.promo is None:
                    cums = (cal.cum_shopper, cal.cum_online)
                else:
                    first, last, uplift = sku.promo
                    cums = (
                        prefix(cal.promo_weights(cal.shopper, (first, last), uplift)),
                        prefix(cal.promo_weights(cal.online, (first, last), uplift)),
                    )
                cum_cache[key] = cums
            setup = _pair_setup(
                store, sku, cal, cums, params, (t_start, t_end), snapshot_times, review_times
            )
            rng = random.Random(f"{seed}/pair/{store.store_id}/{sku.sku}")
            outcomes.append((store, sku, simulate_pair(setup, rng, trace=trace)))

    return _assemble(
        seed, params, t_start, t_end, days, store_list, sku_list, outcomes, snap_published, trace
    )


def _assemble(
    seed: int,
    params: WorldParams,
    t_start: int,
    t_end: int,
    days: int,
    store_list: list[StoreTraits],
    sku_list: list[SkuTraits],
    outcomes: list[tuple[StoreTraits, SkuTraits, PairOutcome]],
    snap_published: list[tuple[int, int]],
    trace: bool,
) -> SimulatedDataset:
    # POS: number events in order of occurrence, then publish store by store.
    recorded = sorted(
        (t, store.store_id, sku.sku, i, kind, qty)
        for store, sku, out in outcomes
        for i, (t, kind, qty) in enumerate(out.events)
    )
    by_store: dict[str, list[tuple[int, str, str, str, int]]] = {s.store_id: [] for s in store_list}
    for n, (t, store_id, sku_id, _, kind, qty) in enumerate(recorded, start=1):
        by_store[store_id].append((t, f"P-{n:08d}", kind, sku_id, qty))
    pos: list[tuple[int, str, str, str, str, int, int]] = []
    for store in store_list:
        rows = by_store[store.store_id]
        rng = random.Random(f"{seed}/pos/{store.store_id}")
        outages = store_outages(rng, params, t_start, t_end, store.laggy)
        for i, published in publish_pos(rng, params, [r[0] for r in rows], outages):
            t, event_id, kind, sku_id, qty = rows[i]
            pos.append((published, event_id, kind, store.store_id, sku_id, qty, t))
    pos.sort()

    snapshots = [SnapshotFile(as_of, published, []) for as_of, published in snap_published]
    index = {s.as_of: s for s in snapshots}
    feedback: list[tuple[int, str, str, str, int, int]] = []
    visits: list[tuple[int, int, str, str, int, int]] = []
    books: list[int] = []
    backs: list[int] = []
    traces: dict[tuple[str, str], list[tuple[int, int]]] = {}
    fb_rng = random.Random(f"{seed}/feedback")
    lost = demand_events = 0
    for store, sku, out in outcomes:
        for as_of, on_hand, reserved, in_transit in out.snapshots:
            if on_hand or reserved or in_transit:  # an unlisted pair has no stock
                index[as_of].rows.append((store.store_id, sku.sku, on_hand, reserved, in_transit))
        for t, kind, qty in out.feedback:
            feedback.append(
                (t, store.store_id, sku.sku, kind, qty, publish_feedback(fb_rng, params, t))
            )
        for (viewed, arrived, want, shelf), book, back in zip(
            out.visits, out.book_at_view, out.back_at_arrival, strict=True
        ):
            visits.append((viewed, arrived, store.store_id, sku.sku, want, shelf))
            books.append(book)
            backs.append(back)
        lost += out.lost_sales
        demand_events += out.lost_sales + sum(1 for e in out.events if e[1] == "sale")
        if trace:
            traces[(store.store_id, sku.sku)] = out.shelf_trace
    feedback.sort(key=lambda f: (f[5], f[0], f[1], f[2]))
    order = sorted(range(len(visits)), key=lambda i: (visits[i][0], visits[i][2], visits[i][3], i))
    visits = [visits[i] for i in order]
    books = [books[i] for i in order]
    backs = [backs[i] for i in order]

    available = sum(1 for v in visits if v[5] >= v[4])
    promised = sum(1 for v, b in zip(visits, books, strict=True) if b >= v[4])
    false_idx = [i for i, (v, b) in enumerate(zip(visits, books, strict=True)) if b >= v[4] > v[5]]
    false = len(false_idx)
    in_back = sum(1 for i in false_idx if visits[i][5] + backs[i] >= visits[i][4])
    n = max(1, len(visits))
    summary = SummaryStats(
        stores=len(store_list),
        skus=len(sku_list),
        days=days,
        pos_events=len(recorded),
        pos_lines=len(pos),
        snapshots=len(snapshots),
        feedback=len(feedback),
        visits=len(visits),
        available_share=available / n,
        naive_promise_share=promised / n,
        naive_false_promise_rate=false / promised if promised else 0.0,
        book_yes_shelf_no_share=false / n,
        false_promise_back_room_share=in_back / false if false else 0.0,
        lost_sale_share=lost / demand_events if demand_events else 0.0,
    )
    return SimulatedDataset(
        start=t_start,
        end=t_end,
        params=params,
        stores=store_list,
        skus=sku_list,
        pos=pos,
        snapshots=snapshots,
        feedback=feedback,
        visits=visits,
        book_at_view=books,
        shelf_traces=traces,
        summary=summary,
    )
